"""Sweeps: against Erlang C, the same figures whatever runs them, failures and bad specs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from omniroute.contrib import sweep as sweeps
from omniroute.contrib.fanout import Runner, Store
from omniroute.contrib.queueing import erlang_c
from omniroute.core import EventHandler, hookimpl
from omniroute.core import plugins as plugin_registry

from .helpers import run_cli


def write_workload(folder: Path, hours: float, rate: str, servers: int, **extra: Any) -> Path:
    path = folder / "mmc.yaml"
    workload = {
        "deployment": {"channels": {"voice": {}}, "queues": {"q": {}}},
        "seed": 11,
        "duration": f"{hours}h",
        "agents": [{"count": servers, "id": "a{n}", "channels": {"voice": 1}}],
        "traffic": [
            {"channel": "voice", "rate": rate, "handle_time": {"exponential": "1m"}, **extra}
        ],
    }
    path.write_text(yaml.safe_dump(workload), encoding="utf-8")
    return path


def test_mmc_sweep_agrees_with_erlang_c(tmp_path: Path) -> None:
    path = write_workload(tmp_path, 12, "240/h", 5)
    planned = sweeps.plan(path, ["agents=5:7"], replications=8)
    result = sweeps.run(planned, Runner(workers=0))
    assert [p.point.parameters["agents"] for p in result.points] == [5, 6, 7]
    for point in result.points:
        theory = erlang_c(240 / 3600, 1 / 60, point.point.parameters["agents"], 20)
        level, wait = point.figures["service_level"], point.figures["mean_wait"]
        assert level["low"] <= theory.service_level <= level["high"], (point.point, level, theory)
        assert wait["low"] <= theory.mean_wait <= wait["high"], (point.point, wait, theory)
        assert level["n"] == 8
    # more agents, better service: the points are really different
    levels = [p.figures["service_level"]["mean"] for p in result.points]
    assert levels == sorted(levels)
    assert levels[0] < levels[-1]


def test_t_quantiles_and_intervals() -> None:
    assert sweeps.t_quantile(1) == pytest.approx(12.706)
    assert sweeps.t_quantile(30) == pytest.approx(2.042)
    assert 2.000 < sweeps.t_quantile(50) < 2.021
    assert sweeps.t_quantile(10**6) == pytest.approx(1.96, abs=1e-3)
    figure = sweeps.interval([1.0, 2.0, 3.0])
    assert figure["mean"] == 2.0
    assert figure["half_width"] == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert sweeps.interval([5.0])["half_width"] is None


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (["servers=4:6"], "unknown key"),
        (["traffic[3].rate=1/h"], "unknown key"),
        (["agents=6:4"], "the range '6:4' is empty"),
        (["agents="], "no values given"),
        (["agents=five"], "'five' is not a number"),
        (["scale=0.9,lots"], "'lots' is not a number"),
        (["agents=4.5"], "not a whole number"),
        (["agents=0:2"], "at least 1"),
        (["agents=4", "agents=5"], "given twice"),
        (["agents.sales=4"], "no agent entry is in group 'sales'"),
        (["deployment=missing.yaml"], "no such file"),
        (["traffic[0].rate=300/h,lots/h"], "lots/h"),
        (["agents"], "expected KEY=VALUES"),
    ],
)
def test_bad_specifications_are_clear_errors_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vary: list[str], message: str
) -> None:
    path = write_workload(tmp_path, 1, "60/h", 2)
    store = tmp_path / "store"
    arguments = ["sweep", str(path), "--workers", "0", "--store", str(store)]
    for item in vary:
        arguments += ["--vary", item]
    code, out, err = run_cli(capsys, *arguments)
    assert code == 2, err
    assert message in err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert out == ""
    assert not store.exists()  # nothing ran, nothing was kept


def test_scale_and_paths_change_the_workload(tmp_path: Path) -> None:
    path = write_workload(tmp_path, 1, "60/h", 2)
    planned = sweeps.plan(
        path,
        ["scale=1:2:0.5", "traffic[0].handle_time.exponential=1m,2m"],
        replications=1,
    )
    assert len(planned.points) == 6
    rates = {
        (p.parameters["scale"], p.parameters["traffic[0].handle_time.exponential"]): p.workload[
            "traffic"
        ][0]["rate"]
        for p in planned.points
    }
    assert rates[(1.5, "2m")] == "90/h"
    assert planned.points[0].workload["deployment"] == {
        "channels": {"voice": {}},
        "queues": {"q": {}},
    }


def small_sweep(folder: Path) -> Path:
    return write_workload(folder, 2, "200/h", 4)


def sweep_json(
    capsys: pytest.CaptureFixture[str], path: Path, *options: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        capsys, "sweep", str(path), "--vary", "agents=4:6", "-r", "2", "--json", *options
    )
    assert code == 0, err
    return code, json.loads(out)


def test_same_seeds_same_figures_in_process_on_a_cluster_and_after_resuming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_sweep(tmp_path)
    _, in_process = sweep_json(capsys, path, "--workers", "0", "--no-store")
    _, on_cluster = sweep_json(capsys, path, "--workers", "2", "--store", str(tmp_path / "cluster"))
    assert on_cluster == in_process
    assert len(list((tmp_path / "cluster").glob("*.json"))) == 6

    # Interrupt a run as a person would (Ctrl-C) once some simulations are kept, then resume.
    store = tmp_path / "resumed"
    command = [
        str(Path(sys.executable).parent / "omniroute"), "sweep", str(path),
        "--vary", "agents=4:6", "-r", "2", "--json", "--workers", "0", "--store", str(store),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    deadline = time.monotonic() + 120
    while not list(store.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "run the same command again to resume" in err
    kept = {p.name: p.stat().st_mtime_ns for p in store.glob("*.json")}
    assert 1 <= len(kept) < 6
    _, resumed = sweep_json(capsys, path, "--workers", "0", "--store", str(store))
    assert resumed == in_process
    # what was kept was read back, not run again
    assert all((store / name).stat().st_mtime_ns == mtime for name, mtime in kept.items())


class Crasher:
    """A third-party plugin with a bug: it raises on tasks that have `crash` set."""

    @hookimpl
    def omniroute_event_handlers(self) -> Iterable[EventHandler]:
        def created(task: Any, agent: Any) -> None:
            if task is not None and task.attributes.get("crash"):
                raise RuntimeError("the crasher plugin met a crash task")

        return [EventHandler("created", created)]


@pytest.fixture
def crasher() -> Iterator[None]:
    manager = plugin_registry.plugin_manager()
    manager.register(Crasher(), name="crasher")
    try:
        yield
    finally:
        manager.unregister(name="crasher")


@pytest.mark.usefixtures("crasher")
def test_a_failed_point_is_reported_with_its_parameters_and_the_others_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workload(tmp_path, 1, "60/h", 2, attributes={"crash": 0})
    raw = yaml.safe_load(path.read_text())
    raw["deployment"]["plugins"] = ["crasher"]
    path.write_text(yaml.safe_dump(raw))
    code, out, err = run_cli(
        capsys, "sweep", str(path), "--vary", "traffic[0].attributes.crash=0,1",
        "--vary", "agents=2,3", "-r", "2", "--workers", "0", "--json", "--no-store",
    )  # fmt: skip
    assert code == 1
    result = json.loads(out)
    assert [p["parameters"] for p in result["points"]] == [
        {"traffic[0].attributes.crash": 0, "agents": 2},
        {"traffic[0].attributes.crash": 0, "agents": 3},
    ]
    assert len(result["failed"]) == 4
    assert result["failed"][0]["parameters"] == {
        "traffic[0].attributes.crash": 1, "agents": 2, "seed": 11,
    }  # fmt: skip
    assert "the crasher plugin met a crash task" in result["failed"][0]["error"]
    assert "error: the point traffic[0].attributes.crash=1, agents=2, seed=11 failed" in err
    assert "Traceback" not in err


def test_the_store_keeps_results_by_what_was_run(tmp_path: Path) -> None:
    path = small_sweep(tmp_path)
    planned = sweeps.plan(path, ["agents=4"], replications=1)
    store = Store(tmp_path / "store")
    first = sweeps.run(planned, Runner(workers=0, store=store))
    (file,) = (tmp_path / "store").glob("*.json")
    assert json.loads(file.read_text())["label"] == {"agents": 4, "seed": 11}
    again = sweeps.run(planned, Runner(workers=0, store=store))
    assert again.to_json() == first.to_json()
    # another seed is another simulation, kept beside the first
    other = sweeps.plan(path, ["agents=4"], replications=1, seed=12)
    sweeps.run(other, Runner(workers=0, store=store))
    assert len(list((tmp_path / "store").glob("*.json"))) == 2


def test_sweep_table_plots_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_sweep(tmp_path)
    report = tmp_path / "sweep.html"
    code, out, err = run_cli(
        capsys, "sweep", str(path), "--vary", "agents=4,5", "--vary", "scale=1,1.2", "-r", "2",
        "--workers", "0", "--no-store", "--plot", str(tmp_path / "plots"), "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    assert "mean ± half-width of the 95% confidence interval" in out
    assert "service level" in out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "sweep-mean-wait.png", "sweep-occupancy.png", "sweep-service-level.png",
    ]  # fmt: skip
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert 'id="summary"' in text


def test_workers_and_scheduler_are_exclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_sweep(tmp_path)
    code, _, err = run_cli(
        capsys, "sweep", str(path), "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"
    )
    assert code == 2
    assert "not both" in err


def test_policy_a_against_b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_workload(tmp_path, 1, "120/h", 3)
    for name, queue in (("a.yaml", "first"), ("b.yaml", "second")):
        (tmp_path / name).write_text(
            yaml.safe_dump({"channels": {"voice": {}}, "queues": {queue: {}}})
        )
    monkeypatch.chdir(tmp_path)  # deployment paths are read from where the command runs
    planned = sweeps.plan(path, ["deployment=a.yaml,b.yaml"], replications=1)
    result = sweeps.run(planned, Runner(workers=0))
    assert [p.point.parameters for p in result.points] == [
        {"deployment": "a.yaml"},
        {"deployment": "b.yaml"},
    ]
    assert "queue.first.service_level" in result.points[0].figures
    assert "queue.second.service_level" in result.points[1].figures
