"""docs/seeds.md maps every routing sentence of the seeds to the scenarios that hold it:
each file it names exists and passes, and each unit test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omniroute.contrib import scenario as scenarios

ROOT = Path(__file__).resolve().parents[1]
TABLE = (ROOT / "docs" / "seeds.md").read_text(encoding="utf-8")
PREFIXES = {"TS": "tests/scenarios", "EX": "examples"}
SCENARIOS = sorted(
    {
        ROOT / PREFIXES[prefix] / rest
        for prefix, rest in re.findall(r"`(TS|EX)/([^`]+\.yaml)`", TABLE)
    }
)
UNIT_TESTS = sorted(set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", TABLE)))
ROWS = re.findall(r"^\| ([BLPT]\d+) \|", TABLE, re.MULTILINE)


def test_every_row_names_what_holds_it() -> None:
    assert len(ROWS) == len(set(ROWS)) >= 60
    for line in TABLE.splitlines():
        if re.match(r"^\| [BLPT]\d+ \|", line):
            held_by = line.rsplit("|", 2)[-2]
            assert "`" in held_by, line


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda path: str(path.relative_to(ROOT)))
def test_each_scenario_named_passes(path: Path) -> None:
    assert path.is_file(), path
    result = scenarios.run_file(path)
    assert result.passed, "\n".join(scenarios.report_lines(result))


@pytest.mark.parametrize(("module", "name"), UNIT_TESTS)
def test_each_unit_test_named_exists(module: str, name: str) -> None:
    assert re.search(rf"^def {name}\(", (ROOT / module).read_text(), re.MULTILINE), (module, name)
