"""What every command shares: --json with a schema, the exit-code table, @- for stdin, a
quiet end on a closed pipe, --version with the plugins, shell completion."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import omniroute
from omniroute.contrib.cli import SCHEMA_VERSION, cli

from .helpers import run_cli as run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "omniroute"
CORE_SCENARIOS = ROOT / "tests" / "scenarios" / "core"
EXAMPLE = ROOT / "examples" / "taskrouter-workflow"
WORKLOAD = {
    "deployment": {"queues": {"q": {}}},
    "duration": "10m",
    "agents": [{"count": 2, "channels": {"voice": 1}}],
    "traffic": [{"channel": "voice", "rate": "60/h", "handle_time": {"constant": "1m"}}],
}


def test_every_command_takes_json() -> None:
    for name, command in cli.commands.items():
        assert "--json" in {opt for param in command.params for opt in param.opts}, name


def json_objects(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("eval", ["eval", "task.a == 1", "--task", '{"a": 1}']),
        ("check", ["check", str(EXAMPLE / "deployment.yaml")]),
        ("test", ["test", str(EXAMPLE)]),
        ("explain", ["explain", str(EXAMPLE / "spanish-chats.yaml"), "--task", "c5"]),
        ("simulate", ["simulate", "WORKLOAD"]),
        ("plugins", ["plugins"]),
    ],
)
def test_json_objects_carry_their_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, args: list[str]
) -> None:
    workload = tmp_path / "workload.json"
    workload.write_text(json.dumps(WORKLOAD))
    args = [str(workload) if arg == "WORKLOAD" else arg for arg in args]
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    objects = json_objects(out)
    assert objects
    for value in objects:
        assert value["schema"] == f"omniroute.{command}/{SCHEMA_VERSION}"


def test_json_of_eval_check_and_plugins(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, out, _ = run(
        capsys,
        "eval",
        "level > 2",
        "--default-root",
        "worker",
        "--worker",
        '{"level": 3}',
        "--json",
    )
    assert json_objects(out) == [
        {
            "schema": "omniroute.eval/1",
            "expression": "level > 2",
            "result": True,
            "references": ["worker.level"],
        }
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues: {a: {task_order: up}}\n")
    code, out, err = run(capsys, "check", str(bad), "--json")
    assert (code, err) == (1, "")
    (report,) = json_objects(out)
    assert report["valid"] is False
    assert report["problems"] == [
        {
            "path": "queues.a.task_order",
            "message": "must be one of 'fifo', 'lifo', got 'up'",
            "severity": "error",
        }
    ]
    _, out, _ = run(capsys, "plugins", "--json")
    (listing,) = json_objects(out)
    names = {plugin["name"] for plugin in listing["plugins"]}  # type: ignore[union-attr]
    assert {"core", "off_hours", "capacity_share"} <= names


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["eval", "task.a =="], 2),  # a bad expression
        (["eval", "1 == 1", "--task", "{"], 2),  # bad JSON
        (["check", "tests/deployments/none.yaml"], 2),  # no such file
        (["test", "examples/contact-center/workload.yaml"], 1),  # not a scenario: it fails
        (["test", "tests/deployments"], 2),  # no scenario in the folder
        (["test", str(CORE_SCENARIOS), "-k", "no-such-scenario"], 2),
        (["explain", str(EXAMPLE / "spanish-chats.yaml"), "--task", "zz"], 2),
        (["simulate", "tests/deployments/workflow.yaml"], 2),  # a deployment, not a workload
        (["frobnicate"], 2),  # usage
        (["eval"], 2),
        (["eval", "1 == 1", "--no-such-option"], 2),
    ],
)
def test_one_table_of_exit_codes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], code: int
) -> None:
    monkeypatch.chdir(ROOT)
    got, _, err = run(capsys, *args)
    assert got == code, err
    assert "Traceback" not in err


def test_check_with_errors_is_failures_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("plugins: [nope]\n")
    code, _, err = run(capsys, "check", str(bad))
    assert code == 1
    assert "plugins[0]: unknown plugin 'nope'" in err


def test_stdin_with_at_dash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"task": {"language": "es"}}'))
    assert run(capsys, "eval", 'task.language == "es"', "--context", "@-")[:2] == (0, "true\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO('task.language == "en"\n'))
    assert run(capsys, "eval", "@-", "--task", '{"language": "en"}')[:2] == (0, "true\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("{}"))
    code, _, err = run(capsys, "eval", "@-", "--context", "@-")
    assert code == 2
    assert "--context: standard input (@-) was already read for EXPRESSION" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    code, _, err = run(capsys, "eval", "1 == 1", "--task", "@-")
    assert code == 2
    assert "--task: standard input is not valid JSON" in err


def test_a_closed_pipe_ends_quietly() -> None:
    for args in (["test", str(CORE_SCENARIOS)], ["plugins"], ["eval", "1 == 1", "--json"]):
        process = subprocess.Popen(
            [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # the reader is gone before the first line
        err = process.stderr.read().decode()
        assert process.wait() == 0, err
        assert err == ""


def test_a_closed_pipe_after_some_lines_with_head() -> None:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{SCRIPT}' test '{CORE_SCENARIOS}' | head -1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS")
    assert done.stderr == ""


def test_version_lists_the_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"omniroute {omniroute.__version__} (Python ")
    assert lines[1] == "plugins:"
    for plugin in (
        "core",
        "capacity_share",
        "toggle_to_one",
        "least_occupancy",
        "weighted_cascade",
        "off_hours",
    ):
        assert f"  {plugin} {omniroute.__version__} (omniroute)" in lines


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")],
)
def test_shell_completion_scripts(shell: str, marker: str) -> None:
    done = subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "_OMNIROUTE_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert marker in done.stdout


def test_completion_completes_commands() -> None:
    done = subprocess.run(
        [str(SCRIPT)],
        env={
            **os.environ,
            "_OMNIROUTE_COMPLETE": "bash_complete",
            "COMP_WORDS": "omniroute si",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["plain,simulate"]


def test_test_k_x_q(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "test", str(CORE_SCENARIOS), "-k", "LIFO")
    assert code == 0
    assert out.splitlines()[0].startswith("PASS  ")
    assert "lifo.yaml" in out
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed"
    for name in ("a-fails", "b-fails", "c-passes"):
        text = (EXAMPLE / "spanish-chats.yaml").read_text()
        text = text.replace(
            "deployment: deployment.yaml", f"deployment: {EXAMPLE / 'deployment.yaml'}"
        )
        if "fails" in name:
            text = text.replace("agent: carlos", "agent: dan")
        (tmp_path / f"{name}.yaml").write_text(
            text.replace("name: Spanish", f"name: {name} Spanish")
        )
    code, out, _ = run(capsys, "test", str(tmp_path), "-x")
    assert code == 1
    assert out.count("FAIL  ") == 1
    assert (
        out.strip().splitlines()[-1]
        == "0 passed, 1 failed (stopped at the first failure; 2 not run)"
    )
    code, out, _ = run(capsys, "test", str(tmp_path), "-q")
    assert code == 1
    assert "PASS" not in out
    assert out.count("FAIL  ") == 2
    assert out.strip().splitlines()[-1] == "1 passed, 2 failed"
