"""Saved state: an engine restored from `save()` continues exactly where it stopped.

Random event streams over every built-in plugin, saved (through JSON text) and restored
at random points; after each later event the restored engine and the one that never
stopped must agree on everything: offers, tasks, agents, waiting order, timers and
plugin state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.core import (
    DeploymentError,
    Engine,
    EngineOptions,
    EventError,
    PluginError,
    events,
    load_deployment,
)

from .saboteur import Saboteur, contact_center_with_saboteur, deep_state, registered
from .test_undo import as_event, operations, outcome, roster


@pytest.fixture(scope="module")
def saboteur() -> Iterator[Saboteur]:
    with registered() as plugin:
        yield plugin


def through_json(engine: Engine) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(engine.save(), allow_nan=False))
    return data


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(operations, max_size=40),
    saves=st.sets(st.integers(0, 40), max_size=3),
    record=st.booleans(),
    indexed=st.booleans(),
    timed=st.booleans(),
)
def test_a_restored_engine_continues_exactly(
    saboteur: Saboteur,
    steps: list[tuple[Any, ...]],
    saves: set[int],
    record: bool,
    indexed: bool,
    timed: bool,
) -> None:
    """`timed`: with issue 11's time-dependent queues (steps, waits and the history of
    last agents are saved and restored)."""
    deployment = contact_center_with_saboteur(timed)
    options = EngineOptions(reservation_timeout=30, record_decisions=record, indexed=indexed)
    running, restored = Engine(deployment, options=options), Engine(deployment, options=options)
    roster(running)
    roster(restored)
    created = 0
    for number, op in enumerate(steps):
        if number in saves:
            restored = Engine.restore(deployment, through_json(restored))
            state = deep_state(running)
            assert deep_state(restored) == {**state, "decisions": {}, "last_attempt": []}
        event = as_event(running, op, created)
        assert outcome(lambda: restored.apply(event)) == outcome(  # noqa: B023
            lambda: running.apply(event)  # noqa: B023
        )
        mine, theirs = deep_state(restored), deep_state(running)
        assert {**mine, "decisions": {}, "last_attempt": []} == {
            **theirs,
            "decisions": {},
            "last_attempt": [],
        }
        created += isinstance(event, events.CreateTask) and event.task in running.state.tasks


def test_save_is_plain_json_and_keeps_options_start_and_timers() -> None:
    deployment = load_deployment({"channels": {"chat": {}}, "queues": {"support": {}}})
    engine = Engine(deployment, options=EngineOptions(reservation_timeout=20))
    engine.add_agent("ana", {"chat": 1})
    engine.create_task("c1", "chat")
    data = through_json(engine)
    assert data["format"] == "omniroute.engine-state/1"
    assert data["options"]["reservation_timeout"] == 20
    assert [timer[3] for timer in data["timers"]] == ["reservation_timeout"]
    again = Engine.restore(deployment, data)
    assert again.start == engine.start
    assert again.reservation("r1").state == "pending"
    assert again.task("c1").reservation is again.reservation("r1")
    again.advance_to(25)  # the saved timer fires in the restored engine
    assert [(r.id, r.state) for r in again.offers] == [("r1", "timed_out"), ("r2", "pending")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "something else"}, "not a saved engine state"),
        ([1, 2], "not a saved engine state"),
        (
            {"format": "omniroute.engine-state/1", "start": "2026-01-05T09:00:00+00:00"},
            "cannot be read",
        ),
    ],
)
def test_a_bad_saved_state_is_a_clear_error(data: Any, message: str) -> None:
    deployment = load_deployment({"queues": {"support": {}}})
    with pytest.raises(EventError, match=message):
        Engine.restore(
            deployment,
            {"options": {}, "start": "2026-01-05T09:00:00+00:00", **data}
            if isinstance(data, dict)
            else data,
        )


def test_replace_deployment_moves_waiting_tasks_of_removed_queues() -> None:
    first = load_deployment(
        {
            "channels": {"chat": {}},
            "queues": {"sales": {}, "support": {}, "vip": {}},
            "workflow": {
                "filters": [
                    {"expression": 'type == "vip"', "targets": [{"queue": "vip"}]},
                    {
                        "expression": 'type == "sales"',
                        "targets": [{"queue": "sales", "timeout": 60}],
                    },
                ],
                "default_queue": "support",
            },
        }
    )
    engine = Engine(first, options=EngineOptions(record_decisions=False))
    engine.add_agent("ana", {"chat": 1}, status="not_ready")
    engine.create_task("s1", "chat", {"type": "sales"})
    engine.create_task("v1", "chat", {"type": "vip"})
    engine.create_task("o1", "chat", {"type": "other"})
    second = load_deployment(
        {
            "channels": {"chat": {}},
            "queues": {"support": {}, "sales": {"target_workers": "level > 2"}},
            "workflow": {"filters": [], "default_queue": "support"},
        }
    )
    engine.apply(events.ReplaceDeployment(deployment=second.raw))
    assert engine.deployment.queues.keys() == {"support", "sales"}
    states = {task.id: (task.state, task.queue, task.filter_index) for task in engine.tasks}
    assert states == {
        "s1": ("queued", "sales", None),  # its workflow target is gone: it waits on in sales
        "v1": ("queued", "support", None),  # its queue is gone: the default queue
        "o1": ("queued", "support", None),
    }
    engine.advance_to(120)  # the old target timeout finds nothing to do
    assert engine.task("s1").state == "queued"
    engine.set_status("ana", "ready")
    assert [r.task for r in engine.offers] == ["v1"]


def test_replace_deployment_without_a_default_queue_cancels_and_is_atomic() -> None:
    first = load_deployment({"channels": {"chat": {}}, "queues": {"a": {}, "b": {}}})
    engine = Engine(first, options=EngineOptions(auto_accept=False))
    engine.add_agent("ana", {"chat": 1})
    engine.create_task("t1", "chat", queue="a")
    engine.create_task("t2", "chat", queue="a")
    engine.create_task("t3", "chat", queue="b")
    assert engine.task("t1").state == "reserved"
    engine.replace_deployment(load_deployment({"channels": {"chat": {}}, "queues": {"b": {}}}))
    states = {task.id: (task.state, task.reason) for task in engine.tasks}
    assert states == {
        "t1": ("canceled", "queue_removed"),
        "t2": ("canceled", "queue_removed"),
        "t3": ("reserved", None),
    }
    assert engine.reservation("r1").state == "revoked"
    with pytest.raises(DeploymentError, match="is never closed"):
        engine.apply(
            events.ReplaceDeployment(deployment={"queues": {"b": {"target_workers": "("}}})
        )
    assert engine.deployment.queues.keys() == {"b"}
    assert engine.task("t3").state == "reserved"


def test_a_replacement_that_fails_part_way_changes_nothing(saboteur: Saboteur) -> None:
    old = load_deployment({"channels": {"chat": {}}, "queues": {"a": {}, "b": {}}})
    engine = Engine(old)
    engine.add_agent("ana", {"chat": 1}, status="not_ready")
    engine.create_task("t1", "chat", queue="a")
    before = deep_state(engine)
    new = load_deployment({"plugins": ["saboteur"], "channels": {"chat": {}}, "queues": {"b": {}}})
    with saboteur.failing_at(1), pytest.raises(PluginError, match="saboteur"):
        engine.replace_deployment(new)  # the cancel of t1 reaches the saboteur
    assert engine.deployment is old
    assert deep_state(engine) == before
    engine.set_status("ana", "ready")
    assert [r.task for r in engine.offers] == ["t1"]


def test_a_pending_transfer_survives_save_and_restore() -> None:
    """The recipient's reservation is saved with the task and is the same object as the
    one in `offers`; once restored it times out and the task stays with its sender."""
    deployment = load_deployment({"channels": {"chat": {}}})
    engine = Engine(deployment, options=EngineOptions(reservation_timeout=30))
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("c1", "chat")
    engine.accept("c1")
    engine.transfer("c1", to_agent="bo")
    restored = Engine.restore(deployment, json.loads(json.dumps(engine.save())))
    task = restored.task("c1")
    assert (task.state, task.agent) == ("assigned", "ana")
    assert task.transfer is restored.offers[-1]
    assert (task.transfer.agent, task.transfer.state) == ("bo", "pending")
    restored.advance_to(40)
    assert (task.state, task.agent, task.transfer) == ("assigned", "ana", None)
    assert restored.offers[-1].state == "timed_out"
    assert restored.agent("bo").held_count() == 0
