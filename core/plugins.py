"""Finding plugins: everything in the `omniroute` entry-point group, built-ins included.

Loading is the registry's own, not pluggy's `load_setuptools_entrypoints`, so that one
bad plugin cannot break the others:

- an entry point that fails to import (or to register, or names a hook that does not
  exist) is kept as *broken*, with its distribution and error. `omniroute plugins` lists
  it; a deployment that uses it gets a problem naming it; every other deployment works.
- an entry point named like one already registered (a third-party plugin named like a built-in) is
  refused and kept as broken, naming both distributions: a built-in is never replaced.

Hook calls go through `call_for`, `section_class` and `collect`: an exception or a return
of the wrong type becomes a `PluginError` naming the plugin and the hook.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from functools import cache
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .components import ArrivalCheck, EventHandler, Filter, Preference, RankingKey, TaskOrdering
from .errors import PluginError, Problem

CORE_PLUGIN = "core"
"""The core's own behaviour, registered through an entry point like any plugin and always
active: TaskRouter workflow filters, queue membership, channel capacity, `order_by`,
longest-idle ranking and priority-then-age ordering."""

#: The distribution whose entry points are the built-ins.
BUILTIN_DISTRIBUTION = "omniroute"

#: What each component hook must return an iterable of.
COMPONENT_KINDS: dict[str, type] = {
    "omniroute_filters": Filter,
    "omniroute_preferences": Preference,
    "omniroute_ranking_keys": RankingKey,
    "omniroute_task_orderings": TaskOrdering,
    "omniroute_event_handlers": EventHandler,
    "omniroute_arrival_checks": ArrivalCheck,
}


@attrs.frozen
class BrokenPlugin:
    """An entry point that could not be made a plugin, and why."""

    name: str
    distribution: str
    version: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} (from {self.distribution} {self.version}) is broken: {self.error}"


@attrs.define
class _Registry:
    manager: pluggy.PluginManager
    distributions: dict[str, tuple[str, str]] = attrs.Factory(dict)  # name -> (dist, version)
    broken: dict[str, BrokenPlugin] = attrs.Factory(dict)


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "?", "unknown"
    return str(dist.metadata["Name"] or "?"), str(dist.version)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points, built-ins first, so that a built-in always wins its name."""
    found = list(importlib.metadata.entry_points(group=hookspecs.PROJECT))
    return sorted(found, key=lambda ep: _distribution_of(ep)[0] != BUILTIN_DISTRIBUTION)


def _describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _load(registry: _Registry, entry_point: importlib.metadata.EntryPoint) -> None:
    name = entry_point.name
    dist, version = _distribution_of(entry_point)
    if name in registry.distributions:
        other, other_version = registry.distributions[name]
        registry.broken.setdefault(
            f"{name} ({dist})",
            BrokenPlugin(
                name,
                dist,
                version,
                f"refused: the name is already taken by {other} {other_version}"
                f" ({'built in' if other == BUILTIN_DISTRIBUTION else 'loaded first'})",
            ),
        )
        return
    try:
        plugin = entry_point.load()
        registry.manager.register(plugin, name=name)
    except Exception as error:  # an import error, a bad hookimpl: this plugin only
        registry.broken[name] = BrokenPlugin(name, dist, version, _describe_error(error))
        return
    registry.distributions[name] = (dist, version)


