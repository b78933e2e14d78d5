"""Composing a routing pipeline from what the active plugins contribute.

The hooks are called here, once per engine; the engine then calls the components held in
the `Pipeline` directly. Each component is kept with its owner: the name of the plugin
that gave it, or None for the engine's built-in behaviour (the always-active core
plugin), whose errors are the engine's own and whose names explanations show unqualified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from . import plugins as plugin_registry
from .components import ArrivalCheck, EventHandler, Filter, Preference, RankingKey, TaskOrdering
from .context import EngineServices, PluginContext

if TYPE_CHECKING:
    from .spec import Deployment

Owner = str | None
"""The plugin a component comes from; None: the engine's built-in behaviour."""


@attrs.frozen
class Pipeline:
    filters: tuple[tuple[Owner, Filter], ...]
    preferences: tuple[tuple[Owner, Preference], ...]
    ranking_keys: tuple[tuple[Owner, RankingKey], ...]
    task_orderings: tuple[tuple[Owner, TaskOrdering], ...]
    handlers: dict[str, tuple[tuple[Owner, EventHandler], ...]]
    arrival_checks: tuple[tuple[Owner, ArrivalCheck], ...]
    #: the context every hook of each plugin received, by plugin name
    contexts: dict[str, PluginContext]


def _collect(context: PluginContext, hook: str, kind: type) -> list[tuple[Owner, Any]]:
    """The components a plugin's hook contributes, with their owner. `plugins.call_for`
    has checked them: each is a `kind`, and a failing hook is a PluginError naming it."""
    found = plugin_registry.collect(
        context.plugin,
        hook,
        context=context,
        section=context.section,
        deployment=context.deployment,
    )
    owner = context.owner
    return [(owner, item) for _plugin, item in found]


def build_pipeline(deployment: Deployment, engine: EngineServices) -> Pipeline:
    """Call every active plugin's hooks once and compose what they return.

    The built-in core plugin brackets the others: its filters, preferences and arrival
    checks come first (status, room, queue, target), its task orderings and event
    handlers last (priority, waiting, creation). Between them, the plugins' components in
    the deployment's order, except that task orderings marked `leads` come before the
    others. A ranking key marked `fallback`
    (the core's longest idle) applies only when no other ranking key is contributed.
    """
    core = plugin_registry.CORE_PLUGIN
    contexts = {core: PluginContext(core, deployment, deployment.section(core), engine)}
    for name in deployment.plugins:
        contexts[name] = PluginContext(
            name, deployment, deployment.section(name), engine, owner=name
        )
    ordered = [contexts[name] for name in deployment.plugins]
    builtin = contexts[core]

    filters = _collect(builtin, "omniroute_filters", Filter)
    ranking = _collect(builtin, "omniroute_ranking_keys", RankingKey)
    orderings: list[tuple[Owner, TaskOrdering]] = []
    preferences = _collect(builtin, "omniroute_preferences", Preference)
    handlers: list[tuple[Owner, EventHandler]] = []
    arrival = _collect(builtin, "omniroute_arrival_checks", ArrivalCheck)
    for context in ordered:
        filters += _collect(context, "omniroute_filters", Filter)
        preferences += _collect(context, "omniroute_preferences", Preference)
        ranking += _collect(context, "omniroute_ranking_keys", RankingKey)
        orderings += _collect(context, "omniroute_task_orderings", TaskOrdering)
        handlers += _collect(context, "omniroute_event_handlers", EventHandler)
        arrival += _collect(context, "omniroute_arrival_checks", ArrivalCheck)
    # An ordering that leads goes first wherever its plugin is listed (a stable sort).
    orderings.sort(key=lambda item: not item[1].leads)
    orderings += _collect(builtin, "omniroute_task_orderings", TaskOrdering)
    handlers += _collect(builtin, "omniroute_event_handlers", EventHandler)
    chosen = [item for item in ranking if not item[1].fallback]
    if not chosen:
        chosen = [item for item in ranking if item[1].fallback]

    by_event: dict[str, list[tuple[Owner, EventHandler]]] = {}
    for owner, handler in handlers:
        by_event.setdefault(handler.event, []).append((owner, handler))
    return Pipeline(
        filters=tuple(filters),
        preferences=tuple(preferences),
        ranking_keys=tuple(chosen),
        task_orderings=tuple(orderings),
        handlers={event: tuple(items) for event, items in by_event.items()},
        arrival_checks=tuple(arrival),
        contexts=contexts,
    )
