"""Wrap-up, offer policy and callbacks in the engine: configuration with key paths, the
edges of each feature, and what explanations say (docs/wrap-up.md, docs/offer-policy.md,
docs/callbacks.md)."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.core import (
    DeploymentError,
    Engine,
    EngineOptions,
    EventError,
    events,
    load_deployment,
)


def deployment(**extra: Any) -> Any:
    raw: dict[str, Any] = {
        "channels": {
            "voice": {"wrap_up": 30, "offer": {"timeout": 20, "on_timeout": "not_ready"}},
            "chat": {"offer": {"auto_answer": "worker.auto == true"}},
            "callback": {},
        },
        "queues": {"support": {}, "sales": {"wrap_up": "1m", "offer": {"timeout": 5}}},
    }
    raw.update(extra)
    return load_deployment(raw)


def engine(**options: Any) -> Engine:
    made = Engine(deployment(), options=EngineOptions(**options))
    made.add_agent("ana", {"voice": 1, "chat": 2, "callback": 1})
    return made


# --- configuration --------------------------------------------------------------------


def test_every_problem_of_the_new_keys_is_reported_at_once_with_its_key_path() -> None:
    with pytest.raises(DeploymentError) as raised:
        load_deployment(
            {
                "channels": {
                    "voice": {"wrap_up": "soon", "offer": {"timeout": 0, "on_timeout": "away"}},
                    "chat": {"offer": {"auto_answer": "worker.level >", "ring": 3}},
                },
                "queues": {"q": {"wrap_up": -1, "offer": {"auto_answer": 3}}},
            }
        )
    text = str(raised.value)
    for path in (
        "channels.voice.wrap_up:",
        "channels.voice.offer.timeout:",
        "channels.voice.offer.on_timeout: must be one of 'stay', 'not_ready', got 'away'",
        "channels.chat.offer.ring: unknown key",
        "channels.chat.offer.auto_answer:",
        "queues.q.wrap_up:",
        "queues.q.offer.auto_answer: expected true, false or an expression",
    ):
        assert path in text, (path, text)


def test_a_timeout_under_a_millisecond_and_an_expression_reading_workers_are_refused() -> None:
    with pytest.raises(DeploymentError) as raised:
        load_deployment(
            {
                "channels": {"voice": {"offer": {"timeout": 0.0001}}},
                "queues": {"q": {"offer": {"auto_answer": "workers.available > 1"}}},
            }
        )
    assert "channels.voice.offer.timeout: must be at least 0.001 s" in str(raised.value)
    assert "queues.q.offer.auto_answer: may only read task and worker" in str(raised.value)


def test_an_auto_answer_of_another_kind_is_an_error_even_when_the_rest_is_right() -> None:
    with pytest.raises(DeploymentError) as raised:
        load_deployment({"queues": {"q": {"offer": {"auto_answer": [True]}}}})
    assert str(raised.value).splitlines()[1:] == [
        "  queues.q.offer.auto_answer: expected true, false or an expression over task and worker"
    ]


def test_check_warns_of_queue_offer_keys_that_never_apply() -> None:
    found = load_deployment(
        {
            "channels": {"voice": {"offer": {"auto_answer": True, "timeout": 5}}},
            "queues": {"q": {"offer": {"auto_answer": True, "on_timeout": "not_ready"}}},
        }
    ).warnings
    assert [(problem.path, problem.severity) for problem in found] == [
        ("queues.q.offer.on_timeout", "warning")
    ]
    assert "never applies: auto_answer is true here" in found[0].message


def test_a_deployment_without_the_new_keys_makes_offers_as_before() -> None:
    plain = Engine(load_deployment({}), options=EngineOptions(reservation_timeout=7))
    plain.add_agent("ana", {"chat": 1})
    task = plain.create_task("c1", "chat")
    assert task.reservation is not None
    assert task.reservation.expires_at == 7
    assert [what for _, what in task.history] == ["created", "offered to ana"]


# --- wrap-up ------------------------------------------------------------------------------


def test_a_cancel_while_assigned_wraps_up_and_other_endings_do_not() -> None:
    run = engine(auto_accept=True)
    run.create_task("v1", "voice", queue="support")
    run.cancel("v1", "hung_up")
    assert run.agent("ana").wrap_up == {"voice": {"v1": 30.0}}
    run.end_wrap_up("ana")
    run.set_status("ana", "not_ready")
    run.create_task("v2", "voice", queue="support")
    run.cancel("v2")  # queued: nobody handled it
    run.set_status("ana", "ready")
    run.create_task("v3", "voice", queue="support")
    run.transfer("v3", to_queue="sales")
    assert run.agent("ana").wrap_up == {}


def test_not_ready_keeps_a_wrap_up_and_removing_the_agent_ends_it() -> None:
    run = engine(auto_accept=True)
    run.create_task("v1", "voice", queue="sales")
    run.complete("v1")
    run.set_status("ana", "not_ready")
    assert run.agent("ana").wrap_up == {"voice": {"v1": 60.0}}
    run.remove_agent("ana")
    assert "wrap-up by ana ended (logout)" in [what for _, what in run.task("v1").history]


def test_ending_a_wrap_up_names_what_is_wrong() -> None:
    run = engine(auto_accept=True)
    run.create_task("v1", "voice", queue="support")
    run.complete("v1")
    with pytest.raises(EventError, match=r"not wrapping up task .v9. \(it is wrapping up v1\)"):
        run.end_wrap_up("ana", "v9")
    with pytest.raises(EventError, match="unknown agent 'ghost'"):
        run.end_wrap_up("ghost")
    assert run.agent("ana").wrap_up == {"voice": {"v1": 30.0}}


def test_a_wrap_up_outlives_a_new_deployment_and_ends_at_its_time() -> None:
    run = engine(auto_accept=True)
    run.create_task("v1", "voice", queue="support")
    run.complete("v1")
    run.replace_deployment(load_deployment({"channels": {"voice": {}, "chat": {}, "callback": {}}}))
    run.create_task("v2", "voice")
    assert run.task("v2").state == "queued"
    run.advance_to(30)
    assert run.task("v2").agent == "ana"
    assert run.agent("ana").wrap_up == {}


def test_explanations_say_an_agent_is_wrapping_up() -> None:
    run = engine(auto_accept=True)
    run.create_task("v1", "voice", queue="support")
    run.complete("v1")
    run.create_task("v2", "voice", queue="support")
    decision = run.decisions_for("v2")[-1]
    (candidate,) = decision.candidates
    assert candidate.reason == "no room on voice (1 of 1 held, 1 in wrap-up until 30 s)"


def test_a_state_saved_before_wrap_ups_existed_still_loads() -> None:
    run = engine(auto_accept=True)
    data = run.save()
    for agent in data["agents"]:
        del agent["wrap_up"]
    restored = Engine.restore(deployment(), data)
    assert restored.agent("ana").wrap_up == {}


# --- offer policy -----------------------------------------------------------------------


def test_the_platforms_timeout_is_a_missed_offer_and_a_decline_is_not() -> None:
    run = engine()
    run.add_agent("bo", {"voice": 1})
    run.create_task("v1", "voice", queue="support")
    run.decline("v1")  # ana answered: she stays ready (and is offered it again)
    assert run.agent("ana").status == "ready"
    assert run.task("v1").agent == "ana"
    run.timeout("v1")  # the platform says she missed it this time
    assert run.agent("ana").status == "not_ready"
    assert run.task("v1").agent == "bo"


def test_auto_answer_by_expression_and_engine_auto_accept_wins() -> None:
    run = engine()
    run.set_agent("ana", {"auto": True})
    assert run.create_task("c1", "chat", queue="support").state == "assigned"
    assert "auto-answered (channels.chat.offer.auto_answer)" in [
        what for _, what in run.task("c1").history
    ]
    accepting = engine(auto_accept=True)
    assert accepting.create_task("v1", "voice", queue="sales").state == "assigned"
    assert accepting.task("v1").reservation is not None
    assert accepting.task("v1").reservation.expires_at is None


def test_the_queue_wins_over_the_channel_key_by_key() -> None:
    run = engine(reservation_timeout=99)
    assert run.create_task("v1", "voice", queue="sales").reservation.expires_at == 5  # type: ignore[union-attr]
    run.advance_to(5)
    assert run.agent("ana").status == "not_ready"  # the channel's on_timeout
    run.set_status("ana", "ready")
    run.create_task("e1", "callback", queue="support")
    assert run.task("e1").reservation.expires_at == 5 + 99  # type: ignore[union-attr]


# --- callbacks ------------------------------------------------------------------------------


def test_a_conversion_keeps_queue_time_and_moves_queue_without_the_workflow() -> None:
    run = engine()
    run.set_status("ana", "not_ready")
    run.create_task("v1", "voice", queue="support")
    run.advance_to(40)
    outcome = run.apply(events.ConvertToCallback(task="v1", channel="callback", queue="sales"))
    task = run.task("v1")
    assert (task.channel, task.queue, task.queued_at, task.created_at) == (
        "callback",
        "sales",
        0,
        0,
    )
    assert [changed.id for changed in outcome.tasks] == ["v1"]


def test_bad_conversions_change_nothing() -> None:
    run = engine()
    run.create_task("v1", "voice", queue="support")
    before = (run.task("v1").channel, run.task("v1").state, list(run.task("v1").history))
    for task, channel, queue, words in (
        ("v1", "fax", None, "unknown channel 'fax'"),
        ("v1", "voice", None, "already a task of channel 'voice'"),
        ("v1", "callback", "nowhere", "unknown queue 'nowhere'"),
        ("v9", "callback", None, "unknown task 'v9'"),
    ):
        with pytest.raises(EventError, match=words):
            run.convert_to_callback(task, channel, queue)
    assert (run.task("v1").channel, run.task("v1").state, list(run.task("v1").history)) == before
