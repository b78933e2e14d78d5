"""toggle_to_one: the remembered capacity, its restoration, and the check's warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniroute.core import DeploymentError, Engine, EngineOptions, load_deployment

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "toggle_to_one" / "deployment.yaml"


@pytest.fixture
def engine() -> Engine:
    return Engine(load_deployment(EXAMPLE), options=EngineOptions(auto_accept=True))


def test_lowered_when_full_and_restored_on_the_next_accept(engine: Engine) -> None:
    ana = engine.add_agent("ana", {"voice": 1, "chat": 3})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    assert ana.capacity["chat"] == 3
    engine.create_task("c3", "chat")
    assert ana.capacity["chat"] == 1
    assert ana.plugin_state["toggle_to_one"] == {
        "remembered_capacity": 3,
        "reserved_before": ["r1", "r2", "r3"],
    }
    for task in ("c1", "c2", "c3"):
        engine.complete(task)
    engine.create_task("v1", "voice")  # accepting anything restores the capacity
    assert ana.capacity["chat"] == 3
    assert "remembered_capacity" not in ana.plugin_state["toggle_to_one"]


def test_restored_at_logout(engine: Engine) -> None:
    ana = engine.add_agent("ana", {"voice": 1, "chat": 2})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    assert ana.capacity["chat"] == 1
    engine.complete("c1")
    engine.complete("c2")
    engine.logout("ana")
    assert ana.capacity["chat"] == 2


def test_a_capacity_of_one_it_did_not_set_is_left_alone(engine: Engine) -> None:
    bo = engine.add_agent("bo", {"voice": 1, "chat": 1})
    engine.create_task("c1", "chat")
    assert bo.capacity["chat"] == 1
    assert bo.plugin_state.get("toggle_to_one", {}) == {}
    engine.complete("c1")
    engine.create_task("c2", "chat")
    assert bo.capacity["chat"] == 1


def test_the_check_warns_without_the_mutual_exclusion_expressions() -> None:
    deployment = load_deployment(
        {"plugins": ["toggle_to_one"], "channels": {"voice": {}, "chat": {}}}
    )
    warnings = [str(w) for w in deployment.warnings]
    assert len(warnings) == 2
    assert "worker.channel.chat.available_capacity_percentage == 100" in warnings[0]
    assert "worker.channel.voice.available_capacity_percentage == 100" in warnings[1]
    assert load_deployment(EXAMPLE).warnings == ()


def test_unknown_channel_is_an_error() -> None:
    with pytest.raises(DeploymentError, match=r"toggle_to_one.channel: unknown channel 'sms'"):
        load_deployment(
            {
                "plugins": ["toggle_to_one"],
                "channels": {"chat": {}},
                "toggle_to_one": {"channel": "sms"},
            }
        )


def test_the_operators_capacity_wins_over_a_remembered_one() -> None:
    """Issue 12, item 9: four plugins, chat capacity set 0 -> 1 while toggle_to_one
    remembered 2; the restore on the first acceptance let one pass offer and accept a
    second chat."""
    from omniroute.core import read_mapping_file

    examples = Path(__file__).parents[2] / "examples"
    raw = dict(read_mapping_file(examples / "contact-center" / "deployment.yaml"))
    raw.pop("off_hours")
    raw["plugins"] = [name for name in raw["plugins"] if name != "off_hours"]
    engine = Engine(load_deployment(raw), options=EngineOptions(auto_accept=True))
    skills = {"skills": {"sales": 1, "support": 1}}
    engine.add_agent("a", {"chat": 2, "voice": 1}, skills, ["in_house"])
    for task in ("t1", "t2"):
        engine.create_task(task, "chat", {"type": "support"})
    assert engine.agent("a").capacity["chat"] == 1  # toggled, 2 remembered
    engine.complete("t1")
    engine.complete("t2")
    engine.set_agent("a", channels={"chat": 0})
    engine.create_task("t3", "chat", {"type": "support"})
    engine.create_task("t4", "chat", {"type": "support"})
    engine.set_agent("a", channels={"chat": 1})
    agent = engine.agent("a")
    assert agent.capacity["chat"] == 1
    assert sorted(agent.held["chat"]) == ["t3"]
    assert engine.task("t4").state == "queued"


def test_default_max_capacity_must_be_a_capacity_to_toggle_down_from() -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(
            {
                "plugins": ["toggle_to_one"],
                "channels": {"chat": {}},
                "toggle_to_one": {"default_max_capacity": 1},
            }
        )
    assert "toggle_to_one.default_max_capacity: must be at least 2" in str(caught.value)


def test_accepting_a_chat_reserved_before_the_drop_restores_nothing() -> None:
    engine = Engine(load_deployment(EXAMPLE), options=EngineOptions(auto_accept=False))
    ana = engine.add_agent("ana", {"voice": 1, "chat": 2})
    engine.create_task("c1", "chat")
    engine.create_task("c2", "chat")
    engine.accept("c1")
    assert ana.capacity["chat"] == 1
    engine.accept("c2")
    assert ana.capacity["chat"] == 1
    engine.complete("c1")
    engine.complete("c2")
    engine.create_task("v1", "voice")
    engine.accept("v1")  # the next piece of work
    assert ana.capacity["chat"] == 2
