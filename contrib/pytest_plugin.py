"""Scenario files as pytest items, in any project that installs omniroute.

Registered through the `pytest11` entry point, so `pytest path/to/scenarios` collects every
scenario file under the path: one item per scenario, named after the file, whose failure
shows what `omniroute test` shows (the failed checks, expected and actual offers side by
side). pytest's own options then apply: `-k` (which also matches the scenario's `name:`),
`-x`, `--junitxml`, `-p no:omniroute` to switch the plugin off.

In a folder, a file is collected when it parses as a scenario (a mapping with `deployment`
and `events` or `expect`); a file named on the command line is always collected, so that
one that cannot be read fails with the reason instead of being passed over.

omniroute is imported only when a file is collected, after pytest-cov has started: a plugin
loaded at start-up that imported the engine would hide its module-level lines from coverage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .scenario import ScenarioResult

SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix.lower() not in SUFFIXES:
        return None
    from . import scenario as scenarios

    named = parent.session.isinitpath(file_path)
    if named or scenarios.looks_like_scenario(file_path, strict=True):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: it holds one scenario, so one item."""

    def collect(self) -> Iterator[pytest.Item]:
        from . import scenario as scenarios

        item = ScenarioItem.from_parent(self, name=self.path.stem)
        # `-k` matches the words of the scenario's own name as well as the file's.
        item.extra_keyword_matches.add(scenarios.name_of(self.path))
        yield item


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from . import scenario as scenarios

        result = scenarios.run_file(self.path)
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            from . import scenario as scenarios

            return "\n".join(scenarios.report_lines(excinfo.value.result))
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"


class ScenarioFailed(Exception):
    """What a failing scenario raises, so that repr_failure can show its report."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result
