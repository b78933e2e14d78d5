"""The figures of a run, computed in one pass, against the pass per queue, channel and
group they replaced; and what a run does to the garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from omniroute.contrib import simulator
from omniroute.contrib.simulator import Interaction, SimulationResult, simulate
from omniroute.contrib.workload import load_workload

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo() -> SimulationResult:
    return simulate(load_workload(ROOT / "examples" / "contact-center" / "workload.yaml"))


def test_the_time_an_agent_held_work_counts_overlaps_once() -> None:
    spans = [(5.0, 8.0), (0.0, 2.0), (1.0, 3.0), (6.0, 7.0), (10.0, 10.5)]
    assert simulator._union_length(spans) == 3.0 + 3.0 + 0.5
    assert simulator._union_length([]) == 0.0


def reference_block(
    result: SimulationResult,
    interactions: list[Interaction],
    agents: Callable[[str], bool],
    counts: Callable[[Interaction], bool],
) -> dict[str, Any]:
    """One block of figures as the simulator computed them before: a pass per figure."""

    def span(i: Interaction) -> tuple[float, float]:
        assert i.first_offer is not None
        end = i.wrap_end if i.wrap_end is not None else i.end
        return (i.first_offer, end if end is not None else result.horizon)

    answered = [i for i in interactions if i.first_offer is not None]
    waits = sorted(i.wait for i in answered if i.wait is not None)
    threshold_of = result.service_levels.threshold_of
    within = sum(1 for i in answered if i.wait is not None and i.wait <= threshold_of(i.queue))
    offered_to = answered + [i for i in interactions if i.reason == "abandoned"]
    chosen = [agent for agent in result.agents if agents(agent)]
    held: dict[str, list[tuple[float, float]]] = {}
    for i in result.interactions:
        if i.agent in chosen and i.first_offer is not None and counts(i):
            held.setdefault(i.agent, []).append(span(i))
    occupancy = (
        sum(simulator._union_length(held[a]) for a in chosen if a in held)
        / (len(chosen) * result.horizon)
        if chosen
        else 0.0
    )
    rejected: dict[str, int] = {}
    canceled: dict[str, int] = {}
    for i in interactions:
        if i.state == "rejected":
            rejected[i.reason or "?"] = rejected.get(i.reason or "?", 0) + 1
        elif i.state == "canceled" and i.reason != "abandoned":
            canceled[i.reason or "?"] = canceled.get(i.reason or "?", 0) + 1
    return {
        "interactions": len(interactions),
        "answered": len(answered),
        "abandoned": sum(1 for i in interactions if i.reason == "abandoned"),
        "rejected": rejected,
        "canceled": canceled,
        "unfinished": sum(1 for i in interactions if i.state in ("queued", "reserved", "assigned")),
        "mean_wait": sum(waits) / len(waits) if waits else None,
        "p90_wait": simulator._percentile(waits, 0.9) if waits else None,
        "service_level": within / len(offered_to) if offered_to else None,
        "occupancy": occupancy,
    }


def test_one_pass_figures_equal_a_pass_per_block_to_the_last_bit(
    demo: SimulationResult,
) -> None:
    """Every queue, channel and group of the demo (abandons, three groups, five channels):
    the same numbers, summed in the same order, so `==` on floats."""
    figures = demo.figures()
    everything = list(demo.interactions)
    anyone, anything = (lambda agent: True), (lambda interaction: True)
    expected = reference_block(demo, everything, anyone, anything)
    assert {key: figures[key] for key in expected} == expected
    assert figures["abandoned"] > 0
    for blocks, field in (("by_queue", "queue"), ("by_channel", "channel")):
        for name, values in figures[blocks].items():
            block = reference_block(
                demo,
                [i for i in everything if getattr(i, field) == name],
                anyone,
                lambda i, field=field, name=name: getattr(i, field) == name,
            )
            assert {key: values[key] for key in block} == block, (blocks, name)
    assert len(figures["by_group"]) == 3
    for group, values in figures["by_group"].items():
        block = reference_block(
            demo,
            [i for i in everything if i.agent is not None and group in demo.agents[i.agent]],
            lambda agent, group=group: group in demo.agents[agent],
            anything,
        )
        assert {key: values[key] for key in block} == block, group


def test_figures_are_computed_once_and_handed_out_as_copies(demo: SimulationResult) -> None:
    first = demo.figures()
    first["intervals"] = []  # as the CLI adds its own
    first["by_queue"].clear()
    second = demo.figures()
    assert "intervals" not in second
    assert second["by_queue"]
    assert second == demo.figures()


def test_a_run_leaves_the_collector_as_it_found_it() -> None:
    workload = load_workload(ROOT / "examples" / "contact-center" / "workload.yaml")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    simulate(workload)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_run_keeps_what_its_caller_froze_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    workload = load_workload(ROOT / "examples" / "contact-center" / "workload.yaml")
    freezes: list[str] = []
    monkeypatch.setattr(simulator.gc, "freeze", lambda: freezes.append("freeze"))
    monkeypatch.setattr(simulator.gc, "unfreeze", lambda: freezes.append("unfreeze"))
    monkeypatch.setattr(simulator.gc, "get_freeze_count", lambda: 1000)
    simulate(workload)
    assert freezes == []


def test_a_run_freezes_as_it_goes_and_unfreezes_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workload = load_workload(ROOT / "examples" / "contact-center" / "workload.yaml")
    freezes: list[str] = []
    monkeypatch.setattr(simulator.gc, "freeze", lambda: freezes.append("freeze"))
    monkeypatch.setattr(simulator.gc, "unfreeze", lambda: freezes.append("unfreeze"))
    monkeypatch.setattr(simulator, "FREEZE_EVERY", 1000)
    result = simulate(workload)
    # the roster once, then every 1,000 events, and one unfreeze at the end
    assert freezes == ["freeze"] * (1 + result.events // 1000) + ["unfreeze"]


def test_the_collector_is_paused_only_inside() -> None:
    assert gc.isenabled()
    with simulator.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with simulator.collector_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice stays
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), simulator.collector_paused():
        raise RuntimeError
    assert gc.isenabled()
