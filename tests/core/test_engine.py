"""The engine's Python API, hooks and atomicity, with throwaway plugins."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from omniroute.core import (
    ArrivalCheck,
    Engine,
    EngineOptions,
    EventError,
    EventHandler,
    Filter,
    PluginContext,
    PluginError,
    Preference,
    RankingKey,
    TaskOrdering,
    hookimpl,
    load_deployment,
)
from omniroute.core import plugins as plugin_registry
from omniroute.core.state import worker_context


@attrs.frozen
class ProbeSection:
    explode_on: str = ""
    vip_first: bool = False


class Probe:
    """A plugin that records events, may raise, and contributes one of each component."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str | None]] = []

    @hookimpl
    def omniroute_config_section(self) -> type:
        return ProbeSection

    @hookimpl
    def omniroute_validate(self, deployment: Any, section: ProbeSection) -> Iterable[Any]:
        return []

    @hookimpl
    def omniroute_event_handlers(self, context: PluginContext) -> Iterable[EventHandler]:
        def make(event: str) -> Any:
            def handle(task: Any, agent: Any) -> None:
                self.seen.append((event, task.id if task else None, agent.id if agent else None))
                context.state()["count"] = context.state().get("count", 0) + 1
                if task is not None:
                    context.task_state(task)["touched"] = True
                if context.section.explode_on == event:
                    raise RuntimeError(f"boom on {event}")

            return handle

        return [
            EventHandler(event, make(event))
            for event in ("created", "offered", "accepted", "completed", "login")
        ]

    @hookimpl
    def omniroute_filters(self) -> Iterable[Filter]:  # pluggy passes only what is named
        return [
            Filter(
                "not_blocked",
                lambda task, agent: not agent.attributes.get("blocked"),
                lambda t, a: "blocked",
            )
        ]

    @hookimpl
    def omniroute_preferences(self) -> Iterable[Preference]:
        return [
            Preference(
                "rested",
                lambda task, agent: not agent.attributes.get("tired"),
                lambda t, a: "tired",
            )
        ]

    @hookimpl
    def omniroute_ranking_keys(self) -> Iterable[RankingKey]:
        return [RankingKey("most_skilled", lambda task, agent: -agent.attributes.get("skill", 0))]

    @hookimpl
    def omniroute_task_orderings(self, section: ProbeSection) -> Iterable[TaskOrdering]:
        if not section.vip_first:
            return []
        return [TaskOrdering("vip", lambda task: 0 if task.attributes.get("vip") else 1)]

    @hookimpl
    def omniroute_arrival_checks(self, context: PluginContext) -> Iterable[ArrivalCheck]:
        return [
            ArrivalCheck(
                "spam", lambda task: ("spam", "Go away.") if task.attributes.get("spam") else None
            )
        ]


@pytest.fixture
def probe() -> Iterator[Probe]:
    plugin = Probe()
    manager = plugin_registry.plugin_manager()
    manager.register(plugin, name="probe")
    try:
        yield plugin
    finally:
        manager.unregister(name="probe")


def engine_with(section: dict[str, Any] | None = None, **options: Any) -> Engine:
    raw: dict[str, Any] = {"plugins": ["probe"], "channels": {"chat": {}, "voice": {}}}
    if section is not None:
        raw["probe"] = section
    return Engine(load_deployment(raw), options=EngineOptions(**options))


def test_plugin_components_take_part(probe: Probe) -> None:
    engine = engine_with(auto_accept=True)
    engine.add_agent("low", {"chat": 1}, {"skill": 1})
    engine.add_agent("blocked", {"chat": 1}, {"skill": 9, "blocked": True})
    engine.add_agent("high", {"chat": 1}, {"skill": 5})
    engine.create_task("c1", "chat")
    engine.create_task("spam", "chat", {"spam": True})
    assert [(o.task, o.agent) for o in engine.offers] == [("c1", "high")]
    assert engine.task("spam").state == "rejected"
    assert (engine.task("spam").reason, engine.task("spam").message) == ("spam", "Go away.")
    (decision,) = engine.decisions_for("c1")
    assert decision.winner == "high"
    assert decision.why == "high beat low on probe.most_skilled (-5 before -1)"
    excluded = {c.agent: (c.excluded_by, c.reason) for c in decision.candidates if not c.eligible}
    assert excluded == {"blocked": ("probe.not_blocked", "blocked")}
    assert ("offered", "c1", "high") in probe.seen
    assert engine.task("c1").plugin_state["probe"] == {"touched": True}


