"""`omniroute explain`: what a supervisor reads, and the JSON tools read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.contrib.helpers import run_cli as run

ROOT = Path(__file__).resolve().parents[2]


def test_each_offer_with_every_agent_considered(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/contact-center/decline-reroute.yaml"),
        "--task",
        "c1",
    )
    assert code == 0
    assert "Offer 1 at 0 s" in out
    assert "why: ana beat bo on capacity_share.skill_level (-300.0 before -200.0)" in out
    assert "Offer 2 at 20 s" in out
    assert (
        "ana    excluded  least_occupancy.not_declined: ana declined it and another eligible agent has room"
        in out
    )
    assert "5 s  declined by ana" in out
    assert "idle_since=0 " in out


def test_a_task_nobody_could_take(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "tests/scenarios/core/target-timeout-cascade.yaml"),
        "--task",
        "c2",
    )
    assert code == 0
    assert "now canceled (workflow_timeout)" in out
    assert "Last attempt, at 320 s" in out
    assert "junior  excluded  status: not ready (not_ready)" in out


def test_a_task_rejected_on_arrival(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "explain", str(ROOT / "examples/off_hours/off-hours.yaml"), "--task", "early_chat"
    )
    assert code == 0
    assert "now rejected (off_hours): We are open" in out
    assert "It was never routed: rejected on arrival (off_hours)." in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/least_occupancy/decline-reroute.yaml"),
        "--task",
        "c1",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["task"] == "c1"
    assert [d["winner"] for d in data["decisions"]] == ["csr1", "csr2"]
    first = data["decisions"][0]
    assert {c["agent"] for c in first["candidates"]} == {"csr1", "csr2"}
    excluded = [c for c in first["candidates"] if "excluded_by" in c]
    assert excluded == [
        {"agent": "csr2", "excluded_by": "status", "reason": "not ready (not_ready)"}
    ]
    assert data["history"][0] == {"at": 0.0, "event": "created"}


def test_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "explain",
        str(ROOT / "examples/least_occupancy/decline-reroute.yaml"),
        "--task",
        "zz",
    )
    assert code == 2
    assert "no task 'zz' in this scenario (tasks: c1, c2, c3)" in err


def test_without_a_workflow_the_queue_is_named_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/least_occupancy/least-occupancy.yaml"),
        "--task",
        "c2",
    )
    assert code == 0
    assert "  queue support\n" in out
    assert "queue support, queue support" not in out


def test_a_widening_step_and_an_aged_priority(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/proficiency-steps/rings-widen.yaml"),
        "--task",
        "c2",
    )
    assert code == 0
    assert "10 s  queues.support.steps[0] applies: skills.support >= 3" in out
    assert (
        "130 s  queues.support.steps[1] expired after 120 s in the queue: "
        "queues.support.steps[2] also admits skills.support >= 1"
    ) in out
    assert (
        "proficiency queues.support.steps[2] in force (skills.support >= 1); the last step" in out
    )
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/priority-aging/old-work-catches-up.yaml"),
        "--task",
        "routine",
        "--json",
    )
    assert code == 0
    (offer,) = json.loads(out)["decisions"]
    assert offer["notes"] == [
        "priority 5: 0 raised by 1 every 30 s of waiting, cap 5, after 200 s "
        "(queues.billing.priority_aging)"
    ]


def test_a_wait_for_the_last_agent(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        str(ROOT / "examples/preferred-agent/wait-ends.yaml"),
        "--task",
        "again",
    )
    assert code == 0
    assert "100 s  waits up to 45 s for its last agent ana" in out
    assert (
        "145 s  the wait for its last agent ana is over: every agent of the queue may take it now"
        in out
    )
