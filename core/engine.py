"""The engine: events in, decisions out, for one deployment on a clock it is given.

This module is the facade: it checks each event, runs it as a transaction
(`transaction.py`), and routes after it. The parts it orchestrates each own their state:
the clock and timers (`clock.py`), the expression views (`contexts.py`), the task
lifecycle and reservations (`lifecycle.py`), the TaskRouter workflow (`workflow.py`), the
waiting tasks (`waiting.py`), and agent selection: the reference scan (`selection.py`)
and the fast path through the roster index (`fast_path.py`, `index.py`).

After every event (and every timer) the engine routes: waiting tasks in task order, each
offered to the best eligible agent with room. A failing event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from . import events, saved
from .clock import Clock, TimerHandler
from .config import load_deployment
from .contexts import Contexts
from .decisions import Decision
from .errors import EventError
from .fast_path import FastPath
from .index import RosterIndex
from .lifecycle import TaskLifecycle
from .options import EngineOptions
from .pipeline import Pipeline, build_pipeline
from .plugin_calls import blame, call_named
from .selection import AgentSelection
from .spec import Deployment, Queue, Target
from .state import AGENT_STATUSES, Agent, EngineState, Reservation, Task
from .transaction import Transactions
from .undo import RecordedDict
from .waiting import WaitingTasks
from .workflow import WorkflowRouter

__all__ = ["DEFAULT_START", "Engine", "EngineOptions"]

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Engine:
    """Routes tasks to agents for one deployment, on a clock it is given.

    Times are seconds since `start` (a timezone-aware datetime, `at: 0` of a scenario).
    An engine has one writer (docs/api.md, "One writer").
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        start: datetime = DEFAULT_START,
        options: EngineOptions | None = None,
    ) -> None:
        self.start = start
        self.options = options or EngineOptions()
        #: called with each task as it closes (before it is forgotten, if it is)
        self.on_close: Callable[[Task], None] | None = None
        self.state = EngineState()
        self.transactions = Transactions(self.state, recorded=self.options.transactional)
        self._undo = self.transactions.undo
        self.state.plugin_state = RecordedDict(self._undo)
        self._assemble(deployment)

    def _assemble(self, deployment: Deployment) -> None:
        """Build the parts for a deployment around the engine's state."""
        state, undo, options = self.state, self._undo, self.options
        self.deployment = deployment
        self.clock = Clock(self.start, state, undo)
        self.contexts = Contexts(deployment, self.clock)
        self._routing = False
        self.pipeline: Pipeline = build_pipeline(deployment, self)
        self.selection = AgentSelection(deployment, state, self.pipeline, self.contexts, self.clock)
        self.fast_path = (
            FastPath(deployment, state, self.pipeline, self.contexts, self.selection)
            if options.indexed and not options.record_decisions
            else None
        )
        index = self.index
        orders_fixed = index is not None and all(
            ordering.fixed for _, ordering in self.pipeline.task_orderings
        )
        self.waiting = WaitingTasks(state, undo, index, orders_fixed)
        self.lifecycle = TaskLifecycle(state, undo, self.clock, self.waiting, options, self._notify)
        self.workflow = WorkflowRouter(
            deployment,
            state,
            undo,
            self.clock,
            self.contexts,
            self.lifecycle,
            self._notify,
            self.queue_counts,
        )

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Engine:
        return cls(load_deployment(path), **kwargs)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], **kwargs: Any) -> Engine:
        return cls(load_deployment(mapping), **kwargs)

    # --- reading ---------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.state.now

    @property
    def index(self) -> RosterIndex | None:
        """The roster index, when the engine routes through it."""
        return self.fast_path.index if self.fast_path is not None else None

    @property
    def offers(self) -> list[Reservation]:
        """Every reservation made, in order."""
        return list(self.state.offers)

    def reservation(self, reservation_id: str) -> Reservation:
        """A reservation by its id (`r<n>`: the n-th made)."""
        return self.lifecycle.reservation(reservation_id)

    def forget_offers(self) -> list[Reservation]:
        """The reservations made since the last call, dropped from `offers` (a long run
        reads them as it goes and keeps no list of them). A task keeps its own."""
        return self.lifecycle.forget_offers()

    def task(self, task_id: str) -> Task:
        try:
            return self.state.tasks[task_id]
        except KeyError:
            raise EventError(f"unknown task {task_id!r}") from None

    def agent(self, agent_id: str) -> Agent:
        try:
            return self.state.agents[agent_id]
        except KeyError:
            raise EventError(f"unknown agent {agent_id!r}") from None

    @property
    def agents(self) -> list[Agent]:
        return list(self.state.agents.values())

    @property
    def tasks(self) -> list[Task]:
        return list(self.state.tasks.values())

    @property
    def decisions(self) -> dict[str, list[Decision]]:
        return self.lifecycle.decisions

    @property
    def last_attempt(self) -> dict[str, Decision]:
        return self.lifecycle.last_attempt

    def decisions_for(self, task_id: str) -> list[Decision]:
        """The decision behind each offer of the task, then its last unsuccessful attempt."""
        found = list(self.decisions.get(task_id, ()))
        last = self.last_attempt.get(task_id)
        if last is not None:
            found.append(last)
        return found

    def wall_time(self, at: float | None = None) -> datetime:
        return self.clock.wall_time(at)

    # --- what plugins and expressions read (`context.EngineServices`) -----------------

    def queue_of(self, task: Task) -> Queue | None:
        return self.deployment.queue_of(task)

    def target_of(self, task: Task) -> Target | None:
        return self.deployment.target_of(task)

    def target_label(self, task: Task) -> str:
        return self.deployment.target_label(task)

    def effective_priority(self, task: Task) -> int:
        return self.deployment.effective_priority(task)

    def clock_context(self) -> dict[str, Any]:
        return self.contexts.clock_context()

    def worker_view(self, agent: Agent) -> dict[str, Any]:
        return self.contexts.worker_view(agent)

    def task_view(self, task: Task) -> dict[str, Any]:
        return self.contexts.task_view(task)

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]:
        return self.contexts.expression_context(task, agent)

    def queue_counts(self, queue_name: str | None, channel: str) -> dict[str, int]:
        """`workers.available` and `workers.total` for a queue and a task's channel."""
        index = self.index
        if index is not None and index.indexed(queue_name):
            assert queue_name is not None
            index.sync()
            return index.counts(queue_name, channel)
        queue = self.deployment.queues.get(queue_name) if queue_name else None
        available = total = 0
        for agent in self.state.agents.values():
            if agent.status == "offline":
                continue
            if queue is not None and not queue.target_workers.evaluate(
                {"worker": self.contexts.worker_view(agent), "taskrouter": self.clock_context()}
            ):
                continue
            total += 1
            if agent.status == "ready" and agent.has_room(channel):
                available += 1
        return {"available": available, "total": total}

    def waiting_in(self, queue: str | None) -> Iterator[Task]:
        """The tasks waiting in a queue, in the order they started waiting."""
        return iter(self.waiting.in_queue(queue))

    def on_timer(self, owner: str | None, name: str, handler: TimerHandler) -> None:
        self.clock.on_timer(owner, name, handler)

    def set_timer(self, at: float, name: str, payload: Any = None, owner: str | None = None) -> int:
        return self.clock.set_timer(at, name, payload, owner)

    def cancel_timer(self, timer_id: int) -> None:
        self.clock.cancel_timer(timer_id)

    def next_timer_at(self) -> float | None:
        return self.clock.next_timer_at()

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        self.lifecycle.set_capacity(agent, channel, capacity)

    def hold_task(self, task: Task, until: float | None, reason: str) -> None:
        self.lifecycle.hold(task, until, reason)

    def release_task(self, task: Task) -> None:
        self.lifecycle.release(task)

    # --- the clock ----------------------------------------------------------------------

    def advance_to(self, at: float) -> None:
        """Move the clock to `at`, firing every timer due by then at its own time; each
        timer is an event of its own."""
        with self.transactions.writing():
            if at < self.now:
                raise EventError(
                    f"time cannot go back: the clock is at {self.now:g} s, the event at {at:g} s"
                )
            while (due := self.clock.pop_due(at)) is not None:
                (when, _, owner, _, payload), handler = due

                def fire(when: float = when, handler: TimerHandler = handler) -> None:
                    self.state.now = when
                    # Timers change what no stamp tracks (plugin state of tasks).
                    self.selection.forget()
                    self.waiting.check_every_group()
                    handler(payload)  # noqa: B023

                self._transaction(f"timer of {owner or 'core'}", fire, owner)
            self.state.now = at

    def run_timers(self, until: float | None = None) -> None:
        """Fire timers until none is left or the next one is after `until`.

        The clock stops at the last timer fired; it does not move on to `until`. Plugins
        may keep recurring timers (a calendar's closings), so give `until` unless the
        deployment has none.
        """
        while True:
            due = self.clock.next_timer_at()
            if due is None or (until is not None and due > until):
                break
            self.advance_to(due)

    # --- events ---------------------------------------------------------------------------

    def apply(self, event: events.Event) -> events.Outcome:
        """Apply one event; what it did: the reservations made and the tasks changed.

        A failing event raises (EventError for an event that cannot apply, PluginError
        when a plugin failed) and changes nothing.
        """
        state = self.state
        before = state.forgotten_offers + len(state.offers)
        self.lifecycle.changed = {}
        match event:
            case events.CreateTask():
                self.create_task(
                    event.task,
                    event.channel,
                    event.attributes,
                    event.priority,
                    event.queue,
                    event.profile,
                )
            case events.Accept():
                self.accept(event.task, agent=event.agent, reservation=event.reservation)
            case events.Decline():
                self.decline(event.task, agent=event.agent, reservation=event.reservation)
            case events.Timeout():
                self.timeout(event.task, agent=event.agent, reservation=event.reservation)
            case events.Complete():
                self.complete(event.task)
            case events.Cancel():
                self.cancel(event.task, event.reason)
            case events.Transfer():
                self.transfer(event.task, to_queue=event.to_queue, to_agent=event.to_agent)
            case events.Login():
                self.login(event.agent)
            case events.Logout():
                self.logout(event.agent)
            case events.SetStatus():
                self.set_status(event.agent, event.status)
            case events.SetAgent():
                self.set_agent(event.agent, event.attributes, event.channels)
            case events.AddAgent():
                self.add_agent(
                    event.agent, event.channels, event.attributes, event.groups, event.status
                )
            case events.RemoveAgent():
                self.remove_agent(event.agent)
            case events.ReplaceDeployment():
                self.replace_deployment(load_deployment(event.deployment))
            case events.AdvanceClock():
                self.advance_to(event.to)
        changed, self.lifecycle.changed = self.lifecycle.changed, {}
        made = state.forgotten_offers + len(state.offers) - before
        return events.Outcome(
            tuple(state.offers[len(state.offers) - made :] if made else ()), tuple(changed.values())
        )

    def add_agent(
        self,
        agent_id: str,
        channels: Mapping[str, int],
        attributes: Mapping[str, Any] | None = None,
        groups: Iterable[str] = (),
        status: str = "ready",
    ) -> Agent:
        """Put an agent on the roster (ready, not_ready or offline)."""
        if agent_id in self.state.agents:
            raise EventError(f"agent {agent_id!r} is already on the roster")
        if status not in AGENT_STATUSES:
            raise EventError(
                f"agent {agent_id!r}: status must be one of {', '.join(AGENT_STATUSES)}, not {status!r}"
            )
        self._check_channels(channels, f"agent {agent_id!r}")

        def apply() -> None:
            state, now = self.state, self.now
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
            state.agents[agent_id] = agent
            state.agent_sequence += 1
            if self.index is not None:
                self.index.agent_added(agent)
            if status != "offline":
                self._notify("login", None, agent)

        self._transaction(f"adding agent {agent_id!r}", apply)
        return self.state.agents[agent_id]

    def create_task(
        self,
        task_id: str,
        channel: str,
        attributes: Mapping[str, Any] | None = None,
        priority: int = 0,
        queue: str | None = None,
        profile: str | None = None,
    ) -> Task:
        """A new interaction arrives; it is placed by the workflow and routed."""
        deployment = self.deployment
        if task_id in self.state.tasks:
            raise EventError(f"task {task_id!r} already exists")
        self._check_channels({channel: 1}, f"task {task_id!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise EventError(f"task {task_id!r}: priority must be a whole number, not {priority!r}")
        if queue is not None and queue not in deployment.queues:
            raise EventError(
                f"task {task_id!r}: unknown queue {queue!r} (queues: {', '.join(deployment.queues) or 'none'})"
            )
        if deployment.workflow is None and queue is None and len(deployment.queues) > 1:
            raise EventError(
                f"task {task_id!r} names no queue, and without a workflow the deployment's "
                f"{len(deployment.queues)} queues leave it nowhere to go"
            )

        def apply() -> None:
            state = self.state
            task = Task(
                id=task_id,
                seq=state.task_sequence,
                channel=channel,
                attributes=dict(attributes or {}),
                priority=priority,
                created_at=self.now,
                requested_queue=queue,
                profile=profile,
                queued_at=self.now,
                plugin_state=RecordedDict(self._undo),
            )
            state.task_sequence += 1
            self._undo.added(state.tasks, task_id)
            state.tasks[task_id] = task
            self.lifecycle.log(task, "created")
            self.workflow.place(task)
            if task.state != "queued":
                return
            for plugin, arrival in self.pipeline.arrival_checks:
                verdict = call_named(
                    plugin, "the arrival check {!r}", arrival.name, arrival.check, task
                )
                if verdict is not None:
                    reason, message = verdict
                    self.lifecycle.close(task, "rejected", reason, message)
                    self._notify("rejected", task, None)
                    return
            self._notify("created", task, None)

        self._transaction(f"creating task {task_id!r}", apply)
        return self.state.tasks[task_id]

    def accept(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        """The agent takes the offered task. Name the reservation, or the task (with the
        agent, a late answer from an agent the task has moved on from is refused)."""
        task = self._answered(task_id, agent, reservation, "accept")
        self._transaction(f"accepting {task.id!r}", lambda: self.lifecycle.accept(task))

    def decline(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self._answered(task_id, agent, reservation, "decline")
        self._transaction(
            f"declining {task.id!r}", lambda: self.lifecycle.return_to_queue(task, "declined")
        )

    def timeout(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self._answered(task_id, agent, reservation, "time out")
        self._transaction(
            f"timing out {task.id!r}", lambda: self.lifecycle.return_to_queue(task, "timed_out")
        )

    def _answered(
        self, task_id: str | None, agent_id: str | None, reservation_id: str | None, action: str
    ) -> Task:
        """The reserved task an answer is for, once the answer is known to be current."""
        if reservation_id is None:
            if task_id is None:
                raise EventError(f"{action}: name the task or the reservation")
            task = self._task_in(task_id, ("reserved",), action)
            if agent_id is not None and agent_id != task.agent:
                pending = task.reservation.id if task.reservation else None
                raise EventError(
                    f"cannot {action} task {task_id!r} as {agent_id!r}: its pending reservation "
                    f"{pending!r} is for {task.agent!r}"
                )
            return task
        reservation = self.reservation(reservation_id)
        for given, kind, actual in (
            (task_id, "task", reservation.task),
            (agent_id, "agent", reservation.agent),
        ):
            if given is not None and given != actual:
                raise EventError(
                    f"cannot {action} reservation {reservation_id!r}: it is for {kind} "
                    f"{actual!r}, not {given!r}"
                )
        if reservation.state != "pending":
            raise EventError(
                f"cannot {action} reservation {reservation_id!r} (task {reservation.task!r}, "
                f"agent {reservation.agent!r}): it is {reservation.state}, not pending"
            )
        return self.state.tasks[reservation.task]

    def complete(self, task_id: str) -> None:
        task = self._task_in(task_id, ("assigned",), "complete")
        self._transaction(f"completing {task_id!r}", lambda: self.lifecycle.complete(task))

    def cancel(self, task_id: str, reason: str = "canceled") -> None:
        """The customer leaves: a queued, reserved or assigned task ends."""
        task = self._task_in(task_id, ("queued", "reserved", "assigned"), "cancel")
        self._transaction(f"canceling {task_id!r}", lambda: self.lifecycle.cancel(task, reason))

    def transfer(
        self, task_id: str, *, to_queue: str | None = None, to_agent: str | None = None
    ) -> None:
        """Move a task to another queue (it is routed again) or straight to an agent."""
        if (to_queue is None) == (to_agent is None):
            raise EventError(f"transfer of {task_id!r}: give exactly one of to_queue and to_agent")
        task = self._task_in(task_id, ("queued", "reserved", "assigned"), "transfer")
        if to_queue is not None:
            if to_queue not in self.deployment.queues:
                raise EventError(f"transfer of {task_id!r}: unknown queue {to_queue!r}")
            self._transaction(
                f"transferring {task_id!r}",
                lambda: self.lifecycle.transfer_to_queue(task, to_queue),
            )
            return
        assert to_agent is not None
        target = self.agent(to_agent)
        if target.id == task.agent:
            raise EventError(f"transfer of {task_id!r}: it is already with {to_agent!r}")
        if target.status != "ready":
            raise EventError(
                f"transfer of {task_id!r} to {to_agent!r} refused: the agent is {target.status}, not ready"
            )
        if not target.has_room(task.channel):
            raise EventError(
                f"transfer of {task_id!r} to {to_agent!r} refused: no room on {task.channel} "
                f"({target.held_count(task.channel)} of {target.capacity.get(task.channel, 0)} held)"
            )
        self._transaction(
            f"transferring {task_id!r}", lambda: self.lifecycle.transfer_to_agent(task, target)
        )

    def login(self, agent_id: str) -> None:
        agent = self.agent(agent_id)
        if agent.status != "offline":
            raise EventError(f"login of {agent_id!r}: already logged in ({agent.status})")
        self._transaction(f"logging in {agent_id!r}", lambda: self._log_in(agent, "ready"))

    def _log_in(self, agent: Agent, status: str) -> None:
        self.lifecycle.set_status(agent, status)
        agent.login_at = self.now
        if agent.held_count() == 0:
            agent.free_since = self.now
        self._notify("login", None, agent)

    def logout(self, agent_id: str) -> None:
        """Log an agent out; its pending reservations go back to their queues."""
        agent = self.agent(agent_id)
        if agent.status == "offline":
            raise EventError(f"logout of {agent_id!r}: not logged in")
        assigned = sorted(task for ids in agent.assigned.values() for task in ids)
        if assigned:
            raise EventError(
                f"logout of {agent_id!r} refused: it still has assigned tasks ({', '.join(assigned)}); complete or transfer them first"
            )
        self._transaction(f"logging out {agent_id!r}", lambda: self._log_out(agent))

    def _log_out(self, agent: Agent) -> None:
        for task_id in sorted(task for ids in agent.held.values() for task in ids):
            self.lifecycle.return_to_queue(self.state.tasks[task_id], "timed_out", ending="revoked")
        self.lifecycle.set_status(agent, "offline")
        agent.login_at = None
        self._notify("logout", None, agent)

    def set_status(self, agent_id: str, status: str) -> None:
        """`ready` or `not_ready` (from offline, this logs the agent in)."""
        if status not in ("ready", "not_ready"):
            raise EventError(f"status of {agent_id!r}: must be ready or not_ready, not {status!r}")
        agent = self.agent(agent_id)

        def apply() -> None:
            if agent.status == "offline":
                self._log_in(agent, status)
            else:
                self.lifecycle.set_status(agent, status)
            self._notify("status_changed", None, agent)

        self._transaction(f"setting {agent_id!r} {status}", apply)

    def remove_agent(self, agent_id: str) -> None:
        """Take an agent off the roster; refused while it holds tasks. A logged-in agent
        is logged out first (plugins see the logout)."""
        agent = self.agent(agent_id)
        held = sorted(task for ids in agent.held.values() for task in ids)
        if held:
            raise EventError(
                f"cannot remove agent {agent_id!r}: it holds {', '.join(held)}; complete, "
                "transfer or cancel them first"
            )

        def apply() -> None:
            if agent.status != "offline":
                self._log_out(agent)
            self._undo.removed(self.state.agents, agent_id)
            del self.state.agents[agent_id]
            self.contexts.forget_agent(agent_id)
            if self.index is not None:
                self.index.agent_removed(agent)

        self._transaction(f"removing agent {agent_id!r}", apply)

    def set_agent(
        self,
        agent_id: str,
        attributes: Mapping[str, Any] | None = None,
        channels: Mapping[str, int] | None = None,
    ) -> None:
        """Change attributes (a null value removes one) and capacities of an agent."""
        agent = self.agent(agent_id)
        if channels is not None:
            self._check_channels(channels, f"agent {agent_id!r}")

        def apply() -> None:
            self._undo.keep(agent)
            for key, value in (attributes or {}).items():
                if value is None:
                    agent.attributes.pop(key, None)
                else:
                    agent.attributes[key] = value
            agent.capacity.update(channels or {})
            if self.index is not None:
                self.index.attributes_changed(agent, list(attributes or {}))
            agent.touch()

        self._transaction(f"changing agent {agent_id!r}", apply)

    # --- saved state and a new deployment ---------------------------------------------

    def save(self) -> dict[str, Any]:
        """The engine's state as plain JSON data: `Engine.restore` continues from it
        exactly, timers and plugin state included (decision records are not kept)."""
        with self.transactions.writing():
            data = saved.state_to_json(self.state)
        data["start"] = self.start.isoformat()
        data["options"] = attrs.asdict(self.options)
        return data

    @classmethod
    def restore(
        cls,
        deployment: Deployment,
        data: Mapping[str, Any],
        *,
        options: EngineOptions | None = None,
    ) -> Engine:
        """An engine that continues where the saved one stopped (`save`), with its
        options unless others are given."""
        saved.check_format(data)
        try:
            start = datetime.fromisoformat(data["start"])
            kept = EngineOptions(**data["options"])
        except (KeyError, TypeError, ValueError) as error:
            raise EventError(f"a saved engine state that cannot be read: {error!r}") from error
        engine = cls(deployment, start=start, options=options or kept)
        engine._load(data)
        return engine

    def _load(self, data: Mapping[str, Any]) -> None:
        loaded = saved.state_from_json(data, self._undo)
        for field in attrs.fields(EngineState):
            setattr(self.state, field.name, getattr(loaded, field.name))
        self._rebuild()

    def replace_deployment(self, deployment: Deployment) -> None:
        """Route by another deployment from now on, atomically, keeping the state.

        Tasks waiting in a queue the new deployment does not have go to its default
        queue, or are canceled with reason `queue_removed`; so are reserved ones, whose
        reservation is revoked. Assigned tasks stay with their agents. A task whose
        workflow target is gone waits on in its queue, outside the workflow. Timers of
        plugins no longer active are dropped.
        """
        with self.transactions.writing():
            data = self.save()
            before = dict(self.__dict__)
            try:
                self.state = EngineState()
                self.transactions = Transactions(self.state, recorded=self.options.transactional)
                self._undo = self.transactions.undo
                self.state.plugin_state = RecordedDict(self._undo)
                self._assemble(deployment)
                self._load(data)
                self._transaction("replacing the deployment", self._move_to_deployment, None)
            except BaseException:
                self.__dict__.clear()
                self.__dict__.update(before)
                raise

    def _move_to_deployment(self) -> None:
        state, deployment = self.state, self.deployment
        workflow = deployment.workflow
        default = workflow.default_queue if workflow is not None else None
        state.timers[:] = [
            timer for timer in state.timers if self.clock.handles(timer[2], timer[3])
        ]
        for task in sorted(state.tasks.values(), key=lambda task: task.seq):
            if not task.is_open:
                continue
            if task.filter_index is not None and not _target_kept(deployment, task):
                self._undo.keep(task)
                task.filter_index = task.target_index = None
            if task.queue in deployment.queues or task.state == "assigned":
                continue
            if task.state == "reserved":
                self.lifecycle.return_to_queue(task, "timed_out", ending="revoked")
            if default is not None:
                self._undo.keep(task)
                task.queue = default
                task.filter_index = task.target_index = None
                self.lifecycle.log(task, f"queue removed: default queue {default}")
                self.lifecycle.queue(task)
            else:
                self.lifecycle.cancel(task, "queue_removed")

    # --- event mechanics ------------------------------------------------------------------

    def _check_channels(self, channels: Mapping[str, Any], who: str) -> None:
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

    def _task_in(self, task_id: str, states: tuple[str, ...], action: str) -> Task:
        task = self.task(task_id)
        if task.state not in states:
            raise EventError(
                f"cannot {action} task {task_id!r}: it is {task.state}, not {' or '.join(states)}"
            )
        return task

    def _transaction(self, what: str, apply: Callable[[], None], owner: str | None = None) -> None:
        """Apply the event, then route; on any error, undo everything it changed."""

        def apply_and_route() -> None:
            apply()
            self._route()

        try:
            outermost = self.transactions.run(what, apply_and_route, owner, self._rebuild)
        except BaseException:
            self.lifecycle.closed.clear()
            raise
        if outermost and self.lifecycle.closed:
            self._settle_closed()

    def _rebuild(self) -> None:
        """Rebuild what is derived from the state (after an undo or a restore): a failed
        event costs a pass over the roster, a successful one nothing."""
        self.contexts.clear()
        self.selection.forget()
        self.workflow.forget_pending()
        self.waiting.regroup()
        if self.index is not None:
            self.index.rebuild()

    def _settle_closed(self) -> None:
        """Hand each task closed by the event to `on_close`, then forget it if asked."""
        closed, self.lifecycle.closed = self.lifecycle.closed, []
        for task in closed:
            self.selection.forget(task.id)
            if self.on_close is not None:
                self.on_close(task)
            if not self.options.keep_closed_tasks:
                self.state.tasks.pop(task.id, None)

    def _notify(self, event: str, task: Task | None, agent: Agent | None) -> None:
        for plugin, handler in self.pipeline.handlers.get(event, ()):
            call_named(plugin, "the {} event", event, handler.handler, task, agent)

    # --- routing ------------------------------------------------------------------------------

    def _route(self) -> None:
        if self._routing:
            return
        self._routing = True
        try:
            while True:
                offered = self._route_once()
                moved = self.workflow.run_skip_checks()
                if (not offered and not moved) or not self.state.waiting:
                    break
        finally:
            self._routing = False

    def task_order_key(self, task: Task) -> tuple[Any, ...]:
        orderings = self.pipeline.task_orderings
        keys: list[Any] = []
        try:
            for _plugin, ordering in orderings:
                keys.append(ordering.key(task))
        except Exception as error:
            blame(orderings, len(keys), "task ordering", error)
        return tuple(keys)

    def _route_once(self) -> bool:
        state = self.state
        if not state.agents:
            return False
        waiting: Iterable[Task]
        if self.index is None:
            waiting = [
                task
                for task_id in state.waiting
                if (task := state.tasks[task_id]).hold_reason is None
            ]
            waiting.sort(key=self.task_order_key)
        else:
            groups = self.waiting.groups_to_try(self.now, self.selection.time_dependent)
            if self.waiting.orders_fixed:
                waiting = self.waiting.walk_in_order(groups, self.task_order_key)
            else:
                waiting = sorted(self.waiting.tasks_of(groups), key=self.task_order_key)
        offered = False
        record = self.options.record_decisions
        skip_closed_channels = self.index is None and not record
        open_channels = self._channels_with_room() if skip_closed_channels else set()
        for task in waiting:
            if task.state != "queued" or task.hold_reason is not None:
                continue
            if skip_closed_channels and task.channel not in open_channels:
                continue  # no ready agent has room on this channel: no filter could pass
            decision = self.choose_agent(task, record=record)
            if decision.winner is not None:
                self.lifecycle.reserve(task, state.agents[decision.winner], decision)
                offered = True
                if skip_closed_channels:
                    open_channels = self._channels_with_room()
            elif record:
                self.lifecycle.record_attempt(task.id, decision)
        return offered

    def choose_agent(self, task: Task, *, record: bool) -> Decision:
        """The best eligible agent for a task now, with the reasons when `record` is set.

        With `record` (or without the index, or for a queue the index cannot hold) every
        agent on the roster is considered (`selection.py`): this is the reference the
        indexed path (`fast_path.py`) must agree with.
        """
        fast = self.fast_path
        if not record and fast is not None and fast.index.indexed(task.queue):
            return fast.choose(task, self.now)
        return self.selection.choose(task, record=record)

    def _channels_with_room(self) -> set[str]:
        return {
            channel
            for agent in self.state.agents.values()
            if agent.status == "ready"
            for channel, capacity in agent.capacity.items()
            if len(agent.held.get(channel, ())) < capacity
        }


def _target_kept(deployment: Deployment, task: Task) -> bool:
    """Whether the task's workflow target is still there, on the same queue."""
    workflow = deployment.workflow
    if workflow is None or task.filter_index is None or task.target_index is None:
        return False
    if task.filter_index >= len(workflow.filters):
        return False
    targets = workflow.filters[task.filter_index].targets
    return task.target_index < len(targets) and targets[task.target_index].queue == task.queue
