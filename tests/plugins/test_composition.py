"""The five plugins compose: any subset, in any order, keeps the core's invariants."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.core import Engine, EngineOptions, OmnirouteError, load_deployment, read_mapping_file
from omniroute.core.context import json_like
from omniroute.core.undo import plain

RAW = read_mapping_file(
    Path(__file__).resolve().parents[2] / "examples" / "contact-center" / "deployment.yaml"
)
PLUGINS = ["off_hours", "weighted_cascade", "capacity_share", "least_occupancy", "toggle_to_one"]
CHANNELS = ["voice", "callback", "chat", "email", "messaging"]


def run(plugins: list[str], seed: int, record: bool = True) -> Engine:
    raw: dict[str, Any] = {
        key: value for key, value in RAW.items() if key not in PLUGINS or key in plugins
    }
    raw["plugins"] = plugins
    engine = Engine(
        load_deployment(raw),
        options=EngineOptions(
            auto_accept=False, reservation_timeout=20, record_decisions=record, transactional=record
        ),
    )
    rng = random.Random(seed)
    for n in range(8):
        engine.add_agent(
            f"a{n}",
            {"voice": 1, "callback": 1, "chat": rng.randint(1, 3), "email": 2, "messaging": 3},
            {"skills": {"sales": rng.randint(0, 3), "support": rng.randint(0, 3)}},
            groups=[rng.choice(["in_house", "bpo", "overflow"])],
        )
    for step in range(120):
        engine.advance_to(engine.now + rng.uniform(0, 40))
        action = rng.random()
        try:
            if action < 0.35:
                engine.create_task(
                    f"t{step}",
                    rng.choice(CHANNELS),
                    {"type": rng.choice(["sales", "support"])},
                    rng.randint(0, 3),
                )
            else:
                tasks = [t for t in engine.tasks if t.state in ("reserved", "assigned")]
                if tasks:
                    task = rng.choice(tasks)
                    if task.state == "reserved":
                        (engine.accept if rng.random() < 0.8 else engine.decline)(task.id)
                    else:
                        engine.complete(task.id)
        except OmnirouteError:
            pass
        check_invariants(engine)
    return engine


def check_invariants(engine: Engine) -> None:
    holders: dict[str, str] = {}
    for agent in engine.agents:
        for ids in agent.held.values():
            for task_id in ids:
                assert task_id not in holders
                holders[task_id] = agent.id
    for task in engine.tasks:
        if task.state in ("reserved", "assigned"):
            assert holders[task.id] == task.agent
        else:
            assert task.id not in holders
        assert (task.id in engine.state.waiting) == (task.state == "queued")


@settings(max_examples=12, deadline=None)
@given(
    plugins=st.permutations(PLUGINS).flatmap(
        lambda order: st.sampled_from([order[:k] for k in range(6)])
    ),
    seed=st.integers(0, 10_000),
)
def test_any_subset_in_any_order(plugins: list[str], seed: int) -> None:
    first = run(list(plugins), seed)
    # Without decision records the engine skips re-checking tasks nothing changed for;
    # it must decide exactly the same.
    again = run(list(plugins), seed, record=False)
    assert [(o.task, o.agent, o.at) for o in first.offers] == [
        (o.task, o.agent, o.at) for o in again.offers
    ]
    assert {t.id: (t.state, t.reason) for t in first.tasks} == {
        t.id: (t.state, t.reason) for t in again.tasks
    }


def test_plugin_state_and_timers_are_json_like() -> None:
    """What engine.save() writes: every built-in plugin keeps JSON-like state, and every
    timer is a name and a JSON-like payload, with a handler declared for it."""
    engine = run(list(PLUGINS), seed=7)
    state = engine.state
    kept = [
        plain(state.plugin_state),
        *(plain(agent.plugin_state) for agent in engine.agents),
        *(plain(task.plugin_state) for task in engine.tasks),
    ]
    assert any(kept)
    for value in kept:
        assert json_like(value), value
        json.dumps(value)
    owners = set()
    for _at, _id, owner, name, payload in state.timers:
        assert json_like(payload), (owner, name, payload)
        assert engine.clock.handles(owner, name)
        owners.add(owner)
    assert {"off_hours", None} <= owners
