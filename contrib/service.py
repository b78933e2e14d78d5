"""One deployment served live: its engine, the single writer in front of it, the journal.

A `Runner` owns one engine. Commands queue to its writer (one asyncio task); the writer
takes whatever has queued, applies each command, writes the batch (journal records,
events, tasks) in one durable commit, and only then answers the callers and publishes
the events. Under load many commands share a commit; alone, a command commits alone.

Time and replay. The engine's clock is seconds since the deployment's `start` (the wall
clock at its first start, kept in the store). Before each command the writer moves the
clock to the wall time. If that fires timers (a reservation timing out, a workflow
target's timeout), the move is journaled as a record of its own (`advance`); if it fires
nothing, it changes nothing but the clock, and is not journaled: the next record moves
the clock itself. Timers are also woken on the loop at their wall-clock times, as an
`advance` record. Each command is journaled with the time it was applied at, so a replay
(`AdvanceClock(at)`, then the event) goes through exactly the states the live engine went
through; a command that failed changed nothing and is not journaled. After a restart the
writer's first move of the clock fires, in order, the timers that fell due while down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from omniroute.core import Engine, EngineOptions, EventError, PluginError, events, load_deployment
from omniroute.core.errors import DeploymentError
from omniroute.core.events import Event, Outcome
from omniroute.core.state import Agent, Reservation, Task

from .explain import explain_json
from .storage import Batch, Store, StoreUnavailable

log = logging.getLogger("omniroute.serve")

#: commands taken into one commit at most
MAX_BATCH = 512
SERVICE_LEVEL_SECONDS = 20.0


class ServiceError(Exception):
    """A problem to answer with (RFC 9457): the command changed nothing."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers


def not_found(detail: str) -> ServiceError:
    return ServiceError(404, "Not Found", detail)


def conflict(detail: str) -> ServiceError:
    return ServiceError(409, "Conflict", detail)


@attrs.define
class Reply:
    status: int
    body: Any
    #: the journal record that made the command durable (None: it changed nothing)
    seq: int | None = None


#: what a command does, run by the writer at its turn: the events to apply (in order, each
#: journaled), or a reply straight away; then the reply from the state after the events
Plan = tuple[list[Event], Callable[[], Reply]] | Reply


@attrs.define(eq=False)
class Command:
    plan: Callable[[], Plan]
    command_id: str
    future: asyncio.Future[Reply] | None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@attrs.define
class Metrics:
    """What the runner tells Prometheus (set by the app; None in tests without one)."""

    routing_seconds: Any = None
    commit_seconds: Any = None
    batch_size: Any = None
    commands: Any = None