def test_preferences_set_agents_aside_only_while_others_are_eligible(probe: Probe) -> None:
    engine = engine_with(auto_accept=True)
    engine.add_agent("tired_star", {"chat": 1}, {"skill": 9, "tired": True})
    engine.add_agent("rested", {"chat": 1}, {"skill": 1})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    assert [(o.task, o.agent) for o in engine.offers] == [("c1", "rested"), ("c2", "tired_star")]
    excluded = [
        (c.agent, c.excluded_by, c.reason)
        for c in engine.decisions_for("c1")[0].candidates
        if not c.eligible
    ]
    assert excluded == [("tired_star", "probe.rested", "tired")]
    assert engine.decisions_for("c2")[0].why == "tired_star was the only eligible agent"


def test_plugin_ordering_runs_before_the_core_ordering(probe: Probe) -> None:
    engine = engine_with({"vip_first": True})
    engine.add_agent("ana", {"chat": 1}, status="not_ready")
    engine.create_task("normal", "chat", priority=9)
    engine.create_task("vip", "chat", {"vip": True})
    engine.set_status("ana", "ready")
    assert [o.task for o in engine.offers] == ["vip"]


def test_a_raising_plugin_is_named_and_the_event_is_undone(probe: Probe) -> None:
    engine = engine_with({"explode_on": "accepted"})
    engine.add_agent("ana", {"chat": 1})
    engine.create_task("c1", "chat")
    before = (
        engine.task("c1").state,
        engine.agent("ana").held_count(),
        len(engine.offers),
        dict(engine.state.plugin_state["probe"]),
    )
    with pytest.raises(PluginError) as caught:
        engine.accept("c1")
    assert caught.value.plugin == "probe"
    assert "plugin 'probe' failed during the accepted event: RuntimeError: boom on accepted" in str(
        caught.value
    )
    after = (
        engine.task("c1").state,
        engine.agent("ana").held_count(),
        len(engine.offers),
        dict(engine.state.plugin_state["probe"]),
    )
    assert after == before
    # the engine is still usable
    engine.cancel("c1")
    assert engine.task("c1").state == "canceled"


def test_a_raising_plugin_during_routing_undoes_the_creation(probe: Probe) -> None:
    engine = engine_with({"explode_on": "offered"})
    ana = engine.add_agent("ana", {"chat": 1})
    with pytest.raises(PluginError, match="offered"):
        engine.create_task("c1", "chat")
    assert engine.tasks == []
    assert engine.offers == []
    assert engine.agent("ana") is ana  # restored in place: references stay good
    assert ana.held_count() == 0
    assert ana.last_offer_at is None


def test_timers_fire_at_their_time_between_events(probe: Probe) -> None:
    engine = engine_with()
    fired: list[tuple[float, Any]] = []
    context = engine.pipeline.contexts["probe"]
    context.on_timer("ring", lambda payload: fired.append((engine.now, payload)))
    context.set_timer(30, "ring", {"n": 3})
    first = context.set_timer(10, "ring", {"n": 1})
    context.set_timer(20, "ring", {"n": 2})
    context.cancel_timer(first)
    engine.advance_to(25)
    assert fired == [(20, {"n": 2})]
    assert engine.now == 25
    engine.run_timers()
    assert fired == [(20, {"n": 2}), (30, {"n": 3})]
    assert engine.next_timer_at() is None
    with pytest.raises(EventError, match="time cannot go back"):
        engine.advance_to(5)


def test_a_raising_plugin_timer_is_named(probe: Probe) -> None:
    engine = engine_with()

    def explode(_payload: Any) -> None:
        raise ValueError("bad timer")

    context = engine.pipeline.contexts["probe"]
    context.on_timer("explode", explode)
    context.set_timer(5, "explode")
    with pytest.raises(PluginError, match="plugin 'probe' failed during timer of probe"):
        engine.advance_to(10)


