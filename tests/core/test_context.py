"""The plugin contract: what a PluginContext offers, and what it keeps out of reach."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from omniroute.core import (
    Agent,
    Engine,
    EngineOptions,
    EventHandler,
    PluginContext,
    PluginError,
    Problem,
    checks,
    hookimpl,
    load_deployment,
)
from omniroute.core import plugins as plugin_registry
from omniroute.core.context import json_like
from omniroute.core.undo import RecordedDict


class Recorder:
    """Keeps the context it was given, and says one thing about every roster."""

    def __init__(self) -> None:
        self.contexts: list[PluginContext] = []

    @hookimpl
    def omniroute_event_handlers(self, context: PluginContext) -> Iterable[EventHandler]:
        self.contexts.append(context)
        return []

    @hookimpl
    def omniroute_filters(self, context: PluginContext) -> list[Any]:
        self.contexts.append(context)
        return []

    @hookimpl
    def omniroute_roster_warnings(self, roster: list[Agent]) -> Iterable[Problem]:
        yield Problem("recorder", f"{len(roster)} agents", "warning")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    plugin = Recorder()
    manager = plugin_registry.plugin_manager()
    manager.register(plugin, name="recorder")
    try:
        yield plugin
    finally:
        manager.unregister(name="recorder")


DEPLOYMENT = {
    "plugins": ["recorder"],
    "channels": {"chat": {}, "voice": {}},
    "queues": {"sales": {}, "support": {}},
}


def engine_with(**options: Any) -> Engine:
    return Engine(load_deployment(DEPLOYMENT), options=EngineOptions(**options))


def test_every_hook_of_a_plugin_gets_the_same_context_and_no_engine(recorder: Recorder) -> None:
    engine = engine_with()
    first, second = recorder.contexts
    assert first is second is engine.pipeline.contexts["recorder"]
    assert first.plugin == "recorder"
    assert first.owner == "recorder"
    assert not hasattr(first, "engine")
    assert not hasattr(first, "__dict__")  # slots: nothing to hang the engine on later
    assert repr(first) == "PluginContext(plugin='recorder')"
    assert engine.pipeline.contexts["core"].owner is None


def test_queries_read_the_engine(recorder: Recorder) -> None:
    engine = engine_with()
    context = engine.pipeline.contexts["recorder"]
    engine.add_agent("ana", {"chat": 1}, status="not_ready")
    for n, (queue, channel) in enumerate(
        [("sales", "chat"), ("support", "chat"), ("sales", "voice"), ("sales", "chat")]
    ):
        engine.advance_to(n)
        engine.create_task(f"t{n}", channel, queue=queue)
    # across the queue's channels, in the order the tasks started waiting
    assert [task.id for task in context.waiting("sales")] == ["t0", "t2", "t3"]
    assert [task.id for task in context.waiting("support")] == ["t1"]
    assert list(context.waiting("nowhere")) == []
    task = context.task("t1")
    assert task is not None
    assert context.task("nope") is None
    assert context.queue_of(task) is engine.deployment.queues["support"]
    assert context.target_of(task) is None
    assert context.target_label(task) == "queue support"
    assert context.effective_priority(task) == 0
    assert context.queue_counts("support", "chat") == {"available": 0, "total": 1}
    assert context.now == 3
    assert context.wall_time() == engine.wall_time()
    assert context.start == engine.start
    assert context.expression_context(task)["task"]["queue"] == "support"


def test_state_is_recorded_and_undone_with_a_failing_event(recorder: Recorder) -> None:
    engine = engine_with()
    context = engine.pipeline.contexts["recorder"]
    ana = engine.add_agent("ana", {"chat": 1})
    assert isinstance(context.agent_state(ana), RecordedDict)
    assert isinstance(context.state(), RecordedDict)

    def boom(_payload: Any) -> None:
        context.state()["nested"] = {"counts": [1]}
        context.state()["nested"]["counts"].append(2)
        context.agent_state(ana)["seen"] = True
        raise RuntimeError("boom")

    context.on_timer("boom", boom)
    context.set_timer(5, "boom")
    with pytest.raises(PluginError, match="recorder"):
        engine.advance_to(10)
    assert "nested" not in context.state()
    assert "seen" not in context.agent_state(ana)


def test_timers_are_named_and_their_payloads_json_like(recorder: Recorder) -> None:
    engine = engine_with()
    context = engine.pipeline.contexts["recorder"]
    with pytest.raises(ValueError, match="no handler for timer 'later' of recorder"):
        context.set_timer(5, "later")
    context.on_timer("later", lambda payload: None)
    with pytest.raises(TypeError, match="JSON-like"):
        context.set_timer(5, "later", {"when": lambda: None})
    with pytest.raises(TypeError, match="JSON-like"):
        context.set_timer(5, "later", {1: "not a string key"})
    timer_id = context.set_timer(5, "later", {"task": "t1", "at": [1.5, None, True]})
    assert engine.state.timers[0][1:] == (
        timer_id,
        "recorder",
        "later",
        {"task": "t1", "at": [1.5, None, True]},
    )


def test_json_like() -> None:
    assert json_like({"a": [1, 2.5, "x", None, True, (1, 2)]})
    assert not json_like({"a": {1, 2}})
    assert not json_like(object())


def test_roster_warnings_come_from_the_plugins(recorder: Recorder) -> None:
    deployment = load_deployment(DEPLOYMENT)
    agents = [Agent("ana", 0, {}, (), {"chat": 1})]
    found = [str(problem) for problem in checks.roster_warnings(deployment, agents)]
    assert found == ["recorder: 1 agents"]


def test_an_implementation_takes_only_the_arguments_it_names() -> None:
    class Bare:
        @hookimpl
        def omniroute_ranking_keys(self) -> list[Any]:
            return []

        @hookimpl
        def omniroute_task_orderings(self, section: Any, deployment: Any) -> list[Any]:
            assert section is None
            assert deployment is not None
            return []

    manager = plugin_registry.plugin_manager()
    manager.register(Bare(), name="bare")
    try:
        engine = Engine(load_deployment({"plugins": ["bare"]}))
        # the core's longest idle is a fallback: no plugin ranked, so it applies
        assert [key.name for _, key in engine.pipeline.ranking_keys] == ["longest_idle"]
    finally:
        manager.unregister(name="bare")
