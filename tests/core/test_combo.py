"""Where transfers to an agent, lost availability, wrap-up and the offer policy meet
(issue 11's three branches combined): what each does to the others, and what the task's
history says about it (docs/offer-policy.md, docs/wrap-up.md)."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.core import Engine, EngineOptions, EventError, load_deployment


def make(channels: dict[str, Any], **options: Any) -> Engine:
    deployment = load_deployment({"channels": channels, "queues": {"support": {}}})
    options.setdefault("reservation_timeout", 60)
    return Engine(deployment, options=EngineOptions(**options))


def events_of(engine: Engine, task_id: str) -> list[str]:
    return [what for _, what in engine.task(task_id).history]


def test_a_missed_offer_that_makes_the_agent_not_ready_revokes_its_other_offers() -> None:
    """ana misses c1 (on_timeout: not_ready): her other ringing offer c3 is revoked, not
    missed, and the transfer of c2 to her is revoked; each history says so."""
    engine = make({"chat": {"offer": {"timeout": 20, "on_timeout": "not_ready"}}})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("c2", "chat")
    engine.accept("c2")
    engine.add_agent("ana", {"chat": 4})
    engine.advance_to(5)
    engine.create_task("c1", "chat")
    engine.advance_to(6)
    engine.create_task("c3", "chat")
    engine.advance_to(10)
    engine.transfer("c2", to_agent="ana")
    engine.advance_to(25)
    assert engine.agent("ana").status == "not_ready"
    assert engine.agent("ana").held_count() == 0
    assert events_of(engine, "c1")[-2:] == [
        "timed_out by ana",
        "ana made not ready by the missed offer (channels.chat.offer.on_timeout)",
    ]
    assert events_of(engine, "c3")[-1] == "offer to ana revoked (not ready)"
    assert engine.reservation("r3").state == "revoked"
    assert events_of(engine, "c2")[-1] == "transfer to ana revoked (not ready)"
    assert (engine.task("c2").state, engine.task("c2").agent) == ("assigned", "bo")


def test_a_transfer_to_an_agent_in_wrap_up_is_refused_for_the_wrap_up() -> None:
    """The wrap-up takes a unit of room (docs/wrap-up.md), so a transfer to an agent whose
    only unit wraps up is refused, and the refusal says it is the wrap-up."""
    engine = make({"voice": {"wrap_up": 30}})
    engine.add_agent("ana", {"voice": 1})
    engine.add_agent("bo", {"voice": 1}, status="not_ready")
    engine.create_task("v0", "voice")
    engine.accept("v0")
    engine.complete("v0")
    engine.set_status("bo", "ready")
    engine.create_task("v1", "voice")
    engine.accept("v1")
    with pytest.raises(
        EventError, match=r"no room on voice \(1 of 1 held, 1 in wrap-up until 30 s\)"
    ):
        engine.transfer("v1", to_agent="ana")
    assert engine.task("v1").transfer is None
    engine.end_wrap_up("ana")
    engine.transfer("v1", to_agent="ana")
    assert engine.task("v1").transfer is not None


def test_logout_during_a_wrap_up_with_a_transfer_pending_ends_both() -> None:
    """ana wraps up c1 and has c2's transfer ringing when she logs out: the transfer is
    revoked (c2 stays with bo), the wrap-up ends, and she holds nothing."""
    engine = make({"chat": {"wrap_up": 30}})
    engine.add_agent("ana", {"chat": 2})
    engine.add_agent("bo", {"chat": 1}, status="not_ready")
    engine.create_task("c1", "chat")
    engine.accept("c1")
    engine.complete("c1")  # ana wraps up until 30 s
    engine.set_status("ana", "not_ready")  # the wrap-up goes on
    engine.set_status("bo", "ready")
    engine.create_task("c2", "chat")
    engine.accept("c2")
    engine.set_status("ana", "ready")
    engine.transfer("c2", to_agent="ana")  # one unit wraps up, the other rings
    ana = engine.agent("ana")
    assert (ana.held_count("chat"), ana.has_room("chat")) == (2, False)
    engine.logout("ana")
    assert (ana.status, ana.held_count(), ana.wrap_up) == ("offline", 0, {})
    assert (engine.task("c2").state, engine.task("c2").agent) == ("assigned", "bo")
    assert events_of(engine, "c2")[-1] == "transfer to ana revoked (logged out)"
    assert events_of(engine, "c1")[-1] == "wrap-up by ana ended (logout)"
