"""A routing pass that sorts (task orderings that are not fixed) tries a lone task before
its order key is computed, as the heap path does; the key is computed after the pass
only if the task still waits, so that an ordering that raises still fails the event."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from omniroute.core import (
    Engine,
    EngineOptions,
    Filter,
    PluginError,
    TaskOrdering,
    hookimpl,
    load_deployment,
)
from omniroute.core import plugins as plugin_registry
from omniroute.core.state import Task


class Fussy:
    """A task ordering (not fixed: passes sort) that has no order for some tasks."""

    def __init__(self) -> None:
        self.ordered: list[str] = []

    @hookimpl
    def omniroute_task_orderings(self) -> Iterable[TaskOrdering]:
        def order(task: Task) -> int:
            self.ordered.append(task.id)
            if task.attributes.get("unordered"):
                raise ValueError("no order for this task")
            return 0

        return [TaskOrdering("fussy", order)]

    @hookimpl
    def omniroute_filters(self) -> Iterable[Filter]:
        return [
            Filter(
                "not_closed",
                lambda _task, agent: not agent.attributes.get("closed"),
                lambda _task, _agent: "closed",
            )
        ]


@pytest.fixture
def fussy() -> Iterator[Fussy]:
    plugin = Fussy()
    manager = plugin_registry.plugin_manager()
    manager.register(plugin, name="fussy")
    try:
        yield plugin
    finally:
        manager.unregister(name="fussy")


def fussy_engine() -> Engine:
    raw = {"plugins": ["fussy"], "channels": {"chat": {}}}
    return Engine(load_deployment(raw), options=EngineOptions(record_decisions=False))


def test_a_lone_task_that_finds_an_agent_is_offered_without_its_order_key(fussy: Fussy) -> None:
    engine = fussy_engine()
    engine.add_agent("ana", {"chat": 1})
    engine.create_task("t1", "chat", {"unordered": True})
    assert [(o.task, o.agent) for o in engine.offers] == [("t1", "ana")]
    assert fussy.ordered == []


def test_a_lone_task_tried_and_left_waiting_gets_its_order_key(fussy: Fussy) -> None:
    engine = fussy_engine()
    engine.add_agent("ana", {"chat": 1}, {"closed": True})  # open, but no task passes
    engine.create_task("t1", "chat")
    assert fussy.ordered == ["t1"]  # tried alone, still waiting: keyed after the pass
    engine.set_agent("ana", {"closed": False})
    assert [(o.task, o.agent) for o in engine.offers] == [("t1", "ana")]


def test_an_ordering_that_fails_for_a_lone_task_left_waiting_fails_the_event(
    fussy: Fussy,
) -> None:
    engine = fussy_engine()
    engine.add_agent("ana", {"chat": 1}, {"closed": True})
    with pytest.raises(PluginError, match="fussy"):
        engine.create_task("t1", "chat", {"unordered": True})
    assert "t1" not in engine.state.tasks  # the failing event changed nothing
