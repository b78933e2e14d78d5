"""The roster: agents joining and leaving, logging in and out, and their settings.

Each event is checked first, against the roster as it stands (an event that cannot apply
raises `EventError` and changes nothing); what it then does is returned as a function
for the engine to run as a transaction, routing after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .clock import Clock
from .contexts import Contexts
from .errors import EventError
from .index import RosterIndex
from .lifecycle import Notify, TaskLifecycle
from .spec import Deployment
from .state import AGENT_STATUSES, Agent, Attributes, EngineState
from .undo import RecordedDict, UndoLog

Change = Callable[[], None]


class AgentRoster:
    """The agents of one engine, and the events that change them."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        contexts: Contexts,
        lifecycle: TaskLifecycle,
        index: RosterIndex | None,
        notify: Notify,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self._undo = undo
        self._clock = clock
        self._contexts = contexts
        self._tasks = lifecycle
        self._index = index
        self._notify = notify
        #: what else ends when an agent logs out (its wrap-ups: wrap_up.py)
        self.on_logout: Callable[[Agent], None] = lambda agent: None

    def agent(self, agent_id: str) -> Agent:
        try:
            return self._state.agents[agent_id]
        except KeyError:
            raise EventError(f"unknown agent {agent_id!r}") from None

    def check_channels(self, channels: Mapping[str, Any], who: str) -> None:
        declared = self.deployment.channels
        for channel, capacity in channels.items():
            if declared and channel not in declared:
                raise EventError(
                    f"{who}: unknown channel {channel!r} (channels: {', '.join(declared)})"
                )
            if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
                raise EventError(
                    f"{who}: capacity on {channel!r} must be a whole number >= 0, not {capacity!r}"
                )

    def adding(
        self,
        agent_id: str,
        channels: Mapping[str, int],
        attributes: Mapping[str, Any] | None,
        groups: Iterable[str],
        status: str,
    ) -> Change:
        if agent_id in self._state.agents:
            raise EventError(f"agent {agent_id!r} is already on the roster")
        if status not in AGENT_STATUSES:
            raise EventError(
                f"agent {agent_id!r}: status must be one of {', '.join(AGENT_STATUSES)}, not {status!r}"
            )
        self.check_channels(channels, f"agent {agent_id!r}")

        def add() -> None:
            state, now = self._state, self._clock.now
            agent = Agent(
                id=agent_id,
                roster_index=state.agent_sequence,
                attributes=dict(attributes or {}),
                groups=tuple(groups),
                capacity=dict(channels),
                status=status,
                status_since=now,
                plugin_state=RecordedDict(self._undo),
            )
            if status != "offline":
                agent.login_at = agent.free_since = now
            self._undo.added(state.agents, agent_id)
            self._undo.created(agent)
            state.agents[agent_id] = agent
            state.agent_sequence += 1
            if self._index is not None:
                self._index.agent_added(agent)
            if status != "offline":
                self._notify("login", None, agent)

        return add

    def logging_in(self, agent_id: str) -> Change:
        agent = self.agent(agent_id)
        if agent.status != "offline":
            raise EventError(f"login of {agent_id!r}: already logged in ({agent.status})")
        return lambda: self._log_in(agent, "ready")

    def _log_in(self, agent: Agent, status: str) -> None:
        now = self._clock.now
        self._tasks.set_status(agent, status)
        agent.login_at = now
        if agent.held_count() == 0:
            agent.free_since = now
        self._notify("login", None, agent)

    def logging_out(self, agent_id: str) -> Change:
        agent = self.agent(agent_id)
        if agent.status == "offline":
            raise EventError(f"logout of {agent_id!r}: not logged in")
        assigned = sorted(task for ids in agent.assigned.values() for task in ids)
        if assigned:
            raise EventError(
                f"logout of {agent_id!r} refused: it still has assigned tasks ({', '.join(assigned)}); complete or transfer them first"
            )
        return lambda: self._log_out(agent)

    def _log_out(self, agent: Agent) -> None:
        """Its pending reservations are revoked and their tasks go back to their queues
        (a task transferred to it stays with its sender)."""
        self._tasks.revoke_pending(agent, "logged out")
        self.on_logout(agent)
        self._tasks.set_status(agent, "offline")
        agent.login_at = None
        self._notify("logout", None, agent)

    def setting_status(self, agent_id: str, status: str) -> Change:
        if status not in ("ready", "not_ready"):
            raise EventError(f"status of {agent_id!r}: must be ready or not_ready, not {status!r}")
        agent = self.agent(agent_id)

        def set_status() -> None:
            if agent.status == "offline":
                self._log_in(agent, status)
            else:
                if status == "not_ready":
                    # Lost availability: pending offers go back to be routed again.
                    self._tasks.revoke_pending(agent, "not ready")
                self._tasks.set_status(agent, status)
            self._notify("status_changed", None, agent)

        return set_status

    def removing(self, agent_id: str) -> Change:
        agent = self.agent(agent_id)
        held = sorted(task for ids in agent.held.values() for task in ids)
        if held:
            raise EventError(
                f"cannot remove agent {agent_id!r}: it holds {', '.join(held)}; complete, "
                "transfer or cancel them first"
            )

        def remove() -> None:
            if agent.status != "offline":
                self._log_out(agent)
            self._undo.removed(self._state.agents, agent_id)
            del self._state.agents[agent_id]
            self._contexts.forget_agent(agent_id)
            if self._index is not None:
                self._index.agent_removed(agent)

        return remove

    def changing(
        self,
        agent_id: str,
        attributes: Mapping[str, Any] | None,
        channels: Mapping[str, int] | None,
    ) -> Change:
        agent = self.agent(agent_id)
        if channels is not None:
            self.check_channels(channels, f"agent {agent_id!r}")

        def change() -> None:
            self._undo.keep(agent)
            # Attributes and capacity are replaced, not changed in place: the undo log
            # keeps the old dictionaries as they are, without copying them.
            if attributes:
                edited = dict(agent.attributes)
                for key, value in attributes.items():
                    if value is None:
                        edited.pop(key, None)
                    else:
                        edited[key] = value
                agent.attributes = Attributes(edited)  # a new stamp
            if channels:
                agent.capacity = {**agent.capacity, **channels}
            if self._index is not None:
                self._index.attributes_changed(agent, list(attributes or {}))
            agent.touch()
            if channels:
                # A capacity the operator gives wins over one a plugin remembers.
                self._notify("capacity_changed", None, agent)

        return change