class Runner:
    """One deployment: its engine, its writer task, its subscribers."""

    def __init__(
        self,
        name: str,
        document: dict[str, Any],
        store: Store,
        *,
        reservation_timeout: float | None,
        snapshot_every: int = 10_000,
        record_decisions: bool = True,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._quoted_name = json.dumps(name)
        self.file_document = document
        self.store = store
        self.reservation_timeout = reservation_timeout
        self.snapshot_every = snapshot_every
        #: decision records for explain; they change no decision, only what is kept, so
        #: a restart may switch them without changing the replay
        self.record_decisions = record_decisions
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.queue: asyncio.Queue[Command] = asyncio.Queue()
        self.ready = False
        #: whether this instance writes the deployment (always, without a cluster); a
        #: non-owner follows the journal for reads and events
        self.owner = True
        #: the lease epoch every write carries (None: no lease, as on SQLite)
        self.epoch: int | None = None
        self._following = asyncio.Lock()
        self.failed: str | None = None
        self.subscribers: set[asyncio.Queue[tuple[int, str] | None]] = set()
        self.version = 1
        self.document = document
        self.seq = 0
        self.event_id = 0
        self.snapshot_seq = 0
        self.engine: Engine
        self.start: datetime
        #: reservations of open tasks, by id (answers name them)
        self.reservations: dict[str, Reservation] = {}
        #: per open task: what it was after the last event (events out are the differences)
        self._seen: dict[str, tuple[str, Reservation | None, str | None]] = {}
        self._closed: list[Task] = []
        #: per (UTC day, queue): created, answered, answered in time, abandoned
        self.stats: dict[str, dict[str, list[int]]] = {}
        self._batch = Batch(name)
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        #: while restoring: what a record derives is in the store already, so only the
        #: bookkeeping is redone (no JSON, no rows)
        self._replaying = False
        #: called after each commit that wrote events (webhook delivery wakes on it)
        self.on_commit: list[Callable[[], None]] = []

    # --- starting ----------------------------------------------------------------------

    def restore(self, *, create: bool = True) -> bool:
        """Rebuild the engine from the store: the latest snapshot, then the journal after
        it (or all of it). Blocking: run it in a thread before the writer starts. False
        when the deployment is not in the store yet and `create` is off (a non-owner
        waits for its owner to create it)."""
        began = time.perf_counter()
        store = self.store
        start_text = store.meta(self.name, "start")
        options_text = store.meta(self.name, "options")
        if start_text is None and not create:
            return False
        if start_text is None:
            # A new deployment: its clock starts now.
            self.start = self.clock().replace(microsecond=0)
            initial = self.file_document
            options = {"reservation_timeout": self.reservation_timeout}
            store.write(
                Batch(
                    self.name,
                    meta={
                        "start": self.start.isoformat(),
                        "options": json.dumps(options),
                        "initial_deployment": json.dumps(initial),
                        "deployment": json.dumps(initial),
                        "version": "1",
                    },
                    epoch=self.epoch,
                )
            )
        else:
            self.start = datetime.fromisoformat(start_text)
            options = json.loads(options_text or "{}")
            initial = json.loads(store.meta(self.name, "initial_deployment") or "{}")
        snapshot = store.snapshot(self.name) if _snapshots_supported() else None
        replayed = 0
        if snapshot is not None:
            service = snapshot.data["service"]
            self.document = service["deployment"]
            self.version = service["version"]
            self.stats = service["stats"]
            options = service["options"]
            self.engine = self._restored_engine(snapshot.data["engine"], self._options(options))
            self.seq = self.snapshot_seq = snapshot.seq
        else:
            self.document = initial
            self.engine = Engine(
                load_deployment(initial, name=self.name),
                start=self.start,
                options=self._options(options),
            )
        self.engine.on_close = self._closed.append
        self._rebuild_seen()
        self._replaying = True
        for seq, at, record in store.journal(self.name, self.seq):
            self._replay(at, record)
            self.seq = seq
            replayed += 1
            self._batch = Batch(self.name)
        self._replaying = False
        self.event_id = store.last_event_id(self.name)
        self.version = int(store.meta(self.name, "version") or self.version)
        stored = json.loads(store.meta(self.name, "deployment") or "null")
        if stored is not None:
            self.document = stored
        if self.file_document != self.document:
            log.warning(
                "the file of deployment %s differs from the version in force (%d, kept in "
                "the store): the store's is served; apply the file with PUT",
                self.name,
                self.version,
            )
        log.info(
            "restored deployment %s: snapshot at %d, %d journal records replayed in %.3f s",
            self.name,
            snapshot.seq if snapshot is not None else 0,
            replayed,
            time.perf_counter() - began,
            extra={"deployment": self.name, "replayed": replayed},
        )
        return True

    async def follow(self) -> int:
        """A non-owner's replica: apply the journal records written since the last call,
        as a restore does, and pass the events they wrote on to subscribers. The records
        are read in a thread and applied on the loop (reads use the engine there). The
        number of records applied."""
        async with self._following:  # one catch-up at a time, or records apply twice
            return await self._follow()

    async def _follow(self) -> int:
        records = await asyncio.to_thread(lambda: list(self.store.journal(self.name, self.seq)))
        records = [record for record in records if record[0] > self.seq]
        if records:
            self._replaying = True
            try:
                for seq, at, record in records:
                    self._replay(at, record)
                    self.seq = seq
            finally:
                self._replaying = False
                self._batch = Batch(self.name)
            meta = self.store.meta
            version, document = await asyncio.to_thread(
                lambda: (meta(self.name, "version"), meta(self.name, "deployment"))
            )
            self.version = int(version or self.version)
            self.document = json.loads(document) if document else self.document
        rows = await asyncio.to_thread(self.store.events, self.name, self.event_id, 10_000)
        if rows:
            published = Batch(self.name)
            for body in rows:
                event_id = int(json.loads(body)["id"])
                published.events.append((event_id, "", "", body))
                self.event_id = event_id
            self._publish(published)
        return len(records)

    async def abandon(self, why: str) -> None:
        """Stop writing at once (the lease is lost, or a write failed so that the engine
        may be ahead of the store): queued commands are answered 503, not journaled."""
        if self.failed is None:
            self.failed = why
        self._stopping = True
        if self._writer is not None and not self._writer.done():
            self.queue.put_nowait(Command(lambda: Reply(200, None), "stop", None))
            with contextlib.suppress(Exception):
                await self._writer
        while not self.queue.empty():
            command = self.queue.get_nowait()
            if command.future is not None and not command.future.done():
                command.future.set_exception(ServiceError(503, "Service Unavailable", why))

    def _restored_engine(self, data: dict[str, Any], options: EngineOptions) -> Engine:
        """`Engine.restore` of a snapshot, with this deployment's options."""
        deployment = load_deployment(self.document, name=self.name)
        return Engine.restore(deployment, data, options=options)

    def _options(self, stored: Mapping[str, Any]) -> EngineOptions:
        return EngineOptions(
            auto_accept=False,
            reservation_timeout=stored.get("reservation_timeout"),
            record_decisions=self.record_decisions,
            keep_closed_tasks=False,
        )

    def _rebuild_seen(self) -> None:
        self._seen.clear()
        self.reservations.clear()
        for task in self.engine.state.tasks.values():
            self._remember(task)

    def _replay(self, at: float, record: dict[str, Any]) -> None:
        """Apply one journal record as the writer applied it live (its derived rows are
        in the store already and are dropped)."""
        kind = record.get("type")
        if kind == "service.options":
            self.engine.options = self._options(record)
            return
        if kind == "service.deployment":
            self.version = record["version"]
            self.document = record["deployment"]
            return
        try:
            self._apply(events.AdvanceClock(to=at), at)
        except (EventError, PluginError):
            if kind != "advance":
                raise
            # A timer that failed live fails again here, and is dropped the same way.
        if kind != "advance":
            self._apply(events.from_json(record), at)

    async def run(self) -> None:
        """Start the writer (after `restore`)."""
        if self.reservation_timeout != self.engine.options.reservation_timeout:
            # Changed on the command line: journaled, so a replay switches at this point.
            self._journal(
                self._now(),
                {"type": "service.options", "reservation_timeout": self.reservation_timeout},
                None,
            )
            self.engine.options = self._options({"reservation_timeout": self.reservation_timeout})
            await asyncio.to_thread(self.store.write, self._take_batch())
        self.ready = True
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer {self.name}")

    # --- the writer --------------------------------------------------------------------

    async def submit(self, plan: Callable[[], Plan], command_id: str | None = None) -> Reply:
        """Queue a command; its reply once it is durable (or its problem)."""
        if self.failed is not None:
            raise ServiceError(503, "Service Unavailable", self.failed)
        if not self.ready or self._stopping:
            raise ServiceError(503, "Service Unavailable", f"deployment {self.name!r} is not ready")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Command(plan, command_id or uuid.uuid4().hex, future))
        return await future

    async def _write_loop(self) -> None:
        """Take what has queued and apply it while the previous batch commits; once that
        commit is done, take what queued meanwhile into this batch too, and commit it.
        Commits go one after another, in order, and a command is answered only once its
        own batch is on disk."""
        previous: asyncio.Task[None] | None = None
        while True:
            try:
                first = await asyncio.wait_for(self.queue.get(), self._until_next_timer())
            except TimeoutError:
                first = None
            replies: list[tuple[Command, Reply | ServiceError]] = []
            stop = self._apply_queued(first, replies)
            if first is None:
                self._tick()
            if previous is not None:
                await previous
                if not stop:
                    stop = self._apply_queued(None, replies)
            if self.failed is not None:
                self._fail(replies)
                return
            batch = self._take_batch()
            snapshot = None
            if self.seq - self.snapshot_seq >= self.snapshot_every:
                # Taken at this batch's end, written once the batch is committed.
                snapshot = self._snapshot_body()
                self.snapshot_seq = self.seq
            previous = asyncio.create_task(self._commit(batch, replies, snapshot))
            if stop:
                await previous
                return

    def _apply_queued(
        self, first: Command | None, replies: list[tuple[Command, Reply | ServiceError]]
    ) -> bool:
        """Apply `first` and whatever else has queued (up to MAX_BATCH in all); True when
        `stop` asked to end after them."""
        began = time.perf_counter()
        count = 0
        command = first
        while True:
            if command is not None:
                if command.future is None:
                    return True
                replies.append((command, self._execute(command)))
                count += 1
            if len(replies) >= MAX_BATCH or self.queue.empty():
                break
            command = self.queue.get_nowait()
        if self.metrics.routing_seconds is not None and count:
            self.metrics.routing_seconds.observe((time.perf_counter() - began) / count)
        return False

    async def _commit(
        self,
        batch: Batch,
        replies: list[tuple[Command, Reply | ServiceError]],
        snapshot: tuple[int, str] | None,
    ) -> None:
        if batch:
            began = time.perf_counter()
            try:
                await asyncio.to_thread(self.store.write, batch)
            except Exception as error:
                # The engine is ahead of the store: stop taking commands; a restart
                # recovers exactly what was committed (in a cluster, the instance steps
                # down and restores from the store by itself).
                self.failed = f"the journal could not be written ({type(error).__name__}); restart the service"
                if type(error).__name__ == "Fenced":
                    self.failed = f"this instance lost the lease of {self.name!r} (fenced)"
                    log.warning("write refused for %s: %s", self.name, error)
                else:
                    log.exception("journal write failed for %s", self.name)
                self._fail(replies)
                return
            if self.metrics.commit_seconds is not None:
                self.metrics.commit_seconds.observe(time.perf_counter() - began)
                self.metrics.batch_size.observe(len(replies))
            self._publish(batch)
        for item, reply in replies:
            if item.future is not None and not item.future.done():
                if isinstance(reply, ServiceError):
                    item.future.set_exception(reply)
                else:
                    item.future.set_result(reply)
        if snapshot is not None:
            began = time.perf_counter()
            try:
                await asyncio.to_thread(self.store.save_snapshot, self.name, *snapshot, self.epoch)
            except Exception:
                log.exception("snapshot of %s failed (the journal has everything)", self.name)
            else:
                log.info(
                    "snapshot of %s at %d in %.3f s",
                    self.name,
                    snapshot[0],
                    time.perf_counter() - began,
                )

    def _fail(self, replies: list[tuple[Command, Reply | ServiceError]]) -> None:
        for item, _ in replies:
            if item.future is not None and not item.future.done():
                item.future.set_exception(
                    ServiceError(503, "Service Unavailable", self.failed or "stopped")
                )

    def _until_next_timer(self) -> float | None:
        due = self.engine.next_timer_at()
        if due is None:
            return None
        wall = self.start + timedelta(seconds=due)
        return max(0.0, (wall - self.clock()).total_seconds())

    def _now(self) -> float:
        seconds = (self.clock() - self.start).total_seconds()
        return max(seconds, self.engine.now)

    def _tick(self) -> float:
        """Move the clock to the wall time. Each due timer's move is journaled (a move
        that fires nothing changes nothing else, and the next record moves the clock)."""
        now = self._now()
        while True:
            # Timer by timer, so that each one's events carry its own time.
            due = self.engine.next_timer_at()
            if due is None or due > now:
                break
            due = max(due, self.engine.now)
            try:
                self._apply(events.AdvanceClock(to=due), due)
            except (EventError, PluginError) as error:
                # The timer is dropped and its changes undone; a replay of this record
                # fails the same way and drops it too.
                log.error("a timer of %s failed at %.3f s: %s", self.name, due, error)
            self._journal(due, {"type": "advance", "to": due}, None)
        self.engine.apply(events.AdvanceClock(to=now))
        return now

    def _execute(self, command: Command) -> Reply | ServiceError:
        try:
            at = self._tick()
        except (EventError, PluginError) as error:
            # A timer failed (a plugin raising): the clock stays where it was.
            log.error("timer failed in %s: %s", self.name, error)
            return ServiceError(500, "Internal Server Error", "a timer failed; see the log")
        try:
            plan = command.plan()
            if isinstance(plan, Reply):
                return plan
            to_apply, reply = plan
            for number, event in enumerate(to_apply):
                self._apply(event, at)
                last = number == len(to_apply) - 1
                self._journal(at, events.to_json(event), command.command_id if last else None)
            result = reply()
            result.seq = self.seq
            if self.metrics.commands is not None:
                self.metrics.commands.labels(deployment=self.name).inc()
            return result
        except ServiceError as error:
            return error
        except StoreUnavailable as error:
            return ServiceError(
                503, "Service Unavailable", str(error), headers={"Retry-After": "1"}
            )
        except EventError as error:
            return conflict(str(error))
        except PluginError as error:
            log.error("plugin failed in %s: %s", self.name, error)
            return ServiceError(500, "Internal Server Error", str(error))
        except Exception:
            log.exception("command failed in %s", self.name)
            return ServiceError(500, "Internal Server Error", "the command failed; see the log")

    def _journal(self, at: float, record: dict[str, Any], command_id: str | None) -> None:
        self.seq += 1
        self._batch.journal.append(
            (self.seq, at, json.dumps(record, separators=(",", ":")), command_id)
        )

    def _take_batch(self) -> Batch:
        batch, self._batch = self._batch, Batch(self.name)
        batch.epoch = self.epoch
        return batch

    # --- applying an event and what it sends out ---------------------------------------

    def _apply(self, event: Event, at: float) -> Outcome:
        before = self._statuses_if_timers_may_change_them(event)
        outcome = self.engine.apply(event)
        self.engine.forget_offers()
        self._derive(event, outcome)
        for agent_id, status in (before or {}).items():
            agent = self.engine.state.agents.get(agent_id)
            if agent is not None and agent.status != status:
                self._emit("agent.status", _dumps(self.agent_view(agent)))
        return outcome

    def _statuses_if_timers_may_change_them(self, event: Event) -> dict[str, str] | None:
        """Each agent's status before the clock moves, when a missed offer may make an
        agent not ready (`offer.on_timeout`): that change comes from no command, and
        subscribers see it as `agent.status` all the same."""
        if not isinstance(event, events.AdvanceClock):
            return None
        deployment = self.engine.deployment
        policies = [queue.offer for queue in deployment.queues.values()]
        policies += [channel.offer for channel in deployment.channel_settings.values()]
        if not any(policy is not None and policy.on_timeout == "not_ready" for policy in policies):
            return None
        return {agent.id: agent.status for agent in self.engine.state.agents.values()}

    def _derive(self, event: Event, outcome: Outcome) -> None:
        """The events out, and the rows to write, for what one engine event changed.

        Each changed task's events carry the task as it stands after the event (steps in
        between, such as a decline followed by a new offer, show as their reservations'
        events)."""
        made: dict[str, list[Reservation]] = {}
        for reservation in outcome.reservations:
            made.setdefault(reservation.task, []).append(reservation)
        closed = {task.id: task for task in self._closed}
        self._closed.clear()
        transfer = event.task if isinstance(event, events.Transfer) else None
        to_agent = event.to_agent if isinstance(event, events.Transfer) else None
        converted = event.task if isinstance(event, events.ConvertToCallback) else None
        for task in outcome.tasks:
            view = "" if self._replaying else _dumps(self.task_view(task))
            before = self._seen.get(task.id)
            previous_state, previous, previous_state_of_reservation = before or (None, None, None)
            if before is None:
                self._emit("task.created", view)
                self._count(task, "created")
            # The reservation watched on an assigned task is a transfer to an agent: its
            # acceptance moves an answered task, it answers nothing again.
            if previous is not None and previous.state != previous_state_of_reservation:
                self._reservation_changed(previous, task, answers=previous_state != "assigned")
            if transfer == task.id:
                self._emit("task.transferred", view)
            if converted == task.id:
                self._emit("task.converted", view)
            for reservation in made.get(task.id, ()):
                text = "" if self._replaying else _dumps(self.reservation_view(reservation))
                self._emit("reservation.created", text)
                self._batch.reservations[reservation.id] = (reservation.state, text)
                if reservation.state != "pending":
                    # an auto-answered transfer of an answered task to an agent
                    moved = (
                        previous_state == "assigned"
                        and transfer == task.id
                        and to_agent is not None
                    )
                    self._reservation_changed(reservation, task, answers=not moved)
                else:
                    self.reservations[reservation.id] = reservation
            if task.state != previous_state:
                if task.state == "queued" and transfer != task.id:
                    self._emit("task.queued", view)
                elif task.state in ("completed", "canceled", "rejected"):
                    self._emit(f"task.{task.state}", view)
                    if task.state == "canceled" and previous_state in ("queued", "reserved", None):
                        self._count(task, "abandoned")
            self._batch.tasks[task.id] = (task.seq, task.state, task.queue, view)
            if task.id in closed:
                self._forget(task)
            else:
                self._remember(task)
        for task in closed.values():
            if task.id in self._seen:  # closed without showing as changed (defensive)
                self._forget(task)
        match event:
            case events.AddAgent() | events.SetAgent() | events.EndWrapUp():
                self._emit("agent.updated", _dumps(self.agent_view(self.engine.agent(event.agent))))
            case events.RemoveAgent():
                self._emit("agent.updated", _dumps({"id": event.agent, "removed": True}))
            case events.SetStatus() | events.Login() | events.Logout():
                self._emit("agent.status", _dumps(self.agent_view(self.engine.agent(event.agent))))
            case _:
                pass

    def _reservation_changed(
        self, reservation: Reservation, task: Task, *, answers: bool = True
    ) -> None:
        text = "" if self._replaying else _dumps(self.reservation_view(reservation))
        self._emit(f"reservation.{reservation.state}", text)
        self._batch.reservations[reservation.id] = (reservation.state, text)
        if reservation.state == "accepted":
            if not answers:
                return
            self._count(task, "answered")
            if reservation.created_at - task.created_at <= self._threshold_of(task.queue):
                self._count(task, "in_time")
        elif reservation.state != "pending":
            self.reservations.pop(reservation.id, None)

    def _threshold_of(self, queue: str | None) -> float:
        """The queue's service-level threshold, else the deployment's, else 20 s."""
        declared = self.engine.deployment.service_level_of(queue)
        return declared.threshold if declared is not None else SERVICE_LEVEL_SECONDS

    def _remember(self, task: Task) -> None:
        # A pending transfer to an agent is the offer to watch while it lasts.
        reservation = task.transfer or task.reservation
        self._seen[task.id] = (
            task.state,
            reservation,
            reservation.state if reservation is not None else None,
        )
        if reservation is not None:
            self.reservations[reservation.id] = reservation

    def _forget(self, task: Task) -> None:
        self._seen.pop(task.id, None)
        for reservation_id in [r for r, res in self.reservations.items() if res.task == task.id]:
            reservation = self.reservations.pop(reservation_id)
            if not self._replaying:
                self._batch.reservations[reservation_id] = (
                    reservation.state,
                    _dumps(self.reservation_view(reservation)),
                )
        if not self._replaying:
            self._batch.explanations[task.id] = _dumps(self.explain(task))
        # The decisions leave memory with the task; the explanation stays in the store.
        self.engine.decisions.pop(task.id, None)
        self.engine.last_attempt.pop(task.id, None)

    def _count(self, task: Task, what: str) -> None:
        day = self.engine.wall_time().date().isoformat()
        queue = task.queue or ""
        today = self.stats.setdefault(day, {})
        if len(self.stats) > 2:
            for old in sorted(self.stats)[:-2]:
                del self.stats[old]
        counts = today.setdefault(queue, [0, 0, 0, 0])
        counts[("created", "answered", "in_time", "abandoned").index(what)] += 1

    def _emit(self, kind: str, data: str) -> None:
        """An event out; `data` is JSON text (a view serialized once for all its uses)."""
        if self._replaying:
            return
        self.event_id += 1
        at = iso(self.engine.wall_time())
        body = (
            f'{{"id":{self.event_id},"type":"{kind}","at":"{at}",'
            f'"deployment":{self._quoted_name},"data":{data}}}'
        )
        self._batch.events.append((self.event_id, kind, at, body))

    def _publish(self, batch: Batch) -> None:
        if not batch.events:
            return
        for wake in self.on_commit:
            wake()
        for subscriber in list(self.subscribers):
            for event_id, _, _, body in batch.events:
                subscriber.put_nowait((event_id, body))

    # --- views -------------------------------------------------------------------------

    def time(self, seconds: float | None) -> str | None:
        return None if seconds is None else iso(self.start + timedelta(seconds=seconds))

    def reservation_view(self, reservation: Reservation) -> dict[str, Any]:
        return {
            "id": reservation.id,
            "task": reservation.task,
            "agent": reservation.agent,
            "created_at": self.time(reservation.created_at),
            "expires_at": self.time(reservation.expires_at),
            "state": reservation.state,
            "queue": reservation.queue,
        }

    def task_view(self, task: Task) -> dict[str, Any]:
        reservation = task.reservation
        if reservation is not None and reservation.state not in ("pending", "accepted"):
            reservation = None
        return {
            "id": task.id,
            "channel": task.channel,
            "state": task.state,
            "reason": task.reason,
            "message": task.message,
            "queue": task.queue,
            "agent": task.agent,
            "reservation": self.reservation_view(reservation) if reservation else None,
            # a pending transfer to another agent; the task stays with `agent` till accepted
            "transfer": self.reservation_view(task.transfer) if task.transfer else None,
            "priority": task.priority,
            "attributes": task.attributes,
            "created_at": self.time(task.created_at),
            "requested_queue": task.requested_queue,
            "profile": task.profile,
        }

    def agent_view(self, agent: Agent) -> dict[str, Any]:
        channels = sorted(set(agent.capacity) | set(agent.held) | set(agent.wrap_up))
        return {
            "id": agent.id,
            "status": agent.status,
            "channels": {
                channel: {
                    "capacity": agent.capacity.get(channel, 0),
                    "held": agent.held_count(channel),
                    "wrap_up": len(agent.wrap_up.get(channel, ())),
                }
                for channel in channels
            },
            "attributes": agent.attributes,
            "groups": list(agent.groups),
        }

    def explain(self, task: Task) -> dict[str, Any]:
        return explain_json(self.engine, task)

    def queues_view(self) -> list[dict[str, Any]]:
        engine = self.engine
        now = engine.now
        waiting: dict[str, list[Task]] = {}
        for task_id in engine.state.waiting:
            task = engine.state.tasks[task_id]
            waiting.setdefault(task.queue or "", []).append(task)
        day = engine.wall_time().date().isoformat()
        today = self.stats.get(day, {})
        channels = list(engine.deployment.channels) or sorted(
            {channel for agent in engine.agents for channel in agent.capacity}
        )
        result = []
        for name in engine.deployment.queues:
            tasks = waiting.get(name, [])
            created, answered, in_time, abandoned = today.get(name, [0, 0, 0, 0])
            handled = answered + abandoned
            result.append(
                {
                    "name": name,
                    "waiting": len(tasks),
                    "longest_wait": max((now - task.queued_at for task in tasks), default=0.0),
                    "agents": {channel: engine.queue_counts(name, channel) for channel in channels},
                    "created": created,
                    "answered": answered,
                    "abandoned": abandoned,
                    "service_level": in_time / handled if handled else None,
                    "service_level_threshold": self._threshold_of(name),
                    "service_level_target": (
                        declared.target
                        if (declared := engine.deployment.service_level_of(name)) is not None
                        else None
                    ),
                }
            )
        return result

    # --- snapshots and stopping --------------------------------------------------------

    def _snapshot_body(self) -> tuple[int, str] | None:
        """The engine's saved state and the service's own, as JSON text, at this moment
        (None when the engine cannot save: restarts then replay the whole journal)."""
        if not _snapshots_supported():
            return None
        data = {
            "engine": self.engine.save(),
            "service": {
                "deployment": self.document,
                "version": self.version,
                "stats": self.stats,
                "options": {"reservation_timeout": self.engine.options.reservation_timeout},
            },
        }
        return self.seq, json.dumps(data, separators=(",", ":"))

    async def stop(self) -> None:
        """Finish the queued commands, then snapshot."""
        self._stopping = True
        if self._writer is not None and not self._writer.done():
            self.queue.put_nowait(Command(lambda: Reply(200, None), "stop", None))
            with contextlib.suppress(Exception):
                await self._writer
        if self.failed is None and self.ready and self.seq > self.snapshot_seq:
            snapshot = self._snapshot_body()
            if snapshot is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        self.store.save_snapshot, self.name, *snapshot, self.epoch
                    )
        for subscriber in list(self.subscribers):
            subscriber.put_nowait(None)


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _snapshots_supported() -> bool:
    return hasattr(Engine, "save") and hasattr(Engine, "restore")


def validate_document(document: Any, name: str) -> None:
    """Raise a 422 problem listing every problem of a deployment document."""
    if not isinstance(document, dict):
        raise ServiceError(
            422,
            "Unprocessable Content",
            "a deployment is a JSON object",
            [{"path": "", "message": "expected an object"}],
        )
    try:
        load_deployment(document, name=name)
    except DeploymentError as error:
        raise ServiceError(
            422,
            "Unprocessable Content",
            str(error).splitlines()[0],
            [{"path": p.path, "message": p.message} for p in error.problems],
        ) from error