@cache
def _registry() -> _Registry:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    registry = _Registry(manager)
    for entry_point in _entry_points():
        _load(registry, entry_point)
    # A hookimpl whose name matches no hookspec (a misspelling) breaks its plugin alone.
    while True:
        try:
            manager.check_pending()
            break
        except pluggy.PluginValidationError as error:
            name = manager.get_name(error.plugin) or "?"
            manager.unregister(error.plugin)
            dist, version = registry.distributions.pop(name, ("?", "unknown"))
            registry.broken[name] = BrokenPlugin(name, dist, version, str(error))
    return registry


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded once from entry points."""
    return _registry().manager


def installed() -> list[str]:
    """Names of the installed, working plugins other than the core, sorted."""
    return sorted(name for name, _ in plugin_manager().list_name_plugin() if name != CORE_PLUGIN)


def broken() -> dict[str, BrokenPlugin]:
    """Entry points that could not be loaded, by name (a refused duplicate: `name (dist)`)."""
    return dict(_registry().broken)


def broken_problem(name: str, path: str) -> Problem | None:
    """The problem of a deployment that uses a broken plugin, or None if it is not broken."""
    plugin = _registry().broken.get(name)
    return None if plugin is None else Problem(path, str(plugin))


def get_plugin(name: str) -> Any | None:
    return plugin_manager().get_plugin(name)


def section_class(name: str) -> type | None:
    """The attrs class a plugin declares for its deployment section, if any.

    PluginError when the hook raises or returns anything but None or an attrs class.
    """
    result = call_for(name, "omniroute_config_section")
    if result is None:
        return None
    if not (isinstance(result, type) and attrs.has(result)):
        raise PluginError(
            name,
            "omniroute_config_section",
            TypeError(f"returned {_shown(result)}; expected an attrs class or None"),
        )
    return result


def call_for(name: str, hook_name: str, **kwargs: Any) -> Any:
    """Call one hook of one plugin, through pluggy: the implementation gets only the
    arguments it names (give every argument of the hookspec), and pluggy's wrappers and
    tracing apply. None when the plugin is unknown, does not implement the hook, or
    returns None.

    An exception in the hook is a PluginError naming the plugin. For the component hooks
    (COMPONENT_KINDS), the result is a tuple, checked item by item, and an exception
    raised while iterating it (a generator) is a PluginError too.
    """
    manager = plugin_manager()
    plugin = manager.get_plugin(name)
    if plugin is None:
        return None
    others = [other for other in manager.get_plugins() if other is not plugin]
    try:
        results = manager.subset_hook_caller(hook_name, others)(**kwargs)
    except Exception as error:
        raise PluginError(name, hook_name, error) from error
    result = results[0] if results else None
    kind = COMPONENT_KINDS.get(hook_name)
    if kind is not None:
        return _components(name, hook_name, result, kind)
    if hook_name == "omniroute_validate":
        return _problems(name, result)
    return result


def collect(name: str, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """A component hook's result as (plugin, component) pairs, for building a pipeline."""
    return [(name, item) for item in call_for(name, hook_name, **kwargs) or ()]


def _components(name: str, hook_name: str, result: Any, kind: type) -> tuple[Any, ...]:
    if result is None:
        return ()
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise PluginError(
            name,
            hook_name,
            TypeError(f"returned {_shown(result)}; expected a list of {kind.__name__}"),
        )
    try:
        items = tuple(result)
    except Exception as error:
        raise PluginError(name, hook_name, error) from error
    for item in items:
        if not isinstance(item, kind):
            raise PluginError(
                name,
                hook_name,
                TypeError(f"returned {_shown(item)} in its list, not a {kind.__name__}"),
            )
    return items


def _problems(name: str, result: Any) -> list[Problem]:
    hook_name = "omniroute_validate"
    if result is None:
        return []
    if isinstance(result, (str, bytes, Problem)) or not hasattr(result, "__iter__"):
        raise PluginError(
            name, hook_name, TypeError(f"returned {_shown(result)}; expected a list of Problem")
        )
    try:
        items = list(result)
    except Exception as error:
        raise PluginError(name, hook_name, error) from error
    for item in items:
        if not isinstance(item, Problem):
            raise PluginError(
                name, hook_name, TypeError(f"returned {_shown(item)} in its list, not a Problem")
            )
    return items


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


@attrs.frozen
class PluginInfo:
    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]
    module: str
    #: why the plugin could not be loaded; empty for a working plugin
    error: str = ""


def describe() -> Iterator[PluginInfo]:
    """What `omniroute plugins` lists: every plugin, its version and hooks, broken ones too."""
    registry = _registry()
    manager = registry.manager
    rows = []
    for name, plugin in manager.list_name_plugin():
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        if name in registry.distributions:
            project, version = registry.distributions[name]
        else:
            project, version = "?", _version_of(plugin)
        module = getattr(plugin, "__name__", type(plugin).__name__)
        rows.append(PluginInfo(name, version, project, hooks, module))
    for key, broken_plugin in registry.broken.items():
        rows.append(
            PluginInfo(
                key,
                broken_plugin.version,
                broken_plugin.distribution,
                (),
                "",
                broken_plugin.error,
            )
        )
    yield from sorted(rows, key=lambda info: info.name)


def _version_of(plugin: Any) -> str:
    """A plugin registered by hand (not through an entry point): its top package's version."""
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    try:
        return importlib.metadata.version(module.split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return "unknown"
