"""The hooks a plugin may implement. This module is their reference documentation.

Plugins are modules or objects registered under the `omniroute` entry-point group. Hooks
are called when a pipeline is built from a deployment, once per active plugin (those the
deployment lists in `plugins`, plus the always-active `core`), in the deployment's order;
the engine then calls the returned components directly. No hook is called per task or per
candidate agent.

The pipeline hooks are offered `context` (the plugin's `PluginContext`: its section,
read-only queries of the engine, its state and the engine's services for plugins),
`section` (the plugin's structured deployment section) and `deployment`. pluggy calls
the implementations, so an implementation names only the arguments it uses: `def
omniroute_filters(context)`, `def omniroute_ranking_keys(section)`, or none at all. Every
hook of one plugin in one engine receives the same `PluginContext`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .components import ArrivalCheck, EventHandler, Filter, Preference, RankingKey, TaskOrdering
    from .context import PluginContext
    from .errors import Problem
    from .spec import Deployment
    from .state import Agent

PROJECT = "omniroute"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- configuration ----------------------------------------------------------------------


@hookspec
def omniroute_config_section() -> type | None:
    """The attrs class of the plugin's deployment section, or None if it reads none.

    The section is the top-level key named after the plugin. The loader structures it with
    the project's strict cattrs converter (no `"false"` → True, no 2.9 → 2; unknown keys
    are errors) and reports problems with their key paths. A class may validate its own
    values in `__attrs_post_init__` by raising `ValueError`; the message is reported at
    the section's path.
    """


@hookspec
def omniroute_validate(deployment: Deployment, section: Any) -> Iterable[Problem]:  # type: ignore[empty-body]
    """Problems that need the whole deployment to see (a group or queue named in the
    section that the deployment does not define, say). Return `Problem`s with full key
    paths; severity "warning" is shown by `omniroute check` but does not fail it."""


# --- the routing pipeline ---------------------------------------------------------------


@hookspec
def omniroute_filters(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[Filter]:
    """Filters: may this agent take this task now? An agent must pass every filter of
    every active plugin to be offered the task."""


@hookspec
def omniroute_preferences(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[Preference]:
    """Preferences among eligible agents: when some eligible agents pass a preference, the
    others are set aside; when none does, all stay. Applied after every filter, before
    ranking, so they hold whatever ranking keys other plugins contribute."""


@hookspec
def omniroute_ranking_keys(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[RankingKey]:
    """Ranking keys for eligible agents, most significant first. The pipeline ranks by a
    workflow target's `order_by`, then by every plugin's keys in the deployment's plugin
    order, then by the order agents were added to the roster. The core's longest-idle key
    applies only when no active plugin contributes a ranking key."""


@hookspec
def omniroute_task_orderings(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[TaskOrdering]:
    """Orderings of waiting tasks, most significant first, in the deployment's plugin
    order, before the core's order (priority, then waiting time, then creation)."""


@hookspec
def omniroute_event_handlers(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[EventHandler]:
    """Handlers called after the engine applied an event (created, entered_queue, offered,
    accepted, declined, timed_out, completed, canceled, rejected, transferred, login,
    logout, status_changed, capacity_changed, wrap_up_started, wrap_up_ended, converted).
    `wrap_up_started` follows `completed` (or `canceled`) when the agent wraps up;
    `wrap_up_ended` has the task when the engine still keeps it, else None; `converted`
    is a waiting task that became a callback (docs/wrap-up.md, docs/callbacks.md).
    `entered_queue` fires whenever a task starts waiting in a
    queue: when placed on arrival (before the arrival checks and `created`), when it moves
    to another workflow target, and when it is transferred to a queue. If a handler raises,
    the whole event is rolled back and the error names the plugin."""


@hookspec
def omniroute_arrival_checks(  # type: ignore[empty-body]
    context: PluginContext, section: Any, deployment: Deployment
) -> Iterable[ArrivalCheck]:
    """Checks on a task's arrival that may reject it with a reason and a message (closed
    hours, nobody logged in, a wait too long) before it waits for an agent."""


# --- checks -----------------------------------------------------------------------------


@hookspec
def omniroute_roster_warnings(  # type: ignore[empty-body]
    deployment: Deployment, section: Any, roster: Sequence[Agent]
) -> Iterable[Problem]:
    """Warnings about a roster under this deployment that only the plugin can see (a
    group it routes to that no agent of the roster can serve, say). `omniroute check
    --agents FILE` shows them beside the core's own (a queue no agent can serve). Return
    `Problem`s with severity "warning" and the key path of the plugin's setting."""
