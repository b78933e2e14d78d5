"""A wider state machine: every built-in plugin, more agents, capacity up and down.

Issue 12, item 9: with four plugins, `set_agent` raising a chat capacity from 0 to 1 led
one routing pass to offer (and accept) two chats. This machine looks for any event
sequence in which an agent ends up holding more than its capacity because of routing:
every reservation is made to a ready agent with room, and whenever the number of tasks
an agent holds on a channel grows in a step, it stays within the capacity the operator
last gave (plugins may lower a capacity, never raise it past the operator's). Both selection paths are exercised (decision records
make the engine scan; without them it routes through the roster index).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from omniroute.core import Engine, EngineOptions, OmnirouteError, load_deployment, read_mapping_file

from .saboteur import with_flow, with_timed_queues

EXAMPLES = Path(__file__).parents[2] / "examples"
RAW = read_mapping_file(EXAMPLES / "contact-center" / "deployment.yaml")


def without(plugin: str | None) -> Any:
    raw = {key: value for key, value in RAW.items() if key != plugin}
    raw["plugins"] = [name for name in RAW["plugins"] if name != plugin]
    return load_deployment(raw, name=f"contact-center without {plugin}")


#: every plugin, and each set of four (the issue's run had four); and every plugin with
#: wrap-ups and offer policies (saboteur.FLOW_KEYS), and the time-dependent queue keys
DEPLOYMENTS = [
    without(None),
    *(without(name) for name in RAW["plugins"]),
    load_deployment(with_flow(RAW), name="contact-center with wrap-up and offer policy"),
    load_deployment(with_timed_queues(RAW), name="contact-center with timed queues"),
    load_deployment(
        with_timed_queues(with_flow(RAW)), name="contact-center with all of issue 11's keys"
    ),
]
AGENTS = [f"a{n}" for n in range(6)]
CHANNELS = ["voice", "callback", "chat", "email", "messaging"]
GROUPS = ["in_house", "bpo", "overflow"]
SCALE = int(os.environ.get("OMNIROUTE_FUZZ_SCALE", "1"))


def held(engine: Engine) -> dict[tuple[str, str], int]:
    """Units of capacity taken per agent and channel: tasks held and wrap-ups."""
    return {
        (agent.id, channel): agent.held_count(channel)
        for agent in engine.agents
        for channel in {*agent.held, *agent.wrap_up}
    }


class WideRoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.task_count = 0
        self.before: dict[tuple[str, str], int] = {}
        #: the capacities the operator gave last (add_agent, set_agent), per agent and channel
        self.given: dict[tuple[str, str], int] = {}

    @initialize(
        auto_accept=st.booleans(),
        reservation_timeout=st.sampled_from([None, 5.0, 60.0]),
        record=st.booleans(),
        deployment=st.sampled_from(DEPLOYMENTS),
    )
    def start(
        self, auto_accept: bool, reservation_timeout: float | None, record: bool, deployment: Any
    ) -> None:
        self.engine = Engine(
            deployment,
            options=EngineOptions(
                auto_accept=auto_accept,
                reservation_timeout=reservation_timeout,
                record_decisions=record,
            ),
        )
        self.watch_reservations(self.engine)

    @staticmethod
    def watch_reservations(engine: Engine) -> None:
        """Every reservation (an offer, or a transfer to an agent) is made to a ready
        agent with room on the task's channel."""
        lifecycle = engine.lifecycle
        reserve = lifecycle.open_reservation

        def checked(task: Any, agent: Any, *args: Any, **kwargs: Any) -> Any:
            assert agent.status == "ready", (task.id, agent.id, agent.status)
            assert agent.has_room(task.channel), (
                f"{task.id} offered to {agent.id} with {agent.held_count(task.channel)} of "
                f"{agent.capacity.get(task.channel, 0)} {task.channel} held"
            )
            return reserve(task, agent, *args, **kwargs)

        lifecycle.open_reservation = checked  # type: ignore[method-assign]

    def apply(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.before = held(self.engine)
        try:
            getattr(self.engine, method)(*args, **kwargs)
        except OmnirouteError:
            assert held(self.engine) == self.before, f"a failed {method} changed what agents hold"

    def task_ids(self) -> list[str]:
        return [*sorted(t.id for t in self.engine.tasks if t.is_open), "ghost"]

    @rule(
        agent=st.sampled_from(AGENTS),
        channels=st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3), max_size=5),
        sales=st.integers(0, 3),
        support=st.integers(0, 3),
        groups=st.lists(st.sampled_from(GROUPS), unique=True, max_size=2),
        status=st.sampled_from(["ready", "ready", "not_ready", "offline"]),
    )
    def add_agent_rule(
        self,
        agent: str,
        channels: dict[str, int],
        sales: int,
        support: int,
        groups: list[str],
        status: str,
    ) -> None:
        self.add_agent(agent, channels, sales, support, groups, status)

    def add_agent(
        self,
        agent: str,
        channels: dict[str, int],
        sales: int,
        support: int,
        groups: list[str],
        status: str,
    ) -> None:
        skills = {"sales": sales, "support": support}
        if agent in self.engine.state.agents:
            self.apply("add_agent", agent, channels, {"skills": skills}, groups, status)
            return
        self.given = {key: value for key, value in self.given.items() if key[0] != agent}
        self.apply("add_agent", agent, channels, {"skills": skills}, groups, status)
        if agent in self.engine.state.agents:
            self.given.update({(agent, channel): n for channel, n in channels.items()})

    @rule(agent=st.sampled_from(AGENTS), chat=st.integers(2, 3))
    def add_blended_agent(self, agent: str, chat: int) -> None:
        """An agent for chat and voice, as toggle_to_one and the workflow want."""
        self.add_agent(agent, {"chat": chat, "voice": 1}, 1, 1, ["in_house"], "ready")

    @rule(agent=st.sampled_from(AGENTS))
    def remove_agent(self, agent: str) -> None:
        self.apply("remove_agent", agent)

    @rule(
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 3),
        kind=st.sampled_from(["sales", "support"]),
        customer=st.sampled_from(["c1", "c2"]),
    )
    def create(self, channel: str, priority: int, kind: str, customer: str) -> None:
        self.task_count += 1
        attributes = {"type": kind, "customer": customer}
        self.apply("create_task", f"t{self.task_count}", channel, attributes, priority)

    @rule(
        data=st.data(),
        action=st.sampled_from(["accept", "accept", "decline", "timeout", "complete", "cancel"]),
    )
    def task_event(self, data: st.DataObject, action: str) -> None:
        wanted = {"accept": "reserved", "decline": "reserved", "timeout": "reserved"}
        state = wanted.get(action, "assigned" if action == "complete" else None)
        ids = sorted(
            t.id for t in self.engine.tasks if t.is_open and (state is None or t.state == state)
        )
        self.apply(action, data.draw(st.sampled_from([*ids, "ghost"])))

    @rule(data=st.data(), queue=st.sampled_from(["sales", "support", "callbacks"]))
    def transfer_to_queue(self, data: st.DataObject, queue: str) -> None:
        self.apply("transfer", data.draw(st.sampled_from(self.task_ids())), to_queue=queue)

    @rule(data=st.data(), agent=st.sampled_from(AGENTS))
    def transfer_to_agent(self, data: st.DataObject, agent: str) -> None:
        self.apply("transfer", data.draw(st.sampled_from(self.task_ids())), to_agent=agent)

    @rule(agent=st.sampled_from(AGENTS), action=st.sampled_from(["login", "logout"]))
    def session(self, agent: str, action: str) -> None:
        self.apply(action, agent)

    @rule(agent=st.sampled_from(AGENTS), status=st.sampled_from(["ready", "not_ready"]))
    def status(self, agent: str, status: str) -> None:
        self.apply("set_status", agent, status)

    @rule(
        agent=st.sampled_from(AGENTS),
        channel=st.sampled_from(["chat", "chat", "chat", *CHANNELS]),
        capacity=st.integers(0, 3),
        sales=st.integers(0, 3),
    )
    def change_agent(self, agent: str, channel: str, capacity: int, sales: int) -> None:
        self.apply(
            "set_agent", agent, {"skills": {"sales": sales, "support": 1}}, {channel: capacity}
        )
        if agent in self.engine.state.agents:
            self.given[(agent, channel)] = capacity

    @invariant()
    def routing_never_goes_past_the_capacity_the_operator_gave(self) -> None:
        if not hasattr(self, "engine"):
            return
        for (agent_id, channel), count in held(self.engine).items():
            if count > self.before.get((agent_id, channel), 0):
                given = self.given.get((agent_id, channel), 0)
                assert count <= given, (agent_id, channel, count, given)

    @rule(data=st.data(), one=st.booleans())
    def end_wrap_up(self, data: st.DataObject, one: bool) -> None:
        wrapping = sorted(
            (agent.id, task)
            for agent in self.engine.agents
            for ids in agent.wrap_up.values()
            for task in ids
        )
        agent, task = data.draw(st.sampled_from([*wrapping, ("a0", "ghost")]))
        self.apply("end_wrap_up", agent, task if one else None)

    @rule(
        data=st.data(),
        channel=st.sampled_from(CHANNELS),
        queue=st.sampled_from([None, None, "callbacks", "sales"]),
    )
    def convert_to_callback(self, data: st.DataObject, channel: str, queue: str | None) -> None:
        self.apply(
            "convert_to_callback", data.draw(st.sampled_from(self.task_ids())), channel, queue
        )

    @rule(seconds=st.sampled_from([0.0, 1.0, 5.0, 15.0, 61.0, 130.0, 700.0]))
    def wait(self, seconds: float) -> None:
        self.apply("advance_to", self.engine.now + seconds)

    @invariant()
    def held_and_task_states_agree(self) -> None:
        if not hasattr(self, "engine"):
            return
        for agent in self.engine.agents:
            for channel, ids in agent.held.items():
                for task_id in ids:
                    task = self.engine.task(task_id)
                    transfer = task.transfer
                    # its agent, or the recipient of its pending transfer
                    assert agent.id in (task.agent, transfer.agent if transfer else None)
                    assert task.channel == channel
                    assert task.state in ("reserved", "assigned")
                    if agent.id != task.agent or task.state == "reserved":
                        assert agent.status == "ready", "a pending offer outlived availability"
            for channel, wrapping in agent.wrap_up.items():
                for task_id in wrapping:
                    task = self.engine.task(task_id)
                    assert task.channel == channel
                    assert task.state in ("completed", "canceled")
            if agent.status == "offline":
                assert agent.held_count() == 0


WideRoutingMachine.TestCase.settings = settings(
    max_examples=40 * SCALE,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWideRouting = WideRoutingMachine.TestCase
