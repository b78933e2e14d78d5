"""Routing passes: waiting tasks in task order, each offered to the best agent with room.

After every event the engine routes until a pass offers nothing and moves no task along
its workflow. A pass takes the waiting tasks of the groups where something changed
(`waiting.py`), in task order, and asks agent selection for each: the fast path through
the roster index (`fast_path.py`) where it holds the task's queue, the reference scan
(`selection.py`) otherwise, or always when decisions are recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from . import guards
from .decisions import Decision
from .errors import EventError
from .fast_path import FastPath
from .index import GroupKey
from .lifecycle import TaskLifecycle
from .limits import MAX_ROUTING_PASSES
from .options import EngineOptions
from .pipeline import Pipeline
from .plugin_calls import blame
from .selection import AgentSelection
from .state import EngineState, Task, last_agent_change
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
        #: the task orderings' callables, collected once
        self._order_calls = tuple(ordering.key for _plugin, ordering in pipeline.task_orderings)

    def route(self) -> None:
        if self._routing:
            return
        self._routing = True
        state = self._state
        bound = MAX_ROUTING_PASSES + 10 * len(state.waiting)
        passes = 0
        try:
            while True:
                offered = self._route_once()
                moved = self._workflow.run_skip_checks()
                if (not offered and not moved) or not state.waiting:
                    break
                passes += 1
                if passes > bound:
                    raise EventError(self._unsettled(passes))
        finally:
            self._routing = False

    def _unsettled(self, passes: int) -> str:
        """What a routing that does not settle says: the loop guard of issue 12."""
        state = self._state
        last = state.offers[-1] if state.offers else None
        offered = f"; the last offer was {last.task!r} to {last.agent!r}" if last else ""
        return (
            f"routing did not settle after {passes} passes at {state.now:g} s: tasks keep "
            f"being offered or moved without the clock moving (an event handler that puts "
            f"offered tasks back, or a workflow whose targets lead back?){offered}"
        )

    def incomparable(self, tasks: list[Task], error: TypeError) -> Exception:
        """The PluginError naming the plugin whose task orderings cannot be compared
        (the error path only); the TypeError itself when no plugin is at fault."""
        named = [(plugin, ordering.name) for plugin, ordering in self._pipeline.task_orderings]
        keys = [self.task_order_key(task) for task in tasks]
        return guards.find_incomparable(named, keys, "task ordering") or error

    def _incomparable_in(self, groups: list[GroupKey], error: TypeError) -> Exception:
        return self.incomparable(self._waiting.tasks_of(groups), error)

    def task_order_key(self, task: Task) -> tuple[Any, ...]:
        keys: list[Any] = []
        append = keys.append
        try:
            for key in self._order_calls:
                append(key(task))
        except Exception as error:
            blame(self._pipeline.task_orderings, len(keys), "task ordering", error)
        return tuple(keys)

    def _route_once(self) -> bool:
        state = self._state
        if not state.agents or not state.waiting:
            # Nothing to offer. What changed since the last pass is still noted (the index's
            # opened groups, the waiting tasks' fresh ones): the next pass reads it.
            return False
        waiting: Iterable[Task]
        lone: Task | None = None  # the only task of the pass, tried before it is ordered
        if self._index is None:
            waiting = self._waiting.to_try_without_index(
                state.now, self._selection.time_dependent, last_agent_change()
            )
            try:
                waiting.sort(key=self.task_order_key)
            except TypeError as error:
                raise self.incomparable(waiting, error) from error
        else:
            groups = self._waiting.groups_to_try(self._state.now, self._selection.time_dependent)
            if not groups and not self._waiting.unordered:
                return False  # nothing to try, and no order key to compute
            waiting_tasks = self._waiting
            if waiting_tasks.served_everywhere or (
                not waiting_tasks.served_nowhere and all(map(waiting_tasks.served, groups))
            ):
                # a partial, not a closure: `self` and `groups` stay plain locals here
                incomparable = partial(self._incomparable_in, groups)
                waiting = self._waiting.walk_in_order(groups, self.task_order_key, incomparable)
            else:
                tasks = self._waiting.tasks_of(groups)
                if len(tasks) == 1:
                    # An arrival where nobody waits comes first whatever its order key
                    # (computed after the pass if the task still waits, as heaps do).
                    waiting, lone = tasks, tasks[0]
                else:
                    try:
                        waiting = sorted(tasks, key=self.task_order_key)
                    except TypeError as error:
                        raise self.incomparable(tasks, error) from error
        offered = False
        record = self._options.record_decisions
        skip_closed_channels = self._index is None and not record
        open_channels = self._channels_with_room() if skip_closed_channels else set()
        fast = self._fast_path if not record else None
        for task in waiting:
            if task.state != "queued" or task.hold_reason is not None:
                continue
            if skip_closed_channels and task.channel not in open_channels:
                continue  # no ready agent has room on this channel: no filter could pass
            if fast is not None and fast.index.indexed(task.queue):
                winner = fast.winner(task, state.now)
                if winner is not None:
                    self._lifecycle.reserve(task, winner, None)
                    offered = True
                continue
            decision = self.choose_agent(task, record=record)
            if decision.winner is not None:
                self._lifecycle.reserve(task, state.agents[decision.winner], decision)
                offered = True
                if skip_closed_channels:
                    open_channels = self._channels_with_room()
            elif record:
                self._lifecycle.record_attempt(task.id, decision)
        if lone is not None and lone.state == "queued":
            self.task_order_key(lone)  # an ordering that fails still fails the pass
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
            if agent.held_count(channel) < capacity
        }
