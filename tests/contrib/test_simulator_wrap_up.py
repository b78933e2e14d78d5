"""The simulator models wrap-up: the agent stays busy after each task until the
deployment's wrap_up ends, or sooner when the workload's own wrap-up time says the agent
ended it; occupancy and busy agents count that time."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from omniroute.contrib.simulator import simulate
from omniroute.contrib.workload import load_workload
from omniroute.core import DeploymentError


def workload(wrap_up: float | None, *, deployment_wrap_up: float = 60) -> dict[str, Any]:
    traffic: dict[str, Any] = {
        "channel": "voice",
        "rate": "20/h",
        "handle_time": {"constant": 100},
    }
    if wrap_up is not None:
        traffic["wrap_up"] = {"constant": wrap_up}
    return {
        "deployment": {
            "channels": {"voice": {"wrap_up": deployment_wrap_up}},
            "queues": {"support": {}},
        },
        "seed": 3,
        "duration": "4h",
        "agents": [{"id": "ana", "channels": {"voice": 1}}],
        "traffic": [traffic],
    }


@pytest.mark.parametrize(("drawn", "lasts"), [(None, 60.0), (25.0, 25.0), (90.0, 60.0)])
def test_the_agent_stays_busy_through_its_wrap_up(drawn: float | None, lasts: float) -> None:
    result = simulate(load_workload(workload(drawn)))
    answered = [i for i in result.interactions if i.end is not None]
    assert len(answered) > 40
    for interaction in answered:
        assert interaction.wrap_end is not None
        assert interaction.wrap_end - interaction.end == pytest.approx(lasts)
    # one agent with capacity 1: no two spans overlap, so occupancy is their sum
    spans = sum(
        min(i.wrap_end or result.horizon, result.horizon) - i.first_offer
        for i in result.interactions
        if i.first_offer is not None
    )
    assert result.figures()["occupancy"] == pytest.approx(spans / result.horizon)
    # the next call waits for the wrap-up: no offer inside another's wrap-up
    offers = sorted((i.first_offer, i.wrap_end) for i in answered if i.first_offer is not None)
    for (_, wrap_end), (next_offer, _) in itertools.pairwise(offers):
        assert next_offer >= wrap_end - 1e-9


def test_wrap_up_raises_occupancy_by_its_share() -> None:
    without = simulate(load_workload(workload(None, deployment_wrap_up=0))).figures()
    with_wrap_up = simulate(load_workload(workload(None))).figures()
    assert with_wrap_up["occupancy"] > without["occupancy"] * 1.3


def test_a_wrap_up_time_the_deployment_never_uses_is_refused() -> None:
    with pytest.raises(DeploymentError) as raised:
        load_workload(workload(20.0, deployment_wrap_up=0))
    assert "traffic[0].wrap_up" in str(raised.value)
    bad = workload(None)
    bad["traffic"][0]["wrap_up"] = {"exponential": "-5s"}
    with pytest.raises(DeploymentError) as raised:
        load_workload(bad)
    assert "traffic[0].wrap_up" in str(raised.value)
