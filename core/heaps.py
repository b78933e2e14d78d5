"""Heaps for the fast path: open agents by ranking key, waiting tasks by task order.

Routing reads only the top of each: the best open agent of a queue and channel, the
first waiting task of a group. Neither keeps a full order it does not use. Both delete
lazily: each item's live entry is kept beside the heap (an agent's, or a task's with a
version stamp), an entry that is no longer its item's live one is stale and is dropped
when it reaches the top, and a heap that holds more stale entries than live ones is
rebuilt from the live ones.

A heap serves a queue and channel only where its order is fixed between events
(`HeapEligibility`); elsewhere the ladders of `index.py` and the per-pass sort of the
waiting tasks stay.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .index import GroupKey
    from .pipeline import Pipeline
    from .state import Agent, Task

#: stamps for every heap entry of the process: a stale entry never matches a new one
_stamps = itertools.count(1)
#: a heap with this many entries or fewer is never rebuilt (stale entries cost little)
_SMALL = 64


class HeapEligibility:
    """Which queues and channels the heaps can serve.

    A queue and channel is served from heaps when the order of its open agents changes
    only when an agent changes (every ranking key promises a non time-dependent
    `Indexing`), and the order of its waiting tasks only when a task is queued again
    (every task ordering is `fixed`). Anything that orders by the clock (a
    time-dependent ranking key, a priority that ages while a task waits, eligibility
    that widens with time) opts out here, and its queues keep the ladders and the
    per-pass sort.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._agents_fixed = all(
            ranking.indexing is not None and not ranking.indexing.time_dependent
            for _plugin, ranking in pipeline.ranking_keys
        )
        self._tasks_fixed = all(ordering.fixed for _plugin, ordering in pipeline.task_orderings)

    @property
    def everywhere(self) -> bool:
        """Every queue and channel is served from heaps."""
        return self._agents_fixed and self._tasks_fixed

    @property
    def nowhere(self) -> bool:
        """No queue and channel is served from heaps."""
        return not (self._agents_fixed and self._tasks_fixed)

    def serves(self, queue: str | None, channel: str) -> bool:
        """This queue and channel can be served from heaps."""
        return self._agents_fixed and self._tasks_fixed


#: an agent heap's entry: the ranking key's values, then the agent
AgentEntry = tuple[Any, ...]


class RankedAgents:
    """What every ordering of open agents (a heap here, the ladders of `index.py`) keeps
    to rank an agent: a task of its partition, and the key function."""

    def __init__(
        self, sample: Task, partition: Hashable, key: Callable[[Task, Agent], tuple[Any, ...]]
    ) -> None:
        #: a frozen copy of a task of this partition: every ranking key reads it alike
        self.sample = sample
        #: orderings with equal partitions give an agent equal keys
        self.partition = partition
        #: the key function, called with `sample` (the index's refresh calls it itself)
        self.key_function = key

    def key(self, agent: Agent) -> tuple[Any, ...]:
        return self.key_function(self.sample, agent)


class AgentHeap(RankedAgents):
    """The open agents of one queue, channel and partition, by their ranking keys.

    It answers to the same calls as a `Ladder` (put, drop, key); the fast path reads it
    with `pop` and `restore`.
    """

    def __init__(
        self,
        sample: Task,
        partition: Hashable,
        key: Callable[[Task, Agent], tuple[Any, ...]],
        agents: list[Agent],
    ) -> None:
        super().__init__(sample, partition, key)
        #: per agent: its live entry, the key's values followed by the agent. Flat, so
        #: that comparing two entries is one pass over their values (a key nested in an
        #: entry was compared twice over); keys end with the roster index, so no two
        #: agents' entries are equal and agents are never compared.
        self._live: dict[str, AgentEntry] = {}
        for agent in agents:
            self._live[agent.id] = (*key(sample, agent), agent)
        self.heap = list(self._live.values())
        heapq.heapify(self.heap)
        #: entries a walk took off and has not put back yet (see `restore`)
        self._aside: list[AgentEntry] = []

    def put(self, agent: Agent, key: tuple[Any, ...]) -> None:
        live = self._live.get(agent.id)
        if live is not None and live[:-1] == key:
            return
        entry = (*key, agent)
        self._live[agent.id] = entry
        heapq.heappush(self.heap, entry)
        if len(self.heap) > _SMALL and len(self.heap) > 2 * len(self._live):
            self._rebuild()

    def drop(self, agent: Agent) -> None:
        self._live.pop(agent.id, None)

    def _rebuild(self) -> None:
        self.heap = list(self._live.values())
        heapq.heapify(self.heap)
        self._aside.clear()  # the live ones among them are in the heap again

    def pop(self) -> AgentEntry | None:
        """The best live entry, taken off the heap (give it back with `restore`); its
        last item is the agent."""
        heap, live = self.heap, self._live
        if self._aside:
            self._put_aside_back()
        while heap:
            entry = heapq.heappop(heap)
            if live.get(entry[-1].id) is entry:
                return entry
        return None

    def restore(self, taken: list[AgentEntry]) -> None:
        """Give back entries taken by `pop`. They go back on the heap at its next `pop`,
        those still live then: the agent a walk chose usually changes at once (it takes
        the task), and its old entry would only be pushed to be thrown away."""
        self._aside.extend(taken)

    def _put_aside_back(self) -> None:
        live, heap = self._live, self.heap
        for entry in self._aside:
            if live.get(entry[-1].id) is entry:
                heapq.heappush(heap, entry)
        self._aside.clear()

    def __len__(self) -> int:
        return len(self._live)


