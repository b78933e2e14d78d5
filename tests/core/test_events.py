"""Events as values, reservations with ids, removing agents, and the single writer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from omniroute.core import (
    ConcurrentWriteError,
    Engine,
    EngineOptions,
    EventError,
    events,
    load_deployment,
)
from omniroute.core.events import EVENT_TYPES, from_json, to_json

from .saboteur import Saboteur, registered

EXAMPLES: list[events.Event] = [
    events.CreateTask(task="t1", channel="chat"),
    events.CreateTask(
        task="t2",
        channel="voice",
        attributes={"language": "es", "tags": ["vip"]},
        priority=3,
        queue="sales",
        profile="p",
    ),
    events.Accept(task="t1"),
    events.Accept(task="t1", agent="ana"),
    events.Decline(reservation="r2"),
    events.Timeout(task="t1", agent="bo", reservation="r1"),
    events.Complete(task="t1"),
    events.Cancel(task="t1", reason="abandoned"),
    events.Transfer(task="t1", to_queue="sales"),
    events.Transfer(task="t1", to_agent="ana"),
    events.Login(agent="ana"),
    events.Logout(agent="ana"),
    events.SetStatus(agent="ana", status="not_ready"),
    events.SetAgent(agent="ana", attributes={"level": 3, "old": None}, channels={"chat": 2}),
    events.AddAgent(agent="ana", channels={"chat": 2}),
    events.AddAgent(
        agent="bo", channels={"voice": 1}, attributes={"a": 1}, groups=("x",), status="offline"
    ),
    events.RemoveAgent(agent="ana"),
    events.ReplaceDeployment(deployment={"queues": {"support": {}}}),
    events.EndWrapUp(agent="ana"),
    events.EndWrapUp(agent="ana", task="t1"),
    events.ConvertToCallback(task="t1", channel="callback"),
    events.ConvertToCallback(task="t1", channel="callback", queue="callbacks"),
    events.AdvanceClock(to=12.5),
]


def test_every_event_type_has_an_example() -> None:
    assert {type(event) for event in EXAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: event.type)
def test_events_round_trip_through_json(event: events.Event) -> None:
    import json

    data = to_json(event)
    assert data["type"] == event.type
    assert from_json(json.loads(json.dumps(data))) == event


def test_defaults_are_left_out_of_the_json() -> None:
    assert to_json(events.CreateTask(task="t1", channel="chat")) == {
        "type": "create",
        "task": "t1",
        "channel": "chat",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "explode"}, "unknown event type 'explode'"),
        ({"task": "t1"}, "unknown event type None"),
        ([1, 2], "an event must be a mapping"),
        ({"type": "create", "task": "t1"}, "create.channel: required key is missing"),
        ({"type": "create", "task": "t1", "channel": 5}, "create.channel: expected text"),
        ({"type": "complete", "task": "t1", "agnet": "x"}, "complete.agnet: unknown key"),
        ({"type": "accept"}, "name the task or the reservation"),
        ({"type": "advance", "to": "soon"}, "advance.to: expected a number"),
    ],
)
def test_bad_event_json_is_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        from_json(data)


def engine(**options: Any) -> Engine:
    deployment = load_deployment({"channels": {"chat": {}}, "queues": {"support": {}}})
    return Engine(deployment, options=EngineOptions(**options))


def test_apply_says_what_the_event_did() -> None:
    live = engine(reservation_timeout=30)
    live.apply(events.AddAgent(agent="ana", channels={"chat": 1}))
    outcome = live.apply(events.CreateTask(task="c1", channel="chat"))
    (reservation,) = outcome.reservations
    assert (reservation.id, reservation.task, reservation.agent) == ("r1", "c1", "ana")
    assert (reservation.created_at, reservation.expires_at, reservation.state) == (0, 30, "pending")
    assert [task.id for task in outcome.tasks] == ["c1"]
    assert outcome.tasks[0].state == "reserved"
    assert live.apply(events.AdvanceClock(to=10)) == events.Outcome()
    outcome = live.apply(events.Accept(reservation="r1"))
    assert outcome.reservations == ()
    assert [(task.id, task.state) for task in outcome.tasks] == [("c1", "assigned")]
    assert reservation.state == "accepted"
    assert live.task("c1").reservation is reservation


def test_a_late_answer_is_refused_by_reservation_and_by_agent() -> None:
    live = engine(reservation_timeout=20)
    live.add_agent("ana", {"chat": 1})
    live.add_agent("bo", {"chat": 1}, status="not_ready")
    live.create_task("c1", "chat")
    live.set_status("bo", "ready")
    live.set_status("ana", "not_ready")  # ana loses her offer; the task goes to bo
    first, second = live.offers
    assert (first.agent, first.state, second.agent, second.state) == (
        "ana",
        "revoked",
        "bo",
        "pending",
    )
    with pytest.raises(EventError, match=r"reservation 'r1' .* it is revoked, not pending"):
        live.accept(reservation="r1")
    with pytest.raises(EventError, match=r"cannot accept task 'c1' as 'ana'.* 'r2' is for 'bo'"):
        live.accept("c1", agent="ana")
    with pytest.raises(EventError, match="it is for task 'c1', not 'c9'"):
        live.accept("c9", reservation="r2")
    with pytest.raises(EventError, match="it is for agent 'bo', not 'ana'"):
        live.accept(reservation="r2", agent="ana")
    with pytest.raises(EventError, match="unknown reservation 'r7'"):
        live.decline(reservation="r7")
    assert live.task("c1").state == "reserved"
    live.accept("c1", agent="bo")
    assert (live.task("c1").state, second.state) == ("assigned", "accepted")


def test_reservations_end_declined_revoked_or_accepted() -> None:
    live = engine()
    live.add_agent("ana", {"chat": 2})
    live.create_task("c1", "chat")
    live.create_task("c2", "chat")
    live.decline(reservation="r1")
    live.cancel("c2")
    assert [(r.id, r.state) for r in live.offers[:2]] == [("r1", "declined"), ("r2", "revoked")]
    live.logout("ana")
    assert live.offers[2].state == "revoked"  # c1 offered again, then ana left


def test_a_long_run_forgets_offers_and_ids_keep_counting() -> None:
    live = engine(auto_accept=True)
    live.add_agent("ana", {"chat": 5})
    live.create_task("c1", "chat")
    assert [r.id for r in live.forget_offers()] == ["r1"]
    live.create_task("c2", "chat")
    assert [r.id for r in live.offers] == ["r2"]
    with pytest.raises(EventError, match="'r1' is no longer kept"):
        live.reservation("r1")
    live.complete("c1")  # the task keeps its own reservation
    assert live.task("c1").state == "completed"


def test_remove_agent() -> None:
    live = engine(auto_accept=True, record_decisions=False)
    live.add_agent("ana", {"chat": 1})
    live.add_agent("bo", {"chat": 1})
    live.create_task("c1", "chat")
    with pytest.raises(EventError, match="cannot remove agent 'ana': it holds c1"):
        live.remove_agent("ana")
    live.remove_agent("bo")
    with pytest.raises(EventError, match="unknown agent 'bo'"):
        live.agent("bo")
    live.add_agent("cy", {"chat": 1})  # a later agent is still last in roster order
    assert live.agent("cy").roster_index == 2
    live.create_task("c2", "chat")
    assert [(r.task, r.agent) for r in live.offers] == [("c1", "ana"), ("c2", "cy")]
    live.complete("c1")
    live.remove_agent("ana")
    assert [agent.id for agent in live.agents] == ["cy"]


@pytest.fixture
def saboteur() -> Iterator[Saboteur]:
    with registered() as plugin:
        yield plugin


def test_a_second_writer_fails_loudly_and_changes_nothing(saboteur: Saboteur) -> None:
    deployment = load_deployment(
        {"plugins": ["saboteur"], "channels": {"chat": {}}, "queues": {"support": {}}}
    )
    live = Engine(deployment)
    live.add_agent("ana", {"chat": 1})
    saboteur.gate = threading.Event()
    first = threading.Thread(target=live.create_task, args=("c1", "chat"))
    first.start()
    try:
        assert saboteur.entered.wait(10)
        with pytest.raises(ConcurrentWriteError, match="one writer"):
            live.create_task("c2", "chat")
        with pytest.raises(ConcurrentWriteError):
            live.advance_to(5)
        with pytest.raises(ConcurrentWriteError):
            live.advance_to(5.0)  # a float with no timer due: the clock's own path
        with pytest.raises(ConcurrentWriteError):
            live.transactions.move_clock(5.0)
    finally:
        saboteur.gate.set()
        first.join(10)
    saboteur.gate = None
    assert [task.id for task in live.tasks] == ["c1"]
    live.create_task("c2", "chat")  # the engine is free again
    assert [task.id for task in live.tasks] == ["c1", "c2"]


def test_create_task_returns_a_task_rejected_on_arrival_when_closed_tasks_are_forgotten() -> None:
    # The simulator calls create_task directly; a task that closes within its own event
    # is gone from the state once the event ends, and the call still returns it.
    deployment = load_deployment(
        {
            "channels": {"chat": {}},
            "queues": {"sales": {}, "support": {}},
            "workflow": {
                "filters": [
                    {
                        "name": "es",
                        "expression": 'language == "es"',
                        "targets": [{"queue": "sales"}],
                    }
                ]
            },
        }
    )
    engine = Engine(deployment, options=EngineOptions(keep_closed_tasks=False))
    closed: list[str] = []
    engine.on_close = lambda task: closed.append(task.id)
    task = engine.create_task("t1", "chat", {"language": "en"})
    assert (task.id, task.state, task.reason) == ("t1", "rejected", "no_matching_filter")
    assert closed == ["t1"]
    assert "t1" not in engine.state.tasks
