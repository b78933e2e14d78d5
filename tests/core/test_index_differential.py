"""The roster index decides exactly as the straightforward scan does.

The reference engine records decisions, so it considers every agent for every task;
the indexed engine walks per-queue ladders of open agents. Hypothesis draws the
deployment (queues whose target_workers read attributes, the agent's status, the clock
or nothing; targets with expressions and order_by; plugins in any order), the roster and
a stream of events, and both engines must make the same offers at the same times and
leave every task in the same state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.contrib import scenario as scenarios
from omniroute.core import (
    DeploymentError,
    Engine,
    EngineOptions,
    Indexing,
    OmnirouteError,
    PluginError,
    RankingKey,
    hookimpl,
    load_deployment,
)
from omniroute.core.plugins import plugin_manager

CHANNELS = ["voice", "chat", "email"]
SKILLS = ["sales", "support", "billing"]

TARGET_WORKERS = [
    "1 == 1",
    "skills.{skill} > 0",
    "skills.{skill} >= 2",
    'tier IN ["gold", "silver"]',
    'status == "ready" AND skills.{skill} > 0',
    "taskrouter.currentHour >= 0 AND skills.{skill} > 0",
    "taskrouter.currentMin >= 10 AND skills.{skill} > 0",
    'groups HAS "bpo"',
]
TARGET_EXPRESSIONS = [
    None,
    "worker.level >= task.level",
    'worker.tier != "bronze"',
    "task.age >= 30",
]
ORDER_BY = [None, "worker.level DESC", "worker.skills.sales ASC"]


@st.composite
def timed_keys(draw: st.DrawFn) -> dict[str, Any]:
    """Some of a queue's time-dependent keys: priority aging, proficiency steps that
    widen, a wait for a preferred or last agent (issue 11), zero durations included."""
    keys: dict[str, Any] = {}
    if draw(st.booleans()):
        keys["priority_aging"] = {
            "every": draw(st.sampled_from([5, 20])),
            "step": draw(st.integers(1, 2)),
            **({"cap": draw(st.integers(0, 3))} if draw(st.booleans()) else {}),
        }
    if draw(st.booleans()):
        keys["steps"] = [
            {"after": 0, "expression": draw(st.sampled_from(STEP_EXPRESSIONS))},
            *(
                {"after": after, "expression": draw(st.sampled_from(STEP_EXPRESSIONS))}
                for after in draw(st.sampled_from([[], [15], [10, 40]]))
            ),
        ]
    if draw(st.booleans()):
        keys["preferred_agent"] = {
            "wait": draw(st.sampled_from([0, 10, 60])),
            "last_agent": "customer",
            "window": draw(st.sampled_from([30, 3600])),
        }
    return keys


STEP_EXPRESSIONS = [
    "level >= 3",
    "level >= 2",
    'tier == "gold"',
    "skills.sales >= task.level",
    "1 == 1",
]


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    queues = {}
    for n in range(draw(st.integers(1, 4))):
        template = draw(st.sampled_from(TARGET_WORKERS))
        queues[f"q{n}"] = {
            "target_workers": template.format(skill=draw(st.sampled_from(SKILLS))),
            "skill": draw(st.sampled_from(SKILLS)),
            **draw(timed_keys()),
        }
    names = list(queues)
    filters = []
    for kind in draw(st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True)):
        targets = []
        for _ in range(draw(st.integers(1, 2))):
            target: dict[str, Any] = {"queue": draw(st.sampled_from(names))}
            expression = draw(st.sampled_from(TARGET_EXPRESSIONS))
            if expression is not None:
                target["expression"] = expression
            order_by = draw(st.sampled_from(ORDER_BY))
            if order_by is not None:
                target["order_by"] = order_by
            if draw(st.booleans()):
                target["timeout"] = draw(st.sampled_from([30, 90]))
            targets.append(target)
        filters.append({"name": kind, "expression": f'type == "{kind}"', "targets": targets})
    plugins = draw(
        st.permutations(["capacity_share", "least_occupancy"]).flatmap(
            lambda order: st.sampled_from([order[:k] for k in range(3)])
        )
    )
    raw: dict[str, Any] = {
        "plugins": list(plugins),
        "channels": {channel: {} for channel in CHANNELS},
        "queues": queues,
        "workflow": {"filters": filters, "default_queue": names[0]},
    }
    if "least_occupancy" in plugins and draw(st.booleans()):
        raw["least_occupancy"] = {"max_concurrent": {names[0]: 1}, "reroute_delay": 5}
    if draw(st.booleans()):  # wrap-ups and offer policies (docs/wrap-up.md, offer-policy.md)
        raw["channels"] = {
            "voice": {"wrap_up": 30, "offer": {"timeout": 20, "on_timeout": "not_ready"}},
            "chat": {
                "wrap_up": draw(st.sampled_from([0, 10])),
                "offer": {"auto_answer": "worker.level >= 2"},
            },
            "email": {},
        }
        queues[names[-1]]["wrap_up"] = draw(st.sampled_from([0, 45]))
        queues[names[0]]["offer"] = {"timeout": 8}
    return raw


agents = st.lists(
    st.fixed_dictionaries(
        {
            "channels": st.fixed_dictionaries(
                {"voice": st.integers(0, 1), "chat": st.integers(0, 3), "email": st.integers(0, 2)}
            ),
            "skills": st.fixed_dictionaries({skill: st.integers(0, 3) for skill in SKILLS}),
            "tier": st.sampled_from(["gold", "silver", "bronze"]),
            "level": st.sampled_from([1, 2, 3, float("nan")]),
            "group": st.sampled_from(["in_house", "bpo"]),
            "status": st.sampled_from(["ready", "ready", "not_ready", "offline"]),
        }
    ),
    min_size=2,
    max_size=10,
)

events = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "create",
                "create",
                "create",
                "accept",
                "accept",
                "decline",
                "complete",
                "complete",
                "cancel",
                "status",
                "skills",
                "capacity",
                "logout",
                "transfer",
                "end_wrap_up",
                "convert",
                "transfer_agent",
                "timeout",
            ]
        ),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.floats(0, 40, allow_nan=False),
    ),
    min_size=20,
    max_size=80,
)


def play(
    raw: dict[str, Any],
    roster: list[dict[str, Any]],
    stream: list[Any],
    record: bool,
    reservation_timeout: float | None,
    auto_accept: bool = True,
) -> Engine:
    engine = Engine(
        load_deployment(raw),
        options=EngineOptions(
            auto_accept=auto_accept,
            reservation_timeout=reservation_timeout,
            record_decisions=record,
            transactional=record,
        ),
    )
    for n, spec in enumerate(roster):
        engine.add_agent(
            f"a{n}",
            spec["channels"],
            {"skills": dict(spec["skills"]), "tier": spec["tier"], "level": spec["level"]},
            groups=[spec["group"]],
            status=spec["status"],
        )
    agent_ids = [f"a{n}" for n in range(len(roster))]
    for step, (kind, pick, value, wait) in enumerate(stream):
        engine.advance_to(engine.now + wait)
        open_tasks = sorted(t.id for t in engine.tasks if t.is_open)
        agent_id = agent_ids[pick % len(agent_ids)]
        task_id = open_tasks[pick % len(open_tasks)] if open_tasks else None
        try:
            if kind == "create":
                attributes: dict[str, Any] = {
                    "type": SKILLS[pick % 3],
                    "level": 1 + value % 3,
                    "customer": f"c{value % 4}",
                }
                if value % 5 == 0:
                    attributes["preferred_agent"] = agent_ids[value % len(agent_ids)]
                engine.create_task(f"t{step}", CHANNELS[value % 3], attributes, priority=value % 2)
            elif (
                kind in ("accept", "decline", "timeout", "complete", "cancel")
                and task_id is not None
            ):
                getattr(engine, kind)(task_id)
            elif kind == "status":
                engine.set_status(agent_id, "ready" if value % 3 else "not_ready")
            elif kind == "skills":
                engine.set_agent(
                    agent_id, {"skills": {s: (value >> i) % 4 for i, s in enumerate(SKILLS)}}
                )
            elif kind == "capacity":
                engine.set_agent(agent_id, channels={"chat": value % 4})
            elif kind == "logout":
                engine.logout(agent_id)
            elif kind == "end_wrap_up":
                engine.end_wrap_up(agent_id)
            elif kind == "convert" and task_id is not None:
                engine.convert_to_callback(task_id, CHANNELS[value % 3])
            elif kind == "transfer" and task_id is not None:
                engine.transfer(task_id, to_queue=sorted(raw["queues"])[value % len(raw["queues"])])
            elif kind == "transfer_agent" and task_id is not None:
                # pending until the agent answers (without auto_accept); not ready or a
                # logout of either side may come before the answer
                engine.transfer(task_id, to_agent=agent_id)
        except OmnirouteError:
            pass
    engine.run_timers(until=engine.now + 120)
    return engine


@settings(max_examples=150, deadline=None)
@given(
    raw=deployments(),
    roster=agents,
    stream=events,
    # without reservation timeouts no timer fires, so nothing but the clock itself makes
    # the engine retry tasks whose eligibility reads it
    reservation_timeout=st.sampled_from([None, 25]),
    # offers left pending: answers, and agents losing availability while they wait
    auto_accept=st.booleans(),
)
def test_the_index_decides_as_the_scan_does(
    raw: dict[str, Any],
    roster: list[dict[str, Any]],
    stream: list[Any],
    reservation_timeout: float | None,
    auto_accept: bool,
) -> None:
    reference = play(raw, roster, stream, True, reservation_timeout, auto_accept)
    indexed = play(raw, roster, stream, False, reservation_timeout, auto_accept)
    assert indexed.index is not None
    assert reference.index is None
    assert [(o.task, o.agent, o.at) for o in indexed.offers] == [
        (o.task, o.agent, o.at) for o in reference.offers
    ]
    assert {t.id: (t.state, t.reason, t.queue, t.agent) for t in indexed.tasks} == {
        t.id: (t.state, t.reason, t.queue, t.agent) for t in reference.tasks
    }
    assert [(o.id, o.state) for o in indexed.offers] == [(o.id, o.state) for o in reference.offers]
    for queue in raw["queues"]:
        for channel in CHANNELS:
            assert indexed.queue_counts(queue, channel) == reference.queue_counts(queue, channel)


ROOT = Path(__file__).resolve().parents[2]
EVERY_SCENARIO = sorted(
    path
    for folder in (ROOT / "tests" / "scenarios", ROOT / "examples")
    for path in scenarios.find_scenarios([folder])
)


def test_there_are_scenarios_to_replay() -> None:
    assert len(EVERY_SCENARIO) >= 30


@pytest.mark.parametrize("path", EVERY_SCENARIO, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_scenario_routes_the_same_through_the_index(path: Path) -> None:
    try:
        scenario = scenarios.load_scenario(path)
    except DeploymentError:
        pytest.skip("a scenario that does not load (tested for its error elsewhere)")
    reference, reference_errors = scenarios.execute(scenario)
    indexed, indexed_errors = scenarios.execute(scenario, record_decisions=False)
    assert indexed.index is not None
    assert [(o.task, o.agent, o.at) for o in indexed.offers] == [
        (o.task, o.agent, o.at) for o in reference.offers
    ]
    assert {t.id: (t.state, t.reason) for t in indexed.tasks} == {
        t.id: (t.state, t.reason) for t in reference.tasks
    }
    assert indexed_errors == reference_errors


class _Raising:
    @hookimpl
    def omniroute_ranking_keys(self, context: Any) -> list[RankingKey]:
        return [RankingKey("boom", lambda _task, _agent: 1 / 0, Indexing())]


def test_a_key_that_raises_on_the_indexed_path_names_its_plugin() -> None:
    plugin_manager().register(_Raising(), name="raising")
    try:
        engine = Engine(
            load_deployment({"plugins": ["raising"]}),
            options=EngineOptions(record_decisions=False),
        )
        engine.add_agent("ana", {"chat": 1})
        with pytest.raises(PluginError, match=r"raising.*ranking key 'boom'"):
            engine.create_task("c1", "chat")
        assert "c1" not in engine.state.tasks  # the failed event changed nothing
        assert engine.agent("ana").held_count() == 0
    finally:
        plugin_manager().unregister(name="raising")
