"""Incremental views of the roster, so that routing a task does not scan every agent.

Three views, each kept up to date as agents change rather than recomputed per task:

- **members**: per queue, the agents its `target_workers` admits. The expression is
  evaluated when an agent joins the roster and again only when an attribute it reads
  changes (its `references` say which), or on every change of the agent when it reads
  the agent's status or channels.
- **open**: per queue and channel, the members that are ready and have room there.
- **ladders**: per queue, channel and partition (what of the task the ranking keys read),
  the open agents ordered by the ranking keys that promise an `Indexing`: a heap
  (`heaps.AgentHeap`) where the heaps serve the queue and channel, a sorted ladder
  otherwise (a time-dependent key, whose ties the fast path walks in floor order).

An agent is refreshed in all three after it changes (`Agent.touch` marks it), lazily,
just before the engine next reads them. A queue whose `target_workers` reads the task or
the clock cannot be indexed, nor one that needs time-dependent handling (priority aging,
proficiency steps, a preferred-agent wait: `timed.needs_time_dependent_handling`): its
tasks are routed by scanning the roster, as the reference path does.

Memory per agent: the queues it belongs to and one entry per ladder of those queues, so
nothing grows with the square of the number of queues.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from sortedcontainers import SortedList

from .heaps import AgentHeap, RankedAgents
from .timed import needs_time_dependent_handling

if TYPE_CHECKING:
    from .heaps import HeapEligibility
    from .spec import Deployment
    from .state import Agent, EngineState, Task

#: built-in `worker.*` values that change as the agent works (not only when edited)
_VOLATILE = frozenset({"status", "channel"})
#: built-in `worker.*` values that never change
_FIXED = frozenset({"id", "groups"})
#: ladders kept per queue and channel; tasks of further partitions rank the open set
LADDERS_PER_QUEUE_CHANNEL = 16

GroupKey = tuple[str | None, str]


@attrs.frozen
class MembershipRule:
    """How membership of one queue is kept.

    kind: "all" or "none" (target_workers reads nothing), "attributes" (re-evaluated
    when one of `attributes` changes), "volatile" (re-evaluated on every change of the
    agent), "scan" (reads the task or the clock, or the queue needs time-dependent
    handling: not indexed).
    """

    kind: str
    attributes: frozenset[str] = frozenset()


def membership_rule(expression: Any) -> MembershipRule:
    references = expression.references
    if not references:
        return MembershipRule("all" if expression.evaluate({}) is True else "none")
    attributes = set()
    volatile = False
    for reference in references:
        root, _, rest = reference.partition(".")
        if root != "worker":
            return MembershipRule("scan")
        head = re.split(r"[.\[]", rest, maxsplit=1)[0]
        if not head or head in _VOLATILE:
            volatile = True
        elif head not in _FIXED:
            attributes.add(head)
    return MembershipRule("volatile" if volatile else "attributes", frozenset(attributes))


class _KeyedLadder(RankedAgents):
    """What both ladders keep: each open agent's key (ending with its roster index), and
    the agent of each roster index; `_add` and `_remove` place and take out a key."""

    def __init__(
        self,
        sample: Task,
        partition: Hashable,
        key: Callable[[Task, Agent], tuple[Any, ...]],
        agents: list[Agent],
    ) -> None:
        super().__init__(sample, partition, key)
        self._key_of = {agent.id: key(sample, agent) for agent in agents}
        #: the agents in the ladder by roster index (the last item of their keys)
        self.agent_at = {agent.roster_index: agent for agent in agents}
        self._order(list(self._key_of.values()))

    def _order(self, keys: list[tuple[Any, ...]]) -> None:
        """Hold the first agents' keys in order."""
        raise NotImplementedError

    def put(self, agent: Agent, key: tuple[Any, ...]) -> None:
        old = self._key_of.get(agent.id)
        if old is not None:
            if old == key:
                return
            self._remove(old)
        else:
            self.agent_at[agent.roster_index] = agent
        self._key_of[agent.id] = key
        self._add(key)

    def drop(self, agent: Agent) -> None:
        old = self._key_of.pop(agent.id, None)
        if old is not None:
            self._remove(old)
            del self.agent_at[old[-1]]

    def _add(self, key: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _remove(self, key: tuple[Any, ...]) -> None:
        raise NotImplementedError


class Ladder(_KeyedLadder):
    """The open agents of one queue and channel, ordered by the static ranking keys.

    `entries` holds the keys themselves: each ends with the agent's roster index, so no
    two are equal, and `agent_at` gives the agent of an index. Keys alone compare faster
    than (key, agent) pairs, which every insertion and removal does a dozen times.
    """

    def _order(self, keys: list[tuple[Any, ...]]) -> None:
        self.entries: SortedList = SortedList(keys)

    def _add(self, key: tuple[Any, ...]) -> None:
        self.entries.add(key)

    def _remove(self, key: tuple[Any, ...]) -> None:
        self.entries.remove(key)


class FlooredLadder(_KeyedLadder):
    """A ladder whose keys end with a floor order (then the roster index): the open agents
    in groups tied on the keys before it, each group in floor order.

    `prefixes` holds the groups' tied keys in order, `groups` each group's (floor order,
    roster index) tails, sorted. An agent whose change leaves it in its group (a task
    taken or released with room left) moves within that group's plain list, comparing
    tails only; a flat ladder would compare the tied keys again on every step.
    """

    def _order(self, keys: list[tuple[Any, ...]]) -> None:
        self.groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for ranked in keys:
            self.groups.setdefault(ranked[:-2], []).append(ranked[-2:])
        for group in self.groups.values():
            group.sort()
        self.prefixes: SortedList = SortedList(self.groups)

    def _add(self, key: tuple[Any, ...]) -> None:
        prefix = key[:-2]
        group = self.groups.get(prefix)
        if group is None:
            self.groups[prefix] = [key[-2:]]
            self.prefixes.add(prefix)
        else:
            insort(group, key[-2:])

    def _remove(self, key: tuple[Any, ...]) -> None:
        prefix = key[:-2]
        group = self.groups[prefix]
        if len(group) == 1:
            del self.groups[prefix]
            self.prefixes.remove(prefix)
        else:
            del group[bisect_left(group, key[-2:])]


#: what orders a queue and channel's open agents (see the module's docstring)
AnyLadder = Ladder | FlooredLadder | AgentHeap


class RosterIndex:
    """The members, open sets and ladders of one engine (see the module's docstring)."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        worker_view: Callable[[Agent], dict[str, Any]],
        ladder_key: Callable[[Task, Agent], tuple[Any, ...]],
        heaps: HeapEligibility,
        floored: bool = False,
    ) -> None:
        self._deployment = deployment
        #: ladder keys end with a floor order: ladders group agents before it
        self._floored = floored
        self._heaps = heaps
        self._state = state
        self._worker_view = worker_view
        self._ladder_key = ladder_key
        self.rules = {
            name: (
                MembershipRule("scan")
                if needs_time_dependent_handling(queue)
                else membership_rule(queue.target_workers)
            )
            for name, queue in deployment.queues.items()
        }
        self._indexed = [name for name, rule in self.rules.items() if rule.kind != "scan"]
        self._volatile = [name for name, rule in self.rules.items() if rule.kind == "volatile"]
        self._readers: dict[str, list[str]] = {}
        for name, rule in self.rules.items():
            for attribute in rule.attributes:
                self._readers.setdefault(attribute, []).append(name)
        self.reset()

    def reset(self) -> None:
        self.members: dict[str, set[str]] = {name: set() for name in self._indexed}
        self.logged_in: dict[str, set[str]] = {name: set() for name in self._indexed}
        self.open: dict[GroupKey, set[str]] = {}
        #: what changed since the engine last asked (`take_changes`): the groups where an
        #: agent opened, and whether any agent changed at all
        self._opened_since: set[GroupKey] = set()
        self._changed_since = False
        self._member_of: dict[str, set[str]] = {}
        self._open_in: dict[str, set[GroupKey]] = {}
        self._ladders: dict[Hashable, AnyLadder] = {}
        self._ladders_in: dict[GroupKey, list[AnyLadder]] = {}
        self._dirty: dict[str, Agent] = {}
        self._reevaluate: dict[str, set[str]] = {}
        #: per agent, its status and open channels when last refreshed
        self._seen: dict[str, tuple[str, tuple[str, ...]]] = {}

    def rebuild(self) -> None:
        """Start again from the roster (after a failed event put the state back)."""
        self.reset()
        for agent in self._state.agents.values():
            self.agent_added(agent)

    # --- changes -----------------------------------------------------------------------

    def agent_added(self, agent: Agent) -> None:
        agent.watcher = self.changed
        self._member_of[agent.id] = set()
        self._open_in[agent.id] = set()
        self._reevaluate[agent.id] = set(self._indexed)
        self._dirty[agent.id] = agent

    def agent_removed(self, agent: Agent) -> None:
        agent_id = agent.id
        for name in self._member_of.pop(agent_id, ()):
            self.members[name].discard(agent_id)
            self.logged_in[name].discard(agent_id)
        for key in self._open_in.pop(agent_id, ()):
            self.open[key].discard(agent_id)
            for ladder in self._ladders_in.get(key, ()):
                ladder.drop(agent)
        self._dirty.pop(agent_id, None)
        self._reevaluate.pop(agent_id, None)
        self._seen.pop(agent_id, None)
        agent.watcher = None
        self._changed_since = True

    def attributes_changed(self, agent: Agent, attributes: Iterator[str] | list[str]) -> None:
        stale = self._reevaluate.setdefault(agent.id, set())
        for attribute in attributes:
            stale.update(self._readers.get(attribute, ()))
        self._dirty[agent.id] = agent

    def changed(self, agent: Agent) -> None:
        """`Agent.touch` calls this: refresh the agent before the next read."""
        self._dirty[agent.id] = agent

    def sync(self) -> None:
        while self._dirty:
            _, agent = self._dirty.popitem()
            self._refresh(agent)

    def _refresh(self, agent: Agent) -> None:
        agent_id = agent.id
        member_of = self._member_of[agent_id]
        stale = self._reevaluate.pop(agent_id, None)
        if self._volatile:
            stale = set(self._volatile) if stale is None else stale | set(self._volatile)
        if stale:
            self._reevaluate_membership(agent, member_of, stale)
        status = agent.status
        if status == "ready" and member_of:
            # held_count, inlined: this runs on every change of every agent
            # (a plain loop: a comprehension would be a call of its own)
            held = agent.held
            wrapping = agent.wrap_up
            with_room = []
            for channel, capacity in agent.capacity.items():
                taken = len(held.get(channel, ()))
                if wrapping:
                    taken += len(wrapping.get(channel, ()))
                if taken < capacity:
                    with_room.append(channel)
            channels = tuple(with_room)
        else:
            channels = ()
        seen = (status, channels)
        now_open = self._open_in[agent_id]
        # Most changes (a task taken or released with room left) keep the agent's status,
        # memberships and open channels: only its ladder keys move.
        if stale or self._seen.get(agent_id) != seen:
            self._seen[agent_id] = seen
            self._reopen(agent, member_of, status, channels)
            now_open = self._open_in[agent_id]
        if now_open:
            self._opened_since |= now_open
            keys: dict[Hashable, tuple[Any, ...]] = {}
            ladders_in = self._ladders_in
            for key in now_open:
                for ladder in ladders_in.get(key, ()):
                    ranked = keys.get(ladder.partition)
                    if ranked is None:
                        ranked = keys[ladder.partition] = ladder.key_function(ladder.sample, agent)
                    ladder.put(agent, ranked)
        self._changed_since = True

    def _reopen(
        self, agent: Agent, member_of: set[str], status: str, channels: tuple[str, ...]
    ) -> None:
        """Bring the agent's logged-in and open sets (and ladders it left) up to date."""
        agent_id = agent.id
        if status != "offline":
            for name in member_of:
                self.logged_in[name].add(agent_id)
        else:
            for name in member_of:
                self.logged_in[name].discard(agent_id)
        was_open = self._open_in[agent_id]
        now_open: set[GroupKey] = set()
        for name in member_of:  # a plain loop: a comprehension would be a call of its own
            for channel in channels:
                now_open.add((name, channel))
        if now_open != was_open:
            for key in was_open - now_open:
                self.open[key].discard(agent_id)
                for ladder in self._ladders_in.get(key, ()):
                    ladder.drop(agent)
            for key in now_open - was_open:
                self.open.setdefault(key, set()).add(agent_id)
            self._open_in[agent_id] = now_open

    def _reevaluate_membership(self, agent: Agent, member_of: set[str], stale: set[str]) -> None:
        agent_id = agent.id
        worker = {"worker": self._worker_view(agent)}
        for name in stale:
            rule = self.rules[name]
            admitted = rule.kind == "all" or (
                rule.kind != "none"
                and self._deployment.queues[name].target_workers.evaluate(worker) is True
            )
            if admitted:
                member_of.add(name)
                self.members[name].add(agent_id)
            elif name in member_of:
                member_of.discard(name)
                self.members[name].discard(agent_id)
                self.logged_in[name].discard(agent_id)

    def take_changes(self) -> tuple[set[GroupKey], bool]:
        """The groups where an agent opened, and whether any agent changed, since the
        last call."""
        opened, changed = self._opened_since, self._changed_since
        self._opened_since, self._changed_since = set(), False
        return opened, changed

    # --- reads ---------------------------------------------------------------------------

    def indexed(self, queue: str | None) -> bool:
        return queue is not None and queue in self.members

    def counts(self, queue: str, channel: str) -> dict[str, int]:
        return {
            "available": len(self.open.get((queue, channel), ())),
            "total": len(self.logged_in[queue]),
        }

    def ladder(self, task: Task, partition: Hashable) -> AnyLadder | None:
        """The ladder (or heap) for the task's queue, channel and partition, built on
        first use (None once the queue and channel have their fill of ladders)."""
        assert task.queue is not None
        group = (task.queue, task.channel)
        key = (group, partition)
        ladder = self._ladders.get(key)
        if ladder is not None:
            return ladder
        kept = self._ladders_in.setdefault(group, [])
        if len(kept) >= LADDERS_PER_QUEUE_CHANNEL:
            return None
        agents = self._state.agents
        kind: type[AnyLadder] = (
            AgentHeap
            if self._heaps.serves(task.queue, task.channel)
            else FlooredLadder
            if self._floored
            else Ladder
        )
        ladder = kind(
            task.copy(),
            partition,
            self._ladder_key,
            [agents[agent_id] for agent_id in self.open.get(group, ())],
        )
        self._ladders[key] = ladder
        kept.append(ladder)
        return ladder