def test_holding_a_task_keeps_it_from_being_offered(probe: Probe) -> None:
    engine = engine_with(auto_accept=True)
    engine.add_agent("ana", {"chat": 1})
    context = engine.pipeline.contexts["probe"]
    engine.add_agent("bo", {"chat": 0})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    context.hold_task(engine.task("c2"), 50, "testing")
    engine.complete("c1")
    assert [o.task for o in engine.offers] == ["c1"]
    engine.advance_to(50)
    assert [o.task for o in engine.offers] == ["c1", "c2"]
    context.set_capacity(engine.agent("bo"), "chat", 2)
    assert engine.agent("bo").capacity["chat"] == 2


def test_worker_context_values() -> None:
    engine = Engine(load_deployment({"channels": {"chat": {}, "voice": {}}}))
    engine.add_agent("ana", {"chat": 3, "voice": 0}, {"level": 2, "id": "shadowed"}, groups=["g1"])
    engine.create_task("c1", "chat")
    engine.accept("c1")
    engine.create_task("c2", "chat")
    context = worker_context(engine.agent("ana"))
    assert context["id"] == "ana"
    assert context["level"] == 2
    assert context["groups"] == ["g1"]
    assert context["channel"]["chat"] == {
        "configured_capacity": 3,
        "assigned_tasks": 1,
        "available_capacity_percentage": 33,
        "available": True,
    }
    assert context["channel"]["voice"]["available_capacity_percentage"] == 0
    assert context["channel"]["voice"]["available"] is False


def test_python_api_end_to_end() -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    engine = Engine.from_mapping(
        {
            "channels": {"chat": {}},
            "queues": {"support": {"target_workers": 'skills HAS "support"'}},
        },
        start=start,
        options=EngineOptions(auto_accept=False, reservation_timeout=20),
    )
    engine.add_agent("ana", {"chat": 1}, {"skills": ["support"]})
    engine.add_agent("bo", {"chat": 1}, {"skills": ["sales"]})
    engine.create_task("c1", "chat", {"language": "en"})
    assert engine.task("c1").state == "reserved"
    engine.advance_to(25)  # the reservation timed out at 20 and was offered again
    assert [(o.agent, o.at) for o in engine.offers] == [("ana", 0.0), ("ana", 20.0)]
    engine.accept("c1")
    engine.complete("c1")
    assert engine.task("c1").state == "completed"
    assert engine.wall_time() == datetime(2026, 3, 2, 8, 0, 25, tzinfo=UTC)
    (first, second) = engine.decisions_for("c1")
    assert {c.agent: c.excluded_by for c in first.candidates} == {"ana": None, "bo": "queue"}
    assert second.at == 20.0


def test_event_errors_change_nothing() -> None:
    engine = Engine(load_deployment({"channels": {"chat": {}}}))
    engine.add_agent("ana", {"chat": 1})
    with pytest.raises(EventError, match="already on the roster"):
        engine.add_agent("ana", {"chat": 1})
    with pytest.raises(EventError, match="status must be one of"):
        engine.add_agent("bo", {"chat": 1}, status="busy")
    with pytest.raises(EventError, match="exactly one of to_queue and to_agent"):
        engine.transfer("x")
    with pytest.raises(EventError, match="unknown task"):
        engine.transfer("x", to_queue="q")
    with pytest.raises(EventError, match="must be ready or not_ready"):
        engine.set_status("ana", "away")
    with pytest.raises(EventError, match="already logged in"):
        engine.login("ana")
    engine.logout("ana")
    with pytest.raises(EventError, match="not logged in"):
        engine.logout("ana")
    with pytest.raises(ValueError, match="timezone-aware"):
        Engine(load_deployment({}), start=datetime(2026, 1, 1))
    assert engine.tasks == []


