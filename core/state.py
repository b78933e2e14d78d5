"""The engine's mutable state: agents, tasks and the offers made.

Everything an event may change lives here (plugin state included), so that the engine can
snapshot it before an event and restore it if the event fails half way.
"""

from __future__ import annotations

import copy
import itertools
import math
import operator
from collections.abc import Callable
from typing import Any

import attrs

AGENT_STATUSES = ("offline", "ready", "not_ready")

#: one counter for every agent, so "changed since" is a single comparison
_agent_versions = itertools.count(1)
#: the version last given to an agent (a change, or a new agent)
_last_given = [0]


def _new_version() -> int:
    version = _last_given[0] = next(_agent_versions)
    return version


def last_agent_change() -> int:
    """The version of the latest change to any agent (compare with a stamp taken before)."""
    return _last_given[0]


#: one counter for every attributes dictionary: equal stamps, equal contents
_attribute_stamps = itertools.count(1)


class Attributes(dict[str, Any]):
    """An agent's attributes: a dictionary that takes a new `stamp` whenever it changes.

    What is computed from the attributes alone (a skill level, say) can be cached under
    the stamp, and stays valid while the agent changes in other ways (it takes and
    releases tasks far more often than its attributes are edited). A copy
    (`dict(attributes)`, `.copy()`) is a plain dictionary; an agent given one converts
    it, with a new stamp.
    """

    __slots__ = ("stamp",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamp = next(_attribute_stamps)

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self.stamp = next(_attribute_stamps)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self.stamp = next(_attribute_stamps)

    def pop(self, key: str, *default: Any) -> Any:
        value = dict.pop(self, key, *default)
        self.stamp = next(_attribute_stamps)
        return value

    def popitem(self) -> tuple[str, Any]:
        item = dict.popitem(self)
        self.stamp = next(_attribute_stamps)
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        value = dict.setdefault(self, key, default)
        self.stamp = next(_attribute_stamps)
        return value

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        self.stamp = next(_attribute_stamps)

    def clear(self) -> None:
        dict.clear(self)
        self.stamp = next(_attribute_stamps)

    def __ior__(self, other: Any) -> Attributes:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (Attributes, (dict(self),))


def _copied(per_channel: dict[str, Any]) -> dict[str, Any]:
    """A copy of a dictionary of sets or dictionaries, one level down (a loop: cheaper
    than a comprehension here, which is a call of its own, and this runs per change)."""
    copied = {}
    for channel, items in per_channel.items():
        copied[channel] = items.copy()
    return copied


def _attributes(value: dict[str, Any]) -> Attributes:
    return value if value.__class__ is Attributes else Attributes(value)


TASK_STATES = ("queued", "reserved", "assigned", "completed", "canceled", "rejected")
OPEN_STATES = frozenset({"queued", "reserved", "assigned"})


@attrs.define(eq=False)
class Agent:
    id: str
    roster_index: int
    #: an `Attributes` (stamped on every change); a plain dictionary given is converted
    attributes: dict[str, Any]
    groups: tuple[str, ...]
    capacity: dict[str, int]
    status: str = "offline"
    #: task ids held per channel, reserved and assigned alike
    held: dict[str, set[str]] = attrs.Factory(dict)
    #: task ids assigned (accepted, not yet completed) per channel
    assigned: dict[str, set[str]] = attrs.Factory(dict)
    #: after-contact work per channel: completed task id -> when it ends; each takes a
    #: unit of the channel's capacity until then (docs/wrap-up.md)
    wrap_up: dict[str, dict[str, float]] = attrs.Factory(dict)
    login_at: float | None = None
    status_since: float = 0.0
    last_offer_at: float | None = None
    last_accept_at: float | None = None
    #: when the agent last became free of all tasks (its login time if it never held one)
    free_since: float | None = None
    plugin_state: dict[str, dict[str, Any]] = attrs.Factory(dict)
    #: from a counter shared by all agents, bumped on every change a filter could see
    version: int = attrs.field(factory=_new_version)
    #: told of every touch (the engine's roster index); not part of the agent's state
    watcher: Callable[[Agent], None] | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        # Converted here, not by an attrs converter: that would hook every assignment to
        # every field of the agent (version, status...) through Python code.
        self.attributes = _attributes(self.attributes)

    @property
    def attributes_stamp(self) -> int:
        """The stamp of the attributes: it changes whenever they do (`Attributes`)."""
        return self.attributes.stamp  # type: ignore[attr-defined, no-any-return]

    def held_count(self, channel: str | None = None) -> int:
        """Units of capacity taken: tasks reserved or assigned, and wrap-ups."""
        if channel is None:
            held = sum(map(len, self.held.values()))
            return held + sum(map(len, self.wrap_up.values())) if self.wrap_up else held
        held = len(self.held.get(channel, ()))
        return held + len(self.wrap_up.get(channel, ())) if self.wrap_up else held

    def has_room(self, channel: str) -> bool:
        return self.held_count(channel) < self.capacity.get(channel, 0)

    def touch(self) -> None:
        """Mark a change an expression or filter could see (caches and routing key on it)."""
        self.version = _last_given[0] = next(_agent_versions)  # _new_version, written out
        if self.watcher is not None:
            self.watcher(self)

    def saved(self) -> tuple[Any, ...]:
        """What the undo log keeps before the agent's first change in an event: its fields,
        the containers changed in place copied. Attributes and capacity are kept as they
        are: an edit replaces them (`Roster`, `Lifecycle.set_capacity`). Plugin state is
        recorded key by key on its own."""
        return (
            self.attributes,
            self.groups,
            self.capacity,
            self.status,
            _copied(self.held),
            _copied(self.assigned),
            _copied(self.wrap_up),
            self.login_at,
            self.status_since,
            self.last_offer_at,
            self.last_accept_at,
            self.free_since,
        )

    def put_back(self, saved: tuple[Any, ...]) -> None:
        (
            attributes,
            self.groups,
            self.capacity,
            self.status,
            self.held,
            self.assigned,
            self.wrap_up,
            self.login_at,
            self.status_since,
            self.last_offer_at,
            self.last_accept_at,
            self.free_since,
        ) = saved
        self.attributes = Attributes(attributes)  # a new stamp: the values may be older
        # A new stamp: whatever was cached under the stamp of the undone change is stale.
        self.version = _new_version()

    def copy(self) -> Agent:
        """A copy an event cannot reach: containers copied, plugin state deeply."""
        clone = copy.copy(self)
        clone.attributes = Attributes(self.attributes)
        clone.capacity = dict(self.capacity)
        clone.held = {channel: set(ids) for channel, ids in self.held.items()}
        clone.assigned = {channel: set(ids) for channel, ids in self.assigned.items()}
        clone.wrap_up = {channel: dict(ids) for channel, ids in self.wrap_up.items()}
        clone.plugin_state = copy.deepcopy(self.plugin_state)
        return clone


@attrs.define(eq=False)
class Task:
    id: str
    seq: int
    channel: str
    attributes: dict[str, Any]
    priority: int
    created_at: float
    requested_queue: str | None = None
    profile: str | None = None
    state: str = "queued"
    reason: str | None = None
    message: str | None = None
    queue: str | None = None
    #: workflow position: filter index and target index; None for the default queue or
    #: when the task went straight to a queue (no workflow, or a transfer)
    filter_index: int | None = None
    target_index: int | None = None
    target_entered_at: float = 0.0
    #: a target whose timeout passed while the task was reserved: move on when it returns
    target_expired: bool = False
    #: the time that orders the task among waiting ones (kept across declines)
    queued_at: float = 0.0
    #: when the task last started waiting, as a count (keeps `EngineState.waiting` in
    #: order when an undone event puts a task back)
    wait_seq: int = 0
    agent: str | None = None
    #: its pending or accepted reservation
    reservation: Reservation | None = None
    #: a pending transfer of the assigned task straight to another agent: the recipient's
    #: reservation. The task stays with `agent` until the recipient accepts.
    transfer: Reservation | None = None
    offered_at: float | None = None
    held_until: float | None = None
    hold_reason: str | None = None
    declined_by: list[str] = attrs.Factory(list)
    transferred: bool = False
    history: list[tuple[float, str]] = attrs.Factory(list)
    plugin_state: dict[str, dict[str, Any]] = attrs.Factory(dict)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def saved(self) -> tuple[tuple[Any, ...], int, int]:
        """What the undo log keeps before the task's first change in an event: its fields,
        and the lengths of the lists that only grow (plugin state is recorded key by key
        on its own; attributes are the caller's and never change)."""
        return _task_fields(self), len(self.history), len(self.declined_by)

    def put_back(self, saved: tuple[tuple[Any, ...], int, int]) -> None:
        values, history, declined = saved
        for name, value in zip(_TASK_FIELDS, values, strict=True):
            setattr(self, name, value)
        del self.history[history:]
        del self.declined_by[declined:]

    def copy(self) -> Task:
        """A copy an event cannot reach: containers copied, plugin state deeply."""
        clone = copy.copy(self)
        clone.attributes = dict(self.attributes)
        clone.declined_by = list(self.declined_by)
        clone.history = list(self.history)
        clone.plugin_state = copy.deepcopy(self.plugin_state)
        return clone


#: what an event may change of a task (its identity, attributes and plugin state aside)
_TASK_FIELDS = tuple(
    field.name
    for field in attrs.fields(Task)
    if field.name not in ("id", "seq", "attributes", "plugin_state")
)
_task_fields = operator.attrgetter(*_TASK_FIELDS)


RESERVATION_STATES = ("pending", "accepted", "declined", "timed_out", "revoked")


@attrs.define(eq=False)
class Reservation:
    """An offer: the task was offered to the agent at `created_at`, from `queue`.

    Its `id` (`r1`, `r2`, ... in the order they were made) is what an answer names.
    `state` is pending until the agent accepts, declines or lets it time out, or the
    engine revokes it (the agent left, the task was canceled or moved).
    """

    id: str
    task: str
    agent: str
    created_at: float
    expires_at: float | None = None
    queue: str | None = None
    state: str = "pending"

    @property
    def at(self) -> float:
        """When it was made (`created_at`)."""
        return self.created_at

    def saved(self) -> str:
        return self.state

    def put_back(self, saved: str) -> None:
        self.state = saved

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "agent": self.agent,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "queue": self.queue,
            "state": self.state,
        }


