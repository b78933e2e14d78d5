"""The simulator against queueing theory, its determinism, its CLI and its errors."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from omniroute.contrib.cli import main
from omniroute.contrib.queueing import erlang_a, erlang_c
from omniroute.contrib.simulator import Interaction, SimulationResult, simulate
from omniroute.contrib.workload import load_workload, parse_distribution, parse_rate
from omniroute.core import DeploymentError

ROOT = Path(__file__).resolve().parents[2]


def single_queue(
    hours: int, rate: str, servers: int, patience: str | None = None, seed: int = 11
) -> dict[str, Any]:
    traffic: dict[str, Any] = {
        "channel": "voice",
        "rate": rate,
        "handle_time": {"exponential": "1m"},
    }
    if patience is not None:
        traffic["patience"] = {"exponential": patience}
    return {
        "deployment": {"channels": {"voice": {}}, "queues": {"q": {}}},
        "seed": seed,
        "duration": f"{hours}h",
        "agents": [{"count": servers, "id": "a{n}", "channels": {"voice": 1}}],
        "traffic": [traffic],
    }


def batch_means(
    interactions: tuple[Interaction, ...], value: Any, batches: int = 20
) -> tuple[float, float]:
    """Mean of a per-interaction value and its standard error, from means of time batches."""
    ordered = sorted(interactions, key=lambda i: i.arrival)
    size = len(ordered) // batches
    means = [
        statistics.fmean(value(i) for i in ordered[k * size : (k + 1) * size])
        for k in range(batches)
    ]
    return statistics.fmean(means), statistics.stdev(means) / math.sqrt(batches)


def test_mmc_agrees_with_erlang_c() -> None:
    result = simulate(load_workload(single_queue(120, "240/h", 5)))
    theory = erlang_c(240 / 3600, 1 / 60, 5, 20)
    wait, wait_error = batch_means(result.interactions, lambda i: i.wait)
    level, level_error = batch_means(result.interactions, lambda i: float(i.wait <= 20))
    assert abs(wait - theory.mean_wait) < 3 * wait_error, (wait, theory.mean_wait, wait_error)
    assert abs(level - theory.service_level) < 3 * level_error, (
        level,
        theory.service_level,
        level_error,
    )
    figures = result.figures()
    assert figures["occupancy"] == pytest.approx(0.8, abs=0.02)
    assert figures["mean_wait"] == pytest.approx(wait, rel=0.01)
    assert figures["abandoned"] == 0


def test_mmc_plus_m_agrees_with_erlang_a() -> None:
    # 5 Erlangs offered to 5 agents: unstable without abandonment, held by patience.
    result = simulate(load_workload(single_queue(120, "300/h", 5, patience="2m")))
    theory = erlang_a(300 / 3600, 1 / 60, 5, 1 / 120)
    abandoned, abandoned_error = batch_means(
        result.interactions, lambda i: float(i.reason == "abandoned")
    )
    assert abs(abandoned - theory.abandoned_fraction) < 3 * abandoned_error, (
        abandoned,
        theory.abandoned_fraction,
    )
    queue_wait, queue_error = batch_means(
        result.interactions, lambda i: i.wait if i.wait is not None else (i.patience or 0.0)
    )
    assert abs(queue_wait - theory.mean_wait) < 3 * queue_error, (queue_wait, theory.mean_wait)


def test_the_same_seed_gives_the_same_figures() -> None:
    first = simulate(load_workload(single_queue(5, "240/h", 5, patience="3m"))).figures()
    second = simulate(load_workload(single_queue(5, "240/h", 5, patience="3m"))).figures()
    other = simulate(load_workload(single_queue(5, "240/h", 5, patience="3m", seed=12))).figures()
    assert first == second
    assert first != other


def test_per_interval_rates() -> None:
    workload = single_queue(4, "0/h", 5)
    workload["traffic"][0]["rate"] = ["0/h", "600/h", "0/h", "0/h"]
    result = simulate(load_workload(workload))
    arrivals = [i.arrival for i in result.interactions]
    assert 450 < len(arrivals) < 750
    assert all(3600 <= at < 7200 for at in arrivals)


def test_the_contact_center_demo() -> None:
    result = simulate(load_workload(ROOT / "examples" / "contact-center" / "workload.yaml"))
    figures = result.figures()
    assert figures["interactions"] > 3000
    assert set(figures["by_channel"]) == {"voice", "callback", "chat", "email", "messaging"}
    assert set(figures["by_group"]) == {"in_house", "bpo", "overflow"}
    assert 0 < figures["occupancy"] < 1
    sales = result.first_offer_shares()["sales"]
    assert sales["in_house"] > sales["bpo"] > 0


@pytest.mark.parametrize(
    ("value", "per_second"),
    [("300/h", 300 / 3600), ("5/m", 5 / 60), ("0.5/s", 0.5), (3600, 1.0), ("2/d", 2 / 86400)],
)
def test_rates(value: Any, per_second: float) -> None:
    assert parse_rate(value) == pytest.approx(per_second)


def test_distributions() -> None:
    import random

    rng = random.Random(1)
    assert parse_distribution("90s", "x")(rng) == 90
    assert parse_distribution({"constant": "2m"}, "x")(rng) == 120
    assert parse_distribution({"empirical": [1, "2s"]}, "x")(rng) in (1, 2)
    samples = [
        parse_distribution({"lognormal": {"mean": "5m", "sd": "2m"}}, "x")(rng)
        for _ in range(20000)
    ]
    assert statistics.fmean(samples) == pytest.approx(300, rel=0.03)
    assert statistics.stdev(samples) == pytest.approx(120, rel=0.06)
    samples = [parse_distribution({"exponential": "1m"}, "x")(rng) for _ in range(20000)]
    assert statistics.fmean(samples) == pytest.approx(60, rel=0.03)


def test_workload_errors_are_listed_at_once() -> None:
    bad = single_queue(1, "lots", 5)
    bad["traffic"][0]["handle_time"] = {"gaussian": 5}
    bad["agents"] = [{"count": 2, "id": "same", "channels": {"voice": 1}}]
    bad["deployment"]["queues"] = {"q": {"task_order": "random"}}
    with pytest.raises(DeploymentError) as caught:
        load_workload(bad)
    text = str(caught.value)
    assert "traffic[0].rate: expected a rate such as" in text
    assert "traffic[0].handle_time: handle_time: unknown distribution 'gaussian'" in text
    assert "agents[0].id: with a count above 1 the id needs {n}" in text
    assert "deployment: queues.q.task_order" in text


def test_simulate_command_json_and_plots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "workload.json"
    path.write_text(json.dumps(single_queue(2, "240/h", 5, patience="3m")))
    assert main(["simulate", str(path), "--json", "--plot", str(tmp_path / "charts")]) == 0
    captured = capsys.readouterr()
    figures = json.loads(captured.out)
    for key in (
        "interactions",
        "answered",
        "abandoned",
        "rejected",
        "mean_wait",
        "p90_wait",
        "service_level",
        "occupancy",
        "by_queue",
        "by_channel",
        "by_group",
    ):
        assert key in figures
    assert figures["by_queue"]["q"]["interactions"] == figures["interactions"]
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == [
        "occupancy-by-agent.png",
        "service-level-and-queue.png",
        "share-by-group.png",
        "wait-distribution.png",
    ]
    assert all((tmp_path / "charts" / name).stat().st_size > 10_000 for name in charts)


def test_simulate_command_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "workload.yaml"
    path.write_text(json.dumps(single_queue(2, "240/h", 5)))
    assert main(["simulate", str(path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed 3" in out
    assert "service level" in out
    assert "queue q" in out


def test_simulate_command_bad_workload(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "workload.yaml"
    path.write_text("duration: 1h\n")
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "required key is missing" in err
    assert "Traceback" not in err


def test_result_helpers() -> None:
    result = SimulationResult("w", 1, 10.0, 10.0, 20.0, (), {}, {"time": []}, 0)
    assert result.figures()["mean_wait"] == 0.0
    assert result.figures()["service_level"] == 1.0


def test_p90_is_numpys_inverted_cdf_percentile() -> None:
    """The hand-written nearest rank stays (numpy is not in the light install); it must
    agree with numpy's method of the same name wherever numpy is installed, as in dev."""
    import random

    numpy = pytest.importorskip("numpy", reason="numpy comes with the plot extra")
    from omniroute.contrib.simulator import _percentile

    rng = random.Random(5)
    for size in (1, 2, 3, 9, 10, 11, 99, 100, 1001):
        values = sorted(rng.expovariate(1 / 30) for _ in range(size))
        for fraction in (0.5, 0.8, 0.9, 0.95, 0.99, 1.0):
            expected = float(numpy.percentile(values, fraction * 100, method="inverted_cdf"))
            assert _percentile(values, fraction) == expected, (size, fraction)
    assert _percentile([], 0.9) == 0.0
