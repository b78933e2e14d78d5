"""Every shell example in the docs runs, exactly as written, against the files we ship.

In a ```console block each `$ ` line (with `\\` continuations) is a command, and the lines
after it, up to the next `$ `, are exactly what it prints (stdout and stderr as a terminal
shows them). In a ```bash block of the docs every line is a command that must succeed.
Commands run in a scratch folder that holds the repository's `examples/` and `tests/`, so
what they write (`--plot charts/`) lands there, with the installed `omniroute` first on PATH.
The README's Quick start block is not here: `.ci/run` runs it, in a fresh venv.

YAML, TOML and JSON blocks are either whole deployment files, checked by loading them, or
marked as fragments by the paragraph just before them, which starts with "Fragment".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from omniroute.core import load_deployment

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.md")]
)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(kinds: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """(page:line, kind, body, the line before) of every fenced block of those kinds."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group(1) not in kinds:
                continue
            line = text.count("\n", 0, match.start()) + 1
            # The paragraph just before the fence.
            before = text[: match.start()].rstrip("\n").rpartition("\n\n")[2]
            if page.name == "README.md" and page.parent == ROOT and before.startswith("## Quick"):
                continue
            found.append(
                (f"{page.relative_to(ROOT)}:{line}", match.group(1), match.group(2), before)
            )
    return found


def _transcript(body: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of a console block."""
    steps: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        assert line.startswith("$ "), f"output before any command: {line!r}"
        command = line[2:]
        while command.endswith("\\"):
            index += 1
            command = command + "\n" + lines[index]
        index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        steps.append((command, output))
    return steps


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    for folder in ("examples", "tests"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    return tmp_path


def _run(command: str, where: Path) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=where,
        env={**os.environ, "PATH": path, "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=300,
    )


# docs/service.md talks to a running server (`$OMNIROUTE`): tests/service/test_docs.py
# starts one and runs that page's commands against it.
SERVED = "docs/service.md"
CONSOLE = [block for block in _blocks(("console",)) if not block[0].startswith(SERVED)]
BASH = [block for block in _blocks(("bash", "sh", "shell")) if not block[0].startswith("README")]


def test_there_are_shell_examples() -> None:
    assert len(CONSOLE) >= 6
    assert BASH


@pytest.mark.parametrize(("where", "kind", "body", "before"), CONSOLE, ids=[b[0] for b in CONSOLE])
def test_console_examples_print_what_they_show(
    scratch: Path, where: str, kind: str, body: str, before: str
) -> None:
    for command, expected in _transcript(body):
        done = _run(command, scratch)
        shown = "\n".join(expected).rstrip()
        assert done.stdout.rstrip() == shown, f"{where}: $ {command}\n{done.stdout}"


@pytest.mark.parametrize(("where", "kind", "body", "before"), BASH, ids=[b[0] for b in BASH])
def test_bash_examples_succeed(
    scratch: Path, where: str, kind: str, body: str, before: str
) -> None:
    commands = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    for command in commands:
        done = _run(command, scratch)
        assert done.returncode == 0, f"{where}: {command}\n{done.stdout}"


def test_every_block_names_its_language() -> None:
    """A shell example in an untagged block would escape the tests above."""
    untagged = [
        f"{page.relative_to(ROOT)}:{page.read_text().count(chr(10), 0, match.start()) + 1}"
        for page in PAGES
        for match in BLOCK.finditer(page.read_text(encoding="utf-8"))
        if not match.group(1)
    ]
    assert untagged == []


FILES = _blocks(("yaml", "toml", "json"))


def _parse(kind: str, body: str) -> Any:
    if kind == "yaml":
        return yaml.safe_load(body)
    if kind == "toml":
        return tomllib.loads(body)
    return json.loads(body)


@pytest.mark.parametrize(("where", "kind", "body", "before"), FILES, ids=[b[0] for b in FILES])
def test_file_blocks_are_whole_deployments_or_marked_fragments(
    where: str, kind: str, body: str, before: str
) -> None:
    if before.lower().startswith("fragment"):
        _parse(kind, body)  # still well-formed
        return
    load_deployment(_parse(kind, body), name=where)


def test_readme_links_work_on_pypi() -> None:
    """PyPI shows the README without the repository: a relative link there leads nowhere."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []
    for target in targets:
        prefix = "https://github.com/omniroute/omniroute/"
        if target.startswith(prefix):
            path = target.removeprefix(prefix).split("/", 2)[2].partition("#")[0]
            assert (ROOT / path).exists(), target


def test_packaging_metadata() -> None:
    import importlib.metadata

    meta = importlib.metadata.metadata("omniroute")
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert meta["License-Expression"] == "Apache-2.0"
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.13" in classifiers
    assert "Framework :: Pytest" in classifiers
