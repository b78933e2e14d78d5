"""The pytest plugin, as an operator's own repository uses it: `pytest scenarios/`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "taskrouter-workflow"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A deployment repository: a passing scenario, a failing one, and unrelated data files."""
    scenarios = pytester.mkdir("scenarios")
    shutil.copy(EXAMPLE / "deployment.yaml", scenarios / "deployment.yaml")
    passing = (EXAMPLE / "spanish-chats.yaml").read_text()
    (scenarios / "spanish-chats.yaml").write_text(passing)
    failing = passing.replace("{task: c5, agent: carlos, at: 60}", "{task: c5, agent: dan, at: 60}")
    failing = failing.replace(
        "name: Spanish chats", "name: Wrong guess about overflow of Spanish chats"
    )
    (scenarios / "overflow.yaml").write_text(failing)
    (scenarios / "settings.json").write_text('{"colour": "blue"}')
    (scenarios / "broken-but-not-ours.yaml").write_text("key: [unclosed\n")
    return pytester


def test_each_scenario_file_is_one_item(project: pytest.Pytester) -> None:
    result = project.runpytest("scenarios", "-p", "no:cacheprovider", "--collect-only", "-q")
    assert sorted(line for line in result.outlines if "::" in line) == [
        "scenarios/overflow.yaml::overflow",
        "scenarios/spanish-chats.yaml::spanish-chats",
    ]


def test_a_failure_shows_the_side_by_side_diff(project: pytest.Pytester) -> None:
    result = project.runpytest("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAIL  Wrong guess about overflow of Spanish chats*",
            "*- offers differ*",
            "*expected*actual*",
            "  !  6  c5 -> dan at 60  c5 -> carlos at 60",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_k_matches_the_scenario_name_and_x_and_junitxml_come_from_pytest(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("scenarios", "-p", "no:cacheprovider", "-k", "guess")
    result.assert_outcomes(failed=1, deselected=1)
    result = project.runpytest("scenarios", "-p", "no:cacheprovider", "-x", "--junitxml=out.xml")
    result.assert_outcomes(failed=1)  # overflow.yaml sorts first; -x stops there
    report = (project.path / "out.xml").read_text()
    assert 'name="overflow"' in report
    assert "c5 -&gt; carlos at 60" in report


def test_a_named_file_is_collected_even_when_it_cannot_be_read(project: pytest.Pytester) -> None:
    result = project.runpytest("scenarios/broken-but-not-ours.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the scenario could not be loaded*"])


def test_the_plugin_can_be_switched_off(project: pytest.Pytester) -> None:
    result = project.runpytest("scenarios", "-p", "no:cacheprovider", "-p", "no:omniroute")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
