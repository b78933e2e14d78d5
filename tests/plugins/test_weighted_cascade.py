"""weighted_cascade: allocation accuracy over long runs, and config errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.core import DeploymentError, load_deployment
from omniroute.plugins.weighted_cascade import _allocate


@st.composite
def weights(draw: st.DrawFn) -> dict[str, float]:
    count = draw(st.integers(2, 6))
    cuts = sorted(
        draw(st.lists(st.integers(1, 99), min_size=count - 1, max_size=count - 1, unique=True))
    )
    bounds = [0, *cuts, 100]
    return {f"g{i}": float(bounds[i + 1] - bounds[i]) for i in range(count)}


@settings(max_examples=300, deadline=None)
@given(weights=weights(), rounds=st.integers(1, 400))
def test_every_group_holds_the_floor_or_ceiling_of_its_share_at_every_point(
    weights: dict[str, float], rounds: int
) -> None:
    state: dict[str, Any] = {}
    counts = dict.fromkeys(weights, 0)
    for n in range(1, rounds + 1):
        counts[_allocate(state, weights)] += 1
        for group, weight in weights.items():
            exact = n * weight / 100
            assert math.floor(exact + 1e-9) <= counts[group] <= math.ceil(exact - 1e-9), (
                group,
                n,
                counts,
            )


def test_seventy_thirty_in_order() -> None:
    state: dict[str, Any] = {}
    assert "".join(_allocate(state, {"a": 70, "b": 30}) for _ in range(10)) == "aabaabaaab"


def test_ties_go_to_the_group_listed_first() -> None:
    state: dict[str, Any] = {}
    assert [_allocate(state, {"b": 50, "a": 50}) for _ in range(4)] == ["b", "a", "b", "a"]


BASE: dict[str, Any] = {
    "plugins": ["weighted_cascade"],
    "channels": {"chat": {}},
    "queues": {"sales": {}},
}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"queues": {"sales": {"primary": {"a": 50, "b": 40}}}},
            "primary: percentages must sum to 100, not 90",
        ),
        (
            {"queues": {"sales": {"primary": {"a": 100}}}},
            "weighted_cascade.queues.sales: needs at least two agent groups in primary and "
            "secondary together, got 1",
        ),
        (
            {"queues": {"sales": {"primary": {"a": 50, "b": 50}, "secondary": {"c": 60}}}},
            "secondary: percentages must sum to 100, not 60",
        ),
        (
            {"queues": {"sales": {"primary": {"a": 50, "b": 50}, "secondary": {"a": 100}}}},
            "cannot be both primary and secondary",
        ),
        (
            {"queues": {"support": {"primary": {"a": 50, "b": 50}}}},
            "weighted_cascade.queues.support: unknown queue 'support'",
        ),
        (
            {"groups": ["a", "b"], "queues": {"sales": {"primary": {"a": 50, "x": 50}}}},
            "weighted_cascade.queues.sales.primary.x: unknown group 'x' (groups: a, b)",
        ),
        ({"queues": {"sales": {"primary": {"a": "half", "b": 50}}}}, "expected a number"),
    ],
)
def test_config_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment({**BASE, "weighted_cascade": section})
    assert message in str(caught.value)


def test_one_primary_group_cascading_to_one_secondary_group_is_accepted() -> None:
    """The seed's own Sales Spanish example: Agent Group A, then Agent Group B."""
    section = {"queues": {"sales": {"primary": {"a": 100}, "secondary": {"b": 100}}}}
    deployment = load_deployment({**BASE, "weighted_cascade": section})
    assert deployment.section("weighted_cascade").queues["sales"].primary == {"a": 100}
