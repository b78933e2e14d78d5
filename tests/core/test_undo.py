"""The undo log: a failing event changes nothing, with every built-in plugin at work.

Two engines take the same random events. One of them also takes, before some events, a
copy of the event that a plugin makes fail part way through (after the engine and other
plugins changed agents, tasks, timers and plugin state). After each failure its whole
state must be exactly what it was, and after each event both engines must agree on
everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.core import Engine, EngineOptions, EventError, PluginError, events
from omniroute.core.undo import RecordedDict, RecordedList, UndoLog, plain

from .saboteur import Saboteur, contact_center_with_saboteur, deep_state, registered

AGENTS = ("a0", "a1", "a2", "a3", "a4")
GROUPS = ("in_house", "bpo", "overflow")
CHANNELS = ("voice", "callback", "chat", "email", "messaging")


def roster(engine: Engine) -> None:
    for number, agent in enumerate(AGENTS):
        engine.add_agent(
            agent,
            {"voice": 1, "callback": 1, "chat": 1 + number % 3, "email": 2, "messaging": 2},
            {"skills": {"sales": number % 3, "support": (number + 1) % 3}},
            groups=(GROUPS[number % 3],),
        )


task_ref = st.integers(0, 30)
agent_ref = st.sampled_from(AGENTS)
operations = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(CHANNELS), st.sampled_from(["sales", "support"])),
    st.tuples(st.sampled_from(["accept", "decline", "timeout", "complete", "cancel"]), task_ref),
    st.tuples(st.just("accept_as"), task_ref, agent_ref),
    st.tuples(st.just("status"), agent_ref, st.sampled_from(["ready", "not_ready"])),
    st.tuples(st.sampled_from(["login", "logout", "remove"]), agent_ref),
    st.tuples(st.just("set"), agent_ref, st.integers(0, 3)),
    st.tuples(st.just("to_queue"), task_ref, st.sampled_from(["sales", "support", "callbacks"])),
    st.tuples(st.just("to_agent"), task_ref, agent_ref),
    st.tuples(st.just("advance"), st.sampled_from([0, 5, 20, 90, 700])),
    st.tuples(st.just("end_wrap_up"), agent_ref, st.none() | task_ref),
    # a task moved on a step (accepted, or completed and so wrapped up after), and the
    # first wrap-up under way ended: random ids alone rarely meet either
    st.tuples(st.just("progress"), task_ref),
    st.tuples(st.just("progress"), task_ref),
    st.tuples(st.just("progress"), task_ref),
    st.tuples(st.just("end_a_wrap_up"), st.booleans()),
    st.tuples(st.just("end_a_wrap_up"), st.booleans()),
    st.tuples(
        st.just("convert"), task_ref, st.sampled_from(CHANNELS), st.none() | st.just("callbacks")
    ),
)


def as_event(engine: Engine, op: tuple[Any, ...], created: int) -> events.Event:
    kind = op[0]
    task = f"t{op[1] % max(created, 1)}" if isinstance(op[1], int) and kind != "advance" else ""
    if kind == "progress":
        found = engine.state.tasks.get(task)
        if found is not None and found.state == "reserved":
            return events.Accept(task=task)
        return events.Complete(task=task)
    if kind == "end_a_wrap_up":
        wrapping = [
            (agent.id, task_id)
            for agent in engine.state.agents.values()
            for ids in agent.wrap_up.values()
            for task_id in ids
        ]
        if wrapping:
            agent_id, task_id = wrapping[0]
            return events.EndWrapUp(agent=agent_id, task=task_id if op[1] else None)
        return events.EndWrapUp(agent="a0")
    if kind == "end_wrap_up":
        wrapped = f"t{op[2] % max(created, 1)}" if op[2] is not None else None
        return events.EndWrapUp(agent=op[1], task=wrapped)
    match kind:
        case "create":
            return events.CreateTask(
                task=f"t{created}",
                channel=op[1],
                attributes={"type": op[2], "customer": f"c{created % 3}"},
            )
        case "accept":
            return events.Accept(task=task)
        case "decline":
            return events.Decline(task=task)
        case "timeout":
            return events.Timeout(task=task)
        case "complete":
            return events.Complete(task=task)
        case "cancel":
            return events.Cancel(task=task)
        case "accept_as":
            return events.Accept(task=task, agent=op[2])
        case "status":
            return events.SetStatus(agent=op[1], status=op[2])
        case "login":
            return events.Login(agent=op[1])
        case "logout":
            return events.Logout(agent=op[1])
        case "remove":
            return events.RemoveAgent(agent=op[1])
        case "set":
            return events.SetAgent(agent=op[1], channels={"chat": op[2]})
        case "to_queue":
            return events.Transfer(task=task, to_queue=op[2])
        case "to_agent":
            return events.Transfer(task=task, to_agent=op[2])
        case "convert":
            return events.ConvertToCallback(task=task, channel=op[2], queue=op[3])
    return events.AdvanceClock(to=engine.now + op[1])


def outcome(apply: Callable[[], Any]) -> str:
    try:
        apply()
    except EventError as error:
        return f"refused: {error}"
    return "ok"


@pytest.fixture(scope="module")
def saboteur() -> Iterator[Saboteur]:
    with registered() as plugin:
        yield plugin


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.tuples(operations, st.none() | st.integers(1, 6)), max_size=40),
    record=st.booleans(),
    timed=st.booleans(),
)
def test_a_failing_event_changes_nothing(
    saboteur: Saboteur,
    steps: list[tuple[tuple[Any, ...], int | None]],
    record: bool,
    timed: bool,
) -> None:
    """`timed`: the queues also age priorities, widen proficiency steps and wait for
    last agents (issue 11), whose state and timers must be undone too."""
    deployment = contact_center_with_saboteur(timed)
    options = EngineOptions(reservation_timeout=30, record_decisions=record)
    sabotaged, plain_run = Engine(deployment, options=options), Engine(deployment, options=options)
    roster(sabotaged)
    roster(plain_run)
    created = 0
    for op, fail_at in steps:
        event = as_event(plain_run, op, created)
        if fail_at is not None and not isinstance(event, events.AdvanceClock):
            before = deep_state(sabotaged)
            undo_entries = len(sabotaged._undo)
            try:
                with saboteur.failing_at(fail_at):
                    sabotaged.apply(event)
            except (PluginError, EventError):
                assert deep_state(sabotaged) == before
                assert len(sabotaged._undo) == undo_entries == 0
            else:
                # it did not call the saboteur often enough to fail: the other engine
                # takes the same event below
                assert outcome(lambda: plain_run.apply(event)) == "ok"  # noqa: B023
                assert deep_state(sabotaged) == deep_state(plain_run)
                created += isinstance(event, events.CreateTask)
                continue
        assert outcome(lambda: sabotaged.apply(event)) == outcome(  # noqa: B023
            lambda: plain_run.apply(event)  # noqa: B023
        )
        assert deep_state(sabotaged) == deep_state(plain_run)
        created += isinstance(event, events.CreateTask) and event.task in plain_run.state.tasks


def test_recorded_containers_undo_each_change() -> None:
    log = UndoLog()
    state = RecordedDict(log, {"kept": 1, "nested": {"list": [1, 2]}})
    original = plain(state)
    log.begin()
    state["kept"] = 2
    state["new"] = {"deep": [1]}
    state["new"]["deep"].append(2)
    state["nested"]["list"].extend([3, 4])
    state["nested"]["list"][0] = 9
    state["nested"]["list"].sort(reverse=True)
    del state["nested"]["list"][1]
    state["nested"].setdefault("other", []).append("x")
    state.update(more=1)
    state.pop("more")
    state.setdefault("x", 0)
    state |= {"y": 1}
    state["nested"]["list"] += [7]
    assert isinstance(state["new"], RecordedDict)
    assert isinstance(state["new"]["deep"], RecordedList)
    assert plain(state) != original
    log.rollback()
    assert plain(state) == original
    assert not log.active
    # outside an event nothing is recorded, and committing drops what was
    state["free"] = True
    log.begin()
    state.clear()
    log.commit()
    assert state == {}
    assert len(log) == 0


def test_recorded_containers_pickle_and_copy_as_plain_values() -> None:
    import copy
    import pickle

    log = UndoLog()
    state = RecordedDict(log, {"a": [1, {"b": 2}]})
    for clone in (copy.deepcopy(state), pickle.loads(pickle.dumps(state)), state.copy()):
        assert type(clone) is dict
        assert clone == {"a": [1, {"b": 2}]}
    other = UndoLog()
    moved = RecordedDict(other, {"from": state})
    assert moved["from"].log is other
