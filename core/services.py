"""The engine's services for plugins: what a `PluginContext` calls (`EngineServices`).

Plugins never hold the engine; their contexts hold this, which reaches only the parts a
plugin may use: the clock and timers, the expression views, queue counts and waiting
tasks, capacity changes and holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .clock import Clock, TimerHandler
from .contexts import Contexts
from .spec import Deployment
from .state import Agent, EngineState, Task

if TYPE_CHECKING:
    from .index import RosterIndex
    from .lifecycle import TaskLifecycle
    from .waiting import WaitingTasks


class PluginServices:
    """One engine's services for its plugins (the parts built after the pipeline are
    attached once they exist)."""

    def __init__(
        self, deployment: Deployment, state: EngineState, clock: Clock, contexts: Contexts
    ) -> None:
        self.deployment = deployment
        self.state = state
        self.start: datetime = clock.start
        self._clock = clock
        self._contexts = contexts
        self.index: RosterIndex | None = None
        self.waiting: WaitingTasks | None = None
        self.lifecycle: TaskLifecycle | None = None

    @property
    def now(self) -> float:
        return self.state.now

    def wall_time(self, at: float | None = None) -> datetime:
        return self._clock.wall_time(at)

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]:
        return self._contexts.expression_context(task, agent)

    def queue_counts(self, queue_name: str | None, channel: str) -> dict[str, int]:
        """`workers.available` and `workers.total` for a queue and a task's channel: from
        the roster index when it holds the queue, else by a scan of the roster."""
        index = self.index
        if index is not None and index.indexed(queue_name):
            assert queue_name is not None
            index.sync()
            return index.counts(queue_name, channel)
        queue = self.deployment.queues.get(queue_name) if queue_name else None
        available = total = 0
        for agent in self.state.agents.values():
            if agent.status == "offline":
                continue
            if queue is not None and not queue.target_workers.evaluate(
                {
                    "worker": self._contexts.worker_view(agent),
                    "taskrouter": self._contexts.clock_context(),
                }
            ):
                continue
            total += 1
            if agent.status == "ready" and agent.has_room(channel):
                available += 1
        return {"available": available, "total": total}

    def waiting_in(self, queue: str | None) -> Iterator[Task]:
        """The tasks waiting in a queue, in the order they started waiting."""
        assert self.waiting is not None
        return iter(self.waiting.in_queue(queue))

    def on_timer(self, owner: str | None, name: str, handler: TimerHandler) -> None:
        self._clock.on_timer(owner, name, handler)

    def set_timer(self, at: float, name: str, payload: Any = None, owner: str | None = None) -> int:
        return self._clock.set_timer(at, name, payload, owner)

    def cancel_timer(self, timer_id: int) -> None:
        self._clock.cancel_timer(timer_id)

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        assert self.lifecycle is not None
        self.lifecycle.set_capacity(agent, channel, capacity)

    def hold_task(self, task: Task, until: float | None, reason: str) -> None:
        assert self.lifecycle is not None
        self.lifecycle.hold(task, until, reason)

    def release_task(self, task: Task) -> None:
        assert self.lifecycle is not None
        self.lifecycle.release(task)

    def note(self, task: Task, what: str) -> None:
        assert self.lifecycle is not None
        self.lifecycle.log(task, what)
