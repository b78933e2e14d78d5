"""Issue 12, engine side: no input makes the engine loop without the clock moving, and
what plugin components return at run time is checked (arrival verdicts, keys that
cannot be compared), each failure a clear error that changes nothing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.core import (
    ArrivalCheck,
    Engine,
    EngineOptions,
    EventError,
    EventHandler,
    OmnirouteError,
    PluginContext,
    PluginError,
    hookimpl,
    load_deployment,
)
from omniroute.core import plugins as plugin_registry
from omniroute.core.components import RankingKey, TaskOrdering

from ..core.saboteur import deep_state

QUEUE: dict[str, Any] = {"channels": {"chat": {}}, "queues": {"support": {}}}


class Misbehaving:
    """A throwaway plugin; each test sets what it does wrong."""

    def __init__(self) -> None:
        self.timer_at: Any = None  # set a timer at this time on `created` (a callable of now)
        self.verdict: Any = None
        self.ranking: Any = None
        self.ordering: Any = None
        self.fail_after_removal = False

    @hookimpl
    def omniroute_event_handlers(self, context: PluginContext) -> Iterable[EventHandler]:
        def again(_payload: Any) -> None:
            context.set_timer(context.now, "again")

        context.on_timer("again", again)

        def created(_task: Any, _agent: Any) -> None:
            if self.timer_at is not None:
                context.set_timer(self.timer_at(context.now), "again")

        def logout(_task: Any, _agent: Any) -> None:
            if self.fail_after_removal:
                raise RuntimeError("after the logout")

        return [EventHandler("created", created), EventHandler("logout", logout)]

    @hookimpl
    def omniroute_arrival_checks(self, context: PluginContext) -> Iterable[ArrivalCheck]:
        return [ArrivalCheck("verdict", lambda task: self.verdict)]

    @hookimpl
    def omniroute_ranking_keys(self, context: PluginContext) -> Iterable[RankingKey]:
        if self.ranking is None:
            return []
        return [RankingKey("odd", lambda task, agent: self.ranking(agent))]

    @hookimpl
    def omniroute_task_orderings(self, context: PluginContext) -> Iterable[TaskOrdering]:
        if self.ordering is None:
            return []
        return [TaskOrdering("odd", lambda task: self.ordering(task))]


@contextmanager
def misbehaving() -> Iterator[Misbehaving]:
    plugin = Misbehaving()
    manager = plugin_registry.plugin_manager()
    manager.register(plugin, name="misbehaving")
    try:
        yield plugin
    finally:
        manager.unregister(name="misbehaving")


def engine_with(plugin: Misbehaving, **options: Any) -> Engine:
    deployment = load_deployment({**QUEUE, "plugins": ["misbehaving"]})
    return Engine(deployment, options=EngineOptions(**options))


# --- item 1: the loop guard ---------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, 1e-9])
def test_a_reservation_timeout_that_cannot_move_the_clock_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="reservation_timeout must be a finite number"):
        EngineOptions(reservation_timeout=timeout)


@pytest.mark.parametrize("timeout", ["5", True, [5]])
def test_a_reservation_timeout_must_be_a_number(timeout: Any) -> None:
    with pytest.raises(TypeError, match="reservation_timeout"):
        EngineOptions(reservation_timeout=timeout)


def test_a_saved_state_with_a_bad_timeout_is_an_event_error() -> None:
    engine = Engine(load_deployment(QUEUE))
    data = engine.save()
    data["options"]["reservation_timeout"] = 0
    with pytest.raises(EventError, match="reservation_timeout"):
        Engine.restore(load_deployment(QUEUE), data)


@pytest.mark.parametrize("at", [math.nan, math.inf, -math.inf, "soon"])
def test_a_timer_at_no_time_is_a_plugin_error_naming_the_plugin(at: Any) -> None:
    with misbehaving() as plugin:
        plugin.timer_at = lambda now: at
        engine = engine_with(plugin)
        before = deep_state(engine)
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*finite number"):
            engine.create_task("t1", "chat")
        assert deep_state(engine) == before


def test_a_timer_that_keeps_setting_itself_now_is_stopped_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("omniroute.core.clock.MAX_TIMERS_AT_ONE_INSTANT", 50)
    with misbehaving() as plugin:
        plugin.timer_at = lambda now: now + 1
        engine = engine_with(plugin)
        engine.create_task("t1", "chat")
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*without the clock moving"):
            engine.advance_to(5)
        assert engine.now == 1  # it stopped at the instant of the loop
        # The looping timer is gone: the engine goes on.
        engine.advance_to(10)
        assert engine.now == 10


def test_routing_that_never_settles_is_an_event_error_undone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("omniroute.core.router.MAX_ROUTING_PASSES", 20)
    engine = Engine(load_deployment(QUEUE))
    engine.add_agent("a1", {"chat": 1})
    engine.create_task("t1", "chat")
    engine.create_task("t2", "chat")
    before = deep_state(engine)
    monkeypatch.setattr(engine.router, "_route_once", lambda: True)  # a pass that always "offers"
    with pytest.raises(EventError, match=r"routing did not settle after 4\d passes"):
        engine.create_task("t3", "chat")
    assert deep_state(engine) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    timeout=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    auto_accept=st.booleans(),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create", "advance", "accept", "decline", "complete", "agent"]),
            st.one_of(st.floats(0, 1e6), st.floats(allow_nan=True, allow_infinity=True)),
        ),
        max_size=25,
    ),
)
def test_no_input_makes_the_engine_loop_without_the_clock_moving(
    timeout: float | None, auto_accept: bool, steps: list[tuple[str, float]]
) -> None:
    """Whatever the options and events, each call returns (applied, or refused with an
    OmnirouteError that changes nothing); a timeout that could not move the clock is
    refused at construction."""
    try:
        options = EngineOptions(auto_accept=auto_accept, reservation_timeout=timeout)
    except ValueError:
        assert timeout is not None
        assert not (math.isfinite(timeout) and timeout >= 0.001)
        return
    engine = Engine(load_deployment(QUEUE), options=options)
    for count, (action, number) in enumerate(steps):
        before = deep_state(engine)
        try:
            if action == "create":
                engine.create_task(f"t{count}", "chat")
            elif action == "advance":
                engine.advance_to(engine.now + number)
            elif action == "agent":
                engine.add_agent(f"a{count}", {"chat": 2})
            else:
                task = next((t.id for t in engine.tasks if t.is_open), "none")
                getattr(engine, action)(task)
        except OmnirouteError:
            assert deep_state(engine) == before
    assert math.isfinite(engine.now)


# --- item 2: arrival verdicts ---------------------------------------------------------------


@pytest.mark.parametrize("verdict", [("closed", "msg", "extra"), "closed", 3, ("closed", 4)])
def test_a_wrong_arrival_verdict_is_a_plugin_error_that_changes_nothing(verdict: Any) -> None:
    with misbehaving() as plugin:
        plugin.verdict = verdict
        engine = engine_with(plugin)
        before = deep_state(engine)
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*arrival check 'verdict'"):
            engine.create_task("t1", "chat")
        assert deep_state(engine) == before
        plugin.verdict = ("closed", "we are closed")
        assert engine.create_task("t1", "chat").state == "rejected"


# --- item 3: keys that cannot be compared ------------------------------------------------------


@pytest.mark.parametrize("record", [True, False])
def test_ranking_keys_that_cannot_be_compared_name_the_plugin(record: bool) -> None:
    with misbehaving() as plugin:
        plugin.ranking = lambda agent: 1 if agent.id == "a1" else "one"
        engine = engine_with(plugin, record_decisions=record)
        engine.add_agent("a1", {"chat": 1})
        engine.add_agent("a2", {"chat": 1})
        before = deep_state(engine)
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*ranking key 'odd'"):
            engine.create_task("t1", "chat")
        assert deep_state(engine) == before


@pytest.mark.parametrize("record", [True, False])
def test_task_orderings_that_cannot_be_compared_name_the_plugin(record: bool) -> None:
    with misbehaving() as plugin:
        plugin.ordering = lambda task: 1 if task.id == "t1" else "one"
        engine = engine_with(plugin, record_decisions=record)
        engine.create_task("t1", "chat")
        engine.create_task("t2", "chat")
        before = deep_state(engine)
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*task ordering 'odd'"):
            engine.add_agent("a1", {"chat": 1})
        assert deep_state(engine) == before


# --- item 8, last bullet: a handler that deletes an agent and then raises ------------------------


def test_a_handler_raising_after_an_agent_was_removed_is_undone() -> None:
    with misbehaving() as plugin:
        engine = engine_with(plugin)
        engine.add_agent("a1", {"chat": 1})
        engine.add_agent("a2", {"chat": 1})
        before = deep_state(engine)
        plugin.fail_after_removal = True  # the logout handler raises while a1 is removed
        with pytest.raises(PluginError, match=r"plugin 'misbehaving'.*after the logout"):
            engine.remove_agent("a1")
        assert deep_state(engine) == before
        assert [agent.id for agent in engine.agents] == ["a1", "a2"]
        plugin.fail_after_removal = False
        engine.create_task("t1", "chat")
        assert engine.task("t1").agent == "a1"  # the roster order and the index came back
        engine.remove_agent("a2")
        assert [agent.id for agent in engine.agents] == ["a1"]
