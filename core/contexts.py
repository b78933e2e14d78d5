"""What expressions read: `task.*`, `worker.*` and `taskrouter.*`, built when read.

Each view is built the first time an expression asks for it and kept while what it shows
stays put: a worker's view while the agent's version stamp holds, a task's while the
task, its queue, its priority and the clock hold, the clock's while the clock holds. An
event that reads no expression builds none.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from .clock import Clock
from .spec import Deployment
from .state import Agent, Task, task_context, worker_context

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Contexts:
    """The expression views of one engine, and their caches."""

    def __init__(self, deployment: Deployment, clock: Clock) -> None:
        self.deployment = deployment
        self._clock = clock
        self._workers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._task: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._taskrouter: tuple[float, dict[str, Any]] | None = None
        self._expression: tuple[Any, Any, int, dict[str, Any]] | None = None

    def clear(self) -> None:
        """Forget every view (after an undone event put older values back)."""
        self._workers.clear()
        self._task = None
        self._taskrouter = None
        self._expression = None

    def forget_agent(self, agent_id: str) -> None:
        self._workers.pop(agent_id, None)

    def forget_task(self) -> None:
        """The task's position changed within an event at the same clock."""
        self._task = None

    def clock_context(self) -> dict[str, Any]:
        """`taskrouter.*`: the time of day in UTC."""
        now = self._clock.now
        if self._taskrouter is None or self._taskrouter[0] != now:
            moment = self._clock.wall_time().astimezone(UTC)
            values = {
                "currentTime": moment.hour * 100 + moment.minute,
                "currentHour": f"{moment.hour:02d}",
                "currentMin": f"{moment.minute:02d}",
                "dayOfWeek": _WEEKDAYS[moment.weekday()],
            }
            self._taskrouter = (now, values)
        return self._taskrouter[1]

    def worker_view(self, agent: Agent) -> dict[str, Any]:
        cached = self._workers.get(agent.id)
        if cached is None or cached[0] != agent.version:
            cached = (agent.version, worker_context(agent))
            self._workers[agent.id] = cached
        return cached[1]

    def task_view(self, task: Task) -> dict[str, Any]:
        """`task.*`, reused while the task, its queue, its priority and the clock stay put."""
        now = self._clock.now
        key = (task.id, now, self.deployment.effective_priority(task), task.queue)
        cached = self._task
        if cached is None or cached[0] != key:
            cached = (key, task_context(task, now, key[2]))
            self._task = cached
        return cached[1]

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]:
        """`task`, `worker` and `taskrouter` for expressions; the last one is reused while
        neither the task, the agent nor the clock changed (the queue and target filters
        both ask for it)."""
        view = self.task_view(task)
        version = agent.version if agent is not None else -1
        cached = self._expression
        if cached is not None and cached[0] is view and cached[1] is agent and cached[2] == version:
            return cached[3]
        context = {"task": view, "taskrouter": self.clock_context()}
        if agent is not None:
            context["worker"] = self.worker_view(agent)
        self._expression = (view, agent, version, context)
        return context
