"""Service-level targets per queue: the file, the simulator's figures, the reports, the
warnings of `check --workload` and `simulate`, and the planners' use of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from omniroute.contrib import scenario as scenarios
from omniroute.contrib.intervals import interval_figures
from omniroute.contrib.service_levels import (
    Objective,
    objectives,
    queues_used,
    target_lines,
    threshold_lines,
)
from omniroute.contrib.simulator import SimulationResult, simulate
from omniroute.contrib.sweep import flatten
from omniroute.contrib.workload import load_workload
from omniroute.core import DeploymentError, ServiceLevel, load_deployment

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "service-levels"


def problems_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(raw)
    return {problem.path: problem.message for problem in caught.value.problems}


# --- the deployment file ------------------------------------------------------------------


def test_every_bad_service_level_is_reported_at_once_with_its_key_path() -> None:
    found = problems_of(
        {
            "service_level": {"threshold": "0s", "target": 1.5},
            "queues": {
                "a": {"service_level": {"threshold": -3, "target": 0}},
                "b": {"service_level": {"threshold": "20s"}},
                "c": {"service_level": {"treshold": "20s", "target": 0.8}},
                "d": {"service_level": {"threshold": "soon", "target": "high"}},
                "e": {"service_level": {"threshold": 20, "target": 80}},
                "f": {"service_level": "80/20"},
            },
        }
    )
    assert set(found) == {
        "service_level.threshold",
        "service_level.target",
        "queues.a.service_level.threshold",
        "queues.a.service_level.target",
        "queues.b.service_level.target",
        "queues.c.service_level.threshold",
        "queues.c.service_level.treshold",
        "queues.d.service_level.threshold",
        "queues.d.service_level.target",
        "queues.e.service_level.target",
        "queues.f.service_level",
    }
    assert "positive duration" in found["service_level.threshold"]
    assert "above 0 and at most 1" in found["service_level.target"]
    assert "required key is missing" in found["queues.b.service_level.target"]
    assert "did you mean 'threshold'" in found["queues.c.service_level.treshold"]
    assert "did you mean 0.8?" in found["queues.e.service_level.target"]
    assert "expected a mapping" in found["queues.f.service_level"]


@pytest.mark.parametrize("target", [1, 1.0, 0.001, 0.8])
def test_a_target_of_at_most_one_and_any_positive_threshold_load(target: float) -> None:
    deployment = load_deployment(
        {"queues": {"q": {"service_level": {"threshold": "1h30m", "target": target}}}}
    )
    assert deployment.service_level_of("q") == ServiceLevel(5400.0, float(target))


def test_a_queue_s_own_service_level_comes_before_the_deployment_s() -> None:
    deployment = load_deployment(
        {
            "service_level": {"threshold": 30, "target": 0.8},
            "queues": {"vip": {"service_level": {"threshold": "10s", "target": 0.9}}, "b": {}},
        }
    )
    assert deployment.service_level_of("vip") == ServiceLevel(10.0, 0.9)
    assert deployment.service_level_of("b") == ServiceLevel(30.0, 0.8)
    assert deployment.service_level_of(None) == ServiceLevel(30.0, 0.8)
    assert deployment.service_level_of("gone") == ServiceLevel(30.0, 0.8)
    assert load_deployment({"queues": {"b": {}}}).service_level_of("b") is None


def test_the_bundled_example_loads_without_warnings() -> None:
    deployment = load_deployment(EXAMPLE / "deployment.yaml")
    assert deployment.warnings == ()
    assert deployment.service_level_of("callbacks") == ServiceLevel(300.0, 0.7)


# --- objectives -------------------------------------------------------------------------


def test_objectives_fall_back_from_queue_to_deployment_to_workload() -> None:
    with_default = load_deployment(
        {
            "service_level": {"threshold": 30, "target": 0.85},
            "queues": {"a": {"service_level": {"threshold": 10, "target": 0.9}}, "b": {}},
        }
    )
    found = objectives(with_default, 20.0, 0.8)
    assert found.of("a") == Objective(10.0, 0.9, "queue")
    assert found.of("b") == Objective(30.0, 0.85, "deployment")
    assert found.of(None) == Objective(30.0, 0.85, "deployment")
    bare = objectives(load_deployment({"queues": {"b": {}}}), 25.0, 0.7)
    assert bare.of("b") == Objective(25.0, 0.7, "workload")


def test_met_is_at_least_the_target_and_none_without_a_level() -> None:
    objective = Objective(20.0, 0.8, "queue")
    assert objective.met(0.8) is True
    assert objective.met(0.8 - 1e-15) is True  # float sums of shares
    assert objective.met(0.79) is False
    assert objective.met(None) is None


def test_lines_are_shared_by_queues_with_the_same_target_or_threshold() -> None:
    deployment = load_deployment(
        {
            "queues": {
                "a": {"service_level": {"threshold": 10, "target": 0.9}},
                "b": {"service_level": {"threshold": 10, "target": 0.8}},
                "c": {"service_level": {"threshold": 60, "target": 0.8}},
            }
        }
    )
    found = objectives(deployment, 20.0, 0.8)
    assert target_lines(found, ["a", "b", "c"]) == [(0.8, ["b", "c"]), (0.9, ["a"])]
    assert target_lines(found, ["b", "c"]) == [(0.8, [])]
    assert threshold_lines(found, ["a", "b", "c"]) == [(10.0, ["a", "b"]), (60.0, ["c"])]
    assert threshold_lines(found, []) == [(20.0, [])]


# --- the simulator ------------------------------------------------------------------------


def two_queues(**deployment: Any) -> dict[str, Any]:
    """Two queues with the same traffic and too few agents, so that waits vary."""
    return {
        "deployment": {
            "channels": {"voice": {}},
            "queues": {
                "fast": {"service_level": {"threshold": 5, "target": 0.9}},
                "slow": {"service_level": {"threshold": 120, "target": 0.5}},
            },
            **deployment,
        },
        "seed": 5,
        "duration": "2h",
        "agents": [{"count": 3, "id": "a{n}", "channels": {"voice": 1}}],
        "traffic": [
            {"channel": "voice", "queue": q, "rate": "50/h", "handle_time": {"exponential": "2m"}}
            for q in ("fast", "slow")
        ],
    }


def by_hand(result: SimulationResult, queues: set[str | None], threshold: dict[str, float]) -> Any:
    mine = [i for i in result.interactions if i.queue in queues]
    within = sum(1 for i in mine if i.wait is not None and i.wait <= threshold[i.queue or ""])
    offered = sum(1 for i in mine if i.wait is not None or i.reason == "abandoned")
    return within / offered


def test_each_queue_is_measured_against_its_own_threshold() -> None:
    result = simulate(load_workload(two_queues()))
    figures = result.figures()
    thresholds = {"fast": 5.0, "slow": 120.0}
    fast, slow = figures["by_queue"]["fast"], figures["by_queue"]["slow"]
    assert fast["service_level"] == pytest.approx(by_hand(result, {"fast"}, thresholds))
    assert slow["service_level"] == pytest.approx(by_hand(result, {"slow"}, thresholds))
    assert figures["service_level"] == pytest.approx(by_hand(result, {"fast", "slow"}, thresholds))
    assert fast["service_level"] < slow["service_level"]  # the same traffic, a stricter clock
    assert (fast["service_level_threshold"], fast["service_level_target"]) == (5.0, 0.9)
    assert fast["service_level_from"] == "queue"
    assert fast["service_level_met"] is (fast["service_level"] >= 0.9)
    assert slow["service_level_met"] is (slow["service_level"] >= 0.5)
    # The queues differ in threshold and target, and the deployment sets no default.
    assert figures["service_level_threshold"] is None
    assert figures["service_level_target"] is None
    assert figures["service_level_met"] is None
    assert "service_level_target" not in figures["by_channel"]["voice"]
    assert figures["service_levels"]["by_queue"]["slow"] == {
        "threshold": 120.0,
        "target": 0.5,
        "source": "queue",
    }
    # The series the rolling chart reads counts each answer against its queue's threshold,
    # in the bin of the first sample after it; the samples stop at the end of the traffic.
    last = result.series["time"][-1]
    sampled = [i for i in result.interactions if i.wait is not None and i.arrival + i.wait < last]
    assert sum(result.series["answered"]) == len(sampled)
    assert sum(result.series["answered_in_threshold"]) == sum(
        1 for i in sampled if i.wait is not None and i.wait <= thresholds[i.queue or ""]
    )


def test_the_deployment_s_target_judges_the_whole() -> None:
    result = simulate(load_workload(two_queues(service_level={"threshold": 20, "target": 0.99})))
    figures = result.figures()
    assert figures["service_level_target"] == 0.99
    assert figures["service_level_met"] is False


def test_without_any_service_level_the_figures_are_those_of_old() -> None:
    workload = two_queues()
    for queue in workload["deployment"]["queues"].values():
        del queue["service_level"]
    workload["service_level_threshold"] = 30
    result = simulate(load_workload(workload))
    figures = result.figures()
    assert figures["service_level"] == pytest.approx(
        by_hand(result, {"fast", "slow"}, {"fast": 30.0, "slow": 30.0})
    )
    assert figures["service_level_threshold"] == 30.0
    assert figures["service_level_target"] == 0.8
    assert figures["by_queue"]["fast"]["service_level_from"] == "workload"


def test_interval_figures_judge_each_queue_against_its_own() -> None:
    workload = load_workload(two_queues())
    result = simulate(workload)
    entries = interval_figures(result, workload.start, 1800.0, 3)
    for entry in entries:
        for queue, values in entry["by_queue"].items():
            objective = result.service_levels.of(queue)
            assert values["service_level_threshold"] == objective.threshold
            assert values["service_level_met"] == objective.met(values["service_level"])
    first = entries[0]
    arrived = [i for i in result.interactions if i.arrival < 1800 and i.queue == "fast"]
    within = sum(1 for i in arrived if i.wait is not None and i.wait <= 5)
    offered = sum(1 for i in arrived if i.wait is not None or i.reason == "abandoned")
    assert first["by_queue"]["fast"]["answered_in_threshold"] == within
    assert first["by_queue"]["fast"]["service_level"] == pytest.approx(within / offered)


def test_a_sweep_flattens_the_target_and_whether_it_was_met() -> None:
    figures = simulate(load_workload(two_queues())).figures()
    flat = flatten(figures)
    assert flat["queue.fast.service_level_target"] == 0.9
    assert flat["queue.fast.service_level_met"] == float(
        figures["by_queue"]["fast"]["service_level_met"]
    )
    assert "service_level_target" not in flat  # the queues differ, and no default is set


# --- the command line -------------------------------------------------------------------


def test_check_with_a_workload_warns_about_queues_without_a_service_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = two_queues()
    del workload["deployment"]["queues"]["slow"]["service_level"]
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(yaml.safe_dump(workload.pop("deployment")))
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump({"deployment": "deployment.yaml", **workload}))
    code, out, err = run_cli(capsys, "check", str(deployment), "--workload", str(path))
    assert code == 0, err
    assert "ok" in out
    assert err.count("warning:") == 1
    assert "queues.slow.service_level: queue 'slow' has no service level" in err
    assert "80% within 20 s" in err
    code, out, err = run_cli(capsys, "check", str(deployment), "--workload", str(path), "--json")
    assert code == 0, err
    (problem,) = json.loads(out)["problems"]
    assert problem["path"] == "queues.slow.service_level"
    assert problem["severity"] == "warning"
    # Without --workload, nothing says which queues are used: no warning.
    code, _, err = run_cli(capsys, "check", str(deployment))
    assert (code, err) == (0, "")
    # simulate says the same before it runs, on standard error.
    code, out, err = run_cli(capsys, "simulate", str(path), "--json")
    assert code == 0, err
    assert "queues.slow.service_level: queue 'slow' has no service level" in err
    assert json.loads(out)["by_queue"]["slow"]["service_level_from"] == "workload"


def test_a_deployment_default_or_an_unused_queue_is_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = two_queues()
    del workload["deployment"]["queues"]["slow"]["service_level"]
    workload["traffic"] = workload["traffic"][:1]  # only "fast" gets tasks
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(workload))
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(yaml.safe_dump(workload["deployment"]))
    code, _, err = run_cli(capsys, "check", str(deployment), "--workload", str(path))
    assert (code, err) == (0, "")
    workload["traffic"] = two_queues()["traffic"]
    workload["deployment"]["service_level"] = {"threshold": 20, "target": 0.8}
    path.write_text(yaml.safe_dump(workload))
    deployment.write_text(yaml.safe_dump(workload["deployment"]))
    code, _, err = run_cli(capsys, "check", str(deployment), "--workload", str(path))
    assert (code, err) == (0, "")


def streams(*traffic: dict[str, Any]) -> Any:
    return load_workload(
        {
            "deployment": {"queues": {"x": {}}},
            "duration": "1h",
            "agents": [],
            "traffic": [
                {"channel": "voice", "rate": "1/h", "handle_time": 60, **entry} for entry in traffic
            ],
        }
    ).streams


def test_the_workflow_decides_which_queues_a_workload_reaches() -> None:
    deployment = load_deployment(
        {
            "queues": {"a": {}, "b": {}, "c": {}, "d": {}, "e": {}},
            "workflow": {
                "filters": [
                    {
                        "expression": 'task.tier == "vip"',
                        "targets": [{"queue": "b", "timeout": 30}, {"queue": "c"}],
                    },
                    {"expression": 'task.channel == "chat"', "targets": [{"queue": "d"}]},
                    {
                        "expression": "taskrouter.currentTime > 0",
                        "targets": [{"queue": "e"}],
                    },
                ],
                "default_queue": "a",
            },
        }
    )
    # No tier, voice: no filter surely matches; the clock-reading one may.
    assert queues_used(deployment, streams({})) == ["a", "e"]
    # A weighted tier: vip tasks stay in b then c; the others go on as before.
    vip_or_not = streams({"attributes": {"tier": {"vip": 1, "std": 3}}})
    assert queues_used(deployment, vip_or_not) == ["a", "b", "c", "e"]
    # A weight of 0 is never drawn.
    assert queues_used(deployment, streams({"attributes": {"tier": {"vip": 0, "std": 1}}})) == [
        "a",
        "e",
    ]
    assert queues_used(deployment, streams({"channel": "chat"})) == ["d"]
    assert queues_used(deployment, []) == []


def test_a_skip_if_target_lets_later_filters_in() -> None:
    deployment = load_deployment(
        {
            "queues": {"a": {}, "b": {}, "c": {}},
            "workflow": {
                "filters": [
                    {
                        "expression": "1 == 1",
                        "targets": [{"queue": "b", "skip_if": "workers.available == 0"}],
                    },
                    {"expression": "1 == 1", "targets": [{"queue": "c"}]},
                ],
                "default_queue": "a",
            },
        }
    )
    assert queues_used(deployment, streams({})) == ["b", "c"]


def test_a_bad_workload_for_check_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump({**two_queues(), "service_level_target": 2}))
    code, out, err = run_cli(
        capsys, "check", str(EXAMPLE / "deployment.yaml"), "--workload", str(path)
    )
    assert code == 2
    assert "service_level_target: must be a fraction above 0 and at most 1" in err
    assert out == ""


def test_simulate_target_fills_in_only_for_queues_without_a_service_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = two_queues()
    del workload["deployment"]["queues"]["slow"]["service_level"]
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(workload))
    code, out, err = run_cli(capsys, "simulate", str(path), "--json", "--target", "65")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["by_queue"]["slow"]["service_level_target"] == 0.65
    assert figures["by_queue"]["fast"]["service_level_target"] == 0.9
    code, out, err = run_cli(capsys, "simulate", str(path))
    assert code == 0, err
    assert "90% in 5 s ✗" in out or "90% in 5 s ✓" in out
    assert "80% in 20 s" in out


def test_staff_uses_each_queue_s_declared_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = {
        "deployment": {
            "channels": {"voice": {}},
            "queues": {
                "q": {"service_level": {"threshold": "45s", "target": 0.7}},
                "r": {},
            },
        },
        "start": "2026-01-05T09:00:00+01:00",
        "duration": "30m",
        "agents": [{"count": 4, "id": "a{n}", "channels": {"voice": 1}}],
        "traffic": [
            {"channel": "voice", "queue": q, "rate": "60/h", "handle_time": {"exponential": "1m"}}
            for q in ("q", "r")
        ],
    }
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(workload))
    code, out, err = run_cli(
        capsys, "staff", str(path), "-r", "1", "--workers", "0", "--no-store", "--json",
        "--target", "r=90/10",
    )  # fmt: skip
    assert code == 0, err
    targets = json.loads(out)["targets"]
    assert targets["by_queue"]["q"] == {"level": 0.7, "threshold": 45.0}
    assert targets["by_queue"]["r"] == {"level": 0.9, "threshold": 10.0}
    assert targets["from"] == {"q": "queue", "r": "command line"}


# --- measured, never routed on -----------------------------------------------------------

PLUGIN_SCENARIOS = sorted(
    path
    for plugin in (
        "capacity_share",
        "toggle_to_one",
        "least_occupancy",
        "weighted_cascade",
        "off_hours",
    )
    for path in (ROOT / "examples" / plugin).glob("*.yaml")
    if scenarios.looks_like_scenario(path)
)


@pytest.mark.parametrize("path", PLUGIN_SCENARIOS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_service_levels_change_no_decision_of_any_plugin(path: Path) -> None:
    """Every vendor plugin's examples give the same offers and end states with a service
    level on every queue (tight ones: 1 s, 100%) and a deployment-wide one."""
    scenario = scenarios.load_scenario(path)
    raw = copy.deepcopy(scenario.deployment.raw)
    raw["service_level"] = {"threshold": "1s", "target": 1}
    for queue in (raw.get("queues") or {}).values():
        queue["service_level"] = {"threshold": 1, "target": 1.0}
    measured = attrs.evolve(scenario, deployment=load_deployment(raw))
    before, after = scenarios.run(scenario), scenarios.run(measured)
    assert after.offers == before.offers
    assert after.final == before.final
    assert after.passed == before.passed


def test_a_sweep_counts_the_replications_that_met_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = two_queues(service_level={"threshold": 60, "target": 0.5})
    workload["duration"] = "30m"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(workload))
    arguments = ["sweep", str(path), "--vary", "agents=2:3", "-r", "2", "--workers", "0"]
    code, out, err = run_cli(capsys, *arguments, "--no-store", "--json")
    assert code == 0, err
    points = json.loads(out)["points"]
    for point in points:
        figures = point["figures"]
        assert figures["service_level_target"]["mean"] == 0.5
        assert figures["queue.fast.service_level_target"]["mean"] == 0.9
        assert 0 <= figures["service_level_met"]["mean"] <= 1
    code, out, err = run_cli(capsys, *arguments, "--no-store")
    assert code == 0, err
    assert "target met" in out
    met = [round(p["figures"]["service_level_met"]["mean"] * 2) for p in points]
    for count in met:
        assert f"{count}/2" in out


def test_explain_judges_the_wait_for_the_first_offer(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(EXAMPLE / "routes-as-before.yaml")
    code, out, err = run_cli(capsys, "explain", scenario, "--task", "v1")
    assert code == 0, err
    assert (
        "first offered after 20 s: over queue vip's service-level threshold of 10 s (target 90%)"
        in out
    )
    code, out, err = run_cli(capsys, "explain", scenario, "--task", "s1", "--json")
    assert code == 0, err
    assert json.loads(out)["service_level"] == {
        "queue": "support",
        "threshold": 30.0,
        "target": 0.8,
        "waited": 0.0,
        "in_time": True,
    }
    bare = ROOT / "examples" / "least_occupancy" / "least-occupancy.yaml"
    code, out, err = run_cli(capsys, "explain", str(bare), "--task", "c1", "--json")
    assert code == 0, err
    assert json.loads(out)["service_level"] is None
