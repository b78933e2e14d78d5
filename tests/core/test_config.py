"""Loading deployments: every problem at once, with file, key path and position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omniroute.core import DeploymentError, load_deployment
from omniroute.core.durations import parse_duration

GOOD: dict[str, Any] = {
    "channels": {"voice": {}, "chat": {}},
    "queues": {
        "sales": {"target_workers": 'skills HAS "sales"', "task_order": "lifo"},
        "support": {},
    },
    "workflow": {
        "filters": [
            {
                "name": "spanish",
                "expression": 'language == "es"',
                "targets": [
                    {
                        "queue": "sales",
                        "expression": "worker.level >= 3",
                        "timeout": "1m30s",
                        "priority": 10,
                        "order_by": "worker.level DESC",
                        "skip_if": "workers.available == 0",
                    },
                    {"timeout": 60},
                ],
            }
        ],
        "default_queue": "support",
    },
}


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(raw, name="test.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_a_good_deployment_compiles() -> None:
    deployment = load_deployment(GOOD)
    assert deployment.channels == ("voice", "chat")
    assert deployment.queues["sales"].task_order == "lifo"
    assert deployment.queues["sales"].target_workers.references == {"worker.skills"}
    workflow = deployment.workflow
    assert workflow is not None
    first, second = workflow.filters[0].targets
    assert (first.queue, first.timeout, first.priority) == ("sales", 90.0, 10)
    assert second.queue == "sales"  # inherited
    assert second.label == "workflow.filters[0].targets[1]"
    assert workflow.default_queue == "support"


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    raw = {
        "plugins": ["capacity_shar"],
        "chanels": {},
        "queues": {
            "sales": {"target_workers": "skills HAS", "task_order": "random", "skil": "x"},
            "support": {"target_workers": 3},
        },
        "workflow": {
            "filters": [
                {
                    "expression": "language = ",
                    "targets": [{"timeout": "5q"}, {"queue": "nowhere", "priority": "2"}],
                },
                {
                    "expression": "1 == 1",
                    "targets": [{"queue": "sales", "expression": "level > 1"}],
                },
            ],
            "default_queue": 4,
        },
    }
    found = problems_of(raw)
    text = "\n".join(found)
    assert "chanels: unknown key; did you mean 'channels'?" in text
    assert "plugins[0]: unknown plugin 'capacity_shar'" in text
    assert "queues.sales.task_order: must be one of 'fifo', 'lifo', got 'random'" in text
    assert "queues.sales.skil: unknown key; did you mean 'skill'?" in text
    assert "queues.support.target_workers: expected text, got int 3" in text
    assert "workflow.filters[0].targets[0].timeout: expected a duration" in text
    assert "workflow.filters[0].targets[1].priority: expected a whole number, got text '2'" in text
    assert "workflow.default_queue: expected text, got int 4" in text
    # expressions are still compiled where the shape allows, with line, column and caret
    assert "queues.sales.target_workers: expression ends too early" in text
    assert "workflow.filters[0].expression: expression ends too early" in text


def test_semantic_problems_name_their_paths() -> None:
    raw = {
        "queues": {"sales": {}},
        "workflow": {
            "filters": [
                {"expression": "1 == 1", "targets": [{"expression": "worker.level > 1"}]},
                {
                    "expression": "1 == 1",
                    "targets": [{"queue": "sale"}, {"expression": "level > 1"}],
                },
                {"expression": "1 == 1", "targets": []},
                {
                    "expression": "1 ==== 1",
                    "targets": [
                        {
                            "queue": "sales",
                            "order_by": "worker.level SIDEWAYS",
                            "skip_if": "available ==",
                        }
                    ],
                },
            ],
            "default_queue": "suport",
        },
    }
    found = problems_of(raw)
    assert (
        "workflow.filters[0].targets[0].queue: the first target must name a queue (later ones inherit it)"
        in found
    )
    assert (
        "workflow.filters[1].targets[0].queue: unknown queue 'sale'; did you mean 'sales'?" in found
    )
    assert any(
        p.startswith("workflow.filters[1].targets[1].expression: 'level' names no root")
        for p in found
    )
    assert "workflow.filters[2].targets: a filter needs at least one target" in found
    assert any(p.startswith("workflow.filters[3].expression: unexpected") for p in found)
    assert any(p.startswith("workflow.filters[3].targets[0].order_by:") for p in found)
    assert any(
        p.startswith("workflow.filters[3].targets[0].skip_if: expression ends too early")
        for p in found
    )
    assert "workflow.default_queue: unknown queue 'suport'; did you mean 'support'?" not in found
    assert any(p.startswith("workflow.default_queue: unknown queue 'suport'") for p in found)


def test_target_expressions_may_only_read_task_and_worker() -> None:
    raw = {
        "queues": {"q": {}},
        "workflow": {
            "filters": [
                {
                    "expression": "1 == 1",
                    "targets": [{"queue": "q", "expression": "workers.available > 0"}],
                }
            ]
        },
    }
    assert problems_of(raw) == [
        "workflow.filters[0].targets[0].expression: may only read task and worker; it reads workers.available"
    ]


def test_expression_errors_show_line_column_and_caret() -> None:
    raw = {"queues": {"sales": {"target_workers": 'skills HAS "sales" AND first-name == "x"'}}}
    (problem,) = problems_of(raw)
    lines = problem.splitlines()
    assert lines[0].startswith("queues.sales.target_workers: '-' cannot appear in a name")
    assert "(line 1, column 29)" in lines[0]
    assert lines[-1].strip() == "^"


def test_error_message_names_the_file_and_counts() -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment({"queues": {"a": {"target_workers": 1}}, "bogus": 1}, name="site.yaml")
    text = str(caught.value)
    assert text.splitlines()[0] == "site.yaml: 2 problems"
    assert "  bogus: unknown key" in text


def test_not_a_mapping() -> None:
    assert problems_of(["queues"]) == [
        "(top level): a deployment must be a mapping of keys, not list"
    ]


def test_core_and_duplicates_in_the_plugin_list() -> None:
    found = problems_of({"plugins": ["core", 3]})
    assert "plugins[0]: 'core' is always active; leave it out" in found
    assert "plugins[1]: expected text, got int 3" in found


def test_workflow_needs_a_filter_or_a_default_queue() -> None:
    assert problems_of({"workflow": {}}) == [
        "workflow: a workflow needs at least one filter or a default_queue"
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".toml"])
def test_files_of_every_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deployment{suffix}"
    data = {"channels": {"chat": {}}, "queues": {"support": {"target_workers": "1 == 1"}}}
    if suffix == ".toml":
        path.write_text('[channels.chat]\n[queues.support]\ntarget_workers = "1 == 1"\n')
    elif suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        path.write_text("channels: {chat: {}}\nqueues:\n  support: {target_workers: '1 == 1'}\n")
    deployment = load_deployment(path)
    assert deployment.source == str(path)
    assert list(deployment.queues) == ["support"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "queues: [\n", "not valid YAML"),
        ("bad.json", "{", "not valid JSON: Expecting property name"),
        ("bad.toml", "queues = [", "not valid TOML"),
        ("twice.yaml", "queues: {}\nqueues: {}\n", "key 'queues' is given twice"),
        ("bad.ini", "x", "unknown file type '.ini'"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DeploymentError) as caught:
        load_deployment(path)
    assert caught.value.source == str(path)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="cannot read the file"):
        load_deployment(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1h 30m", 5400.0),
        ("0.5m", 30.0),
    ],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [-1, True, "5q", "30m1h", "1h1h", "", None, [1]])
def test_bad_durations(value: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)
