"""Time-dependent queues (issue 11): priority aging, proficiency steps, preferred agents.

Routing behaviour is pinned by the scenarios in tests/scenarios/timed/ and
examples/{priority-aging,proficiency-steps,preferred-agent}/; these tests hold what
scenarios cannot state: configuration errors, which path routes such a queue, the
engine's own timers, the history of last agents, and saved state.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from omniroute.core import DeploymentError, Engine, EngineOptions, load_deployment
from omniroute.core.timed import needs_time_dependent_handling


def engine_for(queues: dict[str, Any], **options: Any) -> Engine:
    deployment = load_deployment({"channels": {"chat": {}}, "queues": queues})
    return Engine(deployment, options=EngineOptions(**{"auto_accept": True, **options}))


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(raw)
    return [f"{problem.path}: {problem.message}" for problem in caught.value.problems]


def test_every_problem_of_the_timed_keys_is_reported_at_once_with_its_key_path() -> None:
    found = problems_of(
        {
            "queues": {
                "a": {
                    "priority_aging": {"every": 0, "step": 0, "cap": "high"},
                    "preferred_agent": {"wait": -1, "attribute": " ", "window": 0},
                },
                "b": {
                    "steps": [
                        {"after": 10, "expression": "level >= 2"},
                        {"after": 5, "expression": "level >="},
                        {"after": 5, "expression": "workers.available > 0"},
                        {"expression": "1 == 1"},
                    ]
                },
            }
        }
    )
    wanted = [
        "queues.a.priority_aging.every: must be a positive duration",
        "queues.a.priority_aging.step: must be at least 1, got 0",
        "queues.a.priority_aging.cap: expected a whole number",
        "queues.a.preferred_agent.wait: a duration cannot be negative",
        "queues.a.preferred_agent.window: must be a positive duration",
        "queues.b.steps[3].after: required key is missing",
    ]
    for text in wanted:
        assert any(problem.startswith(text) for problem in found), (text, found)


def test_the_order_of_steps_and_their_expressions_are_checked_with_carets() -> None:
    found = problems_of(
        {
            "queues": {
                "b": {
                    "steps": [
                        {"after": 10, "expression": "level >= 2"},
                        {"after": 5, "expression": "level >="},
                        {"after": 5, "expression": "workers.available > 0"},
                    ],
                    "preferred_agent": {"last_agent": ""},
                }
            }
        }
    )
    joined = "\n".join(found)
    assert "queues.b.steps[0].after: the first step applies when the task enters" in joined
    assert "queues.b.steps[1].after: steps widen in order" in joined
    assert "queues.b.steps[2].after: steps widen in order" in joined
    assert "queues.b.steps[1].expression: expression ends too early" in joined
    assert "^" in joined  # the caret under the fault
    assert "queues.b.steps[2].expression: may only read task and worker" in joined
    assert "queues.b.preferred_agent.last_agent: must name a task attribute" in joined


def test_a_broken_queue_does_not_hide_the_timed_keys_of_another() -> None:
    found = problems_of(
        {
            "queues": {
                "broken": {"target_workers": 3},
                "sound": {"steps": [{"after": 5, "expression": "1 == 1"}]},
            }
        }
    )
    assert any(problem.startswith("queues.broken.target_workers") for problem in found)
    assert any(problem.startswith("queues.sound.steps[0].after") for problem in found)


def test_time_dependent_queues_are_routed_by_the_reference_scan() -> None:
    engine = engine_for(
        {
            "plain": {"target_workers": "level > 0"},
            "aging": {"target_workers": "level > 0", "priority_aging": {"every": 10}},
            "stepped": {"steps": [{"after": 0, "expression": "level > 1"}]},
            "preferring": {"preferred_agent": {"wait": 5}},
        },
        record_decisions=False,
    )
    queues = engine.deployment.queues
    assert [name for name in queues if needs_time_dependent_handling(queues[name])] == [
        "aging",
        "stepped",
        "preferring",
    ]
    assert engine.index is not None
    assert [name for name in queues if engine.index.indexed(name)] == ["plain"]
    assert not needs_time_dependent_handling(None)
    # aging priorities change while tasks wait: they are ordered on every pass, not
    # kept in a heap
    channel = engine.deployment.channels[0] if engine.deployment.channels else "voice"
    assert not engine.waiting.served(("plain", channel))
    plain = engine_for({"plain": {}}, record_decisions=False)
    assert plain.waiting.served(("plain", channel))


def test_the_engine_ends_a_wait_by_its_own_timer_and_cancels_timers_on_acceptance() -> None:
    engine = engine_for(
        {
            "q": {
                "preferred_agent": {"wait": 30},
                "steps": [
                    {"after": 0, "expression": "1 == 1"},
                    {"after": 60, "expression": "1 == 1"},
                ],
            }
        }
    )
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1}, status="not_ready")
    engine.create_task("c1", "chat", {"preferred_agent": "bo"})
    assert engine.task("c1").state == "queued"
    assert engine.next_timer_at() == 30
    engine.advance_to(30)
    assert engine.task("c1").agent == "ana"
    assert engine.next_timer_at() is None  # the step timer went with the acceptance
    assert (
        "the wait for its preferred agent bo is over" in what
        for _, what in engine.task("c1").history
    )


def test_an_agent_not_on_the_roster_or_offline_is_not_waited_for() -> None:
    engine = engine_for({"q": {"preferred_agent": {"wait": 30}}})
    engine.add_agent("ana", {"chat": 2})
    engine.add_agent("bo", {"chat": 1}, status="offline")
    engine.create_task("ghost", "chat", {"preferred_agent": "nobody"})
    engine.create_task("away", "chat", {"preferred_agent": "bo"})
    assert [offer.task for offer in engine.offers] == ["ghost", "away"]
    history = [what for _, what in engine.task("away").history]
    assert "its preferred agent bo is not logged in: no wait" in history


def test_a_last_agent_is_forgotten_after_the_window_and_old_history_is_dropped() -> None:
    engine = engine_for(
        {"q": {"preferred_agent": {"last_agent": "customer", "wait": 60, "window": 100}}}
    )
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("t1", "chat", {"customer": "C1"})
    first = engine.task("t1").agent
    other = "bo" if first == "ana" else "ana"
    engine.complete("t1")
    engine.advance_to(150)  # 150 s after: outside the 100 s window
    engine.set_status(first, "not_ready")
    engine.create_task("t2", "chat", {"customer": "C1"})
    assert engine.task("t2").agent == other  # no wait for a forgotten agent
    engine.complete("t2")
    history = engine.state.plugin_state["core"]["last_agent"]["customer"]
    assert sorted(history) == ["0", "1"]
    engine.advance_to(450)
    engine.create_task("t3", "chat", {"customer": 7})
    engine.complete("t3")
    # buckets of 100 s: the one of 450 s is kept with the one before it; older ones go
    assert sorted(history) == ["4"]
    assert history["4"] == {"i:7": [other, 450.0]}


def test_a_wait_survives_save_and_restore_and_ends_at_its_time() -> None:
    queues = {"q": {"preferred_agent": {"last_agent": "customer", "wait": 40}}}
    engine = engine_for(queues)
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("t1", "chat", {"customer": "C1"})
    served = engine.task("t1").agent
    engine.advance_to(10)
    engine.create_task("t2", "chat", {"customer": "C1"})  # waits for its busy last agent
    assert engine.task("t2").state == "queued"
    saved = json.loads(json.dumps(engine.save()))
    restored = Engine.restore(engine.deployment, saved)
    for running in (engine, restored):
        running.advance_to(49)
        assert running.task("t2").state == "queued"
        running.advance_to(50)
        assert running.task("t2").agent not in (None, served)
    assert restored.state.plugin_state["core"] == engine.state.plugin_state["core"]


def test_decisions_note_the_aged_priority_the_step_and_the_wait() -> None:
    engine = engine_for(
        {
            "q": {
                "priority_aging": {"every": 10, "step": 2, "cap": 5},
                "steps": [
                    {"after": 0, "expression": "level >= 3"},
                    {"after": 20, "expression": "level >= 1"},
                ],
                "preferred_agent": {"wait": 0},
            }
        }
    )
    engine.add_agent("ana", {"chat": 1}, {"level": 1})
    engine.create_task("c1", "chat", {"preferred_agent": "ana"}, priority=1)
    engine.advance_to(20)
    decision = engine.decisions_for("c1")[0]
    assert decision.winner == "ana"
    assert decision.notes == (
        "priority 5: 1 raised by 2 every 10 s of waiting, cap 5, after 20 s (queues.q.priority_aging)",
        "proficiency queues.q.steps[1] in force (level >= 1); the last step",
        "prefers its preferred agent ana (no wait left)",
    )
    assert decision.to_json()["notes"] == list(decision.notes)


def test_an_agent_no_step_admits_yet_is_excluded_with_the_time_of_the_next_step() -> None:
    engine = engine_for(
        {
            "q": {
                "steps": [
                    {"after": 0, "expression": "level >= 3"},
                    {"after": 20, "expression": "level >= 1"},
                ]
            }
        }
    )
    engine.add_agent("ana", {"chat": 1}, {"level": 1})
    engine.create_task("c1", "chat")
    attempt = engine.last_attempt["c1"]
    (candidate,) = attempt.candidates
    assert candidate.excluded_by == "step"
    assert (
        candidate.reason
        == "no step up to queues.q.steps[0] admits it (queues.q.steps[1] widens at 20 s)"
    )


def test_a_replaced_deployment_changes_the_steps_of_waiting_tasks_without_failing() -> None:
    three = [
        {"after": 0, "expression": "level >= 3"},
        {"after": 10, "expression": "level >= 2"},
        {"after": 20, "expression": "level >= 2"},
    ]
    engine = engine_for({"q": {"steps": three}, "plain": {}})
    engine.add_agent("ana", {"chat": 1}, {"level": 1})
    engine.create_task("stepped", "chat", queue="q")
    engine.create_task("plain", "chat", queue="plain")  # ana takes it
    engine.advance_to(25)  # "stepped" has reached steps[2]
    one = [{"after": 0, "expression": "level >= 2"}]
    engine.replace_deployment(
        load_deployment(
            {"channels": {"chat": {}}, "queues": {"q": {"steps": one}, "plain": {"steps": one}}}
        )
    )
    engine.complete("plain")
    assert engine.task("stepped").state == "queued"  # one step left, which ana fails
    (candidate,) = engine.last_attempt["stepped"].candidates
    assert candidate.reason == "no step up to queues.q.steps[0] admits it"
    assert engine.last_attempt["stepped"].notes == (
        "proficiency queues.q.steps[0] in force (level >= 2); the last step",
    )
    engine.set_agent("ana", {"level": 2})
    assert engine.task("stepped").agent == "ana"
