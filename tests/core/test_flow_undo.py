"""Wrap-up, offer policy and callbacks under the undo log and saved states.

A scripted day of the contact center with wrap-ups, per-queue timeouts, missed offers
that make agents not ready, auto-answer and callbacks. Every event of it is first made to
fail at each plugin call it makes, in turn (the saboteur): each failure must leave the
whole state as it was. Then it applies, and must agree with an engine that never failed,
and with one restored from the saved state after every event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omniroute.core import Engine, EngineOptions, EventError, PluginError, events

from .saboteur import Saboteur, contact_center_with_saboteur, deep_state, registered
from .test_undo import roster

Step = Callable[[Engine], events.Event]


def reserved(engine: Engine) -> list[str]:
    return sorted(t.id for t in engine.tasks if t.state == "reserved")


def assigned(engine: Engine) -> list[str]:
    return sorted(t.id for t in engine.tasks if t.state == "assigned")


def wrapping(engine: Engine) -> list[tuple[str, str]]:
    return sorted(
        (agent.id, task)
        for agent in engine.agents
        for ids in agent.wrap_up.values()
        for task in ids
    )


def waiting_call(engine: Engine) -> str:
    return next(
        t.id for t in engine.tasks if t.state in ("queued", "reserved") and t.channel == "voice"
    )


def free_wrapping_agent(engine: Engine) -> str:
    """An agent wrapping up that holds no assigned task (so it may log out)."""
    return next(
        agent
        for agent, _task in wrapping(engine)
        if not engine.agent(agent).assigned.get("voice")
        and not any(engine.agent(agent).assigned.values())
    )


def transfer_to_an_agent(engine: Engine, channel: str | None = None) -> events.Event:
    """An assigned task (of `channel`, if given), transferred to the first agent that may
    take it: pending until the agent answers, unless its offers are auto-answered."""
    for task_id in assigned(engine):
        task = engine.task(task_id)
        if task.transfer is not None or channel not in (None, task.channel):
            continue
        for agent in engine.agents:
            if engine.transfers.refusal(task, agent) is None:
                return events.Transfer(task=task_id, to_agent=agent.id)
    raise AssertionError("no assigned task may be transferred to any agent")


def pending_transfer(engine: Engine) -> str:
    return next(t.id for t in engine.tasks if t.transfer is not None)


def script() -> list[Step]:
    steps: list[Step] = []
    for number, (channel, kind) in enumerate(
        [("voice", "sales"), ("voice", "support"), ("email", "sales"), ("chat", "sales")] * 2
    ):
        steps.append(
            lambda _e, n=number, c=channel, k=kind: events.CreateTask(
                task=f"t{n}", channel=c, attributes={"type": k}
            )
        )
    steps += [
        lambda e: events.Accept(task=reserved(e)[0]),
        lambda e: events.Accept(task=reserved(e)[0]),
        lambda e: events.Complete(task=assigned(e)[0]),  # a wrap-up begins
        lambda e: events.Complete(task=assigned(e)[0]),
        lambda e: events.ConvertToCallback(
            task=waiting_call(e),
            channel="callback",
        ),
        lambda e: events.ConvertToCallback(
            task=waiting_call(e),
            channel="callback",
            queue="callbacks",
        ),
        lambda e: events.EndWrapUp(agent=wrapping(e)[0][0], task=wrapping(e)[0][1]),
        # transfers pending acceptance while agents wrap up: the clock times them out
        # (on_timeout: not_ready revokes the recipients' other offers), or they are answered
        lambda e: events.Accept(task=next(t for t in reserved(e) if e.task(t).channel == "voice")),
        transfer_to_an_agent,  # the callback: auto-answered, it moves at once
        lambda e: transfer_to_an_agent(e, "voice"),  # times out below: recipient not ready
        lambda _e: events.AdvanceClock(to=25),  # offers time out: agents not ready
        lambda _e: events.SetStatus(agent="a0", status="ready"),
        lambda e: events.Timeout(task=reserved(e)[0]),
        lambda e: events.Complete(task=assigned(e)[0]),
        lambda _e: events.CreateTask(task="t8", channel="voice", attributes={"type": "x"}),
        lambda e: events.Accept(task=next(t for t in reserved(e) if e.task(t).channel == "voice")),
        lambda e: transfer_to_an_agent(e, "voice"),
        lambda e: events.Accept(task=pending_transfer(e)),  # it moves on acceptance
        lambda e: events.Complete(
            task=next(t for t in assigned(e) if e.task(t).channel == "voice")
        ),
        lambda e: events.Logout(agent=free_wrapping_agent(e)),  # ends its wrap-ups
        lambda _e: events.AdvanceClock(to=2000),  # the rest end at their time
    ]
    return steps


@pytest.fixture(scope="module")
def saboteur() -> Iterator[Saboteur]:
    with registered() as plugin:
        yield plugin


def through_json(engine: Engine) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(engine.save(), allow_nan=False))
    return data


@pytest.mark.parametrize("record", [True, False])
def test_every_step_undoes_at_every_failure_and_restores_exactly(
    saboteur: Saboteur, record: bool
) -> None:
    deployment = contact_center_with_saboteur()
    options = EngineOptions(reservation_timeout=30, record_decisions=record)
    sabotaged, plain_run = Engine(deployment, options=options), Engine(deployment, options=options)
    roster(sabotaged)
    roster(plain_run)
    seen: set[str] = set()
    for step in script():
        event = step(plain_run)
        seen.add(event.type)
        # The clock is not sabotaged: each timer is an event of its own, so a failing
        # timer keeps the ones fired before it (test_undo.py leaves it out too).
        for fail_at in range(1, 1 if isinstance(event, events.AdvanceClock) else 200):
            before = deep_state(sabotaged)
            try:
                with saboteur.failing_at(fail_at):
                    sabotaged.apply(event)
            except (PluginError, EventError):
                assert deep_state(sabotaged) == before, (event, fail_at)
                continue
            break
        else:
            sabotaged.apply(event)
        plain_run.apply(event)
        assert deep_state(sabotaged) == deep_state(plain_run), event
        restored = Engine.restore(deployment, through_json(plain_run))
        assert {**deep_state(restored), "decisions": {}, "last_attempt": []} == {
            **deep_state(plain_run),
            "decisions": {},
            "last_attempt": [],
        }
    assert {"end_wrap_up", "convert_to_callback", "timeout"} <= seen
    assert not wrapping(plain_run)


def test_the_script_meets_what_it_is_for(saboteur: Saboteur) -> None:
    """Wrap-ups begin, end early, end at logout and at their time; offers are missed."""
    engine = Engine(contact_center_with_saboteur(), options=EngineOptions(reservation_timeout=30))
    roster(engine)
    for step in script():
        engine.apply(step(engine))
    histories = [what for task in engine.tasks for _, what in task.history]
    for words in (
        "wrap-up by",
        "ended (ended by the agent)",
        "ended (logout)",
        "ended (its time is up)",
        "made not ready by the missed offer",
        "converted from voice to callback",
        "auto-answered",
        "timed_out; it stays with",  # a transfer to an agent, missed
        "transferred from",  # one accepted (after it rang, and one auto-answered)
    ):
        assert any(words in line for line in histories), words
