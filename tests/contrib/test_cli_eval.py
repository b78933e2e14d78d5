"""`omniroute eval`: the console script as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contrib.helpers import run_cli as run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "expressions"


def test_true_and_false(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--task", '{"language": "es"}', "--worker", '{"languages": ["es"], "level": 4}')
    assert run(capsys, "eval", "task.language IN worker.languages", *args) == (0, "true\n", "")
    assert run(capsys, "eval", "worker.level > 4", *args) == (0, "false\n", "")


def test_context_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"workers": {"available": 0}, "task": {"x": 1}}))
    code, out, _ = run(
        capsys, "eval", "workers.available == 0 AND task.x == 1", "--context", f"@{context}"
    )
    assert (code, out) == (0, "true\n")
    # --task replaces the context's task root
    code, out, _ = run(
        capsys, "eval", "task.x == 1", "--context", f"@{context}", "--task", '{"x": 2}'
    )
    assert (code, out) == (0, "false\n")


def test_bundled_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "eval",
        f"@{EXAMPLES / 'spanish-vip-chat.txt'}",
        "--context",
        f"@{EXAMPLES / 'ana-and-a-chat.json'}",
    )
    assert (code, out, err) == (0, "true\n", "")


def test_default_root(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "eval",
        'skills HAS "sales"',
        "--default-root",
        "worker",
        "--worker",
        '{"skills": ["sales"]}',
    )
    assert (code, out) == (0, "true\n")


def test_bad_expression_exits_2_with_a_caret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "eval", "worker.first-name == 1")
    assert code == 2
    assert out == ""
    assert "'-' cannot appear in a name" in err
    assert err.rstrip("\n").splitlines()[-1] == "  " + " " * 12 + "^"
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "eval", "a ==")
    assert code == 2
    assert "Traceback" in err
    code, _, err = run(capsys, "eval", "--debug", "a ==")
    assert code == 2
    assert "Traceback" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--task", "{bad"), "--task: the value is not valid JSON"),
        (("--worker", "@/nonexistent/file.json"), "--worker: cannot read /nonexistent/file.json"),
        (("--context", "[1, 2]"), "--context: must be a JSON object"),
    ],
)
def test_bad_json_exits_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "eval", "1 == 1", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_missing_expression_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "eval", "@/nonexistent/rule.txt")
    assert code == 2
    assert "cannot read" in err


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "eval")
    assert code == 2
    assert "Missing argument" in err
    code, out, _ = run(capsys, "eval", "--help")
    assert code == 0
    assert "Evaluate EXPRESSION" in out
    assert "--default-root" in out
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "eval" in out


def test_unexpected_errors_are_one_line_without_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import omniroute.contrib.cli as cli_module

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_module, "compile_expression", explode)
    code, _, err = run(capsys, "eval", "1 == 1")
    assert code == 3
    assert "internal error: RuntimeError: boom" in err
    assert "--debug" in err
    assert "Traceback" not in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "omniroute"
    assert script.exists(), "the omniroute console script is not installed next to python"
    completed = subprocess.run(
        [str(script), "eval", "1 == 1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout == "true\n"
