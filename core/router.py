"""Routing passes: waiting tasks in task order, each offered to the best agent with room.

After every event the engine routes until a pass offers nothing and moves no task along
its workflow. A pass takes the waiting tasks of the groups where something changed
(`waiting.py`), in task order, and asks agent selection for each: the fast path through
the roster index (`fast_path.py`) where it holds the task's queue, the reference scan
(`selection.py`) otherwise, or always when decisions are recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .decisions import Decision
from .fast_path import FastPath
from .lifecycle import TaskLifecycle
from .options import EngineOptions
from .pipeline import Pipeline
from .plugin_calls import blame
from .selection import AgentSelection
from .state import EngineState, Task
from .waiting import WaitingTasks
from .workflow import WorkflowRouter


class Router:
    """The routing passes of one engine."""

    def __init__(
        self,
        state: EngineState,
        options: EngineOptions,
        pipeline: Pipeline,
        waiting: WaitingTasks,
        selection: AgentSelection,
        fast_path: FastPath | None,
        lifecycle: TaskLifecycle,
        workflow: WorkflowRouter,
    ) -> None:
        self._state = state
        self._options = options
        self._pipeline = pipeline
        self._waiting = waiting
        self._selection = selection
        self._fast_path = fast_path
        self._index = fast_path.index if fast_path is not None else None
        self._lifecycle = lifecycle
        self._workflow = workflow
        self._routing = False

    def route(self) -> None:
        if self._routing:
            return
        self._routing = True
        try:
            while True:
                offered = self._route_once()
                moved = self._workflow.run_skip_checks()
                if (not offered and not moved) or not self._state.waiting:
                    break
        finally:
            self._routing = False

    def task_order_key(self, task: Task) -> tuple[Any, ...]:
        orderings = self._pipeline.task_orderings
        keys: list[Any] = []
        try:
            for _plugin, ordering in orderings:
                keys.append(ordering.key(task))
        except Exception as error:
            blame(orderings, len(keys), "task ordering", error)
        return tuple(keys)

    def _route_once(self) -> bool:
        state = self._state
        if not state.agents:
            return False
        waiting: Iterable[Task]
        if self._index is None:
            waiting = [
                task
                for task_id in state.waiting
                if (task := state.tasks[task_id]).hold_reason is None
            ]
            waiting.sort(key=self.task_order_key)
        else:
            groups = self._waiting.groups_to_try(self._state.now, self._selection.time_dependent)
            if self._waiting.orders_fixed:
                waiting = self._waiting.walk_in_order(groups, self.task_order_key)
            else:
                waiting = sorted(self._waiting.tasks_of(groups), key=self.task_order_key)
        offered = False
        record = self._options.record_decisions
        skip_closed_channels = self._index is None and not record
        open_channels = self._channels_with_room() if skip_closed_channels else set()
        for task in waiting:
            if task.state != "queued" or task.hold_reason is not None:
                continue
            if skip_closed_channels and task.channel not in open_channels:
                continue  # no ready agent has room on this channel: no filter could pass
            decision = self.choose_agent(task, record=record)
            if decision.winner is not None:
                self._lifecycle.reserve(task, state.agents[decision.winner], decision)
                offered = True
                if skip_closed_channels:
                    open_channels = self._channels_with_room()
            elif record:
                self._lifecycle.record_attempt(task.id, decision)
        return offered

    def choose_agent(self, task: Task, *, record: bool) -> Decision:
        """The best eligible agent for a task now, with the reasons when `record` is set.

        With `record` (or without the index, or for a queue the index cannot hold) every
        agent on the roster is considered (`selection.py`): this is the reference the
        indexed path (`fast_path.py`) must agree with.
        """
        fast = self._fast_path
        if not record and fast is not None and fast.index.indexed(task.queue):
            return fast.choose(task, self._state.now)
        return self._selection.choose(task, record=record)

    def _channels_with_room(self) -> set[str]:
        return {
            channel
            for agent in self._state.agents.values()
            if agent.status == "ready"
            for channel, capacity in agent.capacity.items()
            if len(agent.held.get(channel, ())) < capacity
        }
