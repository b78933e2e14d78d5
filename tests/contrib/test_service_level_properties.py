"""Properties of the simulator's service levels: for any thresholds and targets, each
queue's figure (and the overall one, and each interval's) is the count a person would make
from the simulated waits: answered within the task's own queue's threshold, over answered
plus abandoned; met exactly when it reaches the target."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from omniroute.contrib.intervals import interval_figures
from omniroute.contrib.service_levels import objectives
from omniroute.contrib.simulator import Interaction, SimulationResult, simulate
from omniroute.contrib.workload import load_workload
from omniroute.core import DEFAULT_START, load_deployment

QUEUES = ("a", "b", "c")

thresholds = st.floats(min_value=0.001, max_value=900, allow_nan=False, allow_infinity=False)
targets = st.floats(min_value=0.01, max_value=1.0, allow_nan=False, allow_infinity=False)
levels = st.one_of(st.none(), st.tuples(thresholds, targets))

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


def workload(declared: dict[str, tuple[float, float] | None], seed: int, agents: int) -> Any:
    queues: dict[str, Any] = {}
    for name in QUEUES:
        level = declared[name]
        queues[name] = (
            {} if level is None else {"service_level": {"threshold": level[0], "target": level[1]}}
        )
    return load_workload(
        {
            "deployment": {"channels": {"voice": {}}, "queues": queues},
            "seed": seed,
            "duration": "40m",
            "agents": [{"count": agents, "id": "a{n}", "channels": {"voice": 1}}],
            "traffic": [
                {
                    "channel": "voice",
                    "queue": name,
                    "rate": "45/h",
                    "handle_time": {"exponential": "3m"},
                    "patience": {"exponential": "2m"},
                }
                for name in QUEUES
            ],
        }
    )


def hand_count(interactions: list[Interaction], threshold_of: dict[str, float]) -> float | None:
    """Answered within the interaction's queue's threshold, over answered plus abandoned."""
    within = answered = abandoned = 0
    for interaction in interactions:
        if interaction.first_offer is not None:
            answered += 1
            wait = interaction.first_offer - interaction.arrival
            within += wait <= threshold_of[str(interaction.queue)]
        elif interaction.reason == "abandoned":
            abandoned += 1
    offered = answered + abandoned
    return within / offered if offered else None


def close(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is right
    return abs(left - right) <= 1e-12


INTERVAL = 600.0  # four intervals of the 40 minutes


def check_figures(
    result: SimulationResult, threshold_of: dict[str, float], target_of: dict[str, float]
) -> None:
    figures = result.figures()
    everything = list(result.interactions)
    assert close(figures["service_level"], hand_count(everything, threshold_of))
    for queue, values in figures["by_queue"].items():
        mine = [i for i in everything if i.queue == queue]
        level = hand_count(mine, threshold_of)
        assert close(values["service_level"], level), queue
        assert values["service_level_threshold"] == threshold_of[queue]
        assert values["service_level_target"] == target_of[queue]
        expected = None if level is None else level >= target_of[queue] - 1e-12
        assert values["service_level_met"] is expected
    entries = interval_figures(result, DEFAULT_START, INTERVAL, 0)
    assert len(entries) == 4
    for index, entry in enumerate(entries):
        bucket = [i for i in everything if min(int(i.arrival // INTERVAL), 3) == index]
        assert close(entry["service_level"], hand_count(bucket, threshold_of))
        for queue, values in entry["by_queue"].items():
            mine = [i for i in bucket if i.queue == queue]
            assert close(values["service_level"], hand_count(mine, threshold_of))


@SETTINGS
@given(
    declared=st.fixed_dictionaries(dict.fromkeys(QUEUES, levels)),
    fallback=thresholds,
    seed=st.integers(min_value=0, max_value=10_000),
    agents=st.integers(min_value=1, max_value=4),
)
def test_each_queue_s_figure_is_the_hand_count_from_the_waits(
    declared: dict[str, tuple[float, float] | None], fallback: float, seed: int, agents: int
) -> None:
    loaded = attrs.evolve(workload(declared, seed, agents), service_level_threshold=fallback)
    result = simulate(loaded)
    threshold_of = dict.fromkeys(QUEUES, fallback)
    target_of = dict.fromkeys(QUEUES, 0.8)
    for queue, level in declared.items():
        if level is not None:
            threshold_of[queue], target_of[queue] = level
    check_figures(result, threshold_of, target_of)


@SETTINGS
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    picks=st.lists(st.integers(min_value=0, max_value=10**6), min_size=3, max_size=3),
    target=targets,
)
def test_a_wait_equal_to_the_threshold_is_in_time(
    seed: int, picks: list[int], target: float
) -> None:
    """Thresholds drawn from the waits themselves: the boundary, where `<=` and `<` differ."""
    result = simulate(workload(dict.fromkeys(QUEUES), seed, 2))
    waits = {
        q: sorted({i.wait for i in result.interactions if i.queue == q and i.wait and i.wait > 0})
        for q in QUEUES
    }
    assume(all(waits.values()))
    threshold_of = {
        q: waits[q][pick % len(waits[q])] for q, pick in zip(QUEUES, picks, strict=True)
    }
    deployment = load_deployment(
        {
            "channels": {"voice": {}},
            "queues": {
                q: {"service_level": {"threshold": threshold_of[q], "target": target}}
                for q in QUEUES
            },
        }
    )
    judged = attrs.evolve(result, objectives=objectives(deployment, 20.0, 0.8))
    check_figures(judged, threshold_of, dict.fromkeys(QUEUES, target))
    for q in QUEUES:  # at least the task that waited exactly the threshold counts
        values = judged.figures()["by_queue"][q]
        assert values["service_level"] is not None
        assert values["service_level"] > 0
