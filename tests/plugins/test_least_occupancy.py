"""least_occupancy: the decliner comes last, reroute holds, and config errors."""

from __future__ import annotations

import pytest

from omniroute.core import DeploymentError, Engine, EngineOptions, load_deployment

DEPLOYMENT = {
    "plugins": ["least_occupancy"],
    "channels": {"chat": {}},
    "queues": {"support": {}},
    "least_occupancy": {"reroute_delay": "10s"},
}


def test_the_decliner_is_offered_the_task_again_only_when_nobody_else_has_room() -> None:
    engine = Engine(load_deployment(DEPLOYMENT), options=EngineOptions(auto_accept=False))
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("c1", "chat")
    assert engine.task("c1").agent == "ana"
    engine.decline("c1")
    assert engine.task("c1").hold_reason == "reroute_delay"
    engine.advance_to(10)
    assert engine.task("c1").agent == "bo"  # ana declined it; bo has room
    (decision,) = engine.decisions_for("c1")[-1:]
    assert [(c.agent, c.excluded_by, c.reason) for c in decision.candidates if not c.eligible] == [
        (
            "ana",
            "least_occupancy.not_declined",
            "ana declined it and another eligible agent has room",
        )
    ]
    engine.decline("c1")  # now both declined it: neither is set aside
    engine.advance_to(20)
    assert engine.task("c1").agent == "ana"


def test_the_decliner_gets_it_when_it_is_the_only_one_with_room() -> None:
    engine = Engine(load_deployment(DEPLOYMENT), options=EngineOptions(auto_accept=False))
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1}, status="not_ready")
    engine.create_task("c1", "chat")
    engine.decline("c1")
    engine.advance_to(9)
    assert engine.task("c1").state == "queued"
    engine.advance_to(10)
    assert engine.task("c1").agent == "ana"


def test_a_zero_delay_reroutes_at_once() -> None:
    deployment = load_deployment({**DEPLOYMENT, "least_occupancy": {"reroute_delay": 0}})
    engine = Engine(deployment, options=EngineOptions(auto_accept=False))
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.create_task("c1", "chat")
    engine.timeout("c1")
    assert engine.task("c1").agent == "bo"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"max_concurrent": {"billing": 2}},
            "least_occupancy.max_concurrent.billing: unknown queue 'billing'",
        ),
        ({"max_concurrent": {"support": 0}}, "max_concurrent.support: must be at least 1"),
        ({"reroute_delay": "soon"}, "least_occupancy.reroute_delay: expected a duration"),
        ({"reroute": 5}, "least_occupancy.reroute: unknown key; did you mean 'reroute_delay'?"),
    ],
)
def test_config_errors(section: dict[str, object], message: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment({**DEPLOYMENT, "least_occupancy": section})
    assert message in str(caught.value)
