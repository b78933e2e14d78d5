"""`staff`: against Erlang C on M/M/c, with groups, targets and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from omniroute.contrib.fanout import Runner
from omniroute.contrib.queueing import erlang_c
from omniroute.contrib.staffing import Target, _allocate, parse_target, staff

from .helpers import run_cli


def erlang_c_staff(per_hour: float, handle: float, level: float, threshold: float) -> int:
    servers = int(per_hour * handle / 3600) + 1
    while erlang_c(per_hour / 3600, 1 / handle, servers, threshold).service_level < level:
        servers += 1
    return servers


def mmc(folder: Path) -> Path:
    path = folder / "mmc.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "deployment": {"channels": {"voice": {}}, "queues": {"q": {}}},
                "seed": 5,
                "start": "2026-01-05T09:00:00+01:00",
                "duration": "3h",
                "agents": [{"count": 8, "id": "a{n}", "channels": {"voice": 1}}],
                "traffic": [
                    {
                        "channel": "voice",
                        "rate": ["120/h", "300/h", "600/h"],
                        "handle_time": {"exponential": "1m"},
                    }
                ],
            }
        )
    )
    return path


def test_mmc_staffing_matches_erlang_c_within_one_agent(tmp_path: Path) -> None:
    result = staff(
        mmc(tmp_path),
        Runner(workers=0),
        targets=["80/20"],
        interval_seconds=3600,
        replications=4,
        window=4 * 3600,
    )
    expected = [erlang_c_staff(rate, 60, 0.8, 20) for rate in (120, 300, 600)]
    assert [entry.erlang_c_agents for entry in result.intervals] == expected
    assert [entry.clock for entry in result.intervals] == [
        "09:00–10:00",
        "10:00–11:00",
        "11:00–12:00",
    ]
    for entry, theory in zip(result.intervals, expected, strict=True):
        assert entry.policy is not None
        assert abs(sum(entry.policy.values()) - theory) <= 1, (entry, theory)
        assert entry.service_levels["q"]["mean"] >= 0.8
        assert entry.evaluations >= 2  # it checked one fewer too
    assert not result.failures


def two_groups(folder: Path) -> Path:
    path = folder / "groups.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "deployment": {
                    "plugins": ["weighted_cascade"],
                    "channels": {"voice": {}},
                    "queues": {"sales": {}},
                    "weighted_cascade": {
                        "groups": ["in_house", "bpo"],
                        "queues": {"sales": {"primary": {"in_house": 60, "bpo": 40}}},
                    },
                },
                "seed": 2,
                "duration": "30m",
                "agents": [
                    {"count": 6, "id": "ih{n}", "channels": {"voice": 1}, "groups": ["in_house"]},
                    {"count": 4, "id": "bpo{n}", "channels": {"voice": 1}, "groups": ["bpo"]},
                ],
                "traffic": [{"channel": "voice", "rate": "240/h", "handle_time": "1m"}],
            }
        )
    )
    return path


def test_staff_cli_with_groups_json_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "staff.html"
    code, out, err = run_cli(
        capsys, "staff", str(two_groups(tmp_path)), "--target", "sales=80/30", "--interval", "30m",
        "--window", "2h", "-r", "2", "--workers", "0", "--no-store", "--json",
        "--report", str(report), "--plot", str(tmp_path / "plots"),
    )  # fmt: skip
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    assert result["groups"] == ["in_house", "bpo"]
    assert result["targets"]["by_queue"]["sales"] == {"level": 0.8, "threshold": 30.0}
    (entry,) = result["intervals"]
    assert entry["clock"] == "09:00–09:30"  # the default start
    assert set(entry["policy"]["by_group"]) == {"in_house", "bpo"}
    assert entry["policy"]["agents"] == sum(entry["policy"]["by_group"].values())
    assert entry["service_level"]["sales"]["mean"] >= 0.8
    assert entry["erlang_c"]["agents"] >= 5  # 4 Erlangs
    assert "met when the mean service level" in result["rule"]
    assert (tmp_path / "plots" / "staffing.png").stat().st_size > 0
    assert "data:image/png;base64," in report.read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target", "nope=80/20"], "no queue 'nope'"),
        (["--target", "eighty"], "expected a target such as 80/20"),
        (["--target", "180/20"], "at most 100"),
        (["--interval", "10s"], "at least a minute"),
        (["--interval", "soon"], "expected an interval"),
    ],
)
def test_bad_staff_questions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code, out, err = run_cli(
        capsys, "staff", str(mmc(tmp_path)), "--workers", "0", "--no-store", *arguments
    )
    assert code == 2, err
    assert message in err
    assert out == ""


def test_targets_and_allocation() -> None:
    assert parse_target("80/20") == Target(0.8, 20.0)
    assert parse_target("90%/30s") == Target(0.9, 30.0)
    assert parse_target("75") == Target(0.75, None)
    assert _allocate(10, [0.6, 0.4]) == (6, 4)
    assert _allocate(7, [0.6, 0.4]) == (4, 3)
    assert sum(_allocate(13, [0.5, 0.35, 0.15])) == 13


def test_simulate_interval_figures_are_opt_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mmc(tmp_path)
    code, plain, err = run_cli(capsys, "simulate", str(path), "--json")
    assert code == 0, err
    code, with_intervals, err = run_cli(
        capsys, "simulate", str(path), "--json", "--interval", "30m"
    )
    assert code == 0, err
    figures, extended = json.loads(plain), json.loads(with_intervals)
    assert "intervals" not in figures
    intervals = extended.pop("intervals")
    assert extended == figures
    assert [i["clock"] for i in intervals][:2] == ["09:00–09:30", "09:30–10:00"]
    assert sum(i["interactions"] for i in intervals) == figures["interactions"]
    assert all(i["staffed_agents"] == 8 for i in intervals)
    code, _, err = run_cli(capsys, "simulate", str(path), "--report", "x.html", "--target", "80/30")
    assert code == 2
    assert "measures answers within 20 s" in err


def test_simulate_planner_charts_with_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    charts = tmp_path / "charts"
    code, _, err = run_cli(
        capsys, "simulate", str(mmc(tmp_path)), "--plot", str(charts), "--interval", "15m"
    )
    assert code == 0, err
    names = {p.name for p in charts.iterdir()}
    assert {"service-level.png", "queue.png", "occupancy.png", "share-vs-split.png"} <= names
    assert "waits.png" in names
    assert all(p.stat().st_size > 10_000 for p in charts.iterdir())


def drive(search: Any, met: Any) -> tuple[list[tuple[int, ...]], Any]:
    """Answer a search's questions with `met(counts)`: what it asked and what it returned."""
    from omniroute.contrib.staffing import Evaluation

    asked = [next(search)]
    while True:
        try:
            asked.append(search.send(Evaluation(met(asked[-1]), {})))
        except StopIteration as stop:
            return asked, stop.value


@pytest.mark.parametrize("start", [1, 7, 12, 30])
def test_the_search_finds_the_fewest_of_each_group(start: int) -> None:
    """The search against a known answer: group 0 counts once, group 1 twice, need 20."""
    from omniroute.contrib.staffing import _search

    def met(counts: tuple[int, ...]) -> bool:
        return counts[0] + 2 * counts[1] >= 20 and counts[0] >= 2

    asked, (answer, note) = drive(_search(start, [0.5, 0.5], limit=100), met)
    assert note is None
    assert answer is not None
    assert met(answer)
    # no group can lose an agent
    assert not met((answer[0] - 1, answer[1]))
    assert not met((answer[0], answer[1] - 1))
    assert len(asked) <= 16


def test_the_search_gives_up_at_its_limit() -> None:
    from omniroute.contrib.staffing import _search

    asked, result = drive(_search(3, [1.0], limit=10), lambda counts: False)
    assert result == (None, "targets not met even with 10 agents")
    assert asked == [(3,), (4,), (6,), (10,)]
