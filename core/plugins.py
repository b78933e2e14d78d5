"""Finding plugins: everything in the `omniroute` entry-point group, built-ins included."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from functools import cache
from typing import Any

import attrs
import pluggy

from . import hookspecs

CORE_PLUGIN = "core"
"""The core's own behaviour, registered through an entry point like any plugin and always
active: TaskRouter workflow filters, queue membership, channel capacity, `order_by`,
longest-idle ranking and priority-then-age ordering."""


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded once from entry points."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    # A hookimpl whose name matches no hookspec (a misspelling) fails here, not silently.
    manager.check_pending()
    return manager


def installed() -> list[str]:
    """Names of the installed plugins other than the core, sorted."""
    return sorted(name for name, _ in plugin_manager().list_name_plugin() if name != CORE_PLUGIN)


def get_plugin(name: str) -> Any | None:
    return plugin_manager().get_plugin(name)


def section_class(name: str) -> type | None:
    """The attrs class a plugin declares for its deployment section, if any."""
    result = call_for(name, "omniroute_config_section")
    return result if isinstance(result, type) else None


def call_for(name: str, hook_name: str, **kwargs: Any) -> Any:
    """Call one hook of one plugin, through pluggy: the implementation gets only the
    arguments it names (give every argument of the hookspec), and pluggy's wrappers and
    tracing apply. None when the plugin is unknown, does not implement the hook, or
    returns None."""
    manager = plugin_manager()
    plugin = manager.get_plugin(name)
    if plugin is None:
        return None
    others = [other for other in manager.get_plugins() if other is not plugin]
    results = manager.subset_hook_caller(hook_name, others)(**kwargs)
    return results[0] if results else None


@attrs.frozen
class PluginInfo:
    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]
    module: str


def describe() -> Iterator[PluginInfo]:
    """What `omniroute plugins` lists: every installed plugin, its version and hooks."""
    manager = plugin_manager()
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    for name, plugin in sorted(manager.list_name_plugin(), key=lambda item: item[0]):
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        dist = distributions.get(id(plugin))
        version = dist.version if dist is not None else _version_of(plugin)
        project = dist.project_name if dist is not None else "?"
        yield PluginInfo(
            name, version, project, hooks, getattr(plugin, "__name__", type(plugin).__name__)
        )


def _version_of(plugin: Any) -> str:
    """A plugin registered by hand (not through an entry point): its top package's version."""
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    try:
        return importlib.metadata.version(module.split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return "unknown"
