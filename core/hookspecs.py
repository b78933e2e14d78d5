"""The hooks a plugin may implement. This module is their reference documentation.

Plugins are modules or objects registered under the `omniroute` entry-point group. Hooks
are called when a pipeline is built from a deployment, once per active plugin (those the
deployment lists in `plugins`, plus the always-active `core`), in the deployment's order;
the engine then calls the returned components directly. No hook is called per task or per
candidate agent.

Setup-time hooks receive a `Setup`: the deployment, the plugin's own structured section,
and the engine's services for plugins: per-agent, per-task and per-plugin state that the
engine rolls back with the event when anything fails, timers, and capacity changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .components import ArrivalCheck, EventHandler, Filter, Preference, RankingKey, TaskOrdering
    from .errors import Problem
    from .setup import Setup
    from .spec import Deployment

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
def omniroute_filters(setup: Setup) -> Iterable[Filter]:  # type: ignore[empty-body]
    """Filters: may this agent take this task now? An agent must pass every filter of
    every active plugin to be offered the task."""


@hookspec
def omniroute_preferences(setup: Setup) -> Iterable[Preference]:  # type: ignore[empty-body]
    """Preferences among eligible agents: when some eligible agents pass a preference, the
    others are set aside; when none does, all stay. Applied after every filter, before
    ranking, so they hold whatever ranking keys other plugins contribute."""


@hookspec
def omniroute_ranking_keys(setup: Setup) -> Iterable[RankingKey]:  # type: ignore[empty-body]
    """Ranking keys for eligible agents, most significant first. The pipeline ranks by a
    workflow target's `order_by`, then by every plugin's keys in the deployment's plugin
    order, then by the order agents were added to the roster. The core's longest-idle key
    applies only when no active plugin contributes a ranking key."""


@hookspec
def omniroute_task_orderings(setup: Setup) -> Iterable[TaskOrdering]:  # type: ignore[empty-body]
    """Orderings of waiting tasks, most significant first, in the deployment's plugin
    order, before the core's order (priority, then waiting time, then creation)."""


@hookspec
def omniroute_event_handlers(setup: Setup) -> Iterable[EventHandler]:  # type: ignore[empty-body]
    """Handlers called after the engine applied an event (created, entered_queue, offered,
    accepted, declined, timed_out, completed, canceled, rejected, transferred, login,
    logout, status_changed). `entered_queue` fires whenever a task starts waiting in a
    queue: when placed on arrival (before the arrival checks and `created`), when it moves
    to another workflow target, and when it is transferred to a queue. If a handler raises,
    the whole event is rolled back and the error names the plugin."""


@hookspec
def omniroute_arrival_checks(setup: Setup) -> Iterable[ArrivalCheck]:  # type: ignore[empty-body]
    """Checks on a task's arrival that may reject it with a reason and a message (closed
    hours, nobody logged in, a wait too long) before it waits for an agent."""
