"""Composing a routing pipeline from what the active plugins contribute.

The hooks are called here, once per engine; the engine then calls the components held in
the `Pipeline` directly. Each component is kept with the name of the plugin that gave it,
so that an error or an explanation can name it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from . import plugins as plugin_registry
from .components import ArrivalCheck, EventHandler, Filter, Preference, RankingKey, TaskOrdering
from .setup import Setup

if TYPE_CHECKING:
    from .engine import Engine
    from .spec import Deployment


@attrs.frozen
class Pipeline:
    filters: tuple[tuple[str, Filter], ...]
    preferences: tuple[tuple[str, Preference], ...]
    ranking_keys: tuple[tuple[str, RankingKey], ...]
    task_orderings: tuple[tuple[str, TaskOrdering], ...]
    handlers: dict[str, tuple[tuple[str, EventHandler], ...]]
    arrival_checks: tuple[tuple[str, ArrivalCheck], ...]
    setups: dict[str, Setup]


def _collect(plugin: str, hook: str, setup: Setup, kind: type) -> list[tuple[str, Any]]:
    result = plugin_registry.call_for(plugin, hook, setup=setup)
    items: Iterable[Any] = result or ()
    collected = []
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"plugin {plugin!r}: {hook} returned {item!r}, not a {kind.__name__}")
        collected.append((plugin, item))
    return collected


def build_pipeline(deployment: Deployment, engine: Engine) -> Pipeline:
    """Call every active plugin's hooks once and compose what they return.

    Filters: the core's first (status, room, queue, target), then the plugins' in the
    deployment's order. Ranking keys and task orderings: the plugins' in order, then the
    core's (its longest-idle ranking only when no plugin ranks).
    """
    core = plugin_registry.CORE_PLUGIN
    setups = {
        name: Setup(name, deployment, deployment.section(name), engine)
        for name in (core, *deployment.plugins)
    }
    plugin_order = list(deployment.plugins)

    filters = _collect(core, "omniroute_filters", setups[core], Filter)
    preferences: list[tuple[str, Preference]] = []
    ranking: list[tuple[str, RankingKey]] = []
    orderings: list[tuple[str, TaskOrdering]] = []
    handlers: list[tuple[str, EventHandler]] = []
    arrival: list[tuple[str, ArrivalCheck]] = []
    for name in plugin_order:
        filters += _collect(name, "omniroute_filters", setups[name], Filter)
        preferences += _collect(name, "omniroute_preferences", setups[name], Preference)
        ranking += _collect(name, "omniroute_ranking_keys", setups[name], RankingKey)
        orderings += _collect(name, "omniroute_task_orderings", setups[name], TaskOrdering)
        handlers += _collect(name, "omniroute_event_handlers", setups[name], EventHandler)
        arrival += _collect(name, "omniroute_arrival_checks", setups[name], ArrivalCheck)
    if not ranking:
        ranking += _collect(core, "omniroute_ranking_keys", setups[core], RankingKey)
    orderings += _collect(core, "omniroute_task_orderings", setups[core], TaskOrdering)
    handlers += _collect(core, "omniroute_event_handlers", setups[core], EventHandler)

    by_event: dict[str, list[tuple[str, EventHandler]]] = {}
    for plugin, handler in handlers:
        by_event.setdefault(handler.event, []).append((plugin, handler))
    return Pipeline(
        filters=tuple(filters),
        preferences=tuple(preferences),
        ranking_keys=tuple(ranking),
        task_orderings=tuple(orderings),
        handlers={event: tuple(items) for event, items in by_event.items()},
        arrival_checks=tuple(arrival),
        setups=setups,
    )
