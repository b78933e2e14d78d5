"""Invariants over random event sequences, checked after every step."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from omniroute.core import (
    Engine,
    EngineOptions,
    OmnirouteError,
    load_deployment,
    read_mapping_file,
)
from omniroute.core.state import OPEN_STATES, TASK_STATES

WORKFLOW = Path(__file__).parents[1] / "deployments" / "workflow.yaml"
DEPLOYMENT = load_deployment(WORKFLOW)
#: the same, with wrap-ups (zero, per channel, a queue's override), offer timeouts per
#: channel and queue, missed offers that make the agent not ready, and auto-answer
FLOW = load_deployment(
    {
        **read_mapping_file(WORKFLOW),
        "channels": {
            "voice": {"wrap_up": 30, "offer": {"timeout": 20, "on_timeout": "not_ready"}},
            "chat": {"wrap_up": 0, "offer": {"auto_answer": "worker.level >= 3"}},
            "email": {"wrap_up": "2m"},
            "callback": {"offer": {"auto_answer": True}},
        },
        "queues": {
            "sales": {"target_workers": 'skills HAS "sales"', "wrap_up": 5},
            "support": {"target_workers": 'skills HAS "support"', "offer": {"timeout": 8}},
            "spanish": {"target_workers": 'languages HAS "es"'},
            "overflow": {},
        },
    },
    name="workflow with wrap-up and offer policy",
)
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
        deployment=st.sampled_from([DEPLOYMENT, FLOW, TIMED]),
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

    @precondition(
        lambda self: (
            hasattr(self, "engine") and any(task.state == "assigned" for task in self.engine.tasks)
        )
    )
    @rule(data=st.data(), answer=st.sampled_from(["accept", "decline", "timeout", "wait"]))
    def transfer_assigned_to_agent(self, data: st.DataObject, answer: str) -> None:
        """Aimed at the pending transfer: an assigned task to an agent, one with room
        when there is one, then answered (or left for the other rules: a timer, the
        recipient going not ready or logging out, the sender completing it)."""
        task = data.draw(
            st.sampled_from(sorted(t.id for t in self.engine.tasks if t.state == "assigned"))
        )
        channel = self.engine.task(task).channel
        with_room = [
            a.id
            for a in self.engine.agents
            if a.status == "ready" and a.has_room(channel) and a.id != self.engine.task(task).agent
        ]
        self.apply("transfer", task, to_agent=data.draw(st.sampled_from(with_room or AGENTS)))
        if answer != "wait":
            self.apply(answer, task)

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

    @rule(data=st.data())
    def progress(self, data: st.DataObject) -> None:
        """A reserved task accepted, or an assigned one completed (and wrapped up after):
        random ids alone rarely meet them."""
        moving = sorted(t.id for t in self.engine.tasks if t.state in ("reserved", "assigned"))
        if moving:
            task = self.engine.task(data.draw(st.sampled_from(moving)))
            self.apply("accept" if task.state == "reserved" else "complete", task.id)

    @rule(data=st.data(), one=st.booleans())
    def end_a_wrap_up(self, data: st.DataObject, one: bool) -> None:
        wrapping = sorted(
            (agent.id, task)
            for agent in self.engine.agents
            for ids in agent.wrap_up.values()
            for task in ids
        )
        if wrapping:
            agent, task = data.draw(st.sampled_from(wrapping))
            self.apply("end_wrap_up", agent, task if one else None)

    @rule(data=st.data(), agent=st.sampled_from([*AGENTS, "ghost"]), one=st.booleans())
    def end_wrap_up(self, data: st.DataObject, agent: str, one: bool) -> None:
        task = data.draw(st.sampled_from(self.task_ids())) if one else None
        self.apply("end_wrap_up", agent, task)

    @rule(
        data=st.data(),
        channel=st.sampled_from([*CHANNELS, "callback", "fax"]),
        queue=st.sampled_from([None, None, "support", "overflow", "nowhere"]),
    )
    def convert_to_callback(self, data: st.DataObject, channel: str, queue: str | None) -> None:
        self.apply(
            "convert_to_callback", data.draw(st.sampled_from(self.task_ids())), channel, queue
        )

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
            if task.transfer is not None:
                # a transfer to an agent waits for the recipient; the sender keeps the task
                assert task.state == "assigned"
                assert task.transfer.state == "pending"
                assert task.transfer.agent != task.agent
            if task.state in ("reserved", "assigned"):
                expected = [task.agent] + ([task.transfer.agent] if task.transfer else [])
                assert sorted(holders.get(task.id, [])) == sorted(expected), (
                    f"{task.id} {task.state} held by {holders.get(task.id)}"
                )
            else:
                assert task.id not in holders
                assert task.agent is None
            assert (task.id in self.engine.state.waiting) == (task.state == "queued")
            if task.state not in OPEN_STATES and task.state != "completed":
                assert task.reason, f"{task.id} is {task.state} without a reason"

    @invariant()
    def only_ready_agents_hold_pending_offers(self) -> None:
        """An agent who went not ready or logged out lost its pending reservations,
        offers and transfers to it alike; what it accepted it keeps."""
        if not hasattr(self, "engine"):
            return
        for task in self.engine.tasks:
            pending = [task.transfer] if task.transfer is not None else []
            if task.state == "reserved" and task.reservation is not None:
                pending.append(task.reservation)
            for reservation in pending:
                assert reservation.state == "pending"
                status = self.engine.agent(reservation.agent).status
                assert status == "ready", f"{reservation.id} pending with {status} agent"

    @invariant()
    def no_agent_holds_more_than_its_capacity(self) -> None:
        if not hasattr(self, "engine"):
            return
        for agent in self.engine.agents:
            for channel in {*agent.held, *agent.wrap_up}:
                # a wrap-up takes a unit of capacity like a task held
                assert agent.held_count(channel) <= agent.capacity.get(channel, 0)
            if agent.status == "offline":
                assert agent.held_count() == 0

    @invariant()
    def wrap_ups_follow_tasks_their_agents_handled_and_end_on_time(self) -> None:
        if not hasattr(self, "engine"):
            return
        engine = self.engine
        for agent in engine.agents:
            for channel, ids in agent.wrap_up.items():
                assert ids, f"{agent.id}: an empty wrap-up entry for {channel}"
                for task_id, until in ids.items():
                    task = engine.task(task_id)
                    assert task.state in ("completed", "canceled"), (task_id, task.state)
                    assert task.channel == channel
                    assert task_id not in agent.held.get(channel, ())
                    # its timer fires at its time: a wrap-up is never left behind the clock
                    assert until > engine.now, (agent.id, task_id, until, engine.now)

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
