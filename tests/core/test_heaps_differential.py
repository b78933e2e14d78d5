"""The heaps decide exactly as the reference scan does, and stay right as agents change.

Rosters are large enough for the heaps to hold stale entries and be rebuilt (more than
64 entries), and the events change what the heaps are keyed by: capacity, logout and
login, status, and plugin state that a ranking key reads (a plugin's handler changes it
and says so with `agent_changed`). A plugin whose handler fails on some accepts makes
events roll back, after which the heaps are rebuilt from the state. A time-dependent
key with floors keeps the sorted ladders, and must decide alike too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute.core import (
    Engine,
    EngineOptions,
    EventHandler,
    Indexing,
    OmnirouteError,
    PluginError,
    RankingKey,
    hookimpl,
    load_deployment,
)
from omniroute.core.heaps import AgentHeap, TaskHeaps
from omniroute.core.index import FlooredLadder, Ladder
from omniroute.core.plugins import plugin_manager
from omniroute.core.state import Agent, Task


class _Scoring:
    """Ranks by a score kept in plugin state, raised on every completion; an accept of a
    task marked `boom` fails, so that the event rolls back."""

    @hookimpl
    def omniroute_ranking_keys(self, context: Any) -> list[RankingKey]:
        return [
            RankingKey(
                "score", lambda _task, agent: context.agent_state(agent).get("score", 0), Indexing()
            )
        ]

    @hookimpl
    def omniroute_event_handlers(self, context: Any) -> list[EventHandler]:
        def completed(task: Task | None, agent: Agent | None) -> None:
            assert task is not None
            assert agent is not None
            state = context.agent_state(agent)
            state["score"] = state.get("score", 0) + 1 + task.seq % 3
            context.agent_changed(agent)

        def accepted(task: Task | None, _agent: Agent | None) -> None:
            assert task is not None
            if task.attributes.get("boom"):
                raise RuntimeError("refused")

        return [EventHandler("completed", completed), EventHandler("accepted", accepted)]


class _Clocked:
    """Longest ready first, computed from the clock: a time-dependent key with floors,
    which the heaps cannot serve."""

    @hookimpl
    def omniroute_ranking_keys(self, context: Any) -> list[RankingKey]:
        return [
            RankingKey(
                "ready_for",
                lambda _task, agent: agent.status_since - context.now,
                Indexing(
                    time_dependent=True,
                    floor=lambda _task, agent, now: agent.status_since - now,
                    floor_order=lambda _task, agent: agent.status_since,
                ),
            )
        ]


@pytest.fixture(scope="module", autouse=True)
def _plugins() -> Iterator[None]:
    manager = plugin_manager()
    manager.register(_Scoring(), name="scoring")
    manager.register(_Clocked(), name="clocked")
    yield
    manager.unregister(name="scoring")
    manager.unregister(name="clocked")


PLUGINS = [
    [],
    ["least_occupancy"],
    ["scoring"],
    ["scoring", "least_occupancy"],
    ["clocked"],
    ["least_occupancy", "clocked"],
]

events = st.lists(
    st.tuples(
        st.sampled_from(
            ["create"] * 4
            + ["accept"] * 3
            + ["complete"] * 3
            + ["decline", "cancel", "capacity", "logout", "login", "status", "boom"]
        ),
        st.integers(0, 10_000),
        st.integers(0, 1000),
        st.floats(0, 20, allow_nan=False),
    ),
    min_size=40,
    max_size=140,
)


def deployment(plugins: list[str], queues: int) -> dict[str, Any]:
    return {
        "plugins": plugins,
        "channels": {"chat": {}, "voice": {}},
        "queues": {
            f"q{n}": {"target_workers": "1 == 1" if n == 0 else f"team == {n}"}
            for n in range(queues)
        },
    }


def play(raw: dict[str, Any], agents: int, stream: list[Any], indexed: bool) -> Engine:
    engine = Engine(
        load_deployment(raw),
        options=EngineOptions(record_decisions=not indexed, transactional=True),
    )
    queues = len(raw["queues"])
    for n in range(agents):
        engine.add_agent(
            f"a{n}",
            {"chat": 1 + n % 3, "voice": n % 2},
            {"team": n % queues},
            status="ready" if n % 7 else "not_ready",
        )
    for step, (kind, pick, value, wait) in enumerate(stream):
        engine.advance_to(engine.now + wait)
        agent_id = f"a{pick % agents}"
        reserved = sorted(t.id for t in engine.tasks if t.state == "reserved")
        assigned = sorted(t.id for t in engine.tasks if t.state == "assigned")
        open_tasks = sorted(t.id for t in engine.tasks if t.is_open)
        try:
            if kind in ("create", "boom"):
                engine.create_task(
                    f"t{step}",
                    "chat" if value % 4 else "voice",
                    {"boom": kind == "boom"},
                    priority=value % 3,
                    queue=f"q{value % queues}",
                )
            elif kind in ("accept", "decline") and reserved:
                getattr(engine, kind)(reserved[pick % len(reserved)])
            elif kind == "complete" and assigned:
                engine.complete(assigned[pick % len(assigned)])
            elif kind == "cancel" and open_tasks:
                engine.cancel(open_tasks[pick % len(open_tasks)])
            elif kind == "capacity":
                engine.set_agent(agent_id, channels={"chat": value % 4})
            elif kind == "logout":
                engine.logout(agent_id)
            elif kind == "login":
                engine.login(agent_id)
            elif kind == "status":
                engine.set_status(agent_id, "ready" if value % 3 else "not_ready")
        except (OmnirouteError, PluginError):
            pass
    return engine


@settings(max_examples=40, deadline=None)
@given(
    plugins=st.sampled_from(PLUGINS),
    queues=st.integers(1, 3),
    agents=st.integers(66, 90),
    stream=events,
)
def test_heaps_decide_as_the_scan_does(
    plugins: list[str], queues: int, agents: int, stream: list[Any]
) -> None:
    raw = deployment(plugins, queues)
    reference = play(raw, agents, stream, indexed=False)
    fast = play(raw, agents, stream, indexed=True)
    assert [(o.task, o.agent, o.at) for o in fast.offers] == [
        (o.task, o.agent, o.at) for o in reference.offers
    ]
    assert {t.id: (t.state, t.reason, t.agent) for t in fast.tasks} == {
        t.id: (t.state, t.reason, t.agent) for t in reference.tasks
    }
    assert fast.fast_path is not None
    kinds = {type(ladder) for ladder in fast.fast_path.index._ladders.values()}
    assert kinds <= ({Ladder, FlooredLadder} if "clocked" in plugins else {AgentHeap})


def test_a_heap_drops_stale_entries_and_is_rebuilt_when_they_outnumber_live_ones() -> None:
    agents = [Agent(f"a{n}", n, {}, (), {"chat": 1}) for n in range(100)]
    rank = {agent.id: 100 - agent.roster_index for agent in agents}
    heap = AgentHeap(
        Task("t", 0, "chat", {}, 0, 0.0),
        None,
        lambda _task, agent: (rank[agent.id], agent.roster_index),
        agents,
    )
    for round_ in range(3):  # every agent moves three times: stale entries pile up
        for agent in agents:
            rank[agent.id] = (agent.roster_index * 7 + round_) % 100
            heap.put(agent, heap.key(agent))
    assert len(heap.heap) <= 2 * len(heap) + 1
    for agent in agents[::2]:
        heap.drop(agent)
    taken = []
    while (entry := heap.pop()) is not None:
        taken.append(entry)
    order = [entry[-1].id for entry in taken]
    expected = sorted(agents[1::2], key=lambda agent: (rank[agent.id], agent.roster_index))
    assert order == [agent.id for agent in expected]
    heap.restore(taken)
    assert heap.pop() is taken[0]


def test_a_task_heap_walk_leaves_a_closed_group_and_puts_back_what_it_read() -> None:
    heaps = TaskHeaps()
    for n in range(10):
        heaps.push(("a", "chat"), f"a{n}", (n,))
        heaps.push(("b", "chat"), f"b{n}", (n + 0.5,))
    heaps.drop("a3", ("a", "chat"))
    heaps.push(("a", "chat"), "a5", (-1,))  # queued again with a new key: the old is stale
    closed: set[Any] = set()
    read = []
    for _key, task_id, _stamp in heaps.walk(
        [("a", "chat"), ("b", "chat")], lambda g: g not in closed
    ):
        read.append(task_id)
        if task_id == "b2":
            closed.add(("b", "chat"))
    assert read == ["a5", "a0", "b0", "a1", "b1", "a2", "b2", "a4", "a6", "a7", "a8", "a9"]
    again = [item[1] for item in heaps.walk([("b", "chat")], lambda _g: True)]
    assert again == [f"b{n}" for n in range(10)]
