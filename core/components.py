"""What plugins contribute to a routing pipeline.

A plugin's hooks return these when a pipeline is built; the engine then calls the plain
callables inside them directly, never through the plugin manager.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .state import Agent, Task


@attrs.frozen
class Filter:
    """May this agent take this task now? `test` returns True to keep the agent.

    `reason(task, agent)` says in a few words why an agent was excluded; the explain
    command shows it next to the filter's `name`.
    """

    name: str
    test: Callable[[Task, Agent], bool]
    reason: Callable[[Task, Agent], str]
    #: True when the answer can change with the clock alone (opening hours, say); the
    #: engine then re-checks waiting tasks whenever time moves, not only when agents change
    time_dependent: bool = False
    #: True when the roster index already gives the answer: the filter tests only that
    #: the agent is ready, has room on the task's channel, or belongs to the task's queue
    #: (`target_workers`). The indexed path then skips it, since the index offers only
    #: such agents. The core's filters set it; a plugin's filter leaves it False.
    index_kept: bool = False


@attrs.frozen
class Preference:
    """Among the eligible agents, prefer those for which `prefer` is True.

    When at least one eligible agent is preferred, the others are set aside (shown with
    `reason` in explanations); when none is, all stay eligible. Preferences apply after
    the filters, in the deployment's plugin order, so a rule such as "not the agent who
    declined, while another agent has room" holds whatever other plugins rank first.
    """

    name: str
    prefer: Callable[[Task, Agent], bool]
    reason: Callable[[Task, Agent], str]


@attrs.frozen
class Indexing:
    """A ranking key's promise that lets the engine keep agents ordered by it.

    The key's value for (task, agent) depends only on `partition(task)` (None: on nothing
    of the task) and on the agent as it was at its last change: an event that changes
    the agent touches it (`Agent.touch`, `PluginContext.agent_changed`), and the engine recomputes
    the key before it routes again. Such a key is computed when an agent changes, not for
    every candidate of every task, so a large roster costs little more than a small one.

    `time_dependent`: the order the key gives can also change as time passes with no
    event. The engine then orders agents by the keys before this one only, and computes
    this key and the ones after it among the agents tied on those.

    `floor` and `floor_order` (for a time-dependent key, both or neither):
    `floor(task, agent, now)` is never above the key at `now`, and `floor_order(task,
    agent)` sorts agents as their floors at any moment (a value that changes only when
    the agent does), and agents with equal floor orders have equal keys. The engine keeps
    tied agents in floor order and stops computing the key once the next floor is above
    the best key found, so a large group of tied agents costs a few computations instead
    of one per agent.
    """

    partition: Callable[[Task], Hashable] | None = None
    time_dependent: bool = False
    floor: Callable[[Task, Agent, float], Any] | None = None
    floor_order: Callable[[Task, Agent], Any] | None = None

    def __attrs_post_init__(self) -> None:
        if (self.floor is None) != (self.floor_order is None):
            raise ValueError("give both floor and floor_order, or neither")
        if self.floor is not None and not self.time_dependent:
            raise ValueError("a floor is for a time-dependent key")


@attrs.frozen
class RankingKey:
    """Orders eligible agents: smaller keys come first. Keys of all plugins form a tuple in
    the order the deployment lists the plugins; ties fall to the next key.

    Without `indexing`, the engine computes the key for every eligible agent of every
    task, which costs time in proportion to the roster (see `Indexing`)."""

    name: str
    key: Callable[[Task, Agent], Any]
    indexing: Indexing | None = None
    #: applies only when no active plugin contributes a ranking key that is not a
    #: fallback (the core's longest idle is one): adding a ranking key replaces it
    fallback: bool = False


@attrs.frozen
class TaskOrdering:
    """Orders waiting tasks: smaller keys are offered first.

    `fixed`: the key does not change while the task waits in one place (it may change
    when the task is queued again: a new target, a decline, a transfer). When every
    ordering is fixed, the engine computes keys once per wait and keeps each queue's
    tasks sorted; otherwise it computes them on every routing pass.
    """

    name: str
    key: Callable[[Task], Any]
    fixed: bool = False
    #: orders tasks ahead of every ordering that does not lead, whatever the order the
    #: deployment lists plugins in (Pega's "transfers ahead of other work"); among
    #: leading orderings, the plugin order holds
    leads: bool = False


EVENTS = (
    "created",
    "entered_queue",
    "offered",
    "accepted",
    "declined",
    "timed_out",
    "completed",
    "canceled",
    "rejected",
    "transferred",
    "login",
    "logout",
    "status_changed",
    "capacity_changed",
    "wrap_up_started",
    "wrap_up_ended",
    "converted",
)


@attrs.frozen
class EventHandler:
    """Called after the engine applied an event of kind `event` (one of EVENTS).

    `handler(task, agent)` gets the task and agent involved (either may be None: a login
    has no task, a task canceled while queued has no agent).
    """

    event: str
    handler: Callable[[Task | None, Agent | None], None]

    def __attrs_post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; known: {', '.join(EVENTS)}")


@attrs.frozen
class ArrivalCheck:
    """Decides on arrival whether a task is routed at all.

    `check(task)` returns None to let the task in, or `(reason, message)` to reject it.
    """

    name: str
    check: Callable[[Task], tuple[str, str | None] | None]
