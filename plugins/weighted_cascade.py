"""weighted_cascade: LivePerson's advanced workload distribution between agent groups.

On arrival a task of a configured queue is allocated to one primary group by the quota
method of apportionment (ties go to the group listed first), so that at every point of a
run each group's share of tasks is as close to its percentage as whole tasks allow. Until the task has
waited `max_wait`, only agents of that group are eligible. Then it cascades: it is
allocated the same way among the secondary groups (the other primary groups when there
are none), and agents of that group become eligible too. A task reserved when `max_wait`
passes cascades as soon as it is back in the queue (declined, timed out, its agent gone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from omniroute.core import EventHandler, Filter, PluginContext, Problem, checks, hookimpl
from omniroute.core.converter import key_path
from omniroute.core.spec import Deployment, Duration
from omniroute.core.state import Agent, Task

NAME = "weighted_cascade"


def _sums_to_100(instance: Any, attribute: Any, value: dict[str, float] | None) -> None:
    if value is None:
        return
    if any(share < 0 for share in value.values()):
        raise ValueError(f"{attribute.name}: percentages cannot be negative")
    total = sum(value.values())
    if abs(total - 100) > 1e-9:
        raise ValueError(f"{attribute.name}: percentages must sum to 100, not {total:g}")


@attrs.frozen
class QueueDistribution:
    primary: dict[str, float] = attrs.field(validator=_sums_to_100)
    secondary: dict[str, float] | None = attrs.field(default=None, validator=_sums_to_100)
    #: seconds a task waits for its primary group before it cascades
    max_wait: Duration = Duration(120.0)

    def __attrs_post_init__(self) -> None:
        both = sorted(set(self.primary) & set(self.secondary or {}))
        if both:
            raise ValueError(f"group(s) {', '.join(both)} cannot be both primary and secondary")
        # The seed's own example cascades one primary group to one secondary group
        # ("Sales Spanish": Agent Group A, then B); what it needs is two groups in all.
        groups = len(self.primary) + len(self.secondary or {})
        if groups < 2:
            raise ValueError(
                f"needs at least two agent groups in primary and secondary together, got {groups}"
            )


@attrs.frozen
class WeightedCascadeSection:
    queues: dict[str, QueueDistribution] = attrs.Factory(dict)
    #: the agent groups of the deployment; when given, every group named must be one of them
    groups: tuple[str, ...] | None = None


@hookimpl
def omniroute_config_section() -> type:
    return WeightedCascadeSection


@hookimpl
def omniroute_validate(
    deployment: Deployment, section: WeightedCascadeSection
) -> Iterable[Problem]:
    for queue, distribution in section.queues.items():
        path = key_path([queue], f"{NAME}.queues")
        if queue not in deployment.queues:
            yield Problem(
                path, f"unknown queue {queue!r} (queues: {', '.join(deployment.queues) or 'none'})"
            )
        if section.groups is None:
            continue
        for stage in ("primary", "secondary"):
            for group in getattr(distribution, stage) or {}:
                if group not in section.groups:
                    yield Problem(
                        key_path([stage, group], path),
                        f"unknown group {group!r} (groups: {', '.join(section.groups)})",
                    )


def _allocate(state: dict[str, Any], weights: dict[str, float]) -> str:
    """The next group, by Balinski and Young's quota method.

    Among the groups that would not pass their upper quota (the ceiling of their share of
    the tasks allocated so far, this one included), the one with the highest
    weight / (count + 1) gets the task; ties go to the group listed first. After every
    allocation each group holds the floor or the ceiling of its exact share: as close to
    the percentages as whole tasks allow, at every point of a run, not only in the long run.
    """
    total = sum(weights.values())
    counts: dict[str, int] = state.setdefault("counts", {})
    allocated = state.get("allocated", 0) + 1
    best = None
    best_priority = -1.0
    for group, weight in weights.items():
        count = counts.get(group, 0)
        upper_quota = math.ceil(allocated * weight / total - 1e-9)
        if count + 1 > upper_quota:
            continue
        priority = weight / (count + 1)
        if priority > best_priority + 1e-12:
            best, best_priority = group, priority
    assert best is not None  # the quotas sum to at least `allocated`, so some group has room
    counts[best] = counts.get(best, 0) + 1
    state["allocated"] = allocated
    return best


@hookimpl
def omniroute_event_handlers(
    context: PluginContext, section: WeightedCascadeSection
) -> Iterable[EventHandler]:
    distributions = section.queues

    def arrived(task: Task | None, agent: Agent | None) -> None:
        if task is not None:
            context.task_state(task)["arrived"] = True
            allocate(task, agent)

    def entered_queue(task: Task | None, agent: Agent | None) -> None:
        # On arrival the allocation waits for `created`, after the arrival checks, so that
        # a rejected task does not take a turn of the round-robin.
        if task is not None and context.task_state(task).get("arrived"):
            allocate(task, agent)

    def allocate(task: Task | None, _agent: Agent | None) -> None:
        if task is None or task.queue not in distributions or task.state != "queued":
            return
        mine = context.task_state(task)
        if mine.get("queue") == task.queue:
            return
        distribution = distributions[task.queue]
        credits = context.state().setdefault(f"{task.queue}/primary", {})
        mine.update(
            queue=task.queue,
            groups=[_allocate(credits, distribution.primary)],
            cascaded=False,
            cascade_due=False,
        )
        context.set_timer(context.now + distribution.max_wait, "cascade", [task.id, task.queue])

    def cascade(payload: list[Any]) -> None:
        task_id, queue = payload
        task = context.task(task_id)
        if task is None:  # closed and forgotten (a long simulation keeps no closed tasks)
            return
        mine = context.task_state(task)
        if mine.get("queue") != queue or mine.get("cascaded") or queue is None:
            return
        if task.state == "queued":
            cascade_now(task, queue)
        elif task.state == "reserved":
            # Its offer may still fail: then it cascades as soon as it is back in the queue.
            mine["cascade_due"] = True

    def back_in_queue(task: Task | None, _agent: Agent | None) -> None:
        if task is None or task.state != "queued":
            return
        mine = context.task_state(task)
        queue = task.queue
        if mine.pop("cascade_due", False) and queue is not None and mine.get("queue") == queue:
            cascade_now(task, queue)

    def cascade_now(task: Task, queue: str) -> None:
        mine = context.task_state(task)
        distribution = distributions[queue]
        primary = mine["groups"][0]
        weights = distribution.secondary or {
            g: w for g, w in distribution.primary.items() if g != primary
        }
        stage = "secondary" if distribution.secondary else f"after {primary}"
        credits = context.state().setdefault(f"{queue}/{stage}", {})
        mine["groups"] = [*mine["groups"], _allocate(credits, weights)]
        mine["cascaded"] = True

    context.on_timer("cascade", cascade)
    return [
        EventHandler("created", arrived),
        EventHandler("entered_queue", entered_queue),
        # declined, timed out, its agent gone (logged out or not ready: "timed_out"), or
        # converted to a callback while reserved (its reservation revoked)
        *(EventHandler(event, back_in_queue) for event in ("declined", "timed_out", "converted")),
    ]


@hookimpl
def omniroute_filters(context: PluginContext, section: WeightedCascadeSection) -> Iterable[Filter]:
    distributions = section.queues

    def in_allocated_group(task: Task, agent: Agent) -> bool:
        if task.queue not in distributions:
            return True
        groups = context.task_state(task).get("groups")
        if groups is None:
            return True
        return any(group in agent.groups for group in groups)

    def reason(task: Task, agent: Agent) -> str:
        groups = context.task_state(task).get("groups", [])
        return f"outside its group allocation (allocated to {', '.join(groups)})"

    return [Filter("group", in_allocated_group, reason)]


@hookimpl
def omniroute_roster_warnings(
    deployment: Deployment, section: WeightedCascadeSection, roster: Sequence[Agent]
) -> Iterable[Problem]:
    """A group the cascade routes a queue's tasks to with no agent who can serve the queue."""
    for queue, distribution in section.queues.items():
        if queue not in deployment.queues:
            continue
        serving = checks.serving_agents(deployment, queue, roster)
        for group in [*distribution.primary, *(distribution.secondary or {})]:
            if not any(group in agent.groups for agent in serving):
                yield Problem(
                    f"{NAME}.queues.{queue}",
                    f"no agent of group {group!r} in the roster can serve queue {queue!r}: its share of tasks will wait for the cascade; "
                    f"fix: put agents who can serve {queue!r} in group {group!r}, or drop the group",
                    "warning",
                )
