"""Choosing an agent through the roster index, without scanning the roster.

The index (`index.py`) keeps, per queue and channel, the open agents: ready, with room,
admitted by the queue's `target_workers`. Its ladders keep them ordered by the leading
ranking keys that promise an `Indexing` and do not move with time. Routing a task walks
its ladder from the top and stops at the first agent the reference scan
(`selection.py`) would also choose; only the filters the index does not answer itself
are tested, and only on the agents the walk reaches.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from .components import RankingKey
from .contexts import Contexts
from .decisions import Decision
from .heaps import AgentEntry, AgentHeap, HeapEligibility
from .index import FlooredLadder, RosterIndex
from .pipeline import Pipeline
from .plugin_calls import blame, call_named, key_calls
from .selection import AgentSelection
from .spec import Deployment
from .state import Agent, EngineState, Task, latest_agent_version

#: no group of tied agents (the walk of a ladder starts before the first)
_NO_GROUP = object()


class FastPath:
    """The roster index of one engine, and the walk of its ladders."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        pipeline: Pipeline,
        contexts: Contexts,
        selection: AgentSelection,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self.pipeline = pipeline
        self._contexts = contexts
        self._selection = selection
        static = []
        for plugin, ranking in pipeline.ranking_keys:
            if ranking.indexing is None or ranking.indexing.time_dependent:
                break
            static.append((plugin, ranking))
        self._ladder_keys = tuple(static)
        self._ladder_key_calls = key_calls(self._ladder_keys)
        #: (reads nothing of the task, function) per ladder key, then the floor order
        plan = [
            (ranking.indexing is not None and ranking.indexing.partition is None, ranking.key)
            for _plugin, ranking in static
        ]
        #: the last agent whose task-free keys were computed: (agent, version, values and
        #: roster index)
        self._memo: tuple[Agent, int, tuple[Any, ...]] | None = None
        workflow = deployment.workflow
        #: some workflow target orders its agents (`order_by`): ladder keys start with it
        self._ordered_targets = workflow is not None and any(
            target.order_by is not None for item in workflow.filters for target in item.targets
        )
        self._ranking_ties = len(static) < len(pipeline.ranking_keys)
        # The first key left out may give a floor: tied agents are then kept in the order
        # of their floors, and the walk leaves a group once floors pass the best key found.
        self._floored: tuple[str | None, RankingKey] | None = None
        if self._ranking_ties:
            plugin, ranking = pipeline.ranking_keys[len(static)]
            indexing = ranking.indexing
            if indexing is not None and indexing.floor is not None:
                assert indexing.floor_order is not None
                self._floored = (plugin, ranking)
                plan.append((indexing.partition is None, indexing.floor_order))
        self._key_plan = tuple(plan)
        # The plan split once: the parts read once per agent change, and the ones read
        # per partition with the position each takes among the keys.
        self._free_positions = tuple(n for n, (task_free, _f) in enumerate(plan) if task_free)
        self._free_calls = tuple(function for task_free, function in plan if task_free)
        self._partitioned = tuple(
            (n, function) for n, (task_free, function) in enumerate(plan) if not task_free
        )
        #: the keys read per partition all come first (skill level, say): a key is then
        #: those values followed by the agent's memo, in one tuple
        self._partitioned_first = all(n == k for k, (n, _f) in enumerate(self._partitioned))
        #: that key alone, when it is the only one read per partition (capacity_share's
        #: skill level): the key is built without a list
        self._single_first = (
            self._partitioned[0][1]
            if len(self._partitioned) == 1 and self._partitioned_first
            else None
        )
        self._open_filters = tuple(
            (plugin, item) for plugin, item in pipeline.filters if not item.index_kept
        )
        # the callables, collected once: the hot loops call plain functions
        self._filter_calls = tuple(item.test for _plugin, item in self._open_filters)
        self._prefer_calls = tuple(item.prefer for _plugin, item in pipeline.preferences)
        #: which queues and channels are served from heaps (agents and waiting tasks)
        self.heaps = HeapEligibility(pipeline)
        #: the ranking keys the ladders leave out, and their callables (`_tail_key`)
        self._tail_rankings = pipeline.ranking_keys[len(static) :]
        self._tail_calls = key_calls(self._tail_rankings)
        # Without targets that order agents, a floored ladder's key is the memo's own
        # (one call less per key: a refresh computes a key per ladder of the agent).
        ladder_key = (
            self._memo_keys
            if self._floored is not None and not self._ordered_targets
            else self._ladder_key
        )
        self.index = RosterIndex(
            deployment,
            state,
            contexts.worker_view,
            ladder_key,
            self.heaps,
            floored=self._floored is not None,
        )

    def _ladder_key(self, task: Task, agent: Agent) -> tuple[Any, ...]:
        if not self._ordered_targets and self._floored is None:
            keys = self._ladder_key_calls(task, agent)
            keys.append(agent.roster_index)
            return tuple(keys)
        ranked = self._memo_keys(task, agent)
        if self._ordered_targets:
            target = self.deployment.target_of(task)
            if target is not None and target.order_by is not None:
                worker = {"worker": self._contexts.worker_view(agent)}
                return (target.order_by.key(worker), *ranked)
        return ranked

    def _memo_keys(self, task: Task, agent: Agent) -> tuple[Any, ...]:
        """The ladder keys, then the floor order if a key gives floors, then the roster
        index.

        An agent open in several partitions gets a key per partition, all computed in one
        refresh: the parts that read nothing of the task (no `partition`) are computed
        once, since an `Indexing` promises they change only when the agent is touched.
        """
        memo = self._memo
        if memo is None or memo[0] is not agent or memo[1] != agent.version:
            free: list[Any] = []
            append = free.append
            try:
                for function in self._free_calls:
                    append(function(task, agent))
            except Exception as error:
                self._blame_key(self._free_positions[len(free)], error)
            free.append(agent.roster_index)
            memo = self._memo = (agent, agent.version, tuple(free))
        tail = memo[2]
        if not self._partitioned:
            return tail
        position = 0
        try:
            if self._single_first is not None:
                return (self._single_first(task, agent), *tail)
            if self._partitioned_first:
                head = []
                for position, function in self._partitioned:  # noqa: B007
                    head.append(function(task, agent))
                return (*head, *tail)
            values = list(tail)
            # in rising positions: each lands where the plan puts it among the others
            for position, function in self._partitioned:
                values.insert(position, function(task, agent))
        except Exception as error:
            self._blame_key(position, error)
        return tuple(values)

    def _blame_key(self, position: int, error: Exception) -> NoReturn:
        """Raise the error of the ladder key (or floor order) at `position` of the plan."""
        if position < len(self._ladder_keys):
            blame(self._ladder_keys, position, "ranking key", error)
        assert self._floored is not None
        plugin, ranking = self._floored
        blame(((plugin, ranking),), 0, "floor order of ranking key", error)

    def _partition(self, task: Task) -> tuple[Any, ...] | None:
        """What of the task the ladder keys read (None: they read nothing worth a ladder)."""
        target = self.deployment.target_of(task)
        ordered = target is not None and target.order_by is not None
        if not ordered and not self._ladder_keys:
            return None
        parts: list[Any] = [(task.filter_index, task.target_index) if ordered else None]
        for plugin, ranking in self._ladder_keys:
            assert ranking.indexing is not None
            if ranking.indexing.partition is not None:
                parts.append(
                    call_named(
                        plugin,
                        "the partition of ranking key {!r}",
                        ranking.name,
                        ranking.indexing.partition,
                        task,
                    )
                )
        return tuple(parts)

    def choose(self, task: Task, now: float) -> Decision:
        winner = self.winner(task, now)
        if winner is None:
            return Decision(task.id, now, task.queue, None, (), None, "no agent is eligible")
        return Decision(task.id, now, task.queue, None, (), winner.id, "")

    def winner(self, task: Task, now: float) -> Agent | None:
        """The agent `choose` decides on, without a Decision (routing records none here)."""
        selection = self._selection
        try:
            self.index.sync()  # ladders sort agents by their keys
            since = selection.unchanged_since(task)
            stamp = latest_agent_version()
            winner = self._best_open_agent(task, since, now)
        except TypeError as error:  # keys that cannot be compared, or any other TypeError
            raise self._incomparable(task, error) from error
        selection.noted(task, winner is not None, stamp)
        return winner

    def _incomparable(self, task: Task, error: TypeError) -> Exception:
        """The PluginError naming the plugin whose ranking keys of the task's open agents
        cannot be compared (the error path only); the TypeError itself otherwise."""
        agents = self._state.agents
        open_ids = self.index.open.get((task.queue, task.channel)) or ()
        target = self.deployment.target_of(task)
        keys = [
            self._selection.ranking_key(task, agents[agent_id], target) for agent_id in open_ids
        ]
        return self._selection.incomparable(target, keys, error)

    def _best_open_agent(self, task: Task, since: int | None, now: float) -> Agent | None:
        """The agent the reference path would choose, found by walking the ladder.

        The reference's winner has the smallest (preferences failed, ranking key). The
        ladder holds open agents in ranking order, in groups tied on the keys it holds;
        without preferences the first group with an agent passing the filters decides,
        and with them the walk stops at the first group whose best agent passes every
        preference, since no later agent can beat it. Within a group kept in floor
        order, the walk leaves the group once the next floor is above the best key found,
        and steps over agents whose floor order (hence key) equals the best's when only
        the roster order follows.
        """
        index = self.index
        open_ids = index.open.get((task.queue, task.channel))
        if not open_ids:
            return None
        partition = self._partition(task)
        ladder = index.ladder(task, partition) if partition is not None else None
        best: tuple[tuple[Any, ...], Agent] | None = None
        if ladder is None:  # no ladder for this task: rank every open agent in full
            target = self.deployment.target_of(task)
            agents = self._state.agents
            for agent in (agents[agent_id] for agent_id in open_ids):
                if (since is None or agent.version > since) and self._passes_filters(task, agent):
                    scored: tuple[Any, ...] = (
                        self._failed_preferences(task, agent),
                        self._selection.ranking_key(task, agent, target),
                    )
                    if best is None or scored < best[0]:
                        best = (scored, agent)
            return best[1] if best is not None else None
        if isinstance(ladder, AgentHeap):
            return self._best_in_heap(task, ladder, since)
        if isinstance(ladder, FlooredLadder):
            return self._best_in_groups(task, ladder, since, now)
        # A plain ladder: no ranking key gives floors (those are kept in groups, above).
        entries = ladder.entries
        agent_at = ladder.agent_at
        if not self._ranking_ties:  # every agent is a group of its own
            return self._first_preferred(task, (agent_at[key[-1]] for key in entries), since)
        # ladder keys: (order_by?, ladder keys..., roster index)
        tied_length = len(entries[0]) - 1
        current: Any = _NO_GROUP
        number = 0  # groups come in ranking order: the number stands for the ladder's keys
        for key in entries:
            agent = agent_at[key[-1]]
            tied = key[:tied_length]
            if tied != current:
                if best is not None and not any(best[0][0]):
                    break
                current = tied
                number += 1
            if since is not None and agent.version <= since:
                continue
            if not self._passes_filters(task, agent):
                continue
            scored = (self._failed_preferences(task, agent), number, self._tail_key(task, agent))
            if best is None or scored < best[0]:
                best = (scored, agent)
        return best[1] if best is not None else None

    def _best_in_groups(
        self, task: Task, ladder: FlooredLadder, since: int | None, now: float
    ) -> Agent | None:
        """The walk of a ladder kept in groups (`_best_open_agent`'s, group by group): the
        group's tied keys give its number, its tails the floor order and roster index."""
        assert self._floored is not None
        plugin, ranking = self._floored
        assert ranking.indexing is not None
        assert ranking.indexing.floor is not None
        floor = ranking.indexing.floor
        only_roster_after = len(self.pipeline.ranking_keys) == len(self._ladder_keys) + 1
        agent_at, groups = ladder.agent_at, ladder.groups
        best: tuple[tuple[Any, ...], Agent] | None = None
        best_order: Any = None
        number = 0  # groups come in ranking order: the number stands for the ladder's keys
        for prefix in ladder.prefixes:
            if best is not None and not any(best[0][0]):
                break
            number += 1
            group = groups[prefix]
            position, count = 0, len(group)
            while position < count:
                order, roster_index = group[position]
                position += 1
                agent = agent_at[roster_index]
                if since is not None and agent.version <= since:
                    continue
                if best is not None and not any(best[0][0]):
                    # best is in this group: one from an earlier group would have ended
                    # the walk
                    if only_roster_after and order == best_order:
                        # past the tails of this order (roster indexes are ints)
                        position = bisect_right(group, (order, math.inf))
                        continue
                    lowest = call_named(
                        plugin,
                        "the floor of ranking key {!r}",
                        ranking.name,
                        floor,
                        task,
                        agent,
                        now,
                    )
                    if lowest > best[0][2][0]:
                        break  # no later agent of the group can win, nor of a later group
                if not self._passes_filters(task, agent):
                    continue
                scored = (
                    self._failed_preferences(task, agent) if self._prefer_calls else (),
                    number,
                    self._tail_key(task, agent),
                )
                if best is None or scored < best[0]:
                    best = (scored, agent)
                    best_order = order
        return best[1] if best is not None else None

    def _best_in_heap(self, task: Task, heap: AgentHeap, since: int | None) -> Agent | None:
        """The first agent in key order that passes the filters and every preference,
        else the first of those failing the fewest: entries are taken off the top only
        as far as the answer needs, and put back."""
        taken: list[AgentEntry] = []
        try:
            return self._first_preferred(task, _popped(heap, taken), since)
        finally:
            heap.restore(taken)

    def _first_preferred(
        self, task: Task, ranked: Iterable[Agent], since: int | None
    ) -> Agent | None:
        """Of agents in ranking order, the first changed since `since` that passes the
        filters and every preference, else the first of those failing the fewest."""
        if not self._filter_calls and not self._prefer_calls:
            # nothing to test: the first agent changed since the last try wins
            return next((a for a in ranked if since is None or a.version > since), None)
        best: tuple[tuple[bool, ...], Agent] | None = None
        for agent in ranked:
            if (since is None or agent.version > since) and self._passes_filters(task, agent):
                failed = self._failed_preferences(task, agent)
                if not any(failed):
                    return agent
                if best is None or failed < best[0]:
                    best = (failed, agent)
        return best[1] if best is not None else None

    def _failed_preferences(self, task: Task, agent: Agent) -> tuple[bool, ...]:
        failed: list[bool] = []
        append = failed.append
        try:
            for prefer in self._prefer_calls:
                append(not prefer(task, agent))
        except Exception as error:
            preferences = self.pipeline.preferences
            blame(preferences, len(failed), "preference", error)
        return tuple(failed)

    def _tail_key(self, task: Task, agent: Agent) -> tuple[Any, ...]:
        """The ranking keys the ladders leave out (from the first time-dependent one on)."""
        keys = self._tail_calls(task, agent)
        keys.append(agent.roster_index)
        return tuple(keys)

    def _passes_filters(self, task: Task, agent: Agent) -> bool:
        position = 0
        try:
            for position, test in enumerate(self._filter_calls):  # noqa: B007
                if not test(task, agent):
                    return False
        except Exception as error:
            blame(self._open_filters, position, "filter", error)
        return True


def _popped(heap: AgentHeap, taken: list[AgentEntry]) -> Iterator[Agent]:
    """The heap's agents in key order, each entry kept in `taken` to be put back."""
    while (entry := heap.pop()) is not None:
        taken.append(entry)
        yield entry[-1]
