"""The tasks waiting for an agent, grouped by queue and channel.

`EngineState.waiting` holds every queued task in the order it started waiting. Beside
it, this keeps what routing needs to visit only where something can happen: the waiting
tasks of each (queue, channel) group, the groups where something changed since their
tasks were last tried, and, for the groups the heaps serve (`heaps.HeapEligibility`:
every task ordering is fixed while a task waits), each group's tasks in a heap by their
order keys, each key computed once per wait.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .heaps import HeapEligibility, TaskHeaps
from .index import GroupKey, RosterIndex
from .state import EngineState, Task
from .undo import UndoLog

OrderKey = Callable[[Task], tuple[Any, ...]]


class WaitingTasks:
    """The waiting tasks of one engine, by group, and which groups to try next."""

    def __init__(
        self,
        state: EngineState,
        undo: UndoLog,
        index: RosterIndex | None,
        heaps: HeapEligibility | None,
    ) -> None:
        self._state = state
        self._undo = undo
        self._index = index
        #: which groups keep their tasks in a heap (None: none, without the index)
        self._eligibility = heaps
        self.groups: dict[GroupKey, dict[str, None]] = {}
        self._group_of: dict[str, GroupKey] = {}
        #: groups where a task joined or was released since the last routing pass
        self._fresh: set[GroupKey] = set()
        #: groups of queues the index cannot hold (any change may help their tasks)
        self._scanned: set[GroupKey] = set()
        self._check_every_group = True
        self._last_pass_at: float | None = None
        #: without the index: the tasks queued or released since the last pass, and the
        #: latest agent change the last pass saw
        self._fresh_tasks: dict[str, None] = {}
        self._agents_seen = -1
        self._heaps = TaskHeaps()
        #: every group is served from heaps (the common case: no per-group check)
        self.served_everywhere = heaps is not None and heaps.everywhere
        #: no group is (time-dependent orders: no per-group check either)
        self.served_nowhere = heaps is None or heaps.nowhere
        #: tasks whose order key is still to be computed (at the next routing pass, after
        #: the handlers of the event that queued them have run)
        self._unordered: dict[str, None] = {}

    def add(self, task: Task) -> None:
        """The task (queued now, in `task.queue`) waits, or moves to another group."""
        state = self._state
        waiting = state.waiting
        task_id = task.id
        if task_id not in waiting:
            task.wait_seq = state.wait_sequence
            state.wait_sequence += 1
            self._undo.added(waiting, task_id)
            waiting[task_id] = None
        group = (task.queue, task.channel)
        previous = self._group_of.get(task_id)
        if previous is not None and previous != group:
            self.groups[previous].pop(task_id, None)
        self.groups.setdefault(group, {})[task_id] = None
        index = self._index
        if index is None:
            # Only the pass without the index reads these (and forgets them).
            self._fresh_tasks[task_id] = None
        elif not index.indexed(group[0]):
            self._scanned.add(group)
        self._group_of[task_id] = group
        self._fresh.add(group)
        self._heaps.drop(task_id, previous)
        if self.served_everywhere or (not self.served_nowhere and self.served(group)):
            self._unordered[task_id] = None
        else:
            self._unordered.pop(task_id, None)

    def remove(self, task: Task) -> None:
        self._undo.removed(self._state.waiting, task.id)
        self._state.waiting.pop(task.id, None)
        group = self._group_of.pop(task.id, None)
        if group is not None:
            self.groups[group].pop(task.id, None)
            self._heaps.drop(task.id, group)
            self._unordered.pop(task.id, None)

    def released(self, task: Task) -> None:
        """A hold on the task ended: try its group again."""
        group = self._group_of.get(task.id)
        if group is not None:
            self._fresh.add(group)
            if self._index is None:
                self._fresh_tasks[task.id] = None

    def check_every_group(self) -> None:
        """Something no stamp tracks changed (a timer fired): try every group."""
        self._check_every_group = True

    @property
    def unordered(self) -> bool:
        """Some task waits for its order key (computed at the next routing pass)."""
        return bool(self._unordered)

    def served(self, group: GroupKey) -> bool:
        """The group's tasks are kept in a heap (see `heaps.HeapEligibility`)."""
        eligibility = self._eligibility
        return eligibility is not None and eligibility.serves(*group)

    def regroup(self) -> None:
        """Rebuild the groups from `EngineState.waiting` (after an undo or a restore)."""
        state = self._state
        state.waiting = dict.fromkeys(sorted(state.waiting, key=lambda t: state.tasks[t].wait_seq))
        self.groups.clear()
        self._group_of.clear()
        self._scanned.clear()
        self._heaps.clear()
        self._unordered.clear()
        self._check_every_group = True
        for task_id in state.waiting:
            task = state.tasks[task_id]
            group = (task.queue, task.channel)
            self.groups.setdefault(group, {})[task_id] = None
            if self._index is not None and not self._index.indexed(group[0]):
                self._scanned.add(group)
            self._group_of[task_id] = group
            if self.served(group):
                self._unordered[task_id] = None

    def in_queue(self, queue: str | None) -> list[Task]:
        """The tasks waiting in a queue, in the order they started waiting."""
        tasks = self._state.tasks
        found = [
            tasks[task_id]
            for (name, _channel), ids in self.groups.items()
            if name == queue
            for task_id in ids
        ]
        found.sort(key=lambda task: task.wait_seq)
        return found

    def groups_to_try(self, now: float, time_dependent: bool) -> list[GroupKey]:
        """The groups whose waiting tasks could find an agent now.

        Those where something happened since their tasks were last tried (a task joined,
        an agent opened there, a timer fired, or time moved when eligibility reads the
        clock), and where some agent is open. A task of a group left out would find
        nobody, exactly as at its last try.
        """
        index = self._index
        assert index is not None
        index.sync()
        opened, changed = index.take_changes()
        named: Iterable[GroupKey]
        if self._check_every_group or (time_dependent and now != self._last_pass_at):
            named = self.groups
        else:
            # `_fresh` is replaced below: it can take the other groups in place.
            named = self._fresh
            if opened:
                named |= opened
            if changed and self._scanned:
                named |= self._scanned
        self._fresh = set()
        self._check_every_group = False
        self._last_pass_at = now
        groups, members, open_groups = self.groups, index.members, index.open
        return [
            group
            for group in named
            if groups.get(group) and (group[0] not in members or open_groups.get(group))
        ]

    def to_try_without_index(
        self, now: float, time_dependent: bool, agents_changed: int
    ) -> list[Task]:
        """The waiting tasks that could find an agent now, when the engine scans the
        roster: every one after a change to any agent, a timer, or (when eligibility
        reads the clock) time moving; otherwise only those queued or released since the
        last pass, since the others would meet exactly what they met then."""
        state = self._state
        if (
            self._check_every_group
            or agents_changed != self._agents_seen
            or (time_dependent and now != self._last_pass_at)
        ):
            ids: Iterable[str] = state.waiting
        else:
            ids = [task_id for task_id in self._fresh_tasks if task_id in state.waiting]
        self._fresh_tasks = {}
        self._check_every_group = False
        self._last_pass_at = now
        self._agents_seen = agents_changed
        tasks = state.tasks
        return [task for task_id in ids if (task := tasks[task_id]).hold_reason is None]

    def tasks_of(self, groups: list[GroupKey]) -> list[Task]:
        tasks = self._state.tasks
        return [
            task
            for group in groups
            for task_id in self.groups[group]
            if (task := tasks[task_id]).hold_reason is None
        ]

    def walk_in_order(
        self,
        groups: list[GroupKey],
        order_key: OrderKey,
        incomparable: Callable[[TypeError], Exception],
    ) -> Iterator[Task]:
        """The waiting tasks of the groups (every one served from heaps), merged in task
        order from the tops of their heaps (task orderings are fixed while a task waits,
        so each key was computed once). A group is left as soon as no agent is open in
        it: its remaining tasks could not be offered. Keys that cannot be compared raise
        `incomparable(error)` (the error path only: a `try` costs nothing until it catches)."""
        tasks = self._state.tasks
        heaps = self._heaps
        pending = self._unordered
        if len(groups) == 1 and len(pending) == 1:
            (only,) = pending
            if self._group_of[only] == groups[0] and not heaps.live(groups[0]):
                # The commonest pass: a task arrives where nobody waits. It comes first
                # whatever its order key, which is computed only if it stays.
                pending.clear()
                yield from self._walk_alone(groups[0], tasks[only], order_key, incomparable)
                return
        try:
            for task_id in pending:
                heaps.push(self._group_of[task_id], task_id, order_key(tasks[task_id]))
        except TypeError as error:
            # What was added stays unordered: take it out again before raising.
            for task_id in pending:
                group = self._group_of.get(task_id)
                heaps.drop(task_id, group)
                if group is not None:
                    heaps.compact(group)
            raise incomparable(error) from error
        pending.clear()
        index = self._index
        assert index is not None
        if len(groups) == 1:
            yield from self._walk_group(groups[0], incomparable)
            return

        def still_open(group: GroupKey) -> bool:
            if not index.indexed(group[0]):
                return True
            index.sync()
            return bool(index.open.get(group))

        merged = heaps.walk(groups, still_open)
        while True:
            try:
                _key, task_id, _stamp = next(merged)
            except StopIteration:
                return
            except TypeError as error:
                raise incomparable(error) from error
            task = tasks[task_id]
            if task.hold_reason is None:
                yield task

    def _walk_alone(
        self,
        group: GroupKey,
        task: Task,
        order_key: OrderKey,
        incomparable: Callable[[TypeError], Exception],
    ) -> Iterator[Task]:
        """`walk_in_order` of a group whose only waiting task is not ordered yet."""
        task_id = task.id
        try:
            if task.hold_reason is None and self._has_open_agent(group):
                yield task
        except GeneratorExit:
            self._still_unordered(task_id, group)
            raise
        if not self._still_unordered(task_id, group):
            return
        key = order_key(task)  # should it raise, the task stays unordered
        heaps = self._heaps
        try:
            heaps.push(group, task_id, key)
        except TypeError as error:
            heaps.drop(task_id, group)
            heaps.compact(group)
            raise incomparable(error) from error
        self._unordered.pop(task_id, None)

    def _has_open_agent(self, group: GroupKey) -> bool:
        """Some agent is open in the group (always, for a queue the index cannot hold)."""
        index = self._index
        assert index is not None
        if not index.indexed(group[0]):
            return True
        index.sync()
        return bool(index.open.get(group))

    def _still_unordered(self, task_id: str, group: GroupKey) -> bool:
        """Whether the task waits in `group` with no order key: then it is kept among the
        unordered tasks (keyed at the next pass) until it gets one."""
        if self._group_of.get(task_id) != group or task_id in self._heaps.entry:
            return False
        self._unordered[task_id] = None
        return True

    def _walk_group(
        self, group: GroupKey, incomparable: Callable[[TypeError], Exception]
    ) -> Iterator[Task]:
        """`TaskHeaps.walk` of a single group, written out: most passes try one group
        (an arrival's, or the one a freed agent serves), and this runs for each."""
        heaps = self._heaps
        heap = heaps.heaps.get(group)
        if not heap:
            return
        index = self._index
        assert index is not None
        indexed = index.indexed(group[0])
        live, tasks, sync, open_groups = heaps.entry, self._state.tasks, index.sync, index.open
        taken: list[Any] = []
        try:
            while heap:
                if indexed:
                    sync()
                    if not open_groups.get(group):
                        return
                item = heapq.heappop(heap)
                if live.get(item[1]) is not item:
                    continue
                taken.append(item)
                task = tasks[item[1]]
                if task.hold_reason is None:
                    yield task
        except TypeError as error:
            raise incomparable(error) from error
        finally:
            try:
                for item in taken:
                    if live.get(item[1]) is item:
                        heapq.heappush(heap, item)
            except TypeError as error:
                raise incomparable(error) from error