TaskEntry = tuple[tuple[Any, ...], str, int]


class TaskHeaps:
    """The waiting tasks of the heap-served groups, each group a heap by task order.

    An entry is (order key, task id, stamp); task ids are unique, so stamps are never
    compared. `entry` holds each task's live entry: a task that leaves or is queued again
    loses it, and its old entry is stale.
    """

    def __init__(self) -> None:
        self.heaps: dict[GroupKey, list[TaskEntry]] = {}
        self.entry: dict[str, TaskEntry] = {}
        self._live: dict[GroupKey, int] = {}

    def clear(self) -> None:
        self.heaps.clear()
        self.entry.clear()
        self._live.clear()

    def live(self, group: GroupKey) -> int:
        """How many tasks of the group have a live entry."""
        return self._live.get(group, 0)

    def drop(self, task_id: str, group: GroupKey | None) -> None:
        if self.entry.pop(task_id, None) is not None and group is not None:
            self._live[group] -= 1

    def push(self, group: GroupKey, task_id: str, key: tuple[Any, ...]) -> None:
        entry = (key, task_id, next(_stamps))
        self.entry[task_id] = entry
        live = self._live[group] = self._live.get(group, 0) + 1
        heap = self.heaps.setdefault(group, [])
        heapq.heappush(heap, entry)
        if len(heap) > _SMALL and len(heap) > 2 * live:
            self.compact(group)

    def compact(self, group: GroupKey) -> None:
        """Rebuild a group's heap from its live entries."""
        heap = self.heaps.get(group)
        if heap is not None:
            entry = self.entry
            heap[:] = [item for item in heap if entry.get(item[1]) is item]
            heapq.heapify(heap)

    def walk(
        self, groups: list[GroupKey], still_open: Callable[[GroupKey], bool]
    ) -> Iterator[TaskEntry]:
        """The live entries of the groups, merged in task order.

        Each group gives its next entry when asked, if `still_open(group)`; once not, it
        gives nothing more in this walk (its remaining tasks could not be offered). The
        entries given are taken off their heaps and put back at the end if still live:
        a walk reads the tops only. Keys that cannot be compared raise TypeError.
        """
        heads: dict[GroupKey, TaskEntry] = {}
        taken: list[tuple[GroupKey, TaskEntry]] = []
        try:
            for group in groups:
                self._pull(group, heads, still_open)
            while heads:
                group, best = next(iter(heads.items()))
                for name, head in heads.items():
                    if head < best:
                        group, best = name, head
                del heads[group]
                taken.append((group, best))
                yield best
                self._pull(group, heads, still_open)
        finally:
            entry = self.entry
            for group, item in taken:
                if entry.get(item[1]) is item:
                    heapq.heappush(self.heaps[group], item)
            for group, item in heads.items():
                heapq.heappush(self.heaps[group], item)

    def _pull(
        self,
        group: GroupKey,
        heads: dict[GroupKey, TaskEntry],
        still_open: Callable[[GroupKey], bool],
    ) -> None:
        if not still_open(group):
            return
        heap = self.heaps.get(group)
        if not heap:
            return
        entry = self.entry
        while heap:
            item = heapq.heappop(heap)
            if entry.get(item[1]) is item:
                heads[group] = item
                return
