"""Docs cover every hook; every bundled example deployment and scenario passes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from omniroute.contrib import scenario as scenarios
from omniroute.core import hookspecs, load_deployment

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    name
    for name, value in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("omniroute_")
]


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 7


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_reference_docs(hook: str) -> None:
    function = getattr(hookspecs, hook)
    assert function.__doc__
    assert len(function.__doc__.split()) >= 10
    assert f"`{hook}(" in (ROOT / "docs" / "plugin-authoring.md").read_text()


EXAMPLE_SCENARIOS = sorted(
    p for p in (ROOT / "examples").rglob("*.yaml") if scenarios.looks_like_scenario(p)
)
EXAMPLE_DEPLOYMENTS = sorted(p for p in (ROOT / "examples").rglob("deployment*.yaml"))


def test_examples_exist() -> None:
    assert EXAMPLE_SCENARIOS
    assert EXAMPLE_DEPLOYMENTS


@pytest.mark.parametrize("path", EXAMPLE_DEPLOYMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_deployments_load(path: Path) -> None:
    load_deployment(path)


@pytest.mark.parametrize("path", EXAMPLE_SCENARIOS, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_scenarios_pass(path: Path) -> None:
    result = scenarios.run_file(path)
    assert result.passed, "\n".join(scenarios.report_lines(result))


BUILT_IN = ["capacity_share", "toggle_to_one", "least_occupancy", "weighted_cascade", "off_hours"]


@pytest.mark.parametrize("plugin", BUILT_IN)
def test_every_built_in_plugin_has_a_page_and_an_example(plugin: str) -> None:
    page = ROOT / "docs" / "plugins" / f"{plugin}.md"
    assert page.exists()
    assert "## Decisions where the seed is silent" in page.read_text()
    deployment = load_deployment(ROOT / "examples" / plugin / "deployment.yaml")
    assert plugin in deployment.plugins
    assert any(p.parent.name == plugin for p in EXAMPLE_SCENARIOS)


def test_the_contact_center_uses_all_five() -> None:
    deployment = load_deployment(ROOT / "examples" / "contact-center" / "deployment.yaml")
    assert sorted(deployment.plugins) == sorted(BUILT_IN)
    assert set(deployment.channels) == {"voice", "callback", "chat", "email", "messaging"}
    assert deployment.warnings == ()


def test_the_service_levels_example_simulates_against_each_queue_s_own_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from omniroute.contrib.cli import main

    folder = ROOT / "examples" / "service-levels"
    assert (
        main(
            ["check", str(folder / "deployment.yaml"), "--workload", str(folder / "workload.yaml")]
        )
        == 0
    )
    assert capsys.readouterr().err == ""  # every queue it uses has a service level
    assert main(["simulate", str(folder / "workload.yaml"), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    by_queue = json.loads(captured.out)["by_queue"]
    assert {queue: values["service_level_from"] for queue, values in by_queue.items()} == {
        "callbacks": "queue",
        "support": "deployment",
        "vip": "queue",
    }
    assert {queue: values["service_level_threshold"] for queue, values in by_queue.items()} == {
        "callbacks": 300.0,
        "support": 30.0,
        "vip": 10.0,
    }
