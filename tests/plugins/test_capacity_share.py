"""capacity_share: strategies, occupancy, task order, profiles and config errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.core import (
    DeploymentError,
    Engine,
    EngineOptions,
    EventHandler,
    OmnirouteError,
    Task,
    hookimpl,
    load_deployment,
)
from omniroute.core.plugins import plugin_manager


def engine_for(
    section: dict[str, Any] | None = None,
    options: EngineOptions | None = None,
    **extra: Any,
) -> Engine:
    raw = {
        "plugins": ["capacity_share"],
        "channels": {"voice": {}, "chat": {}, "email": {}},
        **extra,
    }
    if section is not None:
        raw["capacity_share"] = section
    return Engine(load_deployment(raw), options=options or EngineOptions(auto_accept=True))


def idle_then_ready_history(engine: Engine) -> None:
    """ana: free since 0, not ready 10-100. bo: busy until 50, then ready."""
    engine.add_agent("ana", {"chat": 1})
    engine.add_agent("bo", {"chat": 1})
    engine.set_agent("ana", channels={"chat": 0})
    engine.create_task("warmup", "chat")  # bo
    engine.set_agent("ana", channels={"chat": 1})
    engine.advance_to(10)
    engine.set_status("ana", "not_ready")
    engine.advance_to(50)
    engine.complete("warmup")
    engine.advance_to(100)
    engine.set_status("ana", "ready")
    engine.advance_to(110)
    engine.create_task("next", "chat")


def test_total_idle_time_counts_not_ready_time() -> None:
    engine = engine_for()
    idle_then_ready_history(engine)
    assert engine.task("next").agent == "ana"  # idle 110 s (ready and not ready) against bo's 60 s
    keys = dict(engine.decisions_for("next")[0].candidates[0].keys)
    assert keys["capacity_share.idle_since"] == 0  # free since login at 0 s


def test_ready_time_prefers_the_agent_ready_longest() -> None:
    engine = engine_for({"strategy": "ready_time"})
    idle_then_ready_history(engine)
    assert engine.task("next").agent == "bo"  # ready 60 s against ana's 10 s
    assert "capacity_share.ready_since" in dict(engine.decisions_for("next")[0].candidates[0].keys)


def test_least_occupied_breaks_the_last_tie() -> None:
    engine = engine_for()
    engine.add_agent("ana", {"chat": 2})
    engine.add_agent("bo", {"chat": 2})
    engine.create_task("a1", "chat")  # ana (roster)
    engine.create_task("b1", "chat")  # bo (least busy)
    engine.advance_to(100)
    engine.complete("a1")  # ana: 25% for 100 s
    engine.advance_to(200)
    engine.complete("b1")  # bo: 25% for 200 s
    engine.advance_to(300)
    # Both have been ready for 300 s; occupancy is share-weighted busy time over that.
    decision_keys = {}
    engine.create_task("c1", "chat")
    for candidate in engine.decisions_for("c1")[0].candidates:
        decision_keys[candidate.agent] = dict(candidate.keys)["capacity_share.least_occupied"]
    assert decision_keys["ana"] == pytest.approx(0.25 * 100 / 300)
    assert decision_keys["bo"] == pytest.approx(0.25 * 200 / 300)


def test_emails_by_priority_then_closest_sla_then_oldest() -> None:
    engine = engine_for()
    engine.add_agent("ana", {"email": 1}, status="not_ready")
    engine.create_task("low", "email", priority=1)
    engine.create_task("late_sla", "email", {"sla_deadline": 9000}, priority=5)
    engine.create_task("soon_sla", "email", {"sla_deadline": 600}, priority=5)
    engine.create_task("no_sla", "email", priority=5)
    engine.set_status("ana", "ready")
    order = []
    for _ in range(4):
        current = next(t for t in engine.tasks if t.state == "assigned")
        order.append(current.id)
        engine.complete(current.id)
    assert order == ["soon_sla", "late_sla", "no_sla", "low"]


def test_voice_and_chat_by_priority_times_wait() -> None:
    engine = engine_for({"channels": {"voice": {"precedence": 2}}})  # same precedence as chat
    engine.add_agent("ana", {"voice": 1, "chat": 1}, status="not_ready")
    engine.create_task("old_low", "voice", priority=1)  # waits 100 s: 100
    engine.advance_to(60)
    engine.create_task("new_high", "chat", priority=3)  # waits 40 s: 120
    engine.advance_to(100)
    engine.set_status("ana", "ready")
    assert engine.offers[0].task == "new_high"


def test_a_task_profile_that_does_not_fit_is_rejected() -> None:
    engine = engine_for({"profiles": {"vip": {"channel": "chat", "share": 50}}})
    engine.create_task("x", "chat", profile="gold")
    engine.create_task("y", "voice", profile="vip")
    assert (engine.task("x").state, engine.task("x").reason) == ("rejected", "unknown_profile")
    assert engine.task("y").message == "profile 'vip' is for chat, not voice"


def test_a_queue_profile_applies_only_to_its_channel() -> None:
    engine = engine_for(
        {"profiles": {"heavy_email": {"channel": "email", "share": 100, "required_spare": 100}}},
        queues={"support": {"profile": "heavy_email"}},
    )
    engine.add_agent("ana", {"chat": 4, "email": 1})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    assert engine.task("c1").plugin_state["capacity_share"] == {
        "profile": "chat (global)",
        "share": 25.0,
    }
    assert engine.task("c2").agent == "ana"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"channels": {"callback": {}}},
            "capacity_share.channels.callback: channel 'callback' has no Bright Pattern default",
        ),
        (
            {"capacity_share": {"channels": {"chat": {"share": 120}}}},
            "share must be a percentage from 0 to 100, got 120",
        ),
        (
            {"capacity_share": {"channels": {"chat": {"max_per_agent": -1}}}},
            "max_per_agent must be 0 (no limit) or more",
        ),
        (
            {"capacity_share": {"channels": {"fax": {"share": 10}}}},
            "capacity_share.channels.fax: unknown channel 'fax'",
        ),
        (
            {"capacity_share": {"profiles": {"p": {"channel": "fax"}}}},
            "capacity_share.profiles.p.channel: unknown channel 'fax'",
        ),
        (
            {"queues": {"q": {"profile": "missing"}}},
            "queues.q.profile: unknown capacity_share profile 'missing'",
        ),
        (
            {"capacity_share": {"strategy": "random"}},
            "capacity_share.strategy: must be one of 'total_idle_time', 'ready_time'",
        ),
    ],
)
def test_config_errors(raw: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"plugins": ["capacity_share"], "channels": {"voice": {}, "chat": {}}}
    for key, value in raw.items():
        base[key] = {**base.get(key, {}), **value} if key == "channels" else value
    with pytest.raises(DeploymentError) as caught:
        load_deployment(base)
    assert message in str(caught.value)


def test_callback_with_full_settings_is_fine_and_shared_precedence_warns() -> None:
    deployment = load_deployment(
        {
            "plugins": ["capacity_share"],
            "channels": {"callback": {}, "email": {}},
            "capacity_share": {
                "channels": {"callback": {"share": 100, "required_spare": 50, "precedence": 3}}
            },
        }
    )
    assert [str(w) for w in deployment.warnings] == [
        "capacity_share.channels: callback and email share precedence 3; Bright Pattern allows this only for voice and chat"
    ]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create", "complete", "not_ready", "ready"]),
            st.integers(0, 3),
            st.floats(0.5, 400, allow_nan=False),
        ),
        min_size=5,
        max_size=40,
    )
)
def test_the_occupancy_floor_is_a_floor_in_floor_order(steps: list[Any]) -> None:
    """The engine stops computing least_occupied among tied agents once the next floor is
    above the best key found: each floor must be at most the key, and floors must rise
    in floor order among agents holding the same share (as tied agents do)."""
    engine = engine_for(options=EngineOptions(auto_accept=True, record_decisions=False))
    model = engine.pipeline.contexts["capacity_share"].shared["model"]
    for n in range(4):
        engine.add_agent(f"a{n}", {"chat": 3})
    for index, (kind, who, wait) in enumerate(steps):
        engine.advance_to(engine.now + wait)
        agent_id = f"a{who}"
        held = sorted(task for ids in engine.agent(agent_id).held.values() for task in ids)
        try:
            if kind == "create":
                engine.create_task(f"t{index}", "chat")
            elif kind == "complete" and held:
                engine.complete(held[0])
            elif kind in ("ready", "not_ready"):
                engine.set_status(agent_id, kind)
        except OmnirouteError:
            pass
        now = engine.now
        floors = []
        for agent in engine.agents:
            floor = model.occupancy_floor(None, agent, now)
            assert floor <= model.occupancy(None, agent)
            if agent.status == "ready":
                floors.append(
                    (model.occupied(agent), model.occupancy_floor_order(None, agent), floor)
                )
        for share, order, floor in floors:
            for other_share, other_order, other_floor in floors:
                if share == other_share and order <= other_order:
                    assert floor <= other_floor + 1e-12


def test_a_reservation_revoked_by_a_callback_conversion_stops_counting_as_busy() -> None:
    """ana rings with v1 (share 100) for 5 s, then the caller asks for a callback: from
    then on ana holds nothing, and her occupancy stops growing (issue 11: the conversion
    revokes the reservation, and the plugin must hear of it)."""
    raw = {
        "plugins": ["capacity_share"],
        "channels": {"voice": {}, "callback": {}},
        "capacity_share": {
            "channels": {"callback": {"share": 50, "required_spare": 50, "precedence": 4}}
        },
    }
    engine = Engine(load_deployment(raw), options=EngineOptions(reservation_timeout=None))
    model = engine.pipeline.contexts["capacity_share"].shared["model"]
    engine.add_agent("ana", {"voice": 1})
    engine.create_task("v1", "voice")
    engine.advance_to(5)
    engine.convert_to_callback("v1", "callback")
    engine.advance_to(100)
    assert engine.task("v1").state == "queued"
    assert model.occupancy(None, engine.agent("ana")) == pytest.approx(0.05)


def skilled_engine(options: EngineOptions) -> Engine:
    engine = engine_for(
        options=options,
        queues={"sales": {"skill": "sales"}},
        workflow={"filters": [{"expression": "true", "targets": [{"queue": "sales"}]}]},
    )
    engine.add_agent("ana", {"chat": 1}, {"skills": {"sales": 2}})
    engine.add_agent("bo", {"chat": 1}, {"skills": {"sales": 1}})
    return engine


@pytest.mark.parametrize("record", [True, False], ids=["reference", "fast_path"])
def test_skill_levels_follow_edits_of_the_attributes(record: bool) -> None:
    """Skill levels are cached per stamp of the agent's attributes: an edit, even one that
    passes the same (changed) dictionary again, is seen at once; taking tasks is not an edit."""
    engine = skilled_engine(EngineOptions(auto_accept=True, record_decisions=record))
    engine.create_task("t1", "chat")
    assert engine.task("t1").agent == "ana"
    engine.complete("t1")
    skills = {"sales": 3}
    engine.set_agent("bo", {"skills": skills})
    engine.create_task("t2", "chat")
    assert engine.task("t2").agent == "bo"
    engine.complete("t2")
    skills["sales"] = 1  # the caller changes its dictionary and gives it again
    engine.set_agent("bo", {"skills": skills})
    engine.create_task("t3", "chat")
    assert engine.task("t3").agent == "ana"


class _FailsOnCapacityChange:
    @hookimpl
    def omniroute_event_handlers(self) -> list[EventHandler]:
        def fail(_task: Any, _agent: Any) -> None:
            raise RuntimeError("no")

        return [EventHandler("capacity_changed", fail)]


def test_a_failed_edit_of_the_attributes_leaves_the_cached_skill_levels_right() -> None:
    plugin_manager().register(_FailsOnCapacityChange(), name="fails_on_capacity")
    try:
        engine = Engine(
            load_deployment(
                {
                    "plugins": ["capacity_share", "fails_on_capacity"],
                    "channels": {"chat": {}},
                    "queues": {"sales": {"skill": "sales"}},
                    "workflow": {
                        "filters": [{"expression": "true", "targets": [{"queue": "sales"}]}]
                    },
                }
            ),
            options=EngineOptions(auto_accept=True, record_decisions=False),
        )
        engine.add_agent("ana", {"chat": 1}, {"skills": {"sales": 2}})
        engine.add_agent("bo", {"chat": 1}, {"skills": {"sales": 1}})
        engine.create_task("t1", "chat")  # ana's level is cached
        engine.complete("t1")
        # the attributes change, then the event fails and is undone
        with pytest.raises(OmnirouteError):
            engine.set_agent("ana", {"skills": {"sales": 0}}, channels={"chat": 1})
        assert engine.agent("ana").attributes == {"skills": {"sales": 2}}
        engine.create_task("t2", "chat")
        assert engine.task("t2").agent == "ana"
    finally:
        plugin_manager().unregister(name="fails_on_capacity")


@pytest.mark.parametrize(
    ("section", "present"),
    [
        ({}, False),
        ({"channels": {"chat": {"max_per_agent": 0}}}, False),
        ({"channels": {"chat": {"max_per_agent": 3}}}, True),
        ({"profiles": {"vip": {"channel": "chat", "max_per_agent": 1}}}, True),
    ],
)
def test_the_max_per_agent_filter_is_built_only_where_a_limit_is_set(
    section: dict[str, Any], present: bool
) -> None:
    engine = engine_for(section)
    names = [item.name for plugin, item in engine.pipeline.filters if plugin == "capacity_share"]
    assert names == (["spare", "max_per_agent"] if present else ["spare"])


def test_the_share_held_is_the_same_in_any_order_of_the_held_tasks() -> None:
    """Held tasks are a set, iterated in an order that changes from one process to the
    next; shares whose plain sum depends on the order must still give one figure."""
    profiles = {
        f"p{n}": {"channel": "chat", "share": share} for n, share in enumerate([0.1, 0.2, 0.3])
    }
    engine = engine_for(
        {"channels": {"chat": {"required_spare": 0}}, "profiles": profiles},
        EngineOptions(auto_accept=True, record_decisions=False),
    )
    model = engine.pipeline.contexts["capacity_share"].shared["model"]
    engine.add_agent("ana", {"chat": 3})
    for n in range(3):
        engine.create_task(f"t{n}", "chat", profile=f"p{n}")
    ana = engine.agent("ana")
    assert sorted(ana.held["chat"]) == ["t0", "t1", "t2"]
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)  # the order matters to plain addition
    figures = set()
    for order in (["t0", "t1", "t2"], ["t2", "t1", "t0"], ["t1", "t0", "t2"]):
        ana.held = {"chat": dict.fromkeys(order)}  # type: ignore[dict-item]  # ordered
        ana.touch()
        figures.add(model.occupied(ana))
    assert figures == {0.6}


def test_a_task_id_used_again_gets_the_profile_of_the_new_task() -> None:
    """A failed event can leave the settings of a task behind under its id; a task made
    again under that id with another profile must not be routed with the old one."""
    engine = engine_for(
        {"profiles": {"vip": {"channel": "chat", "share": 100}}},
        EngineOptions(auto_accept=True, record_decisions=False),
    )
    model = engine.pipeline.contexts["capacity_share"].shared["model"]
    assert model.settings_for(Task("t1", 0, "chat", {}, 0, 0.0, profile="vip")).name == "vip"
    assert model.settings_for(Task("t1", 0, "chat", {}, 0, 0.0)).name == "chat (global)"


def test_a_record_at_the_same_instant_keeps_the_clock_as_the_clock_gives_it() -> None:
    """Saved states write the figures as kept: an interval closed at 5 and again at 5.0
    (the same instant) is written as 5.0, as a plain write would."""
    engine = engine_for(options=EngineOptions(auto_accept=True, record_decisions=False))
    engine.add_agent("ana", {"chat": 2})
    engine.advance_to(5)
    engine.create_task("t1", "chat")
    engine.advance_to(5.0)
    engine.set_status("ana", "ready")
    since = engine.save()["agents"][0]["plugin_state"]["capacity_share"]["since"]
    assert since == 5.0
    assert isinstance(since, float)
