"""docs/service.md, run as written: each `$ curl` against a real server, its shown output
compared with what came back (what the page shows must be there; a page may leave out
keys), then the Python block."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .server import Server

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "service.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), flags=re.S)


def contains(actual: Any, shown: Any) -> bool:
    """Whether `actual` has everything `shown` shows (dicts may have more keys)."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in shown.items()
        )
    if isinstance(shown, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(shown)
            and all(contains(a, s) for a, s in zip(actual, shown, strict=True))
        )
    return bool(actual == shown)


def curl_steps() -> list[tuple[str, str | None]]:
    steps: list[tuple[str, str | None]] = []
    for block in blocks("console"):
        lines = block.splitlines()
        for number, line in enumerate(lines):
            if line.startswith("$ curl"):
                following = lines[number + 1] if number + 1 < len(lines) else ""
                steps.append((line[2:], None if following.startswith("$") else following))
    return steps


def test_the_page_has_a_walkthrough() -> None:
    assert len(curl_steps()) >= 12
    assert blocks("python")


@pytest.fixture
def walkthrough_server(tmp_path: Path) -> Any:
    deployment = ROOT / "examples" / "taskrouter-workflow" / "deployment.yaml"
    server = Server(
        tmp_path, "--reservation-timeout", "none", deployments=(str(deployment),)
    ).start()
    yield server
    server.stop()


def test_curl_walkthrough_then_the_client(walkthrough_server: Server) -> None:
    server = walkthrough_server
    env = {**os.environ, "OMNIROUTE": server.url}
    for command, shown in curl_steps():
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=30
        )
        assert result.returncode == 0, (command, result.stderr)
        if shown:
            actual = json.loads(result.stdout)
            assert contains(actual, json.loads(shown)), (command, actual)
    for block in blocks("python"):
        exec(compile(block, str(PAGE), "exec"), {"url": server.url})
