"""Events as values: everything that can happen to an engine, as data.

Each event is a frozen attrs class; `Engine.apply(event)` applies one and returns an
`Outcome`: the reservations it made and the tasks it changed. The engine's methods
(`create_task`, `accept`, ...) are thin wrappers that build the event and apply it, so a
journal, a scenario file, the simulator and the HTTP service all feed the engine the
same values. Events convert to and from plain JSON (`to_json`, `from_json`) with the
project's strict cattrs converter, tagged by `type`:

>>> from omniroute.core.events import Accept, from_json, to_json
>>> to_json(Accept(task="t1", agent="ana"))
{'type': 'accept', 'task': 't1', 'agent': 'ana'}
>>> from_json({"type": "accept", "reservation": "r3"})
Accept(task=None, agent=None, reservation='r3')

Time is an event of its own (`AdvanceClock`): the others happen at the engine's `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from .converter import converter, structure
from .errors import EventError, Problem
from .state import Reservation, Task


@attrs.frozen(kw_only=True)
class CreateTask:
    """A new interaction arrives; the workflow places it and the router offers it."""

    type: ClassVar[str] = "create"
    task: str
    channel: str
    attributes: dict[str, Any] = attrs.Factory(dict)
    priority: int = 0
    queue: str | None = None
    profile: str | None = None


@attrs.frozen(kw_only=True)
class _Answer:
    """An answer to a reservation: name the reservation, or the task (and, to make sure
    the answer is not a late one from an agent whose offer has moved on, the agent)."""

    task: str | None = None
    agent: str | None = None
    reservation: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.task is None and self.reservation is None:
            raise ValueError(f"{self.type}: name the task or the reservation")  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class Accept(_Answer):
    type: ClassVar[str] = "accept"


@attrs.frozen(kw_only=True)
class Decline(_Answer):
    type: ClassVar[str] = "decline"


@attrs.frozen(kw_only=True)
class Timeout(_Answer):
    """The platform says an offer went unanswered (the engine's own
    `reservation_timeout` does the same by itself)."""

    type: ClassVar[str] = "timeout"


@attrs.frozen(kw_only=True)
class Complete:
    type: ClassVar[str] = "complete"
    task: str


@attrs.frozen(kw_only=True)
class Cancel:
    """The customer leaves: a queued, reserved or assigned task ends."""

    type: ClassVar[str] = "cancel"
    task: str
    reason: str = "canceled"


@attrs.frozen(kw_only=True)
class Transfer:
    """To another queue (routed again) or to an agent (give exactly one)."""

    type: ClassVar[str] = "transfer"
    task: str
    to_queue: str | None = None
    to_agent: str | None = None


@attrs.frozen(kw_only=True)
class Login:
    type: ClassVar[str] = "login"
    agent: str


@attrs.frozen(kw_only=True)
class Logout:
    type: ClassVar[str] = "logout"
    agent: str


@attrs.frozen(kw_only=True)
class SetStatus:
    """`ready` or `not_ready` (from offline, this logs the agent in)."""

    type: ClassVar[str] = "status"
    agent: str
    status: str


@attrs.frozen(kw_only=True)
class SetAgent:
    """Change attributes (a null value removes one) and capacities of an agent."""

    type: ClassVar[str] = "set_agent"
    agent: str
    attributes: dict[str, Any] | None = None
    channels: dict[str, int] | None = None


@attrs.frozen(kw_only=True)
class AddAgent:
    type: ClassVar[str] = "add_agent"
    agent: str
    channels: dict[str, int]
    attributes: dict[str, Any] = attrs.Factory(dict)
    groups: tuple[str, ...] = ()
    status: str = "ready"


@attrs.frozen(kw_only=True)
class RemoveAgent:
    """Take an agent off the roster (refused while it holds tasks)."""

    type: ClassVar[str] = "remove_agent"
    agent: str


@attrs.frozen(kw_only=True)
class ReplaceDeployment:
    """Replace the running deployment with another (the same document as a deployment
    file). It is validated first and applied atomically; tasks waiting in a queue the new
    deployment removes go to its default queue, or are canceled (`queue_removed`)."""

    type: ClassVar[str] = "replace_deployment"
    deployment: dict[str, Any]


@attrs.frozen(kw_only=True)
class EndWrapUp:
    """The agent ends its after-contact work before its time: all of it, or that of one
    completed task (docs/wrap-up.md)."""

    type: ClassVar[str] = "end_wrap_up"
    agent: str
    task: str | None = None


@attrs.frozen(kw_only=True)
class ConvertToCallback:
    """A waiting task becomes a task of another channel (a callback) that keeps its place:
    its id, its queue time and its position, or another `queue` with its queue time
    (docs/callbacks.md)."""

    type: ClassVar[str] = "convert_to_callback"
    task: str
    channel: str
    queue: str | None = None


@attrs.frozen(kw_only=True)
class AdvanceClock:
    """Move the clock to `to` (seconds since the engine's start), firing every timer due
    by then at its own time."""

    type: ClassVar[str] = "advance"
    to: float


Event = (
    CreateTask
    | Accept
    | Decline
    | Timeout
    | Complete
    | Cancel
    | Transfer
    | Login
    | Logout
    | SetStatus
    | SetAgent
    | AddAgent
    | RemoveAgent
    | ReplaceDeployment
    | EndWrapUp
    | ConvertToCallback
    | AdvanceClock
)

EVENT_TYPES: dict[str, type[Any]] = {
    kind.type: kind
    for kind in (
        CreateTask,
        Accept,
        Decline,
        Timeout,
        Complete,
        Cancel,
        Transfer,
        Login,
        Logout,
        SetStatus,
        SetAgent,
        AddAgent,
        RemoveAgent,
        ReplaceDeployment,
        EndWrapUp,
        ConvertToCallback,
        AdvanceClock,
    )
}


@attrs.frozen
class Outcome:
    """What an event did: the reservations it made (in order) and the tasks it changed
    (in the order they first changed), as they stand after it."""

    reservations: tuple[Reservation, ...] = ()
    tasks: tuple[Task, ...] = ()


def to_json(event: Event) -> dict[str, Any]:
    """The event as plain JSON, tagged with its `type`; fields at their defaults are left
    out, so a journal stays small."""
    data: dict[str, Any] = {"type": event.type}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if default is not attrs.NOTHING and value == default:
            continue
        data[field.name] = converter().unstructure(value)
    return data


def from_json(data: Any) -> Event:
    """An event from plain JSON; EventError lists every problem with its key path."""
    if not isinstance(data, Mapping):
        raise EventError(f"an event must be a mapping, not {type(data).__name__}")
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise EventError(f"unknown event type {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    fields = {key: value for key, value in data.items() if key != "type"}
    event, problems = structure(fields, EVENT_TYPES[kind], prefix=kind)
    if event is None:
        raise EventError("; ".join(str(problem) for problem in problems or [Problem(kind, "?")]))
    return event  # type: ignore[no-any-return]
