"""Invariants over random event sequences, checked after every step."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from omniroute.core import Engine, EngineOptions, OmnirouteError, load_deployment
from omniroute.core.state import OPEN_STATES, TASK_STATES

DEPLOYMENT = load_deployment(Path(__file__).parents[1] / "deployments" / "workflow.yaml")
#: the same with priority aging, proficiency steps and preferred-agent waits (issue 11)
TIMED = load_deployment(Path(__file__).parents[1] / "deployments" / "workflow-timed.yaml")
AGENTS = ["a0", "a1", "a2", "a3"]
CHANNELS = ["voice", "chat", "email"]


def fingerprint(engine: Engine) -> tuple[Any, ...]:
    """Everything observable about the engine's state."""
    return (
        engine.now,
        tuple((o.task, o.agent, o.at) for o in engine.offers),
        tuple(
            sorted(
                (t.id, t.state, t.reason, t.queue, t.agent, t.target_index) for t in engine.tasks
            )
        ),
        tuple(
            sorted(
                (
                    a.id,
                    a.status,
                    tuple(sorted(a.capacity.items())),
                    tuple(sorted((ch, tuple(sorted(ids))) for ch, ids in a.held.items())),
                )
                for a in engine.agents
            )
        ),
    )


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.task_count = 0

    @initialize(
        deployment=st.sampled_from([DEPLOYMENT, TIMED]),
        auto_accept=st.booleans(),
        reservation_timeout=st.sampled_from([None, 15.0]),
        roster=st.lists(
            st.tuples(
                st.fixed_dictionaries(
                    {
                        "voice": st.integers(0, 1),
                        "chat": st.integers(0, 3),
                        "email": st.integers(0, 2),
                    }
                ),
                st.sampled_from([["es"], ["en"], ["es", "en"]]),
                st.integers(1, 4),
                st.lists(st.sampled_from(["sales", "support"]), unique=True),
                st.sampled_from(["ready", "not_ready", "offline"]),
            ),
            min_size=len(AGENTS),
            max_size=len(AGENTS),
        ),
    )
    def start(
        self,
        deployment: Any,
        auto_accept: bool,
        reservation_timeout: float | None,
        roster: list[Any],
    ) -> None:
        self.options = EngineOptions(
            auto_accept=auto_accept, reservation_timeout=reservation_timeout
        )
        self.deployment = deployment
        self.engine = Engine(deployment, options=self.options)
        for agent_id, (channels, languages, level, skills, status) in zip(
            AGENTS, roster, strict=True
        ):
            self.apply(
                "add_agent",
                agent_id,
                channels,
                {"languages": languages, "level": level, "skills": skills},
                status=status,
            )

    def apply(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.log.append((method, args, kwargs))
        before = fingerprint(self.engine)
        try:
            getattr(self.engine, method)(*args, **kwargs)
        except OmnirouteError:
            assert fingerprint(self.engine) == before, f"a failed {method} changed the state"

    def task_ids(self) -> list[str]:
        return [*sorted(self.engine.state.tasks), "ghost"]

    @rule(
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 3),
        language=st.sampled_from(["es", "en"]),
        kind=st.sampled_from(["sales", "question"]),
        customer=st.sampled_from(["c1", "c2", "c3"]),
        preferred=st.sampled_from([None, *AGENTS]),
    )
    def create(
        self,
        channel: str,
        priority: int,
        language: str,
        kind: str,
        customer: str,
        preferred: str | None,
    ) -> None:
        self.task_count += 1
        attributes = {"language": language, "type": kind, "customer": customer}
        if preferred is not None:
            attributes["preferred_agent"] = preferred
        self.apply("create_task", f"t{self.task_count}", channel, attributes, priority)

    @rule(
        data=st.data(),
        action=st.sampled_from(["accept", "decline", "timeout", "complete", "cancel"]),
    )
    def task_event(self, data: st.DataObject, action: str) -> None:
        self.apply(action, data.draw(st.sampled_from(self.task_ids())))

    @rule(
        data=st.data(),
        queue=st.sampled_from(["sales", "support", "spanish", "overflow", "nowhere"]),
    )
    def transfer_to_queue(self, data: st.DataObject, queue: str) -> None:
        self.apply("transfer", data.draw(st.sampled_from(self.task_ids())), to_queue=queue)

    @rule(data=st.data(), agent=st.sampled_from([*AGENTS, "ghost"]))
    def transfer_to_agent(self, data: st.DataObject, agent: str) -> None:
        self.apply("transfer", data.draw(st.sampled_from(self.task_ids())), to_agent=agent)

    @rule(agent=st.sampled_from([*AGENTS, "ghost"]), action=st.sampled_from(["login", "logout"]))
    def session(self, agent: str, action: str) -> None:
        self.apply(action, agent)

    @rule(agent=st.sampled_from(AGENTS), status=st.sampled_from(["ready", "not_ready"]))
    def status(self, agent: str, status: str) -> None:
        self.apply("set_status", agent, status)

    @rule(
        agent=st.sampled_from(AGENTS),
        level=st.integers(1, 4),
        extra=st.integers(0, 2),
        channel=st.sampled_from(CHANNELS),
    )
    def change_agent(self, agent: str, level: int, extra: int, channel: str) -> None:
        # Capacity only grows here, so "never over capacity" is an invariant, not a race.
        capacity = self.engine.agent(agent).capacity.get(channel, 0) + extra
        self.apply("set_agent", agent, {"level": level}, {channel: capacity})

    @rule(seconds=st.floats(0, 150))
    def wait(self, seconds: float) -> None:
        self.apply("advance_to", self.engine.now + seconds)

    @invariant()
    def every_task_is_in_exactly_one_consistent_state(self) -> None:
        if not hasattr(self, "engine"):
            return
        holders: dict[str, list[str]] = {}
        for agent in self.engine.agents:
            for channel, ids in agent.held.items():
                for task_id in ids:
                    holders.setdefault(task_id, []).append(agent.id)
                    assert self.engine.task(task_id).channel == channel
        for task in self.engine.tasks:
            assert task.state in TASK_STATES
            if task.state in ("reserved", "assigned"):
                assert holders.get(task.id) == [task.agent], (
                    f"{task.id} {task.state} held by {holders.get(task.id)}"
                )
            else:
                assert task.id not in holders
                assert task.agent is None
            assert (task.id in self.engine.state.waiting) == (task.state == "queued")
            if task.state not in OPEN_STATES and task.state != "completed":
                assert task.reason, f"{task.id} is {task.state} without a reason"

    @invariant()
    def no_agent_holds_more_than_its_capacity(self) -> None:
        if not hasattr(self, "engine"):
            return
        for agent in self.engine.agents:
            for channel, ids in agent.held.items():
                assert len(ids) <= agent.capacity.get(channel, 0)
            if agent.status == "offline":
                assert agent.held_count() == 0

    @precondition(lambda self: hasattr(self, "engine"))
    @rule()
    def same_inputs_give_the_same_decisions(self) -> None:
        replay = Engine(self.deployment, options=self.options)
        for method, args, kwargs in self.log:
            with contextlib.suppress(OmnirouteError):
                getattr(replay, method)(*args, **kwargs)
        assert fingerprint(replay) == fingerprint(self.engine)


RoutingMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRouting = RoutingMachine.TestCase
