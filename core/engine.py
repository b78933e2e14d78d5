"""The engine: state, events, timers and the routing loop.

After every event (and every timer) the engine routes: waiting tasks are taken in task
order, and each is offered to the best eligible agent with room. Every event is atomic:
it is checked before anything changes, and if a plugin raises part way, the state is
restored to what it was before the event.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import attrs
from sortedcontainers import SortedList

from . import events
from .components import RankingKey
from .config import load_deployment
from .decisions import Candidate, Decision, explain_winner
from .errors import ConcurrentWriteError, EventError, PluginError
from .index import GroupKey, RosterIndex
from .pipeline import Pipeline, build_pipeline
from .spec import Deployment, Queue, Target
from .state import (
    AGENT_STATUSES,
    Agent,
    EngineState,
    Reservation,
    Task,
    latest_agent_version,
    task_context,
    worker_context,
)
from .undo import RecordedDict, UndoLog

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: no group of tied agents (the walk of a ladder starts before the first)
_NO_GROUP = object()


class _Top:
    """Above every value: a bound that finds the end of a run of equal ladder keys."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return True


_TOP = _Top()
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@attrs.frozen
class EngineOptions:
    """How an engine behaves beyond its deployment.

    auto_accept: a reservation is accepted the moment it is made.
    reservation_timeout: seconds after which an unanswered reservation times out (None: never).
    record_decisions: keep a decision record for every offer and for each task's last
        unsuccessful attempt (the explain command needs them; the simulator turns them off).
    transactional: record what each event changes in an undo log, so that a failing
        event (a plugin raising half way) leaves the state untouched. It costs in
        proportion to what the event changed; the simulator, which stops at the first
        error, turns it off.
    indexed: without decision records, route through the roster index (per-queue members,
        open agents and ranking ladders) instead of scanning the roster for every task. The
        decisions are the same either way; a decision record lists every agent, so with
        `record_decisions` the engine scans.
    keep_closed_tasks: keep completed, canceled and rejected tasks in `state.tasks`. A long
        simulation turns it off and reads each task as it closes (`on_close`).
    """

    auto_accept: bool = False
    reservation_timeout: float | None = None
    record_decisions: bool = True
    transactional: bool = True
    indexed: bool = True
    keep_closed_tasks: bool = True


