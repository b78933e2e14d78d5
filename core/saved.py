"""An engine's state as plain JSON, and back: what `Engine.save` and `Engine.restore` use.

The saved form holds everything an event can change (agents, open and kept tasks with
their reservations, waiting order, timers, plugin state, the clock and the counters)
and nothing derived from it (the roster index, waiting groups, caches), which a restored
engine rebuilds. Decision records are not saved: a restored engine explains the
decisions it makes itself.

Everything in it is JSON: tuples come back as lists (plugin state included, as
`omniroute.core.undo` says), and the format carries a version so that a journal written
by one release can be refused clearly by another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .errors import EventError
from .options import EngineOptions
from .state import Agent, EngineState, Reservation, Task
from .undo import RecordedDict, UndoLog, plain

FORMAT = "omniroute.engine-state/1"

_AGENT_TIMES = ("login_at", "status_since", "last_offer_at", "last_accept_at", "free_since")
_TASK_PLAIN = tuple(
    field.name
    for field in attrs.fields(Task)
    if field.name
    not in ("reservation", "transfer", "history", "plugin_state", "declined_by", "attributes")
)
_COUNTERS = (
    "timer_sequence",
    "task_sequence",
    "wait_sequence",
    "agent_sequence",
    "forgotten_offers",
)


def _number(value: float | None) -> float | None:
    """JSON has no infinity: times that are -inf (never) are saved as null."""
    if value is None or math.isinf(value):
        return None
    return value


def _reservation(reservation: Reservation) -> dict[str, Any]:
    return reservation.to_json()


def _agent(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "roster_index": agent.roster_index,
        "attributes": plain(agent.attributes),
        "groups": list(agent.groups),
        "capacity": dict(agent.capacity),
        "status": agent.status,
        "held": {channel: sorted(ids) for channel, ids in agent.held.items()},
        "assigned": {channel: sorted(ids) for channel, ids in agent.assigned.items()},
        "wrap_up": {channel: dict(sorted(ids.items())) for channel, ids in agent.wrap_up.items()},
        **{name: _number(getattr(agent, name)) for name in _AGENT_TIMES},
        "plugin_state": plain(agent.plugin_state),
    }


def _task(task: Task) -> dict[str, Any]:
    return {
        **{name: getattr(task, name) for name in _TASK_PLAIN},
        "attributes": plain(task.attributes),
        "declined_by": list(task.declined_by),
        "history": [[at, what] for at, what in task.history],
        "reservation": _reservation(task.reservation) if task.reservation else None,
        "transfer": _reservation(task.transfer) if task.transfer else None,
        "plugin_state": plain(task.plugin_state),
    }


def state_to_json(state: EngineState) -> dict[str, Any]:
    """The state as plain JSON (canceled timers left out)."""
    canceled = state.canceled_timers
    return {
        "format": FORMAT,
        "now": state.now,
        **{name: getattr(state, name) for name in _COUNTERS},
        "agents": [_agent(agent) for agent in state.agents.values()],
        "tasks": [_task(task) for task in state.tasks.values()],
        "offers": [_reservation(reservation) for reservation in state.offers],
        "waiting": list(state.waiting),
        "timers": [
            [at, timer_id, owner, name, plain(payload)]
            for at, timer_id, owner, name, payload in sorted(state.timers)
            if timer_id not in canceled
        ],
        "plugin_state": plain(state.plugin_state),
    }


def engine_to_json(state: EngineState, start: datetime, options: EngineOptions) -> dict[str, Any]:
    """What `Engine.save` gives: the state, the engine's start and its options."""
    data = state_to_json(state)
    data["start"] = start.isoformat()
    data["options"] = attrs.asdict(options)
    return data


def start_and_options(data: Any) -> tuple[datetime, EngineOptions]:
    """The start and options of a saved engine (`engine_to_json`)."""
    check_format(data)
    try:
        return datetime.fromisoformat(data["start"]), EngineOptions(**data["options"])
    except (KeyError, TypeError, ValueError) as error:
        raise EventError(f"a saved engine state that cannot be read: {error!r}") from error


def load_into(state: EngineState, data: Mapping[str, Any], undo: UndoLog) -> None:
    """Put the saved state `data` into `state` (an engine's, kept by its parts)."""
    loaded = state_from_json(data, undo)
    for field in attrs.fields(EngineState):
        setattr(state, field.name, getattr(loaded, field.name))


def check_format(data: Any) -> None:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise EventError(f"not a saved engine state of format {FORMAT!r} (found {found!r})")


def state_from_json(data: Mapping[str, Any], undo: UndoLog) -> EngineState:
    """An EngineState from `state_to_json`'s output; plugin state recorded in `undo`."""
    check_format(data)
    try:
        return _load(data, undo)
    except (KeyError, TypeError, ValueError) as error:
        raise EventError(f"a saved engine state that cannot be read: {error!r}") from error


def _load(data: Mapping[str, Any], undo: UndoLog) -> EngineState:
    reservations: dict[str, Reservation] = {}

    def reservation(saved: Mapping[str, Any]) -> Reservation:
        found = reservations.get(saved["id"])
        if found is None:
            found = reservations[saved["id"]] = Reservation(**saved)
        return found

    tasks = {}
    for saved in data["tasks"]:
        task = Task(
            **{name: saved[name] for name in _TASK_PLAIN},
            attributes=dict(saved["attributes"]),
            declined_by=list(saved["declined_by"]),
            history=[(at, what) for at, what in saved["history"]],
            reservation=reservation(saved["reservation"]) if saved["reservation"] else None,
            transfer=reservation(saved["transfer"]) if saved.get("transfer") else None,
            plugin_state=RecordedDict(undo, saved["plugin_state"]),
        )
        tasks[task.id] = task
    agents = {}
    for saved in data["agents"]:
        agent = Agent(
            id=saved["id"],
            roster_index=saved["roster_index"],
            attributes=dict(saved["attributes"]),
            groups=tuple(saved["groups"]),
            capacity=dict(saved["capacity"]),
            status=saved["status"],
            held={channel: set(ids) for channel, ids in saved["held"].items()},
            assigned={channel: set(ids) for channel, ids in saved["assigned"].items()},
            # a state saved before wrap-ups existed has none
            wrap_up={channel: dict(ids) for channel, ids in saved.get("wrap_up", {}).items()},
            plugin_state=RecordedDict(undo, saved["plugin_state"]),
        )
        for name in _AGENT_TIMES:
            setattr(agent, name, saved[name])
        agents[agent.id] = agent
    offers = [reservation(saved) for saved in data["offers"]]
    state = EngineState(
        agents=agents,
        tasks=tasks,
        offers=offers,
        waiting=dict.fromkeys(data["waiting"]),
        timers=[
            (at, timer_id, owner, name, payload)
            for at, timer_id, owner, name, payload in data["timers"]
        ],
        plugin_state=RecordedDict(undo, data["plugin_state"]),
        now=data["now"],
    )
    for name in _COUNTERS:
        setattr(state, name, data[name])
    for task_id in state.waiting:
        if tasks[task_id].state != "queued":
            raise ValueError(f"task {task_id!r} waits but is {tasks[task_id].state}")
    return state