#: the name this had before reservations had ids
Offer = Reservation


def worker_context(agent: Agent) -> dict[str, Any]:
    """What `worker.*` reads: the agent's attributes, with built-in values on top."""
    channels = {}
    for channel, configured in agent.capacity.items():
        held = agent.held_count(channel)
        percentage = math.floor(100 * (1 - held / configured)) if configured > 0 else 0
        channels[channel] = {
            "configured_capacity": configured,
            "assigned_tasks": len(agent.assigned.get(channel, ())),
            "available_capacity_percentage": max(percentage, 0),
            "available": agent.status == "ready" and held < configured,
        }
    return {
        **agent.attributes,
        "id": agent.id,
        "groups": list(agent.groups),
        "status": agent.status,
        "channel": channels,
    }


def latest_agent_version() -> int:
    """A stamp: agents touched later have a higher version."""
    return next(_agent_versions)


#: the built-in values of `task.*`, which hide task attributes of the same names
TASK_BUILT_INS = frozenset({"id", "channel", "priority", "queue", "age"})


def task_context(task: Task, now: float, priority: int) -> dict[str, Any]:
    """What `task.*` reads: the task's attributes, with built-in values on top."""
    return {
        **task.attributes,
        "id": task.id,
        "channel": task.channel,
        "priority": priority,
        "queue": task.queue,
        "age": now - task.created_at,
    }


@attrs.define(eq=False)
class EngineState:
    """All mutable state, in one object the engine can copy and restore."""

    agents: dict[str, Agent] = attrs.Factory(dict)
    tasks: dict[str, Task] = attrs.Factory(dict)
    #: every reservation made, in order, since the last `Engine.forget_offers`: `r<n>`
    #: is `offers[n - 1 - forgotten_offers]`
    offers: list[Reservation] = attrs.Factory(list)
    forgotten_offers: int = 0
    #: ids of queued tasks, in the order they started waiting (a dict as an ordered set)
    waiting: dict[str, None] = attrs.Factory(dict)
    #: a heap of (time, timer id, owner, name, payload): data only (the owner is a plugin's
    #: name, None for the engine; the payload is JSON-like), so it can be saved; the
    #: engine finds the handler by (owner, name) when the timer fires
    timers: list[tuple[float, int, str | None, str, Any]] = attrs.Factory(list)
    canceled_timers: set[int] = attrs.Factory(set)
    timer_sequence: int = 0
    task_sequence: int = 0
    wait_sequence: int = 0
    agent_sequence: int = 0
    plugin_state: dict[str, dict[str, Any]] = attrs.Factory(dict)
    now: float = 0.0
