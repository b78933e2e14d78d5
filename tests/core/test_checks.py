"""Policy checks: warnings with a key path and a one-line fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omniroute.contrib.cli import main
from omniroute.core import load_deployment

ROOT = Path(__file__).resolve().parents[2]


def warnings_of(raw: dict[str, Any]) -> list[str]:
    return [str(w) for w in load_deployment(raw).warnings]


def test_filters_after_a_catch_all_and_repeated_filters() -> None:
    found = warnings_of(
        {
            "queues": {"q": {}},
            "workflow": {
                "filters": [
                    {"expression": 'type == "a"', "targets": [{"queue": "q"}]},
                    {"expression": 'type == "a"', "targets": [{"queue": "q"}]},
                    {"expression": "1 == 1", "targets": [{"queue": "q"}]},
                    {"expression": 'type == "b"', "targets": [{"queue": "q"}]},
                ],
                "default_queue": "q",
            },
        }
    )
    assert (
        "workflow.filters[1]: can never be reached: workflow.filters[0] has the same expression; fix: remove it, or change one of the two expressions"
        in found
    )
    assert any(
        w.startswith(
            "workflow.filters[3]: can never be reached: workflow.filters[2] before it matches every task"
        )
        for w in found
    )
    assert any(
        w.startswith(
            "workflow.default_queue: is never used: workflow.filters[2] matches every task"
        )
        for w in found
    )


def test_targets_after_one_that_never_ends_and_very_long_waits() -> None:
    found = warnings_of(
        {
            "queues": {"q": {}},
            "workflow": {
                "filters": [
                    {"expression": "1 == 1", "targets": [{"queue": "q"}, {"timeout": 60}]},
                    {
                        "expression": "x == 1",
                        "targets": [{"queue": "q", "timeout": "20h"}, {"timeout": "5h"}],
                    },
                ]
            },
        }
    )
    assert any(
        w.startswith(
            "workflow.filters[0].targets[1]: can never be reached: workflow.filters[0].targets[0] has no timeout and no skip_if"
        )
        and w.endswith("fix: give workflow.filters[0].targets[0] a timeout")
        for w in found
    )
    assert any(w.startswith("workflow.filters[1].targets: tasks may wait 25 h") for w in found)


def test_a_skip_if_keeps_later_targets_reachable() -> None:
    assert (
        warnings_of(
            {
                "queues": {"q": {}},
                "workflow": {
                    "filters": [
                        {
                            "expression": "x == 1",
                            "targets": [
                                {"queue": "q", "skip_if": "workers.available == 0"},
                                {"timeout": 60},
                            ],
                        }
                    ]
                },
            }
        )
        == []
    )


def test_channels_the_deployment_does_not_declare() -> None:
    found = warnings_of(
        {
            "channels": {"voice": {}, "chat": {}},
            "queues": {
                "q": {"target_workers": "worker.channel.vocie.available_capacity_percentage == 100"}
            },
            "workflow": {
                "filters": [
                    {
                        "expression": 'task.channel IN ["chat", "sms"] OR channel == "fax"',
                        "targets": [{"queue": "q"}],
                    }
                ]
            },
        }
    )
    assert any(w.startswith("queues.q.target_workers: names channel 'vocie'") for w in found)
    assert any(w.startswith("workflow.filters[0].expression: names channel 'fax'") for w in found)
    assert any(w.startswith("workflow.filters[0].expression: names channel 'sms'") for w in found)
    assert not any("'chat'" in w for w in found)


def test_a_target_timeout_beyond_the_queue_max_wait() -> None:
    found = warnings_of(
        {
            "plugins": ["off_hours"],
            "queues": {"q": {}, "r": {}},
            "workflow": {
                "filters": [
                    {
                        "expression": "x == 1",
                        "targets": [{"queue": "q", "timeout": 600}, {"queue": "r"}],
                    }
                ]
            },
            "off_hours": {"queues": {"q": {"max_wait": 300}}},
        }
    )
    assert any(
        w.startswith(
            "workflow.filters[0].targets[0].timeout: 600 s is longer than the 300 s max_wait of queue 'q'"
        )
        for w in found
    )


def test_the_bundled_examples_are_clean() -> None:
    for path in sorted((ROOT / "examples").glob("*/deployment.yaml")):
        assert load_deployment(path).warnings == (), path


def test_check_with_a_roster(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "- {count: 3, id: 'ih{n}', channels: {voice: 1, chat: 2}, attributes: {skills: {sales: 1, support: 1}}, groups: [in_house]}\n"
        "- {id: b1, channels: {voice: 1}, attributes: {skills: {}}, groups: [bpo]}\n"
    )
    code = main(
        ["check", str(ROOT / "examples/contact-center/deployment.yaml"), "--agents", str(roster)]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "no agent of group 'bpo' in the roster can serve queue 'sales'" in err
    assert "group 'overflow'" in err
    assert "group 'in_house'" not in err
    assert "queues.support.target_workers" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: 3\n")
    assert (
        main(["check", str(ROOT / "examples/contact-center/deployment.yaml"), "--agents", str(bad)])
        == 2  # a roster that cannot be used is bad input, not a failure of the deployment
    )
    assert "agents: expected a list, got int 3" in capsys.readouterr().err
    # entries go through the same strict reader as scenarios and workloads
    bad.write_text(
        "- {count: lots, channels: {chat: 1}}\n- {id: x, channels: {chat: 1}, colour: red}\n"
    )
    assert (
        main(["check", str(ROOT / "examples/contact-center/deployment.yaml"), "--agents", str(bad)])
        == 2  # a roster that cannot be used is bad input, not a failure of the deployment
    )
    err = capsys.readouterr().err
    assert "agents[0].count: expected a whole number, got text 'lots'" in err
    assert "agents[1].colour: unknown key" in err
    assert "Traceback" not in err
