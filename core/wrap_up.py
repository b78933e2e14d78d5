"""After-contact work (wrap-up): an agent's capacity stays taken after a task ends.

When a task the agent handled ends (completed, or canceled while assigned), the agent
wraps up for the duration its queue sets (`queues.<q>.wrap_up`), else its channel
(`channels.<ch>.wrap_up`); 0 or unset: no wrap-up. Until the wrap-up ends, it takes a
unit of the agent's capacity on the task's channel (`Agent.wrap_up`). It ends at its
time (a core timer), when the agent ends it early (`EndWrapUp`), or at logout
(docs/wrap-up.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .clock import Clock
from .errors import EventError
from .lifecycle import Notify, TaskLifecycle
from .spec import Deployment
from .state import Agent, EngineState, Task
from .undo import UndoLog

Change = Callable[[], None]


class WrapUps:
    """The wrap-ups of one engine's agents."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        lifecycle: TaskLifecycle,
        notify: Notify,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self._undo = undo
        self._clock = clock
        self._tasks = lifecycle
        self._notify = notify
        clock.on_timer(None, "wrap_up_end", self._timer_fired)

    def duration(self, task: Task) -> tuple[float, str] | None:
        """The task's wrap-up in seconds, and the key path that sets it (None: none set)."""
        queue = self.deployment.queue_of(task)
        if queue is not None and queue.wrap_up is not None:
            return queue.wrap_up, f"queues.{queue.name}.wrap_up"
        channel = self.deployment.channel_settings.get(task.channel)
        if channel is not None and channel.wrap_up is not None:
            return channel.wrap_up, f"channels.{task.channel}.wrap_up"
        return None

    def begin(self, task: Task) -> None:
        """Call while the agent still holds the ending task: the wrap-up takes its place
        before the task releases it, so the agent is never free in between."""
        found = self.duration(task)
        if found is None or found[0] <= 0 or task.agent is None or task.state != "assigned":
            return
        seconds = found[0]
        agent = self._state.agents[task.agent]
        until = self._clock.now + seconds
        self._undo.keep(agent)
        agent.wrap_up.setdefault(task.channel, {})[task.id] = until
        agent.touch()
        self._clock.set_timer(until, "wrap_up_end", [agent.id, task.id, until])

    def started(self, task: Task, agent: Agent | None) -> None:
        """Once the task has ended: say in its history, and tell plugins, that its agent
        wraps up."""
        until = agent.wrap_up.get(task.channel, {}).get(task.id) if agent is not None else None
        if agent is None or until is None:
            return
        found = self.duration(task)
        where = f" ({found[1]} {found[0]:g} s)" if found is not None else ""
        self._tasks.log(task, f"wrap-up by {agent.id} until {until:g} s{where}")
        self._notify("wrap_up_started", task, agent)

    def ending(self, agent_id: str, task_id: str | None) -> Change:
        """The agent ends its wrap-up early (all of it, or that of one task)."""
        agent = self._state.agents.get(agent_id)
        if agent is None:
            raise EventError(f"end_wrap_up: unknown agent {agent_id!r}")
        wrapping = sorted(task for ids in agent.wrap_up.values() for task in ids)
        if not wrapping:
            raise EventError(f"end_wrap_up: agent {agent_id!r} is not wrapping up")
        if task_id is not None and task_id not in wrapping:
            raise EventError(
                f"end_wrap_up: agent {agent_id!r} is not wrapping up task {task_id!r} "
                f"(it is wrapping up {', '.join(wrapping)})"
            )
        chosen = [task_id] if task_id is not None else wrapping
        return lambda: self._end(agent, chosen, "ended by the agent")

    def logged_out(self, agent: Agent) -> None:
        """An agent who logs out stops wrapping up."""
        wrapping = sorted(task for ids in agent.wrap_up.values() for task in ids)
        if wrapping:
            self._end(agent, wrapping, "logout")

    def _timer_fired(self, payload: Any) -> None:
        agent_id, task_id, until = payload
        agent = self._state.agents.get(agent_id)
        if agent is not None and any(ids.get(task_id) == until for ids in agent.wrap_up.values()):
            self._end(agent, [task_id], "its time is up")

    def _end(self, agent: Agent, task_ids: list[str], why: str) -> None:
        self._undo.keep(agent)
        for channel in list(agent.wrap_up):
            ids = agent.wrap_up[channel]
            for task_id in task_ids:
                ids.pop(task_id, None)
            if not ids:
                del agent.wrap_up[channel]
        if agent.held_count() == 0:
            agent.free_since = self._clock.now
        agent.touch()
        for task_id in task_ids:
            task = self._state.tasks.get(task_id)
            if task is not None:
                self._tasks.log(task, f"wrap-up by {agent.id} ended ({why})")
            self._notify("wrap_up_ended", task, agent)
