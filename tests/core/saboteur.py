"""A throwaway plugin that writes plugin state on every event and fails or blocks on
demand: what the undo log, the single-writer guard and the differential tests need."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omniroute.core import EventHandler, PluginContext, hookimpl, load_deployment, read_mapping_file
from omniroute.core import plugins as plugin_registry
from omniroute.core.components import EVENTS
from omniroute.core.spec import Deployment

CONTACT_CENTER = Path(__file__).parents[2] / "examples" / "contact-center" / "deployment.yaml"


class Saboteur:
    def __init__(self) -> None:
        #: raise at the n-th handler call from now (None: never)
        self.countdown: int | None = None
        #: when set, a handler call waits here (after saying so through `entered`)
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @hookimpl
    def omniroute_event_handlers(self, context: PluginContext) -> Iterable[EventHandler]:
        def make(event: str) -> Any:
            def handle(task: Any, agent: Any) -> None:
                state = context.state()
                state["calls"] = state.get("calls", 0) + 1
                by_event = state.setdefault("by_event", {})
                by_event[event] = by_event.get(event, 0) + 1
                if task is not None:
                    context.task_state(task).setdefault("seen", []).append(event)
                if agent is not None:
                    context.agent_state(agent)["last"] = event
                if self.gate is not None:
                    self.entered.set()
                    self.gate.wait(10)
                if self.countdown is not None:
                    self.countdown -= 1
                    if self.countdown <= 0:
                        raise RuntimeError(f"sabotage on {event}")

            return handle

        return [EventHandler(event, make(event)) for event in EVENTS]

    @contextmanager
    def failing_at(self, call: int) -> Iterator[None]:
        self.countdown = call
        try:
            yield
        finally:
            self.countdown = None


@contextmanager
def registered() -> Iterator[Saboteur]:
    plugin = Saboteur()
    manager = plugin_registry.plugin_manager()
    manager.register(plugin, name="saboteur")
    try:
        yield plugin
    finally:
        manager.unregister(name="saboteur")


#: wrap-ups and offer policies on top of the contact center, so that the undo log and
#: saved states meet them: wrap-ups of every length, per-queue and per-channel timeouts,
#: missed offers that make the agent not ready, auto-answer by channel and by agent
FLOW_KEYS: dict[str, Any] = {
    "channels": {
        "voice": {"wrap_up": "5m", "offer": {"timeout": 20, "on_timeout": "not_ready"}},
        "callback": {"offer": {"auto_answer": True}},
        "chat": {"wrap_up": 0, "offer": {"auto_answer": "worker.skills.sales >= 2"}},
        "email": {"wrap_up": "15m"},
        "messaging": {},
    },
    "queues": {"sales": {"wrap_up": 60, "offer": {"timeout": 5}}},
}


def with_flow(raw: dict[str, Any]) -> dict[str, Any]:
    """The deployment `raw` with FLOW_KEYS added to its channels and queues."""
    raw = dict(raw)
    raw["channels"] = {**raw["channels"], **FLOW_KEYS["channels"]}
    raw["queues"] = {
        name: {**queue, **FLOW_KEYS["queues"].get(name, {})}
        for name, queue in raw["queues"].items()
    }
    return raw


#: issue 11's time-dependent keys, added to the contact center's queues
TIMED_KEYS: dict[str, dict[str, Any]] = {
    "sales": {
        "priority_aging": {"every": 20, "step": 1, "cap": 4},
        "steps": [
            {"after": 0, "expression": "skills.sales >= 2"},
            {"after": 30, "expression": "skills.sales >= 1"},
        ],
    },
    "support": {
        "preferred_agent": {"last_agent": "customer", "wait": 40, "window": 600},
        "steps": [
            {"after": 0, "expression": "skills.support >= 2"},
            {"after": 20, "expression": "1 == 1"},
        ],
    },
    "callbacks": {
        "preferred_agent": {"last_agent": "customer", "wait": 0},
        "priority_aging": {"every": 60, "step": 2},
    },
}


def with_timed_queues(raw: dict[str, Any]) -> dict[str, Any]:
    """The deployment with `TIMED_KEYS` added to the queues it has."""
    queues = {
        name: {**queue, **TIMED_KEYS.get(name, {})} for name, queue in raw.get("queues", {}).items()
    }
    return {**raw, "queues": queues}


def contact_center_with_saboteur(timed: bool = False) -> Deployment:
    raw = with_flow(dict(read_mapping_file(CONTACT_CENTER)))
    raw["plugins"] = [*raw["plugins"], "saboteur"]
    if timed:
        raw = with_timed_queues(raw)
    return load_deployment(raw, name=str(CONTACT_CENTER) + (" with timed queues" if timed else ""))


def _without_timer_ids(plugin_state: dict[str, Any]) -> dict[str, Any]:
    """The core keeps the ids of a task's pending step and wait timers, to cancel them
    when it is accepted; like every timer id, they need only be unique (an undone event
    does not give its ids back), so they are left out, as the timers' own ids are."""
    core = plugin_state.get("core")
    if not core:
        return plugin_state
    kept = {key: value for key, value in core.items() if not key.endswith("_timer")}
    return {**plugin_state, "core": kept}


def deep_state(engine: Any) -> dict[str, Any]:
    """Everything an event can change, as plain values (no object identities, no version
    stamps or timer ids, which only need to be unique and increasing)."""
    from omniroute.core.undo import plain

    state = engine.state
    canceled = state.canceled_timers
    return {
        "now": state.now,
        "offers": [r.to_json() for r in state.offers],
        "tasks": {
            task.id: {
                **{
                    name: getattr(task, name)
                    for name in (
                        "channel",
                        "state",
                        "reason",
                        "message",
                        "queue",
                        "filter_index",
                        "target_index",
                        "target_entered_at",
                        "target_expired",
                        "queued_at",
                        "wait_seq",
                        "agent",
                        "offered_at",
                        "held_until",
                        "hold_reason",
                        "transferred",
                        "priority",
                        "seq",
                    )
                },
                "reservation": task.reservation.id if task.reservation else None,
                "transfer": task.transfer.to_json() if task.transfer else None,
                "declined_by": list(task.declined_by),
                "history": list(task.history),
                "plugin_state": _without_timer_ids(plain(task.plugin_state)),
            }
            for task in state.tasks.values()
        },
        "agents": [
            {
                "id": agent.id,
                "roster_index": agent.roster_index,
                "attributes": dict(agent.attributes),
                "capacity": dict(agent.capacity),
                "status": agent.status,
                "held": {ch: sorted(ids) for ch, ids in agent.held.items()},
                "assigned": {ch: sorted(ids) for ch, ids in agent.assigned.items()},
                "wrap_up": {ch: dict(sorted(ids.items())) for ch, ids in agent.wrap_up.items()},
                "times": (
                    agent.login_at,
                    agent.status_since,
                    agent.last_offer_at,
                    agent.last_accept_at,
                    agent.free_since,
                ),
                "plugin_state": plain(agent.plugin_state),
            }
            for agent in state.agents.values()
        ],
        "waiting": list(state.waiting),
        "plugin_state": plain(state.plugin_state),
        "timers": sorted(
            (at, owner or "", name, repr(payload))
            for at, timer_id, owner, name, payload in state.timers
            if timer_id not in canceled
        ),
        "counters": (state.task_sequence, state.wait_sequence, state.agent_sequence),
        "decisions": {task: len(records) for task, records in engine.decisions.items()},
        "last_attempt": sorted(engine.last_attempt),
    }