def test_a_logout_returns_pending_reservations() -> None:
    engine = Engine(load_deployment({"channels": {"chat": {}}}))
    engine.add_agent("ana", {"chat": 1})
    engine.create_task("c1", "chat")
    engine.logout("ana")
    assert engine.task("c1").state == "queued"
    engine.set_status("ana", "not_ready")  # logs in, not ready
    assert engine.agent("ana").status == "not_ready"
    engine.set_status("ana", "ready")
    assert engine.task("c1").state == "reserved"


def test_plugins_are_listed(probe: Probe) -> None:
    names = {info.name: info for info in plugin_registry.describe()}
    assert names["core"].version == "0.1.0"
    assert "omniroute_filters" in names["core"].hooks
    assert "omniroute_arrival_checks" in names["probe"].hooks
    assert "probe" in plugin_registry.installed()


def test_a_component_of_the_wrong_type_is_refused(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        Probe, "omniroute_filters", hookimpl(lambda self, context: ["not a filter"]), raising=True
    )
    manager = plugin_registry.plugin_manager()
    manager.unregister(name="probe")
    manager.register(Probe(), name="probe")
    # A PluginError naming the plugin and the hook (issue 12), not a bare TypeError.
    with pytest.raises(
        PluginError,
        match=r"plugin 'probe' failed during omniroute_filters: .*'not a filter'.*not a Filter",
    ):
        engine_with()


def test_unknown_event_handler_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event 'finished'"):
        EventHandler("finished", lambda task, agent: None)


def test_expressions_see_a_transfer_made_at_the_same_moment() -> None:
    deployment = load_deployment(
        {
            "channels": {"chat": {}},
            "queues": {
                "sales": {"target_workers": 'team == "sales"'},
                "billing": {"target_workers": 'team == "billing" AND task.queue == "billing"'},
            },
        }
    )
    engine = Engine(deployment, options=EngineOptions(auto_accept=True))
    engine.add_agent("seller", {"chat": 1}, {"team": "sales"})
    engine.add_agent("biller", {"chat": 1}, {"team": "billing"})
    engine.create_task("c1", "chat", queue="sales")
    engine.transfer("c1", to_queue="billing")  # same clock: task.queue must read "billing"
    assert engine.task("c1").agent == "biller"


def test_queues_whose_target_workers_read_nothing() -> None:
    deployment = load_deployment(
        {
            "channels": {"chat": {}},
            "queues": {"everyone": {}, "nobody": {"target_workers": "1 == 2"}},
        }
    )
    engine = Engine(deployment, options=EngineOptions(auto_accept=True))
    engine.add_agent("ana", {"chat": 2})
    engine.create_task("c1", "chat", queue="everyone")
    engine.create_task("c2", "chat", queue="nobody")
    assert (engine.task("c1").agent, engine.task("c2").state) == ("ana", "queued")
    (decision,) = engine.decisions_for("c2")
    assert [(c.agent, c.excluded_by) for c in decision.candidates] == [("ana", "queue")]


@pytest.mark.parametrize("indexed", [True, False])
def test_a_long_run_keeps_nothing_per_task_it_has_closed(indexed: bool) -> None:
    """A live engine runs for weeks: what routing keeps of a task goes when the task does
    (the indexed engine once remembered every task it had queued)."""
    deployment = load_deployment({"channels": {"chat": {}}, "queues": {"q": {}}})
    options = EngineOptions(
        auto_accept=True, record_decisions=False, indexed=indexed, keep_closed_tasks=False
    )
    engine = Engine(deployment, options=options)
    engine.add_agent("ana", {"chat": 1})
    for n in range(200):
        engine.create_task(f"c{n}", "chat")
        engine.create_task(f"w{n}", "chat")  # waits until c{n} completes
        engine.complete(f"c{n}")
        engine.complete(f"w{n}")
    assert engine.state.tasks == {}
    assert engine.state.waiting == {}
    waiting = engine.waiting
    kept = (
        waiting._fresh_tasks,
        waiting._group_of,
        waiting._unordered,
        waiting._heaps.entry,
        engine.lifecycle.changed or {},
    )
    assert [len(part) for part in kept] == [0, 0, 0, 0, 0]
