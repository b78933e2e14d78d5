"""least_occupancy: Pega's queue-based routing.

Ranking: the agent handling the fewest active tasks, then the one whose last acceptance
is longest ago (never is longest), then the earliest login. An agent who declined (or
let time out) a reservation of this task is set aside while another eligible agent has
room (a preference, so it holds whatever other plugins rank first).

A declined or timed-out reservation waits `reroute_delay` seconds before the task is
routed again; it keeps its original queue time, so it goes ahead of newer tasks. A task
transferred to a queue goes ahead of that queue's waiting tasks. `max_concurrent` caps,
per queue, the tasks of that queue an agent may hold at once. Transfers to an agent go
straight to that agent only when it is ready and has room; the core refuses others.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

from omniroute.core import (
    EventHandler,
    Filter,
    Indexing,
    PluginContext,
    Preference,
    Problem,
    RankingKey,
    TaskOrdering,
    hookimpl,
)
from omniroute.core.converter import ConfigProblems, key_path
from omniroute.core.spec import Deployment, Duration
from omniroute.core.state import Agent, Task

NAME = "least_occupancy"


def _positive(instance: Any, attribute: Any, value: dict[str, int]) -> None:
    problems = [
        (key_path([queue]), f"must be at least 1, got {limit}")
        for queue, limit in value.items()
        if limit < 1
    ]
    if problems:
        raise ConfigProblems(problems)


@attrs.frozen
class LeastOccupancySection:
    #: seconds a declined or timed-out task waits before it is routed again
    reroute_delay: Duration = Duration(10.0)
    #: per queue: the tasks of that queue an agent may hold at once
    max_concurrent: dict[str, int] = attrs.field(factory=dict, validator=_positive)


@hookimpl
def omniroute_config_section() -> type:
    return LeastOccupancySection


@hookimpl
def omniroute_validate(deployment: Deployment, section: LeastOccupancySection) -> Iterable[Problem]:
    for queue in section.max_concurrent:
        if queue not in deployment.queues:
            yield Problem(
                key_path([queue], f"{NAME}.max_concurrent"),
                f"unknown queue {queue!r} (queues: {', '.join(deployment.queues) or 'none'})",
            )


@hookimpl
def omniroute_filters(context: PluginContext, section: LeastOccupancySection) -> Iterable[Filter]:
    limits = section.max_concurrent
    if not limits:
        return []

    def held_from(agent: Agent, queue: str) -> int:
        return sum(
            1
            for ids in agent.held.values()
            for task_id in ids
            if (held := context.task(task_id)) is not None and held.queue == queue
        )

    def under_limit(task: Task, agent: Agent) -> bool:
        limit = limits.get(task.queue or "")
        return limit is None or held_from(agent, task.queue or "") < limit

    def reason(task: Task, agent: Agent) -> str:
        return f"holds {held_from(agent, task.queue or '')} tasks of queue {task.queue!r} (max_concurrent {limits[task.queue or '']})"

    return [Filter("max_concurrent", under_limit, reason)]


@hookimpl
def omniroute_preferences() -> Iterable[Preference]:
    return [
        Preference(
            "not_declined",
            lambda task, agent: agent.id not in task.declined_by,
            lambda _task, agent: f"{agent.id} declined it and another eligible agent has room",
        )
    ]


@hookimpl
def omniroute_ranking_keys() -> Iterable[RankingKey]:
    return [
        RankingKey("fewest_active", lambda _task, agent: agent.held_count(), Indexing()),
        RankingKey(
            "last_accepted",
            lambda _task, agent: (
                agent.last_accept_at if agent.last_accept_at is not None else -math.inf
            ),
            Indexing(),
        ),
        RankingKey(
            "earliest_login",
            lambda _task, agent: agent.login_at if agent.login_at is not None else math.inf,
            Indexing(),
        ),
    ]


@hookimpl
def omniroute_task_orderings() -> Iterable[TaskOrdering]:
    return [
        # Pega's transfer priority must not depend on where `plugins` lists this plugin.
        TaskOrdering(
            "transferred_first", lambda task: 0 if task.transferred else 1, fixed=True, leads=True
        )
    ]


@hookimpl
def omniroute_event_handlers(
    context: PluginContext, section: LeastOccupancySection
) -> Iterable[EventHandler]:
    delay = float(section.reroute_delay)

    def reroute_later(task: Task | None, _agent: Agent | None) -> None:
        if task is not None and task.state == "queued" and delay > 0:
            context.hold_task(task, context.now + delay, "reroute_delay")

    return [EventHandler("declined", reroute_later), EventHandler("timed_out", reroute_later)]
