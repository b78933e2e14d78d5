"""The engine: events in, decisions out, for one deployment on a clock it is given.

The facade: it checks each event, runs it as a transaction (`transaction.py`) and routes
after it. Its parts each own their state: clock and timers (`clock.py`), expression views
(`contexts.py`), task lifecycle (`lifecycle.py`), offer policy, wrap-ups and callbacks
(`flow.py`), the workflow (`workflow.py`), waiting tasks (`waiting.py`), and selection:
the reference scan (`selection.py`) and the fast path (`fast_path.py`, `index.py`).

After every event (and every timer) the engine routes: waiting tasks in task order, each
offered to the best eligible agent with room. A failing event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from . import events, guards, saved
from .clock import Clock, TimerHandler, finite_time
from .config import load_deployment
from .contexts import Contexts
from .decisions import Decision
from .errors import EventError
from .fast_path import FastPath
from .flow import Flow
from .index import RosterIndex
from .lifecycle import TaskLifecycle
from .options import EngineOptions
from .pipeline import Pipeline, build_pipeline
from .plugin_calls import call_named
from .roster import AgentRoster
from .router import Router
from .selection import AgentSelection
from .services import PluginServices
from .spec import Deployment
from .state import Agent, EngineState, Reservation, Task
from .transaction import Transactions
from .transfers import AgentTransfers
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
        self.services = PluginServices(deployment, state, self.clock, self.contexts)
        self.pipeline: Pipeline = build_pipeline(deployment, self.services)
        self.selection = AgentSelection(deployment, state, self.pipeline, self.contexts, self.clock)
        self.fast_path = (
            FastPath(deployment, state, self.pipeline, self.contexts, self.selection)
            if options.indexed and not options.record_decisions
            else None
        )
        index = self.index
        heaps = self.fast_path.heaps if self.fast_path is not None else None
        self.waiting = WaitingTasks(state, undo, index, heaps)
        self.lifecycle = TaskLifecycle(state, undo, self.clock, self.waiting, options, self._notify)
        self.services.index, self.services.waiting = index, self.waiting
        self.services.lifecycle = self.lifecycle
        self.roster = AgentRoster(
            deployment, state, undo, self.clock, self.contexts, self.lifecycle, index, self._notify
        )
        self.workflow = WorkflowRouter(
            deployment,
            state,
            undo,
            self.clock,
            self.contexts,
            self.lifecycle,
            self._notify,
            self.services.queue_counts,
        )
        self.flow = Flow(deployment, state, undo, self.clock, self.contexts, options)
        self.flow.attach(self.lifecycle, self.roster, self._notify, self.selection.forget)
        self.transfers = AgentTransfers(
            state, undo, self.clock, self.lifecycle, self.pipeline, self._notify
        )
        self.router = Router(
            state,
            options,
            self.pipeline,
            self.waiting,
            self.selection,
            self.fast_path,
            self.lifecycle,
            self.workflow,
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
        return self.roster.agent(agent_id)

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

    def queue_counts(self, queue_name: str | None, channel: str) -> dict[str, int]:
        """`workers.available` and `workers.total` for a queue and a task's channel."""
        return self.services.queue_counts(queue_name, channel)

    def next_timer_at(self) -> float | None:
        return self.clock.next_timer_at()

    # --- the clock ----------------------------------------------------------------------

    def advance_to(self, at: float) -> None:
        """Move the clock to `at`, firing every timer due by then at its own time; each
        timer is an event of its own."""
        if self.clock.only_moves(at) and not self.transactions.in_event:
            self.transactions.move_clock(at)
            return
        with self.transactions.writing():
            if not finite_time(at):
                raise EventError(f"advance_to: the time must be a finite number, not {at!r}")
            if at < self.now:
                raise EventError(
                    f"time cannot go back: the clock is at {self.now:g} s, the event at {at:g} s"
                )
            while (due := self.clock.pop_due(at)) is not None:
                (when, _, owner, name, payload), handler = due
                loop = self.clock.loop_guard(when, owner, name)

                def fire(
                    when: float = when,
                    handler: TimerHandler = handler,
                    loop: Exception | None = loop,
                ) -> None:
                    if loop is not None:
                        raise loop
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
        apply = _APPLY.get(type(event))  # a table, not a match: one lookup per event
        if apply is None:  # a subclass of an event class
            apply = next((f for kind, f in _APPLY.items() if isinstance(event, kind)), None)
        changed: dict[str, Task] = {}
        self.lifecycle.changed = changed  # collected for this event only
        try:
            if apply is not None:
                apply(self, event)
        finally:
            self.lifecycle.changed = None
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
        add = self.roster.adding(agent_id, channels, attributes, groups, status)
        self._transaction(f"adding agent {agent_id!r}", add)
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
        if channel not in deployment.channels and deployment.channels:
            self.roster.check_channels({channel: 1}, f"task {task_id!r}")
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

        now = self.now  # the task is made here; `_admit` stores it, within the event
        task = Task(
            id=task_id,
            seq=self.state.task_sequence,
            channel=channel,
            attributes=dict(attributes or {}),
            priority=priority,
            created_at=now,
            requested_queue=queue,
            profile=profile,
            queued_at=now,
            plugin_state=RecordedDict(self._undo),
        )
        self._transaction(f"creating task {task_id!r}", partial(self._admit, task))
        return task  # also when it closed on arrival, and the state forgot it

    def _admit(self, task: Task) -> None:
        """The new task joins the state, is placed by the workflow and checked on arrival."""
        state = self.state
        state.task_sequence += 1
        self._undo.added(state.tasks, task.id)
        self._undo.created(task)
        state.tasks[task.id] = task
        self.lifecycle.log(task, "created")
        self.workflow.place(task)
        if task.state != "queued":
            return
        for plugin, arrival in self.pipeline.arrival_checks:
            verdict = call_named(
                plugin, "the arrival check {!r}", arrival.name, arrival.check, task
            )
            if plugin is not None:
                verdict = guards.arrival_verdict(plugin, arrival.name, verdict)
            if verdict is not None:
                reason, message = verdict
                self.lifecycle.close(task, "rejected", reason, message)
                self._notify("rejected", task, None)
                return
        self._notify("created", task, None)

    def accept(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        """The agent takes the offered task. Name the reservation, or the task (with the
        agent, a late answer from an agent the task has moved on from is refused)."""
        task = self.lifecycle.answered(self._task_in, task_id, agent, reservation, "accept")
        self._transaction(f"accepting {task.id!r}", partial(self.transfers.accept, task))

    def decline(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self.lifecycle.answered(self._task_in, task_id, agent, reservation, "decline")
        self._transaction(f"declining {task.id!r}", partial(self.transfers.decline, task))

    def timeout(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self.lifecycle.answered(self._task_in, task_id, agent, reservation, "time out")
        self._transaction(f"timing out {task.id!r}", partial(self.transfers.timeout, task))

    def complete(self, task_id: str) -> None:
        task = self._task_in(task_id, ("assigned",), "complete")
        self._transaction(
            f"completing {task_id!r}", self.flow.ending(task, self.lifecycle.complete)
        )

    def cancel(self, task_id: str, reason: str = "canceled") -> None:
        """The customer leaves: a queued, reserved or assigned task ends."""
        task = self._task_in(task_id, ("queued", "reserved", "assigned"), "cancel")
        end = self.flow.ending(task, lambda task: self.lifecycle.cancel(task, reason))
        self._transaction(f"canceling {task_id!r}", end)

    def end_wrap_up(self, agent_id: str, task_id: str | None = None) -> None:
        """The agent ends its wrap-up early: all of it, or that of one task."""
        self.apply(events.EndWrapUp(agent=agent_id, task=task_id))

    def convert_to_callback(self, task_id: str, channel: str, queue: str | None = None) -> None:
        """A waiting task becomes a task of `channel` (a callback), keeping its queue time."""
        self.apply(events.ConvertToCallback(task=task_id, channel=channel, queue=queue))

    def transfer(
        self, task_id: str, *, to_queue: str | None = None, to_agent: str | None = None
    ) -> None:
        """Move a task to another queue (it is routed again) or straight to an agent
        (`transfers.py`: an assigned task moves when the agent accepts)."""
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
        change = self.transfers.transferring(task, self.agent(to_agent))
        self._transaction(f"transferring {task_id!r}", change)

    def login(self, agent_id: str) -> None:
        self._transaction(f"logging in {agent_id!r}", self.roster.logging_in(agent_id))

    def logout(self, agent_id: str) -> None:
        """Log an agent out; its pending reservations are revoked and go back to their queues."""
        self._transaction(f"logging out {agent_id!r}", self.roster.logging_out(agent_id))

    def set_status(self, agent_id: str, status: str) -> None:
        """`ready` or `not_ready` (from offline, this logs the agent in)."""
        change = self.roster.setting_status(agent_id, status)
        self._transaction(f"setting {agent_id!r} {status}", change)

    def remove_agent(self, agent_id: str) -> None:
        """Take an agent off the roster; refused while it holds tasks. A logged-in agent
        is logged out first (plugins see the logout)."""
        self._transaction(f"removing agent {agent_id!r}", self.roster.removing(agent_id))

    def set_agent(
        self,
        agent_id: str,
        attributes: Mapping[str, Any] | None = None,
        channels: Mapping[str, int] | None = None,
    ) -> None:
        """Change attributes (a null value removes one) and capacities of an agent."""
        change = self.roster.changing(agent_id, attributes, channels)
        self._transaction(f"changing agent {agent_id!r}", change)

    # --- saved state and a new deployment ---------------------------------------------

    def save(self) -> dict[str, Any]:
        """The engine's state as plain JSON data: `Engine.restore` continues from it
        exactly, timers and plugin state included (decision records are not kept)."""
        with self.transactions.writing():
            return saved.engine_to_json(self.state, self.start, self.options)

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
        start, kept = saved.start_and_options(data)
        engine = cls(deployment, start=start, options=options or kept)
        engine._load(data)
        return engine

    def _load(self, data: Mapping[str, Any]) -> None:
        saved.load_into(self.state, data, self._undo)
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
                # `apply` collects the tasks this changes, on the new lifecycle too
                self.lifecycle.changed = before["lifecycle"].changed
                self._load(data)
                self._transaction("replacing the deployment", self._adopt, None)
            except BaseException:
                self.__dict__.clear()
                self.__dict__.update(before)
                raise

    # --- event mechanics ------------------------------------------------------------------

    def _adopt(self) -> None:
        timers = self.state.timers
        timers[:] = [timer for timer in timers if self.clock.handles(timer[2], timer[3])]
        self.workflow.adopt_tasks()

    def _task_in(self, task_id: str, states: tuple[str, ...], action: str) -> Task:
        task = self.task(task_id)
        if task.state not in states:
            raise EventError(
                f"cannot {action} task {task_id!r}: it is {task.state}, not {' or '.join(states)}"
            )
        return task

    def _transaction(self, what: str, apply: Callable[[], None], owner: str | None = None) -> None:
        """Apply the event, then route; on any error, undo everything it changed."""

        try:
            outermost = self.transactions.run(what, apply, owner, self._rebuild, self.router.route)
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

    def choose_agent(self, task: Task, *, record: bool) -> Decision:
        """The best eligible agent for a task now, with the reasons when `record` is set."""
        return self.router.choose_agent(task, record=record)


#: how `Engine.apply` applies each kind of event: through the method that wraps it
_APPLY: dict[type, Callable[[Engine, Any], object]] = {
    events.CreateTask: lambda engine, e: engine.create_task(
        e.task, e.channel, e.attributes, e.priority, e.queue, e.profile
    ),
    events.Accept: lambda engine, e: engine.accept(
        e.task, agent=e.agent, reservation=e.reservation
    ),
    events.Decline: lambda engine, e: engine.decline(
        e.task, agent=e.agent, reservation=e.reservation
    ),
    events.Timeout: lambda engine, e: engine.timeout(
        e.task, agent=e.agent, reservation=e.reservation
    ),
    events.Complete: lambda engine, e: engine.complete(e.task),
    events.Cancel: lambda engine, e: engine.cancel(e.task, e.reason),
    events.Transfer: lambda engine, e: engine.transfer(
        e.task, to_queue=e.to_queue, to_agent=e.to_agent
    ),
    events.Login: lambda engine, e: engine.login(e.agent),
    events.Logout: lambda engine, e: engine.logout(e.agent),
    events.SetStatus: lambda engine, e: engine.set_status(e.agent, e.status),
    events.SetAgent: lambda engine, e: engine.set_agent(e.agent, e.attributes, e.channels),
    events.AddAgent: lambda engine, e: engine.add_agent(
        e.agent, e.channels, e.attributes, e.groups, e.status
    ),
    events.RemoveAgent: lambda engine, e: engine.remove_agent(e.agent),
    events.EndWrapUp: lambda engine, e: engine._transaction(e.type, engine.flow.change(e)),
    events.ConvertToCallback: lambda engine, e: engine._transaction(e.type, engine.flow.change(e)),
    events.ReplaceDeployment: lambda engine, e: engine.replace_deployment(
        load_deployment(e.deployment)
    ),
    events.AdvanceClock: lambda engine, e: engine.advance_to(e.to),
}
