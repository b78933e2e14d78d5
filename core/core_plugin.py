"""The built-in core plugin: the core's default behaviour, registered as the `core` plugin
through an entry point like any other plugin, and always active.
 Its filters make TaskRouter's rules: an agent must be ready, have
room on the task's channel, belong to the task's queue (`target_workers`) and satisfy the
workflow target's expression; a queue's proficiency steps and preferred-agent wait add
theirs (`timed.py`). Its ranking is longest idle first (only when no other
plugin ranks); its task order is higher priority first, then longest waiting (newest
first in a `lifo` queue), then creation order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .components import EventHandler, Filter, Indexing, Preference, RankingKey, TaskOrdering
from .context import PluginContext
from .hookspecs import hookimpl
from .spec import Deployment
from .state import Agent, Task
from .timed import aged_priority, timed_routing


@hookimpl
def omniroute_filters(context: PluginContext) -> Iterable[Filter]:

    def ready(_task: Task, agent: Agent) -> bool:
        return agent.status == "ready"

    def room(task: Task, agent: Agent) -> bool:
        return agent.has_room(task.channel)

    def no_room(task: Task, agent: Agent) -> str:
        capacity = agent.capacity.get(task.channel, 0)
        if capacity <= 0:
            return f"no capacity on {task.channel}"
        held = f"{agent.held_count(task.channel)} of {capacity} held"
        wrapping = agent.wrap_up.get(task.channel)
        if wrapping:
            held += f", {len(wrapping)} in wrap-up until {min(wrapping.values()):g} s"
        return f"no room on {task.channel} ({held})"

    # A target_workers that reads nothing (the default '1 == 1') has one answer for every
    # agent: decide it here, not once per candidate.
    fixed = {
        name: queue.target_workers.evaluate({})
        for name, queue in context.deployment.queues.items()
        if not queue.target_workers.references
    }

    def in_queue(task: Task, agent: Agent) -> bool:
        if task.queue in fixed:
            return fixed[task.queue]
        queue = context.queue_of(task)
        return queue is None or queue.target_workers.evaluate(
            context.expression_context(task, agent)
        )

    def target(task: Task, agent: Agent) -> bool:
        current = context.target_of(task)
        if current is None or current.expression is None:
            return True
        return current.expression.evaluate(context.expression_context(task, agent))

    # Without an expression on any workflow target, this filter passes every agent: the
    # index answers it, and the fast path does not call it per candidate.
    workflow = context.deployment.workflow
    no_target_expressions = workflow is None or all(
        target.expression is None for item in workflow.filters for target in item.targets
    )
    routing = timed_routing(context)
    return [
        Filter("status", ready, lambda _t, agent: f"not ready ({agent.status})", index_kept=True),
        Filter("capacity", room, no_room, index_kept=True),
        Filter(
            "queue",
            in_queue,
            lambda task, _a: f"not in queue {task.queue!r} (target_workers false)",
            index_kept=True,
        ),
        Filter(
            "target",
            target,
            lambda task, _a: f"{context.target_label(task)}.expression is false",
            index_kept=no_target_expressions,
        ),
        *routing.filters(),
    ]


@hookimpl
def omniroute_preferences(context: PluginContext) -> Iterable[Preference]:
    return timed_routing(context).preferences()


@hookimpl
def omniroute_event_handlers(context: PluginContext) -> Iterable[EventHandler]:
    return timed_routing(context).handlers()


@hookimpl
def omniroute_ranking_keys() -> Iterable[RankingKey]:
    def longest_idle(_task: Task, agent: Agent) -> tuple[int, float]:
        if agent.held_count() == 0:
            return (0, agent.free_since if agent.free_since is not None else -math.inf)
        return (1, agent.last_offer_at if agent.last_offer_at is not None else -math.inf)

    return [RankingKey("longest_idle", longest_idle, Indexing(), fallback=True)]


@hookimpl
def omniroute_task_orderings(
    context: PluginContext, deployment: Deployment
) -> Iterable[TaskOrdering]:
    aging = any(queue.priority_aging is not None for queue in deployment.queues.values())

    def priority(task: Task) -> int:
        if aging:
            return -aged_priority(deployment, task, context.now)
        return -deployment.effective_priority(task)

    def waiting(task: Task) -> float:
        queue = deployment.queue_of(task)
        return (
            -task.queued_at if queue is not None and queue.task_order == "lifo" else task.queued_at
        )

    return [
        # Aging priorities change while tasks wait: then they are ordered on every pass.
        TaskOrdering("priority", priority, fixed=not aging),
        TaskOrdering("waiting", waiting, fixed=True),
        TaskOrdering("created", lambda task: task.seq, fixed=True),
    ]