class Engine:
    """Routes tasks to agents for one deployment, on a clock it is given.

    Times are seconds since `start` (a timezone-aware datetime, `at: 0` of a scenario).
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        start: datetime = DEFAULT_START,
        options: EngineOptions | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.deployment = deployment
        self.start = start
        self.options = options or EngineOptions()
        self._undo = UndoLog()
        self.state = EngineState(plugin_state=RecordedDict(self._undo))
        self._changed_tasks: dict[str, Task] = {}
        self._writer: int | None = None
        self._writer_lock = threading.Lock()
        self.decisions: dict[str, list[Decision]] = {}
        self.last_attempt: dict[str, Decision] = {}
        #: what a timer calls, by (owner, name): timers themselves are data in the state
        self._timer_handlers: dict[tuple[str | None, str], Callable[[Any], None]] = {
            (None, "release_hold"): self._release_if_held,
            (None, "target_timeout"): self._target_timed_out,
            (None, "reservation_timeout"): self._reservation_timed_out,
        }
        self._worker_contexts: dict[str, tuple[int, dict[str, Any]]] = {}
        self._task_context: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._clock_context: tuple[float, dict[str, Any]] | None = None
        self._expression_context: tuple[Any, Any, int, dict[str, Any]] | None = None
        self._pending_skip_checks: list[tuple[str, int, int]] = []
        self._routing = False
        self._in_event = False
        #: per waiting task that found nobody: (agent version stamp, clock, task position)
        self._failed_checks: dict[str, tuple[int, float, tuple[Any, ...]]] = {}
        self.pipeline: Pipeline = build_pipeline(deployment, self)
        self._time_dependent = self._reads_the_clock()
        #: called with each task as it closes (before it is forgotten, if it is)
        self.on_close: Callable[[Task], None] | None = None
        self._closed: list[Task] = []
        self._index = self._build_index()
        #: queued tasks per queue and channel, so that a change to an agent sends the
        #: engine to the queues it serves only
        self._waiting_groups: dict[GroupKey, dict[str, None]] = {}
        self._waiting_group_of: dict[str, GroupKey] = {}
        self._fresh_groups: set[GroupKey] = set()
        #: the clock at the last routing pass (time-dependent deployments retry every
        #: group once time has moved)
        self._last_pass_at: float | None = None
        self._check_every_group = True
        #: the groups of queues the index cannot hold (any change may help their tasks)
        self._scanned_groups: set[GroupKey] = set()
        #: with task orderings that are fixed while a task waits: each group's tasks kept
        #: sorted by their order keys, and the tasks whose key is still to be computed
        self._orders_fixed = self._index is not None and all(
            ordering.fixed for _, ordering in self.pipeline.task_orderings
        )
        self._ordered_waiting: dict[GroupKey, SortedList] = {}
        self._order_entry: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._unordered: dict[str, None] = {}

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
    def offers(self) -> list[Reservation]:
        """Every reservation made, in order."""
        return list(self.state.offers)

    def reservation(self, reservation_id: str) -> Reservation:
        """A reservation by its id (`r<n>`: the n-th made)."""
        state = self.state
        number = reservation_id[1:] if reservation_id.startswith("r") else ""
        if number.isdigit() and 0 < int(number) <= state.forgotten_offers + len(state.offers):
            if int(number) <= state.forgotten_offers:
                raise EventError(f"reservation {reservation_id!r} is no longer kept")
            return state.offers[int(number) - 1 - state.forgotten_offers]
        raise EventError(f"unknown reservation {reservation_id!r}")

    def forget_offers(self) -> list[Reservation]:
        """The reservations made since the last call, dropped from `offers` (a long run
        reads them as it goes and keeps no list of them). A task keeps its own."""
        offers = self.state.offers
        taken = list(offers)
        self.state.forgotten_offers += len(offers)
        offers.clear()
        return taken

    # --- events as values ---------------------------------------------------------------

    def apply(self, event: events.Event) -> events.Outcome:
        """Apply one event; what it did: the reservations made and the tasks changed.

        A failing event raises (EventError for an event that cannot apply, PluginError
        when a plugin failed) and changes nothing.
        """
        offers_before = self.state.forgotten_offers + len(self.state.offers)
        self._changed_tasks = {}
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
            case events.AdvanceClock():
                self.advance_to(event.to)
            case _:
                raise EventError(f"the engine cannot apply {event!r} yet")
        changed, self._changed_tasks = self._changed_tasks, {}
        made = self.state.forgotten_offers + len(self.state.offers) - offers_before
        return events.Outcome(
            tuple(self.state.offers[len(self.state.offers) - made :] if made else ()),
            tuple(changed.values()),
        )

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

    def decisions_for(self, task_id: str) -> list[Decision]:
        """The decision behind each offer of the task, then its last unsuccessful attempt."""
        found = list(self.decisions.get(task_id, ()))
        last = self.last_attempt.get(task_id)
        if last is not None:
            found.append(last)
        return found

    def wall_time(self, at: float | None = None) -> datetime:
        return self.start + timedelta(seconds=self.now if at is None else at)

    # --- what plugins and expressions read ---------------------------------------------

    def queue_of(self, task: Task) -> Queue | None:
        return self.deployment.queue_of(task)

    def target_of(self, task: Task) -> Target | None:
        return self.deployment.target_of(task)

    def target_label(self, task: Task) -> str:
        return self.deployment.target_label(task)

    def effective_priority(self, task: Task) -> int:
        return self.deployment.effective_priority(task)

    def clock_context(self) -> dict[str, Any]:
        """`taskrouter.*`: the time of day in UTC."""
        if self._clock_context is None or self._clock_context[0] != self.now:
            moment = self.wall_time().astimezone(UTC)
            values = {
                "currentTime": moment.hour * 100 + moment.minute,
                "currentHour": f"{moment.hour:02d}",
                "currentMin": f"{moment.minute:02d}",
                "dayOfWeek": _WEEKDAYS[moment.weekday()],
            }
            self._clock_context = (self.now, values)
        return self._clock_context[1]

    def worker_view(self, agent: Agent) -> dict[str, Any]:
        cached = self._worker_contexts.get(agent.id)
        if cached is None or cached[0] != agent.version:
            cached = (agent.version, worker_context(agent))
            self._worker_contexts[agent.id] = cached
        return cached[1]

    def task_view(self, task: Task) -> dict[str, Any]:
        """`task.*` for expressions, reused while the task, its queue and the clock stay put."""
        key = (task.id, self.now, self.effective_priority(task), task.queue)
        cached = self._task_context
        if cached is None or cached[0] != key:
            cached = (key, task_context(task, self.now, key[2]))
            self._task_context = cached
        return cached[1]

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]:
        """`task`, `worker` and `taskrouter` for expressions; the last one is reused while
        neither the task, the agent nor the clock changed (the queue and target filters
        both ask for it)."""
        view = self.task_view(task)
        key = (view, agent, agent.version if agent is not None else -1)
        cached = self._expression_context
        if (
            cached is not None
            and cached[0] is key[0]
            and cached[1] is key[1]
            and cached[2] == key[2]
        ):
            return cached[3]
        context = {"task": view, "taskrouter": self.clock_context()}
        if agent is not None:
            context["worker"] = self.worker_view(agent)
        self._expression_context = (view, agent, key[2], context)
        return context

    def queue_counts(self, queue_name: str | None, channel: str) -> dict[str, int]:
        """`workers.available` and `workers.total` for a queue and a task's channel."""
        queue = self.deployment.queues.get(queue_name) if queue_name else None
        if self._index is not None and self._index.indexed(queue_name):
            assert queue_name is not None
            self._index.sync()
            return self._index.counts(queue_name, channel)
        available = total = 0
        for agent in self.state.agents.values():
            if agent.status == "offline":
                continue
            if queue is not None and not queue.target_workers.evaluate(
                {"worker": self.worker_view(agent), "taskrouter": self.clock_context()}
            ):
                continue
            total += 1
            if agent.status == "ready" and agent.has_room(channel):
                available += 1
        return {"available": available, "total": total}

    def waiting_in(self, queue: str | None) -> Iterator[Task]:
        """The tasks waiting in a queue, in the order they started waiting, read from the
        per-queue-and-channel waiting lists (the cost follows the queue's tasks)."""
        tasks = self.state.tasks
        found = [
            tasks[task_id]
            for (name, _channel), ids in self._waiting_groups.items()
            if name == queue
            for task_id in ids
        ]
        found.sort(key=lambda task: task.wait_seq)
        return iter(found)

    # --- services for plugins -----------------------------------------------------------

    def on_timer(self, owner: str | None, name: str, handler: Callable[[Any], None]) -> None:
        """Declare what timers `name` of `owner` (a plugin; None: the engine) call."""
        self._timer_handlers[(owner, name)] = handler

    def set_timer(self, at: float, name: str, payload: Any = None, owner: str | None = None) -> int:
        """At `at`, call the handler of (owner, name) with `payload`, then route."""
        if (owner, name) not in self._timer_handlers:
            raise ValueError(
                f"no handler for timer {name!r} of {owner or 'the engine'}; declare it with on_timer"
            )
        timer_id = self.state.timer_sequence
        self.state.timer_sequence += 1
        # Undone by canceling: the heap entry is then skipped like any canceled timer.
        self._undo.push(functools.partial(self.state.canceled_timers.add, timer_id))
        heapq.heappush(self.state.timers, (max(at, self.now), timer_id, owner, name, payload))
        return timer_id

    def cancel_timer(self, timer_id: int) -> None:
        canceled = self.state.canceled_timers
        if timer_id not in canceled:
            self._undo.push(functools.partial(canceled.discard, timer_id))
            canceled.add(timer_id)

    def next_timer_at(self) -> float | None:
        timers, canceled = self.state.timers, self.state.canceled_timers
        while timers and timers[0][1] in canceled:
            timer_id = heapq.heappop(timers)[1]
            canceled.discard(timer_id)
        return timers[0][0] if timers else None

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        self._undo.keep(agent)
        agent.capacity[channel] = capacity
        agent.touch()

    def hold_task(self, task: Task, until: float | None, reason: str) -> None:
        self._undo.keep(task)
        task.hold_reason = reason
        task.held_until = until
        if until is not None:
            self.set_timer(until, "release_hold", [task.id, until])

    def release_task(self, task: Task) -> None:
        self._undo.keep(task)
        task.hold_reason = None
        task.held_until = None
        group = self._waiting_group_of.get(task.id)
        if group is not None:
            self._fresh_groups.add(group)

    def _release_if_held(self, payload: list[Any]) -> None:
        task_id, until = payload
        task = self.state.tasks.get(task_id)
        if task is not None and task.hold_reason is not None and task.held_until == until:
            self.release_task(task)

    # --- the clock ----------------------------------------------------------------------

    def advance_to(self, at: float) -> None:
        """Move the clock to `at`, firing every timer due by then at its own time."""
        with self._writing():
            self._advance_to(at)

    def _advance_to(self, at: float) -> None:
        if at < self.now:
            raise EventError(
                f"time cannot go back: the clock is at {self.now:g} s, the event at {at:g} s"
            )
        while True:
            due = self.next_timer_at()
            if due is None or due > at:
                break
            _, _, owner, name, payload = heapq.heappop(self.state.timers)
            handler = self._timer_handlers[(owner, name)]
            self._transaction(
                f"timer of {owner or 'core'}",
                functools.partial(self._fire, due, handler, payload),
                owner,
            )
        self.state.now = at

    def run_timers(self, until: float | None = None) -> None:
        """Fire timers until none is left or the next one is after `until`.

        The clock stops at the last timer fired; it does not move on to `until`. Plugins
        may keep recurring timers (a calendar's closings), so give `until` unless the
        deployment has none.
        """
        while True:
            due = self.next_timer_at()
            if due is None or (until is not None and due > until):
                break
            self.advance_to(due)

    def _fire(self, due: float, handler: Callable[[Any], None], payload: Any) -> None:
        self.state.now = due
        # Timers change what no stamp tracks (plugin state of tasks): check everything.
        self._failed_checks.clear()
        self._check_every_group = True
        handler(payload)

    def _reads_the_clock(self) -> bool:
        """Whether eligibility can change with time alone in this deployment."""
        expressions = [queue.target_workers for queue in self.deployment.queues.values()]
        if self.deployment.workflow is not None:
            expressions += [
                target.expression
                for item in self.deployment.workflow.filters
                for target in item.targets
                if target.expression is not None
            ]
        reads_time = any(
            ref == "task.age" or ref.startswith("taskrouter")
            for expression in expressions
            for ref in expression.references
        )
        return reads_time or any(item.time_dependent for _, item in self.pipeline.filters)

    # --- events ---------------------------------------------------------------------------

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
            agent = Agent(
                id=agent_id,
                roster_index=self.state.agent_sequence,
                attributes=dict(attributes or {}),
                groups=tuple(groups),
                capacity=dict(channels),
                status=status,
                status_since=self.now,
                plugin_state=RecordedDict(self._undo),
            )
            if status != "offline":
                agent.login_at = self.now
                agent.free_since = self.now
            self._undo.added(self.state.agents, agent_id)
            self.state.agents[agent_id] = agent
            self.state.agent_sequence += 1
            if self._index is not None:
                self._index.agent_added(agent)
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
        if task_id in self.state.tasks:
            raise EventError(f"task {task_id!r} already exists")
        self._check_channels({channel: 1}, f"task {task_id!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise EventError(f"task {task_id!r}: priority must be a whole number, not {priority!r}")
        if queue is not None and queue not in self.deployment.queues:
            raise EventError(
                f"task {task_id!r}: unknown queue {queue!r} (queues: {', '.join(self.deployment.queues) or 'none'})"
            )
        if self.deployment.workflow is None and queue is None and len(self.deployment.queues) > 1:
            raise EventError(
                f"task {task_id!r} names no queue, and without a workflow the deployment's "
                f"{len(self.deployment.queues)} queues leave it nowhere to go"
            )

        created: list[Task] = []

        def apply() -> None:
            task = Task(
                id=task_id,
                seq=self.state.task_sequence,
                channel=channel,
                attributes=dict(attributes or {}),
                priority=priority,
                created_at=self.now,
                requested_queue=queue,
                profile=profile,
                queued_at=self.now,
                plugin_state=RecordedDict(self._undo),
            )
            self.state.task_sequence += 1
            self._undo.added(self.state.tasks, task_id)
            self.state.tasks[task_id] = task
            created.append(task)
            self._log(task, "created")
            self._place(task)
            if task.state != "queued":
                return
            for plugin, arrival in self.pipeline.arrival_checks:
                verdict = self._call(
                    plugin, f"the arrival check {arrival.name!r}", arrival.check, task
                )
                if verdict is not None:
                    reason, message = verdict
                    self._close(task, "rejected", reason, message)
                    self._notify("rejected", task, None)
                    return
            self._notify("created", task, None)

        self._transaction(f"creating task {task_id!r}", apply)
        return created[0]

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
        self._transaction(f"accepting {task.id!r}", lambda: self._accept(task))

    def decline(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self._answered(task_id, agent, reservation, "decline")
        self._transaction(f"declining {task.id!r}", lambda: self._return_to_queue(task, "declined"))

    def timeout(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        reservation: str | None = None,
    ) -> None:
        task = self._answered(task_id, agent, reservation, "time out")
        self._transaction(
            f"timing out {task.id!r}", lambda: self._return_to_queue(task, "timed_out")
        )

    def _answered(
        self, task_id: str | None, agent_id: str | None, reservation_id: str | None, action: str
    ) -> Task:
        """The reserved task an answer is for, once the answer is known to be current."""
        if reservation_id is not None:
            reservation = self.reservation(reservation_id)
            if task_id is not None and task_id != reservation.task:
                raise EventError(
                    f"cannot {action} reservation {reservation_id!r}: it is for task "
                    f"{reservation.task!r}, not {task_id!r}"
                )
            if agent_id is not None and agent_id != reservation.agent:
                raise EventError(
                    f"cannot {action} reservation {reservation_id!r}: it is for agent "
                    f"{reservation.agent!r}, not {agent_id!r}"
                )
            if reservation.state != "pending":
                raise EventError(
                    f"cannot {action} reservation {reservation_id!r} (task "
                    f"{reservation.task!r}, agent {reservation.agent!r}): it is "
                    f"{reservation.state}, not pending"
                )
            return self.state.tasks[reservation.task]
        if task_id is None:
            raise EventError(f"{action}: name the task or the reservation")
        task = self._task_in(task_id, ("reserved",), action)
        if agent_id is not None and agent_id != task.agent:
            raise EventError(
                f"cannot {action} task {task_id!r} as {agent_id!r}: its pending reservation "
                f"{task.reservation.id if task.reservation else None!r} is for {task.agent!r}"
            )
        return task

    def complete(self, task_id: str) -> None:
        task = self._task_in(task_id, ("assigned",), "complete")

        def apply() -> None:
            agent = self._release_agent(task)
            self._close(task, "completed", None)
            self._notify("completed", task, agent)

        self._transaction(f"completing {task_id!r}", apply)

    def cancel(self, task_id: str, reason: str = "canceled") -> None:
        """The customer leaves: a queued, reserved or assigned task ends."""
        task = self._task_in(task_id, ("queued", "reserved", "assigned"), "cancel")

        def apply() -> None:
            agent = self._release_agent(task)
            self._close(task, "canceled", reason)
            self._notify("canceled", task, agent)

        self._transaction(f"canceling {task_id!r}", apply)

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
                f"transferring {task_id!r}", lambda: self._transfer_to_queue(task, to_queue)
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
            f"transferring {task_id!r}", lambda: self._transfer_to_agent(task, target)
        )

    def login(self, agent_id: str) -> None:
        agent = self.agent(agent_id)
        if agent.status != "offline":
            raise EventError(f"login of {agent_id!r}: already logged in ({agent.status})")

        def apply() -> None:
            self._set_status(agent, "ready")
            agent.login_at = self.now
            if agent.held_count() == 0:
                agent.free_since = self.now
            self._notify("login", None, agent)

        self._transaction(f"logging in {agent_id!r}", apply)

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

        def apply() -> None:
            for task_id in sorted(task for ids in agent.held.values() for task in ids):
                self._return_to_queue(self.state.tasks[task_id], "timed_out", ending="revoked")
            self._set_status(agent, "offline")
            agent.login_at = None
            self._notify("logout", None, agent)

        self._transaction(f"logging out {agent_id!r}", apply)

    def set_status(self, agent_id: str, status: str) -> None:
        """`ready` or `not_ready` (from offline, this logs the agent in)."""
        if status not in ("ready", "not_ready"):
            raise EventError(f"status of {agent_id!r}: must be ready or not_ready, not {status!r}")
        agent = self.agent(agent_id)

        def apply() -> None:
            was_offline = agent.status == "offline"
            self._set_status(agent, status)
            if was_offline:
                agent.login_at = self.now
                if agent.held_count() == 0:
                    agent.free_since = self.now
                self._notify("login", None, agent)
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
                self._set_status(agent, "offline")
                agent.login_at = None
                self._notify("logout", None, agent)
            self._undo.removed(self.state.agents, agent_id)
            del self.state.agents[agent_id]
            self._worker_contexts.pop(agent_id, None)
            if self._index is not None:
                self._index.agent_removed(agent)

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
            for channel, capacity in (channels or {}).items():
                agent.capacity[channel] = capacity
            if self._index is not None:
                self._index.attributes_changed(agent, list(attributes or {}))
            agent.touch()

        self._transaction(f"changing agent {agent_id!r}", apply)

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
        """Apply, then route; on any error, undo everything the event changed."""
        if self._in_event:
            self._check_writer()
            apply()
            return
        with self._writing():
            self._in_event = True
            mark = self._begin()
            try:
                apply()
                self._route()
            except BaseException as error:
                self._closed.clear()
                if mark is not None:
                    self._rollback(mark)
                if owner is not None and not isinstance(error, (EventError, PluginError)):
                    raise PluginError(owner, what, error) from error
                raise
            else:
                self._undo.commit()
            finally:
                self._in_event = False
        if self._closed:
            self._settle_closed()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the engine for one writer; a second thread calling in at the same time
        fails loudly instead of corrupting the state."""
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        if not self._writer_lock.acquire(blocking=False):
            raise ConcurrentWriteError(
                "the engine is already applying an event in another thread: an engine has "
                "one writer (see docs/api.md, 'One writer')"
            )
        self._writer = me
        try:
            yield
        finally:
            self._writer = None
            self._writer_lock.release()

    def _check_writer(self) -> None:
        if self._writer is not None and self._writer != threading.get_ident():
            raise ConcurrentWriteError(
                "the engine is applying an event in another thread: an engine has one writer"
            )

    def _settle_closed(self) -> None:
        """Hand each task closed by the event to `on_close`, then forget it if asked."""
        closed, self._closed = self._closed, []
        for task in closed:
            if self.on_close is not None:
                self.on_close(task)
            if not self.options.keep_closed_tasks:
                self.state.tasks.pop(task.id, None)

    def _begin(self) -> tuple[int, int, float, int, int] | None:
        """Start recording the event's changes (None: the engine keeps no undo log).

        What only grows is measured instead of recorded: the offers made and the counters.
        Timer ids are not given back: an undone timer stays canceled under its id.
        """
        if not self.options.transactional:
            return None
        self._undo.begin()
        state = self.state
        return (
            len(state.offers),
            state.task_sequence,
            state.now,
            state.wait_sequence,
            state.agent_sequence,
        )

    def _rollback(self, mark: tuple[int, int, float, int, int]) -> None:
        """Undo the event, then rebuild what is derived from the state (the waiting
        groups and the roster index): a failed event costs a pass over the roster, a
        successful one nothing."""
        self._undo.rollback()
        state = self.state
        (
            offers,
            state.task_sequence,
            state.now,
            state.wait_sequence,
            state.agent_sequence,
        ) = mark
        del state.offers[offers:]
        waiting = state.waiting
        state.waiting = dict.fromkeys(sorted(waiting, key=lambda task: state.tasks[task].wait_seq))
        state.agents = dict(sorted(state.agents.items(), key=lambda item: item[1].roster_index))
        self._worker_contexts.clear()
        self._task_context = None
        self._expression_context = None
        self._failed_checks.clear()
        self._pending_skip_checks.clear()
        self._regroup_waiting()
        if self._index is not None:
            self._index.rebuild()

    def _call(self, plugin: str | None, what: str, function: Callable[..., Any], *args: Any) -> Any:
        return self._call_named(plugin, "{}", what, function, *args)

    def _call_named(
        self, plugin: str | None, what: str, name: str, function: Callable[..., Any], *args: Any
    ) -> Any:
        """`_call` for the hot path: `what.format(name)` is only built if the call fails.
        A component of no plugin (the engine's built-in behaviour) raises as it is."""
        if plugin is None:
            return function(*args)
        try:
            return function(*args)
        except (EventError, PluginError):
            raise
        except Exception as error:
            raise PluginError(plugin, what.format(name), error) from error

    def _notify(self, event: str, task: Task | None, agent: Agent | None) -> None:
        for plugin, handler in self.pipeline.handlers.get(event, ()):
            self._call_named(plugin, "the {} event", event, handler.handler, task, agent)

    def _log(self, task: Task, what: str) -> None:
        self._undo.keep(task)
        self._changed_tasks[task.id] = task
        task.history.append((self.now, what))

    def _set_status(self, agent: Agent, status: str) -> None:
        self._undo.keep(agent)
        agent.status = status
        agent.status_since = self.now
        agent.touch()

    def _close(
        self, task: Task, state: str, reason: str | None, message: str | None = None
    ) -> None:
        self._undo.keep(task)
        task.state = state
        task.reason = reason
        task.message = message
        task.agent = None
        self._stop_waiting(task)
        self._failed_checks.pop(task.id, None)
        self._closed.append(task)
        self._log(task, state + (f" ({reason})" if reason else ""))

    def _queue(self, task: Task) -> None:
        self._undo.keep(task)
        task.state = "queued"
        task.agent = None
        waiting = self.state.waiting
        if task.id not in waiting:
            task.wait_seq = self.state.wait_sequence
            self.state.wait_sequence += 1
            self._undo.added(waiting, task.id)
            waiting[task.id] = None
        group = (task.queue, task.channel)
        previous = self._waiting_group_of.get(task.id)
        if previous is not None and previous != group:
            self._waiting_groups[previous].pop(task.id, None)
        self._waiting_groups.setdefault(group, {})[task.id] = None
        if self._index is not None and not self._index.indexed(group[0]):
            self._scanned_groups.add(group)
        self._waiting_group_of[task.id] = group
        self._fresh_groups.add(group)
        if self._orders_fixed:
            # Its order key is computed at the next routing pass, after the handlers of
            # this event have run (a plugin's ordering may read what they set).
            self._drop_order_entry(task.id, previous)
            self._unordered[task.id] = None

    def _stop_waiting(self, task: Task) -> None:
        self._undo.removed(self.state.waiting, task.id)
        self.state.waiting.pop(task.id, None)
        group = self._waiting_group_of.pop(task.id, None)
        if group is not None:
            self._waiting_groups[group].pop(task.id, None)
            if self._orders_fixed:
                self._drop_order_entry(task.id, group)
                self._unordered.pop(task.id, None)

    def _drop_order_entry(self, task_id: str, group: GroupKey | None) -> None:
        entry = self._order_entry.pop(task_id, None)
        if entry is not None and group is not None:
            self._ordered_waiting[group].remove(entry)

    def _regroup_waiting(self) -> None:
        self._waiting_groups.clear()
        self._waiting_group_of.clear()
        self._scanned_groups.clear()
        self._ordered_waiting.clear()
        self._order_entry.clear()
        self._unordered.clear()
        self._check_every_group = True
        for task_id in self.state.waiting:
            task = self.state.tasks[task_id]
            group = (task.queue, task.channel)
            self._waiting_groups.setdefault(group, {})[task_id] = None
            if self._index is not None and not self._index.indexed(group[0]):
                self._scanned_groups.add(group)
            self._waiting_group_of[task_id] = group
            if self._orders_fixed:
                self._unordered[task_id] = None

    def _release_agent(self, task: Task, ending: str = "revoked") -> Agent | None:
        """Free the capacity the task holds on its agent, if any; a pending reservation
        ends as `ending`."""
        if task.agent is None:
            return None
        agent = self.state.agents[task.agent]
        self._undo.keep(agent)
        self._undo.keep(task)
        reservation = task.reservation
        if reservation is not None:
            if reservation.state == "pending":
                self._undo.keep(reservation)
                reservation.state = ending
            task.reservation = None
        agent.held.get(task.channel, set()).discard(task.id)
        was_assigned = task.id in agent.assigned.get(task.channel, set())
        agent.assigned.get(task.channel, set()).discard(task.id)
        if was_assigned and agent.held_count() == 0:
            agent.free_since = self.now
        agent.touch()
        task.agent = None
        return agent

    def _accept(self, task: Task) -> None:
        agent = self.state.agents[task.agent] if task.agent else None
        assert agent is not None
        self._undo.keep(agent)
        self._undo.keep(task)
        reservation = task.reservation
        if reservation is not None:
            self._undo.keep(reservation)
            reservation.state = "accepted"
        task.state = "assigned"
        agent.assigned.setdefault(task.channel, set()).add(task.id)
        agent.last_accept_at = self.now
        agent.touch()
        self._log(task, f"accepted by {agent.id}")
        self._notify("accepted", task, agent)

    def _return_to_queue(self, task: Task, why: str, ending: str | None = None) -> None:
        agent = self._release_agent(task, ending or why)
        if agent is not None:
            self._undo.keep(task)
            task.declined_by.append(agent.id)
        self._queue(task)
        self._log(task, why + (f" by {agent.id}" if agent else ""))
        self._notify(why, task, agent)
        if task.target_expired and task.state == "queued":
            self._leave_target(task, timed_out=True)

    def _transfer_to_queue(self, task: Task, queue: str) -> None:
        agent = self._release_agent(task)
        self._undo.keep(task)
        task.queue = queue
        task.filter_index = task.target_index = None
        task.target_expired = False
        task.transferred = True
        task.queued_at = self.now
        self._queue(task)
        self._log(task, f"transferred to queue {queue}")
        self._notify("transferred", task, agent)
        self._notify("entered_queue", task, None)

    def _transfer_to_agent(self, task: Task, agent: Agent) -> None:
        previous = self._release_agent(task)
        self._stop_waiting(task)
        self._undo.keep(task)
        task.transferred = True
        self._log(task, f"transferred to agent {agent.id}")
        self._notify("transferred", task, previous)
        decision = Decision(
            task=task.id,
            at=self.now,
            queue=task.queue,
            target="transfer to agent",
            candidates=(Candidate(agent.id, None, None, ()),),
            winner=agent.id,
            why=f"transferred directly to {agent.id}, bypassing routing",
        )
        self._reserve(task, agent, decision)

    # --- workflow -----------------------------------------------------------------------------

    def _place(self, task: Task) -> None:
        """Put a new task in its first queue: by the workflow, its own queue field, or the only queue."""
        workflow = self.deployment.workflow
        self._undo.keep(task)
        if workflow is None:
            queue = task.requested_queue
            if queue is None and len(self.deployment.queues) == 1:
                queue = next(iter(self.deployment.queues))
            task.queue = queue
            self._queue(task)
            self._notify("entered_queue", task, None)
            return
        if not self._enter_matching_filter(task, start=0):
            if workflow.default_queue is not None:
                self._enter_default_queue(task)
            else:
                self._close(
                    task,
                    "rejected",
                    "no_matching_filter",
                    "no workflow filter matches the task and there is no default_queue",
                )

    def _enter_matching_filter(self, task: Task, start: int) -> bool:
        workflow = self.deployment.workflow
        assert workflow is not None
        context = {"task": self.task_view(task), "taskrouter": self.clock_context()}
        for item in workflow.filters[start:]:
            if item.targets and item.expression.evaluate(context):
                self._log(task, f"matched filter {item.name!r}")
                self._enter_target(task, item.targets[0])
                return True
        return False

    def _enter_default_queue(self, task: Task) -> None:
        workflow = self.deployment.workflow
        assert workflow is not None
        self._undo.keep(task)
        task.queue = workflow.default_queue
        task.filter_index = task.target_index = None
        task.target_expired = False
        self._log(task, f"default queue {task.queue}")
        self._queue(task)
        self._notify("entered_queue", task, None)

    def _enter_target(self, task: Task, target: Target) -> None:
        self._undo.keep(task)
        task.filter_index, task.target_index = target.filter_index, target.index
        task.queue = target.queue
        task.target_entered_at = self.now
        task.target_expired = False
        self._log(task, f"entered {target.label} (queue {target.queue})")
        self._queue(task)
        self._task_context = None
        self._notify("entered_queue", task, None)
        if target.timeout is not None:
            self.set_timer(
                self.now + target.timeout,
                "target_timeout",
                [task.id, target.filter_index, target.index, self.now],
            )
        if target.skip_if is not None:
            self._pending_skip_checks.append((task.id, target.filter_index, target.index))

    def _target_timed_out(self, payload: list[Any]) -> None:
        task_id, filter_index, target_index, entered = payload
        task = self.state.tasks.get(task_id)
        if task is None:
            return
        if (task.filter_index, task.target_index, task.target_entered_at) != (
            filter_index,
            target_index,
            entered,
        ):
            return
        if task.state == "queued":
            self._leave_target(task, timed_out=True)
        elif task.state == "reserved":
            self._undo.keep(task)
            task.target_expired = True

    def _leave_target(self, task: Task, *, timed_out: bool) -> None:
        """Go on to the next target; after the last one, time out or try later filters."""
        workflow = self.deployment.workflow
        assert workflow is not None
        assert task.filter_index is not None
        assert task.target_index is not None
        targets = workflow.filters[task.filter_index].targets
        self._log(
            task, ("timed out of " if timed_out else "skipped ") + targets[task.target_index].label
        )
        if task.target_index + 1 < len(targets):
            self._enter_target(task, targets[task.target_index + 1])
            return
        if timed_out:
            self._close(task, "canceled", "workflow_timeout")
            self._notify("canceled", task, None)
            return
        if self._enter_matching_filter(task, start=task.filter_index + 1):
            return
        if workflow.default_queue is not None:
            self._enter_default_queue(task)
            return
        self._close(task, "canceled", "workflow_exhausted")
        self._notify("canceled", task, None)

    def _run_skip_checks(self) -> bool:
        moved = False
        while self._pending_skip_checks:
            task_id, filter_index, target_index = self._pending_skip_checks.pop(0)
            task = self.state.tasks[task_id]
            if task.state != "queued" or (task.filter_index, task.target_index) != (
                filter_index,
                target_index,
            ):
                continue
            target = self.target_of(task)
            assert target is not None
            assert target.skip_if is not None
            counts = self.queue_counts(task.queue, task.channel)
            if target.skip_if.evaluate(
                {
                    "workers": counts,
                    "task": self.task_view(task),
                    "taskrouter": self.clock_context(),
                }
            ):
                self._leave_target(task, timed_out=False)
                moved = True
        return moved

    # --- routing ------------------------------------------------------------------------------

    def _route(self) -> None:
        if self._routing:
            return
        self._routing = True
        try:
            while True:
                offered = self._route_once()
                moved = self._run_skip_checks()
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
            self._blame(orderings, len(keys), "task ordering", error)
        return tuple(keys)

    @staticmethod
    def _blame(
        components: tuple[tuple[str | None, Any], ...], position: int, kind: str, error: Exception
    ) -> NoReturn:
        """Raise what component `position` raised, as a PluginError naming its plugin (one
        try around a hot loop instead of one per call; the loop's length says who failed)."""
        plugin, component = components[position]
        if plugin is None or isinstance(error, (EventError, PluginError)):
            raise error
        raise PluginError(plugin, f"the {kind} {component.name!r}", error) from error

    def _keys_of(
        self, rankings: tuple[tuple[str | None, RankingKey], ...], task: Task, agent: Agent
    ) -> list[Any]:
        keys: list[Any] = []
        try:
            for _plugin, ranking in rankings:
                keys.append(ranking.key(task, agent))
        except Exception as error:
            self._blame(rankings, len(keys), "ranking key", error)
        return keys

    def _route_once(self) -> bool:
        if not self.state.agents:
            return False
        waiting: Iterable[Task]
        if self._index is None:
            waiting = [
                task
                for task_id in self.state.waiting
                if (task := self.state.tasks[task_id]).hold_reason is None
            ]
            waiting.sort(key=self.task_order_key)
        elif self._orders_fixed:
            waiting = self._walk_in_order(self._groups_to_try())
        else:
            tasks = self.state.tasks
            waiting = [
                task
                for group in self._groups_to_try()
                for task_id in self._waiting_groups[group]
                if (task := tasks[task_id]).hold_reason is None
            ]
            waiting.sort(key=self.task_order_key)
        offered = False
        skip_closed_channels = self._index is None and not self.options.record_decisions
        open_channels = self._channels_with_room() if skip_closed_channels else set()
        for task in waiting:
            if task.state != "queued" or task.hold_reason is not None:
                continue
            if skip_closed_channels and task.channel not in open_channels:
                continue  # no ready agent has room on this channel: no filter could pass
            decision = self.choose_agent(task, record=self.options.record_decisions)
            if decision.winner is not None:
                self._reserve(task, self.state.agents[decision.winner], decision)
                offered = True
                if skip_closed_channels:
                    open_channels = self._channels_with_room()
            elif self.options.record_decisions:
                self._record_last_attempt(task.id, decision)
                self.last_attempt[task.id] = decision
        return offered

    def _groups_to_try(self) -> list[GroupKey]:
        """The queues and channels whose waiting tasks could find an agent now.

        Those where something happened since their tasks were last tried (a task joined,
        an agent opened there, a timer fired, or time moved when eligibility reads the
        clock), and where some agent is open. A task of a group left out would find
        nobody, exactly as at its last try.
        """
        index = self._index
        assert index is not None
        index.sync()
        opened, changed = index.take_changes()
        now = self.now
        if self._check_every_group or (self._time_dependent and now != self._last_pass_at):
            named = set(self._waiting_groups)
        else:
            named = self._fresh_groups | opened
            if changed:
                named |= self._scanned_groups
        self._fresh_groups = set()
        self._check_every_group = False
        self._last_pass_at = now
        return [
            group
            for group in named
            if self._waiting_groups.get(group)
            and (not index.indexed(group[0]) or index.open.get(group))
        ]

    def _walk_in_order(self, groups: list[GroupKey]) -> Iterator[Task]:
        """The waiting tasks of the groups, merged in task order from each group's
        ordered list (task orderings are fixed while a task waits, so each key was
        computed once). A group is left as soon as no agent is open in it: its remaining
        tasks could not be offered."""
        tasks = self.state.tasks
        for task_id in self._unordered:
            task = tasks[task_id]
            entry = (self.task_order_key(task), task_id)
            group = self._waiting_group_of[task_id]
            self._ordered_waiting.setdefault(group, SortedList()).add(entry)
            self._order_entry[task_id] = entry
        self._unordered.clear()
        for _key, task_id in heapq.merge(*(self._walk_group(group) for group in groups)):
            task = tasks[task_id]
            if task.hold_reason is None:
                yield task

    def _walk_group(self, group: GroupKey) -> Iterator[tuple[tuple[Any, ...], str]]:
        index = self._index
        assert index is not None
        entries = self._ordered_waiting.get(group)
        indexed = index.indexed(group[0])
        last = None
        while entries:
            if indexed:
                index.sync()
                if not index.open.get(group):
                    return
            following = (
                iter(entries)
                if last is None
                else entries.irange(minimum=last, inclusive=(False, False))
            )
            entry = next(following, None)
            if entry is None:
                return
            last = entry
            yield entry

    def _channels_with_room(self) -> set[str]:
        return {
            channel
            for agent in self.state.agents.values()
            if agent.status == "ready"
            for channel, capacity in agent.capacity.items()
            if len(agent.held.get(channel, ())) < capacity
        }

    def _position_key(self, task: Task) -> tuple[Any, ...]:
        return (
            task.queue,
            task.filter_index,
            task.target_index,
            len(task.declined_by),
            task.priority,
        )

    def _unchanged_since(self, task: Task) -> int | None:
        """The stamp of the task's last attempt if it found nobody and nothing it reads has
        moved since: then only agents changed after that stamp can pass the filters."""
        last = self._failed_checks.get(task.id)
        if (
            last is not None
            and last[2] == self._position_key(task)
            and (not self._time_dependent or last[1] == self.now)
        ):
            return last[0]
        return None

    def choose_agent(self, task: Task, *, record: bool) -> Decision:
        """The best eligible agent for a task now, with the reasons when `record` is set.

        With `record` (or without the index, or for a queue the index cannot hold) every
        agent on the roster is considered: this is the reference the indexed path must
        agree with. Otherwise the index offers the open agents of the task's queue in
        ranking order, and the first that passes the remaining filters wins.
        """
        if not record and self._index is not None and self._index.indexed(task.queue):
            return self._choose_from_index(task)
        filters = self.pipeline.filters
        eligible: list[Agent] = []
        excluded: list[Candidate] = []
        position = 0
        agents: Iterable[Agent] = self.state.agents.values()
        if not record:
            since = self._unchanged_since(task)
            if since is not None:
                agents = [agent for agent in agents if agent.version > since]
            stamp = latest_agent_version()
        # One try around the whole scan instead of one per call: the hot loop stays a
        # plain loop, and `position` still names the filter that raised.
        try:
            for agent in agents:
                for position, (_plugin, item) in enumerate(filters):  # noqa: B007
                    if not item.test(task, agent):
                        break
                else:
                    eligible.append(agent)
                    continue
                if record:
                    plugin, item = filters[position]
                    name = item.name if plugin is None else f"{plugin}.{item.name}"
                    excluded.append(Candidate(agent.id, name, item.reason(task, agent), ()))
        except (EventError, PluginError):
            raise
        except Exception as error:
            plugin, item = filters[position]
            if plugin is None:
                raise
            raise PluginError(plugin, f"the filter {item.name!r}", error) from error
        for plugin, preference in self.pipeline.preferences:
            preferred = [
                agent
                for agent in eligible
                if self._call_named(
                    plugin, "the preference {!r}", preference.name, preference.prefer, task, agent
                )
            ]
            if preferred and len(preferred) < len(eligible):
                if record:
                    kept = {agent.id for agent in preferred}
                    excluded += [
                        Candidate(
                            agent.id,
                            f"{plugin}.{preference.name}",
                            preference.reason(task, agent),
                            (),
                        )
                        for agent in eligible
                        if agent.id not in kept
                    ]
                eligible = preferred
        target = self.target_of(task)
        if not record:
            if eligible:
                self._failed_checks.pop(task.id, None)
            else:
                self._failed_checks[task.id] = (stamp, self.now, self._position_key(task))
        if not eligible:
            return Decision(
                task.id,
                self.now,
                task.queue,
                self.target_label(task),
                tuple(excluded),
                None,
                "no agent is eligible",
            )
        keyed = [(self._ranking_key(task, agent, target), agent) for agent in eligible]
        keyed.sort(key=lambda pair: pair[0])
        winner = keyed[0][1]
        if not record:
            return Decision(task.id, self.now, task.queue, None, (), winner.id, "")
        names = self._ranking_names(target)
        ranked = tuple(
            Candidate(agent.id, None, None, tuple(zip(names, key, strict=True)))
            for key, agent in keyed
        )
        return Decision(
            task.id,
            self.now,
            task.queue,
            self.target_label(task),
            ranked + tuple(excluded),
            winner.id,
            explain_winner(ranked),
        )

    # --- the indexed path ---------------------------------------------------------------------

    def _build_index(self) -> RosterIndex | None:
        """The roster index, and which ranking keys its ladders may hold: the leading keys
        that promise an `Indexing` and do not move with time. The rest are computed among
        the agents those leave tied."""
        if self.options.record_decisions or not self.options.indexed:
            return None
        static = []
        for plugin, ranking in self.pipeline.ranking_keys:
            if ranking.indexing is None or ranking.indexing.time_dependent:
                break
            static.append((plugin, ranking))
        self._ladder_keys = tuple(static)
        self._ranking_ties = len(static) < len(self.pipeline.ranking_keys)
        # The first key left out may give a floor: tied agents are then kept in the order
        # of their floors, and the walk leaves a group once floors pass the best key found.
        self._floored: tuple[str | None, RankingKey] | None = None
        if self._ranking_ties:
            plugin, ranking = self.pipeline.ranking_keys[len(static)]
            indexing = ranking.indexing
            if indexing is not None and indexing.floor is not None:
                self._floored = (plugin, ranking)
        self._open_filters = tuple(
            (plugin, item) for plugin, item in self.pipeline.filters if not item.index_kept
        )
        return RosterIndex(self, self._ladder_key)

    def _ladder_key(self, task: Task, agent: Agent) -> tuple[Any, ...]:
        keys: list[Any] = []
        target = self.target_of(task)
        if target is not None and target.order_by is not None:
            keys.append(target.order_by.key({"worker": self.worker_view(agent)}))
        keys += self._keys_of(self._ladder_keys, task, agent)
        if self._floored is not None:
            plugin, ranking = self._floored
            assert ranking.indexing is not None
            assert ranking.indexing.floor_order is not None
            keys.append(
                self._call_named(
                    plugin,
                    "the floor order of ranking key {!r}",
                    ranking.name,
                    ranking.indexing.floor_order,
                    task,
                    agent,
                )
            )
        keys.append(agent.roster_index)
        return tuple(keys)

    def _partition(self, task: Task) -> tuple[Any, ...] | None:
        """What of the task the ladder keys read (None: they read nothing worth a ladder)."""
        target = self.target_of(task)
        ordered = target is not None and target.order_by is not None
        if not ordered and not self._ladder_keys:
            return None
        parts: list[Any] = [(task.filter_index, task.target_index) if ordered else None]
        for plugin, ranking in self._ladder_keys:
            assert ranking.indexing is not None
            if ranking.indexing.partition is not None:
                parts.append(
                    self._call_named(
                        plugin,
                        "the partition of ranking key {!r}",
                        ranking.name,
                        ranking.indexing.partition,
                        task,
                    )
                )
        return tuple(parts)

    def _choose_from_index(self, task: Task) -> Decision:
        index = self._index
        assert index is not None
        index.sync()
        since = self._unchanged_since(task)
        stamp = latest_agent_version()
        winner = self._best_open_agent(task, since)
        if winner is None:
            self._failed_checks[task.id] = (stamp, self.now, self._position_key(task))
            return Decision(task.id, self.now, task.queue, None, (), None, "no agent is eligible")
        self._failed_checks.pop(task.id, None)
        return Decision(task.id, self.now, task.queue, None, (), winner.id, "")

    def _best_open_agent(self, task: Task, since: int | None) -> Agent | None:
        """The agent the reference path would choose, found by walking the ladder.

        The reference's winner has the smallest (preferences failed, ranking key). The
        ladder holds open agents in ranking order, in groups tied on the keys it holds;
        without preferences the first group with an agent passing the filters decides,
        and with them the walk stops at the first group whose best agent passes every
        preference, since no later agent can beat it. Within a group kept in floor
        order, the walk leaves the group once the next floor is above the best key found,
        and steps over agents whose floor order (hence key) equals the best's when only
        the roster order follows.
        """
        index = self._index
        assert index is not None
        open_ids = index.open.get((task.queue, task.channel))
        if not open_ids:
            return None
        partition = self._partition(task)
        ladder = index.ladder(task, partition) if partition is not None else None
        target = self.target_of(task)
        best: tuple[tuple[Any, ...], Agent] | None = None
        if ladder is None:  # no ladder for this task: rank every open agent in full
            agents = self.state.agents
            for agent in (agents[agent_id] for agent_id in open_ids):
                if (since is None or agent.version > since) and self._passes_filters(task, agent):
                    scored: tuple[Any, ...] = (
                        self._failed_preferences(task, agent),
                        self._ranking_key(task, agent, target),
                    )
                    if best is None or scored < best[0]:
                        best = (scored, agent)
            return best[1] if best is not None else None
        entries = ladder.entries
        if not self._ranking_ties:  # every agent is a group of its own
            ranked: Iterable[tuple[Any, Agent]] = entries
            for _key, agent in ranked:
                if (since is None or agent.version > since) and self._passes_filters(task, agent):
                    failed = self._failed_preferences(task, agent)
                    if not any(failed):
                        return agent
                    if best is None or failed < best[0]:
                        best = (failed, agent)
            return best[1] if best is not None else None
        floor = None
        if self._floored is not None:
            plugin, ranking = self._floored
            assert ranking.indexing is not None
            floor = ranking.indexing.floor
        # ladder keys: (order_by?, ladder keys..., floor order?, roster index)
        tied_length = len(entries[0][0]) - (1 if floor is None else 2)
        only_roster_after = len(self.pipeline.ranking_keys) == len(self._ladder_keys) + 1
        now = self.now
        best_order: Any = None
        current: Any = _NO_GROUP
        number = 0  # groups come in ranking order: the number stands for the ladder's keys
        position, count = 0, len(entries)
        while position < count:
            key, agent = entries[position]
            position += 1
            tied = key[:tied_length]
            if tied != current:
                if best is not None and not any(best[0][0]):
                    break
                current = tied
                number += 1
            if since is not None and agent.version <= since:
                continue
            if floor is not None and best is not None and not any(best[0][0]):
                # best is in this group: one from an earlier group would have ended the walk
                order = key[tied_length]
                if only_roster_after and order == best_order:
                    position = entries.bisect_right(((*tied, order, _TOP),))
                    continue
                if (
                    self._call_named(
                        plugin,
                        "the floor of ranking key {!r}",
                        ranking.name,
                        floor,
                        task,
                        agent,
                        now,
                    )
                    > best[0][2][0]
                ):
                    position = entries.bisect_right(((*tied, _TOP),))
                    continue
            if not self._passes_filters(task, agent):
                continue
            scored = (self._failed_preferences(task, agent), number, self._tail_key(task, agent))
            if best is None or scored < best[0]:
                best = (scored, agent)
                best_order = key[tied_length] if floor is not None else None
        return best[1] if best is not None else None

    def _failed_preferences(self, task: Task, agent: Agent) -> tuple[bool, ...]:
        preferences = self.pipeline.preferences
        failed: list[bool] = []
        try:
            for _plugin, preference in preferences:
                failed.append(not preference.prefer(task, agent))
        except Exception as error:
            self._blame(preferences, len(failed), "preference", error)
        return tuple(failed)

    def _tail_key(self, task: Task, agent: Agent) -> tuple[Any, ...]:
        """The ranking keys the ladders leave out (from the first time-dependent one on)."""
        keys = self._keys_of(self.pipeline.ranking_keys[len(self._ladder_keys) :], task, agent)
        return (*keys, agent.roster_index)

    def _passes_filters(self, task: Task, agent: Agent) -> bool:
        for plugin, item in self._open_filters:
            try:
                if not item.test(task, agent):
                    return False
            except (EventError, PluginError):
                raise
            except Exception as error:
                if plugin is None:
                    raise
                raise PluginError(plugin, f"the filter {item.name!r}", error) from error
        return True

    def _ranking_key(self, task: Task, agent: Agent, target: Target | None) -> tuple[Any, ...]:
        keys: list[Any] = []
        if target is not None and target.order_by is not None:
            keys.append(target.order_by.key({"worker": self.worker_view(agent)}))
        keys += self._keys_of(self.pipeline.ranking_keys, task, agent)
        keys.append(agent.roster_index)
        return tuple(keys)

    def _ranking_names(self, target: Target | None) -> list[str]:
        names = ["order_by"] if target is not None and target.order_by is not None else []
        names += [
            ranking.name if plugin is None else f"{plugin}.{ranking.name}"
            for plugin, ranking in self.pipeline.ranking_keys
        ]
        return [*names, "roster_order"]

    def _record_last_attempt(self, task_id: str, decision: Decision | None) -> None:
        """Record, for the undo log, the task's last attempt as it is before it changes."""
        attempts = self.last_attempt
        if task_id in attempts:
            self._undo.removed(attempts, task_id)
        elif decision is not None:
            self._undo.added(attempts, task_id)

    def _reserve(self, task: Task, agent: Agent, decision: Decision) -> None:
        self._undo.keep(task)
        self._undo.keep(agent)
        task.state = "reserved"
        task.agent = agent.id
        task.offered_at = self.now
        self._stop_waiting(task)
        agent.held.setdefault(task.channel, set()).add(task.id)
        agent.last_offer_at = self.now
        agent.touch()
        timeout = None if self.options.auto_accept else self.options.reservation_timeout
        reservation = Reservation(
            f"r{self.state.forgotten_offers + len(self.state.offers) + 1}",
            task.id,
            agent.id,
            self.now,
            self.now + timeout if timeout is not None else None,
            task.queue,
        )
        task.reservation = reservation
        self.state.offers.append(reservation)
        if self.options.record_decisions:
            if task.id not in self.decisions:
                self._undo.added(self.decisions, task.id)
            records = self.decisions.setdefault(task.id, [])
            self._undo.push(records.pop)
            records.append(decision)
            self._record_last_attempt(task.id, None)
            self.last_attempt.pop(task.id, None)
        self._log(task, f"offered to {agent.id}")
        self._notify("offered", task, agent)
        if self.options.auto_accept:
            self._accept(task)
        elif reservation.expires_at is not None:
            self.set_timer(reservation.expires_at, "reservation_timeout", [task.id, reservation.id])

    def _reservation_timed_out(self, payload: list[Any]) -> None:
        task_id, reservation_id = payload
        task = self.state.tasks.get(task_id)
        if task is None or task.reservation is None:
            return
        if task.reservation.id == reservation_id and task.reservation.state == "pending":
            self._return_to_queue(task, "timed_out")
