"""`omniroute check`, `omniroute test` and `omniroute plugins` as users run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniroute.contrib import scenario as scenarios
from tests.contrib.helpers import run_cli as run

TESTS = Path(__file__).resolve().parents[1]
CORE_SCENARIOS = TESTS / "scenarios" / "core"
WORKFLOW = TESTS / "deployments" / "workflow.yaml"


def test_check_a_good_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", str(WORKFLOW))
    assert code == 0
    assert "ok — 3 channel(s), 4 queue(s), 2 workflow filter(s), plugins: none" in out
    assert err == ""


def test_check_says_where_plugin_order_matters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "both.yaml"
    path.write_text(
        "plugins: [least_occupancy, capacity_share]\nchannels: {chat: {}}\nqueues: {q: {}}\n"
    )
    code, _, err = run(capsys, "check", str(path))
    assert code == 0
    assert (
        "note: plugins: the order of plugins decides how agents are ranked: least_occupancy "
        "(fewest_active, last_accepted, earliest_login); then capacity_share" in err
    )
    # transferred-first leads whatever the order: capacity_share's orderings are alone
    assert "which waiting task goes first" not in err
    path.write_text("plugins: [least_occupancy]\nchannels: {chat: {}}\nqueues: {q: {}}\n")
    code, _, err = run(capsys, "check", str(path), "--json")
    assert code == 0
    assert err == ""


def test_check_lists_every_problem_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("queues:\n  a: {target_workers: 'x ==', task_order: up}\nplugins: [nope]\n")
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {path}: 3 problems")
    assert "queues.a.task_order: must be one of 'fifo', 'lifo', got 'up'" in err
    assert "queues.a.target_workers: expression ends too early" in err
    assert "plugins[0]: unknown plugin 'nope'" in err
    assert "Traceback" not in err


def test_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "none.yaml"))
    assert code == 2  # bad input, not a deployment with problems
    assert "does not exist" in err


def test_test_runs_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", str(CORE_SCENARIOS))
    assert code == 0
    count = len(list(CORE_SCENARIOS.glob("*.yaml")))
    assert out.strip().splitlines()[-1] == f"{count} passed, 0 failed"


def test_test_json_has_the_spec_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", str(CORE_SCENARIOS / "transfer.yaml"), "--json")
    assert code == 0
    (line,) = out.strip().splitlines()
    result = json.loads(line)
    assert {"name", "passed", "offers", "final", "errors"} <= set(result)
    assert result["offers"][0] == {"task": "c1", "agent": "seller", "at": 0.0}
    # offered to seller first, then transferred to billing: the final keys say where it ended
    assert result["final"]["c1"] == {
        "state": "assigned",
        "reason": None,
        "message": None,
        "agent": "biller",
        "queue": "billing",
    }
    assert len(result["errors"]) == 3


def test_a_failing_scenario_shows_offers_side_by_side(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "name: wrong\n"
        f"deployment: {WORKFLOW}\n"
        "agents: [{id: helper, channels: {chat: 1}, attributes: {skills: [support]}}]\n"
        "events:\n"
        "  - {at: 0, create: {id: c1, channel: chat}}\n"
        "  - {at: 1, complete: nobody}\n"
        "expect:\n"
        "  offers: [{task: c1, agent: someone_else}]\n"
        "  final: {c1: {state: completed}, c9: {state: queued}}\n"
    )
    code, out, _ = run(capsys, "test", str(path))
    assert code == 1
    assert "FAIL  wrong" in out
    assert "  !  1  c1 -> someone_else at -  c1 -> helper at 0" in out
    assert "c1 -> helper at 0" in out
    assert "final: task 'c1' is assigned, expected completed" in out
    assert "final: task 'c9' was never created" in out
    assert "unexpected error: event 1, line 6: unknown task 'nobody'" in out


def test_a_broken_scenario_fails_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "name: broken\ndeployment: {queues: {a: {task_order: x}}}\nevents: [{at: soon, create: {}}, {login: a, logout: a}]\n"
    )
    (tmp_path / "fine.yaml").write_text(
        "name: fine\ndeployment: {}\nevents: []\nexpect: {offers: []}\n"
    )
    (tmp_path / "not-a-scenario.yaml").write_text("queues: {}\n")
    code, out, _ = run(capsys, "test", str(tmp_path))
    assert code == 1
    assert "PASS  fine" in out
    assert "FAIL  broken" in out
    assert "events[0].at: expected a duration" in out
    assert "events[1]: an event needs exactly one of" in out
    assert "deployment: queues.a.task_order: must be one of 'fifo', 'lifo', got 'x'" in out
    assert out.strip().splitlines()[-1] == "1 passed, 1 failed"


def test_test_with_no_scenarios(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "test", str(tmp_path))
    assert code == 2
    assert "no scenario files found" in err


def test_plugins_lists_the_core(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    lines = {line.split()[0]: line for line in out.strip().splitlines()}
    assert "event_handlers, filters, preferences, ranking_keys, task_orderings" in lines["core"]
    assert {
        "capacity_share",
        "toggle_to_one",
        "least_occupancy",
        "weighted_cascade",
        "off_hours",
    } <= set(lines)


def test_streams_expand_with_n(tmp_path: Path) -> None:
    path = tmp_path / "stream.yaml"
    path.write_text(
        "name: stream\ndeployment: {channels: {chat: {}}}\n"
        "agents: [{id: ana, channels: {chat: 100}}]\n"
        "options: {start: '2026-02-02T10:00:00', until: 1h}\n"
        "events:\n"
        "  - {at: 0, every: 6, count: 5, create: {id: 't{n}', channel: chat, attributes: {n: 'x{n}'}}}\n"
        "  - {at: 7, cancel: t1}\n"
        "expect:\n"
        "  offers: [{task: t1, agent: ana, at: 0}, {task: t2, agent: ana, at: 6}, {task: t3, agent: ana, at: 12},\n"
        "           {task: t4, agent: ana, at: 18}, {task: t5, agent: ana, at: 24}]\n"
        "  final: {t1: {state: canceled}}\n"
    )
    result = scenarios.run_file(path)
    assert result.passed, result.failures
    assert result.engine is not None
    assert result.engine.task("t3").attributes == {"n": "x3"}
    assert result.engine.start.isoformat() == "2026-02-02T10:00:00+00:00"


def test_share_expectations(tmp_path: Path) -> None:
    path = tmp_path / "share.yaml"
    path.write_text(
        "name: share\ndeployment: {channels: {chat: {}}, queues: {q: {}}}\n"
        "agents: [{id: a, channels: {chat: 1}, groups: [g1]}, {id: b, channels: {chat: 1}, groups: [g2]}]\n"
        "events:\n"
        "  - {at: 0, every: 10, count: 4, create: {id: 't{n}', channel: chat}}\n"
        "  - {at: 1, every: 10, count: 4, complete: 't{n}'}\n"
        "expect:\n"
        "  share: [{queue: q, groups: {g1: 0.5, g2: 0.5}}, {queue: other, groups: {g1: 1}}]\n"
    )
    # longest idle alternates between the two agents
    result = scenarios.run_file(path)
    assert result.failures == ("share: no task of queue 'other' was offered",)
    path.write_text(
        path.read_text()
        .replace("g1: 0.5, g2: 0.5", "g1: 1.0, g2: 0.0")
        .replace(", {queue: other, groups: {g1: 1}}", "")
    )
    result = scenarios.run_file(path)
    assert result.failures == (
        "share: queue 'q', group 'g1': 0.5000 of 4 first offers, expected 1.0 ± 0.01",
        "share: queue 'q', group 'g2': 0.5000 of 4 first offers, expected 0.0 ± 0.01",
    )


def test_expected_errors_that_do_not_happen_fail(tmp_path: Path) -> None:
    path = tmp_path / "errors.yaml"
    path.write_text(
        "name: e\ndeployment: {}\nevents: [{at: 0, login: nobody}]\nexpect: {errors: [{event: 0, contains: 'nobody'}, {event: 3}]}\n"
    )
    result = scenarios.run_file(path)
    assert result.failures == ("expected an error at event 3, got none",)


def test_scenario_agents_may_be_generated_with_count(tmp_path: Path) -> None:
    path = tmp_path / "count.yaml"
    path.write_text(
        "name: count\ndeployment: {channels: {chat: {}}}\n"
        "agents: [{count: 3, id: 'a{n}', channels: {chat: 1}}, {id: a2, channels: {chat: 1}}]\n"
        "events: [{at: 0, every: 1, count: 3, create: {id: 't{n}', channel: chat}}]\n"
        "expect: {offers: [{task: t1, agent: a1}, {task: t2, agent: a2}, {task: t3, agent: a3}]}\n"
    )
    result = scenarios.run_file(path)
    assert not result.passed
    assert "agents[1].id: agent 'a2' is defined twice" in result.errors
    path.write_text(path.read_text().replace(", {id: a2, channels: {chat: 1}}", ""))
    assert scenarios.run_file(path).passed


def test_a_reservation_timeout_under_a_millisecond_is_a_problem_of_the_file() -> None:
    from omniroute.contrib.scenario import load_scenario
    from omniroute.core import DeploymentError

    raw = {
        "name": "tiny timeout",
        "deployment": {"queues": {"support": {}}},
        "options": {"auto_accept": False, "reservation_timeout": 0.0001},
    }
    with pytest.raises(DeploymentError, match=r"options\.reservation_timeout: must be at least"):
        load_scenario(raw)


def test_final_checks_message_agent_and_queue(tmp_path: Path) -> None:
    """`final` may state `message`, `agent` and `queue`; each is checked when given."""
    path = tmp_path / "final.yaml"
    path.write_text(
        "name: final\n"
        "deployment: {channels: {chat: {}}, queues: {q: {}, r: {}}}\n"
        "agents: [{id: a, channels: {chat: 1}}]\n"
        "events:\n"
        "  - {at: 0, create: {id: t1, channel: chat, queue: q}}\n"
        "  - {at: 1, complete: t1}\n"
        "  - {at: 2, create: {id: t2, channel: chat, queue: r}}\n"
        "expect:\n"
        "  final:\n"
        "    t1: {agent: a, queue: q}\n"
        "    t2: {state: assigned, agent: b, queue: q, message: hello}\n"
    )
    result = scenarios.run_file(path)
    assert result.failures == (
        "final: task 't2' has message None, expected 'hello'",
        "final: task 't2' has agent 'a', expected 'b'",
        "final: task 't2' has queue 'r', expected 'q'",
    )
    assert result.to_json()["final"]["t1"] == {
        "state": "completed",
        "reason": None,
        "message": None,
        "agent": "a",
        "queue": "q",
    }


def test_a_scenario_lists_problems_that_a_bad_key_used_to_hide(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\n"
        "deployment: {channels: {chat: {}}}\n"
        "agents: [{id: a, channels: {chat: 1}, colour: red}]\n"
        "options: {reservation_timeout: 0.0001}\n"
        "events: [{at: 0, create: {id: t1, channel: chat}}]\n"
    )
    result = scenarios.run_file(path)
    assert "agents[0].colour: unknown key" in "\n".join(result.failures)
    assert "options.reservation_timeout: must be at least 0.001 s" in "\n".join(result.failures)
