"""`omniroute check --agents` warns about proficiency steps that do nothing for a roster
(docs/proficiency-steps.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniroute.contrib.cli import main

DEPLOYMENT = {
    "queues": {
        "support": {
            "target_workers": "skills.support > 0",
            "steps": [
                {"after": 0, "expression": "skills.support >= 3"},
                {"after": "30s", "expression": "skills.support >= 2"},
                {"after": "2m", "expression": "skills.support >= 3"},
            ],
        },
        "sales": {
            "target_workers": "skills.sales > 0",
            "steps": [
                {"after": 0, "expression": "skills.sales >= 5"},
                {"after": "1m", "expression": "skills.sales >= 4"},
            ],
        },
        "billing": {
            "target_workers": "skills.billing > 0",
            "steps": [
                {"after": 0, "expression": "skills.billing >= 2"},
                {"after": "1m", "expression": "skills.billing >= 1"},
            ],
        },
        "vip": {
            "target_workers": "skills.support > 0",
            "steps": [
                {"after": 0, "expression": "skills.support >= task.tier"},
                {"after": "1m", "expression": "skills.support >= 1"},
            ],
        },
    }
}

ROSTER = [
    {"id": "a", "channels": {"voice": 1}, "attributes": {"skills": {"support": 2, "sales": 1}}},
    {"id": "b", "channels": {"voice": 1}, "attributes": {"skills": {"support": 1, "billing": 2}}},
    {"id": "c", "channels": {"voice": 1}, "attributes": {"skills": {"billing": 1}}},
]


def check(capsys: pytest.CaptureFixture[str], tmp_path: Path, roster: object) -> tuple[int, str]:
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(DEPLOYMENT))
    agents = tmp_path / "roster.json"
    agents.write_text(json.dumps(roster))
    code = main(["check", str(deployment), "--agents", str(agents)])
    return code, capsys.readouterr().err


def test_steps_that_do_nothing_for_the_roster_are_warned_about(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = check(capsys, tmp_path, ROSTER)
    assert code == 0, err  # warnings only
    # the first step admits nobody: every task waits for the second
    assert (
        "queues.support.steps[0].expression: admits none of the 2 agents of the roster that "
        "serve queue 'support': every task waits 30 s for queues.support.steps[1]"
    ) in err
    # a later step narrower than an earlier one widens nothing
    assert "queues.support.steps[2].expression: widens nothing for this roster" in err
    assert "queues.support.steps[1]." not in err
    # no step admits anyone: the queue's tasks are never offered
    assert (
        "queues.sales.steps: no step admits any of the 1 agent of the roster that serve queue "
        "'sales': its tasks are never offered"
    ) in err
    assert "queues.sales.steps[" not in err  # that one warning says it all
    # steps that widen as they should, and steps that read the task: nothing to say
    assert "queues.billing" not in err
    assert "queues.vip" not in err


def test_a_roster_with_every_step_used_has_no_step_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    roster = [
        *ROSTER,
        {"id": "d", "channels": {"voice": 1}, "attributes": {"skills": {"support": 3}}},
    ]
    code, err = check(capsys, tmp_path, roster)
    assert code == 0, err
    assert "queues.support.steps[0]" not in err
    assert "queues.support.steps[2].expression: widens nothing" in err  # still narrower
