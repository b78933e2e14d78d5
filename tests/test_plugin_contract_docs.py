"""docs/plugin-authoring.md documents the whole plugin contract, as datasette's
tests/test_docs.py checks its hooks: every hook, event, PluginContext member, component
class (with every field) and every field of Task and Agent is named on the page."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest

from omniroute.core import PluginContext, hookspecs
from omniroute.core import components as components_module
from omniroute.core.components import EVENTS
from omniroute.core.state import Agent, Task

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "plugin-authoring.md").read_text()

HOOKS = [
    name
    for name, value in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("omniroute_")
]
MEMBERS = [name for name in dir(PluginContext) if not name.startswith("_")]
COMPONENTS = [
    value
    for _, value in inspect.getmembers(components_module, inspect.isclass)
    if attrs.has(value) and value.__module__ == components_module.__name__
]


def test_the_lists_are_not_empty() -> None:
    assert len(HOOKS) >= 9
    assert len(MEMBERS) >= 20
    assert len(COMPONENTS) == 7
    assert "entered_queue" in EVENTS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    assert f"`{hook}(" in PAGE


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_is_documented(event: str) -> None:
    assert re.search(rf"^\| `{event}` \|", PAGE, re.MULTILINE), f"no row for event {event!r}"


@pytest.mark.parametrize("member", MEMBERS)
def test_every_context_member_is_documented(member: str) -> None:
    assert f"`context.{member}" in PAGE


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda kind: kind.__name__)
def test_every_component_is_documented_with_every_field(component: type) -> None:
    match = re.search(rf"`{component.__name__}\(([^`]*)\)`", PAGE)
    assert match, f"no `{component.__name__}(...)` signature on the page"
    documented = {part.split("=")[0].strip() for part in match.group(1).split(",")}
    assert documented == {field.name for field in attrs.fields(component)}


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field.name) for kind in (Task, Agent) for field in attrs.fields(kind)],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_task_and_agent_field_is_documented(kind: type, field: str) -> None:
    match = re.search(rf"An? `{kind.__name__}`:\n\n(.*?)\n\n", PAGE, re.DOTALL)
    assert match, f"no table of {kind.__name__} fields"
    assert re.search(rf"^\| [^|]*`{field}`", match.group(1), re.MULTILINE)
