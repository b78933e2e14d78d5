"""Issue 12's fuzz suite, bounded for CI: seeded, reproducible, and every finding fails.

The generators are bench/fuzz.py's (`python -m bench.fuzz` runs them longer). Each family
runs a fixed number of inputs from a fixed seed; a failure names the input's index, so
`fuzz_expressions(seed, index + 1)` regenerates it. `OMNIROUTE_FUZZ_SCALE=10` runs ten
times as many.

The limits are also fuzzed at their edges, deterministically: every limit of the
expression language and of the files at its value (accepted) and one over (refused).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import fuzz
from omniroute.contrib import scenario as scenarios
from omniroute.contrib import workload as workloads
from omniroute.contrib.scenario import load_scenario
from omniroute.contrib.workload import load_workload
from omniroute.core import DeploymentError, load_deployment, read_mapping_file
from omniroute.core import limits as core_limits
from omniroute.grammar import (
    MAX_ARRAY_LENGTH,
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    ExpressionError,
    compile_expression,
)
from omniroute.grammar.parser import MAX_NUMBER_LENGTH, MAX_PATH_LENGTH

SCALE = int(os.environ.get("OMNIROUTE_FUZZ_SCALE", "1"))
SEED = 20261128


def _no_findings(outcomes: fuzz.Outcomes) -> None:
    assert fuzz.findings(outcomes) == []


def test_fuzz_expressions_grammar_and_bytes() -> None:
    outcomes = fuzz.fuzz_expressions(SEED, 1500 * SCALE)
    _no_findings(outcomes)
    # Every family produced both outcomes, so the generator still reaches both sides.
    for family in ("grammar", "bytes"):
        assert outcomes[f"expression/{family}/compiled"] > 0
        assert outcomes[f"expression/{family}/ExpressionError"] > 0
    assert outcomes["expression/evaluations"] > 2000 * SCALE


def test_fuzz_files() -> None:
    outcomes = fuzz.fuzz_files(SEED, 250 * SCALE)
    _no_findings(outcomes)
    for family in ("deployment", "scenario", "workload"):
        assert outcomes[f"file/{family}/DeploymentError"] > 0
    assert outcomes["file/deployment/loaded"] > 0


def test_fuzz_event_streams_with_every_plugin() -> None:
    outcomes = fuzz.fuzz_streams(SEED, 4 * SCALE, steps=100)
    _no_findings(outcomes)
    assert outcomes["stream/create_task/ok"] > 0


def test_the_fuzzer_is_reproducible() -> None:
    assert fuzz.fuzz_expressions(7, 200) == fuzz.fuzz_expressions(7, 200)
    assert fuzz.fuzz_files(7, 20) == fuzz.fuzz_files(7, 20)


# --- every limit, at its value and one over -----------------------------------------------


def _path(parts: int) -> str:
    return "task." + ".".join(["a"] * (parts - 1))


EXPRESSION_EDGES = [
    ("source length", lambda n: "1 == 1" + " " * (n - 6), MAX_SOURCE_LENGTH),
    ("depth", lambda n: "NOT " * (n - 2) + "task.a == 1", MAX_DEPTH),
    ("reference parts", lambda n: f"{_path(n)} == 1", MAX_PATH_LENGTH),
    ("number length", lambda n: f"task.a == {'7' * n}", MAX_NUMBER_LENGTH),
    ("index digits", lambda n: f"task.a[{'7' * n}] == 1", MAX_NUMBER_LENGTH),
    ("array length", lambda n: f"task.a IN [{','.join(['1'] * n)}]", MAX_ARRAY_LENGTH),
]


@pytest.mark.parametrize(
    ("name", "make", "limit"), EXPRESSION_EDGES, ids=[e[0] for e in EXPRESSION_EDGES]
)
def test_every_expression_limit_at_and_over(name: str, make: Any, limit: int) -> None:
    expression = compile_expression(make(limit))
    assert expression.evaluate({"task": {"a": "9" * 5000}}) is expression.evaluate_safely({})
    with pytest.raises(ExpressionError):
        compile_expression(make(limit + 1))


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_nesting_at_and_over_the_limit(tmp_path: Path) -> None:
    def nested(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels - 1):
            value = [value]
        return {"x": value}

    read_mapping_file(_write(tmp_path, "at.json", nested(core_limits.MAX_NESTING)))
    with pytest.raises(DeploymentError, match="nests deeper than"):
        read_mapping_file(_write(tmp_path, "over.json", nested(core_limits.MAX_NESTING + 1)))


def test_file_size_at_and_over_the_limit(tmp_path: Path) -> None:
    at = tmp_path / "at.json"
    at.write_bytes(b"{}" + b" " * (core_limits.MAX_FILE_BYTES - 2))
    assert read_mapping_file(at) == {}
    over = tmp_path / "over.json"
    over.write_bytes(b"{}" + b" " * (core_limits.MAX_FILE_BYTES - 1))
    with pytest.raises(DeploymentError, match="larger than 16 MiB"):
        read_mapping_file(over)


def _timeout(value: Any) -> dict[str, Any]:
    target = {"queue": "q", "timeout": value}
    return {
        "queues": {"q": {}},
        "workflow": {"filters": [{"expression": "1==1", "targets": [target]}]},
    }


def test_integers_and_durations_at_and_over_their_limits() -> None:
    load_deployment(_timeout(core_limits.MAX_DURATION))
    with pytest.raises(DeploymentError, match="a duration may be at most"):
        load_deployment(_timeout(core_limits.MAX_DURATION + 1))
    big = core_limits.MAX_INTEGER
    load_deployment(
        {
            "queues": {"q": {}},
            "workflow": {
                "filters": [{"expression": "1==1", "targets": [{"queue": "q", "priority": big}]}]
            },
        }
    )
    with pytest.raises(DeploymentError, match="whole number must be between"):
        load_deployment(
            {
                "queues": {"q": {}},
                "workflow": {
                    "filters": [
                        {"expression": "1==1", "targets": [{"queue": "q", "priority": big + 1}]}
                    ]
                },
            }
        )


WORKLOAD = {
    "deployment": {"queues": {"q": {}}},
    "duration": "1h",
    "agents": [{"count": 1, "channels": {"chat": 1}}],
    "traffic": [{"channel": "chat", "rate": "1/h", "handle_time": "1m"}],
}


def test_rate_at_and_over_the_limit() -> None:
    at = {
        **WORKLOAD,
        "duration": 60,
        "traffic": [{**WORKLOAD["traffic"][0], "rate": f"{core_limits.MAX_RATE:g}/s"}],
    }  # type: ignore[dict-item]
    load_workload(at)
    over = {
        **at,
        "traffic": [{**WORKLOAD["traffic"][0], "rate": f"{core_limits.MAX_RATE + 1:g}/s"}],
    }  # type: ignore[dict-item]
    with pytest.raises(DeploymentError, match="a rate may be at most"):
        load_workload(over)


def test_agents_and_arrivals_at_and_over_their_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mechanism at small limits: counting happens before anything is expanded.
    from omniroute.contrib import inputs

    monkeypatch.setattr(inputs, "MAX_AGENTS", 50)
    load_workload({**WORKLOAD, "agents": [{"count": 50, "channels": {"chat": 1}}]})
    with pytest.raises(DeploymentError, match="51 agents in all; the limit is 50"):
        load_workload(
            {
                **WORKLOAD,
                "agents": [
                    {"count": 25, "channels": {"chat": 1}},
                    {"count": 26, "id": "b{n}", "channels": {"chat": 1}},
                ],
            }
        )
    monkeypatch.setattr(workloads, "MAX_ARRIVALS", 100)
    load_workload({**WORKLOAD, "traffic": [{**WORKLOAD["traffic"][0], "rate": "100/h"}]})  # type: ignore[dict-item]
    with pytest.raises(DeploymentError, match="the limit is 100"):
        load_workload({**WORKLOAD, "traffic": [{**WORKLOAD["traffic"][0], "rate": "101/h"}]})  # type: ignore[dict-item]


def test_events_at_and_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "MAX_EVENTS", 100)

    def scenario(count: int) -> dict[str, Any]:
        stream = {"at": 0, "every": 1, "count": count, "create": {"id": "c{n}", "channel": "chat"}}
        return {
            "name": "s",
            "deployment": {"queues": {"q": {}}},
            "events": [{"at": 0, "cancel": "x"}, stream],
        }

    assert len(load_scenario(scenario(99)).events) == 100
    with pytest.raises(DeploymentError, match="more than 100"):
        load_scenario(scenario(100))


def test_the_limits_table_states_every_limit() -> None:
    from omniroute.grammar.compiler import MAX_GENERATED_NESTING

    table = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text()
    values = {
        "MAX_SOURCE_LENGTH": MAX_SOURCE_LENGTH,
        "MAX_DEPTH": MAX_DEPTH,
        "MAX_PATH_LENGTH": MAX_PATH_LENGTH,
        "MAX_NUMBER_LENGTH": MAX_NUMBER_LENGTH,
        "MAX_ARRAY_LENGTH": MAX_ARRAY_LENGTH,
        "MAX_GENERATED_NESTING": MAX_GENERATED_NESTING,
        "MAX_NESTING": core_limits.MAX_NESTING,
        "MAX_RATE": int(core_limits.MAX_RATE),
        "MAX_ARRIVALS": core_limits.MAX_ARRIVALS,
        "MAX_AGENTS": core_limits.MAX_AGENTS,
        "MAX_EVENTS": core_limits.MAX_EVENTS,
        "MAX_DURATION": int(core_limits.MAX_DURATION),
        "MAX_INTEGER": core_limits.MAX_INTEGER,
    }
    for name, value in values.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{value:,}" in row, (name, row)
    assert "| `MAX_FILE_BYTES` | 16 MiB |" in table
    assert core_limits.MAX_FILE_BYTES == 16 * 1024 * 1024
