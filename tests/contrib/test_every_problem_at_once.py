"""Workload, scenario and roster files report every problem at once (issue 11): one bad
entry or key hides neither another's problem nor a check that reads the rest."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.contrib.scenario import load_scenario
from omniroute.contrib.workload import load_workload
from omniroute.core import DeploymentError

from .helpers import run_cli as run

DEPLOYMENT = {"queues": {"q": {}}}

WORKLOAD: dict[str, Any] = {
    "deployment": DEPLOYMENT,
    "duration": "10m",
    "seed": 3,
    "agents": [
        {"count": 2, "id": "a{n}", "channels": {"voice": 1}},
        {"id": "b", "channels": {"chat": 2}, "groups": ["g"]},
    ],
    "traffic": [
        {"channel": "voice", "rate": "60/h", "handle_time": {"constant": "1m"}},
        {"channel": "chat", "rate": "30/h", "handle_time": {"exponential": "2m"}, "priority": 1},
    ],
}

SCENARIO: dict[str, Any] = {
    "name": "every problem",
    "deployment": DEPLOYMENT,
    "agents": [
        {"id": "ana", "channels": {"voice": 1}},
        {"id": "bo", "channels": {"voice": 1}},
    ],
    "options": {"reservation_timeout": "30s"},
    "events": [{"at": 0, "create": {"id": "t1", "channel": "voice", "queue": "q"}}],
    "expect": {"final": {"t1": {"state": "reserved"}}, "offers": [{"task": "t1", "agent": "ana"}]},
}


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def reported_paths(err: str) -> list[str]:
    """The key path of each problem line of a `file: N problems` message."""
    return [m.group(1) for m in re.finditer(r"^\s+(\S+?): ", err, re.MULTILINE)]


def test_valid_files_load() -> None:
    load_workload(copy.deepcopy(WORKLOAD))
    load_scenario(copy.deepcopy(SCENARIO))


def test_simulate_lists_every_problem_of_a_workload(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = copy.deepcopy(WORKLOAD)
    data["seed"] = "seven"  # the top level
    data["traffic"][0]["rat"] = "60/h"  # an unknown key in one entry ...
    data["traffic"][1]["rate"] = "lots"  # ... and a bad value in another
    data["agents"][0]["count"] = 0  # a roster check
    data["agents"][1]["channels"] = "chat"  # a type error in another agent
    code, _out, err = run(capsys, "simulate", str(write(tmp_path, "w.json", data)))
    assert code == 2, err
    assert "Traceback" not in err
    assert "w.json: 5 problems" in err
    for path in (
        "seed",
        "traffic[0].rat",
        "traffic[1].rate",
        "agents[0].count",
        "agents[1].channels",
    ):
        assert f"  {path}: " in err, (path, err)


def test_test_lists_every_problem_of_a_scenario(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = copy.deepcopy(SCENARIO)
    data["agents"][0]["chanels"] = {"voice": 1}  # an unknown key in one agent ...
    data["agents"][1]["id"] = "bo"
    data["agents"].append({"id": "bo", "channels": {"voice": 1}})  # ... a duplicate id
    data["options"]["reservation_timeout"] = "soon"
    data["expect"]["final"]["t1"]["stat"] = "reserved"
    data["events"].append({"at": "later", "cancel": "t1"})
    code, out, err = run(capsys, "test", str(write(tmp_path, "s.json", data)))
    assert code == 1, (out, err)  # docs/cli.md: a scenario that cannot load fails
    assert "Traceback" not in err
    text = out + err
    for path in (
        "agents[0].chanels",
        "agents[2].id",
        "options.reservation_timeout",
        "expect.final.t1.stat",
        "events[1].at",
    ):
        assert f"{path}: " in text, (path, text)


def test_check_agents_lists_every_problem_of_a_roster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deployment = write(tmp_path, "d.json", DEPLOYMENT)
    roster = [
        {"id": "a", "channels": {"voice": "one"}},
        {"id": "b", "channels": {"voice": 1}, "grups": ["g"]},
        {"id": "b", "channels": {"voice": 1}},
        {"id": "c", "count": 2, "channels": {"voice": 1}},
    ]
    agents = write(tmp_path, "roster.json", {"agents": roster})
    code, out, err = run(capsys, "check", str(deployment), "--agents", str(agents))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for path in ("agents[0].channels.voice", "agents[1].grups", "agents[2].id", "agents[3].id"):
        assert f"  {path}: " in err, (path, err)


# --- one random key broken: exactly that key is reported --------------------------------


def leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every scalar of `data` below a mapping key the file kind validates."""
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in leaves(value, (*path, key))]
    if isinstance(data, list):
        return [leaf for i, value in enumerate(data) for leaf in leaves(value, (*path, i))]
    return [path]


def shown(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


#: a value no key of these files accepts: a mapping where a scalar or list is expected
BROKEN = {"not": ["what", "was", "expected"]}
#: free-form leaves: attributes take anything, `deployment` is checked as a deployment,
#: `name`/`description` are text anywhere, events are checked by their own reader
FREE = {"attributes", "deployment", "name", "description", "events", "start"}


def breakable(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [p for p in leaves(data) if not FREE & {part for part in p if isinstance(part, str)}]


def reported(load: Any, data: dict[str, Any]) -> list[str]:
    with pytest.raises(DeploymentError) as caught:
        load(data)
    return [problem.path for problem in caught.value.problems]


def assert_only(path: tuple[Any, ...], paths: list[str]) -> None:
    """Problems at `path` only (one per element when it held a list), and at least one."""
    assert paths, path
    assert all(p == shown(path) or p.startswith(shown(path) + "[") for p in paths), (path, paths)


def put(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    holder: Any = data
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_broken_key_of_a_workload_is_reported_alone(data: st.DataObject) -> None:
    workload = copy.deepcopy(WORKLOAD)
    path = data.draw(st.sampled_from(breakable(workload)))
    put(workload, path, BROKEN)
    assert_only(path, reported(load_workload, workload))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_broken_key_of_a_scenario_is_reported_alone(data: st.DataObject) -> None:
    scenario = copy.deepcopy(SCENARIO)
    path = data.draw(st.sampled_from(breakable(scenario)))
    put(scenario, path, BROKEN)
    assert_only(path, reported(load_scenario, scenario))
