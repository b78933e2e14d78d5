"""The lifecycle of tasks and reservations: queued, reserved, assigned, closed.

Every change of a task's state, of an agent's hold on it, and of its reservation goes
through here, recorded in the undo log before it is made. This also keeps what a task's
life leaves behind: its history, the reservations made (`EngineState.offers`), the
decision behind each offer, and the tasks an event changed and closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .clock import Clock
from .decisions import Decision
from .errors import EventError
from .offer_policy import OfferTerms, default_terms
from .options import EngineOptions
from .state import Agent, EngineState, Reservation, Task
from .undo import UndoLog
from .waiting import WaitingTasks

Notify = Callable[[str, Task | None, Agent | None], None]


class TaskLifecycle:
    """Moves tasks and reservations between states, for one engine."""

    def __init__(
        self,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        waiting: WaitingTasks,
        options: EngineOptions,
        notify: Notify,
    ) -> None:
        self.state = state
        self._undo = undo
        self._clock = clock
        self.waiting = waiting
        self.options = options
        self._notify = notify
        #: what the workflow does with a task back in its queue after its target expired
        self.on_target_expired: Callable[[Task], None] = lambda task: None
        #: the terms of an offer, and what a missed offer does to its agent (offer_policy.py)
        self.offer_terms: Callable[[Task, Agent], OfferTerms] = lambda task, agent: default_terms(
            options
        )
        self.on_missed_offer: Callable[[Task, Agent], None] = lambda task, agent: None
        #: what ends a pending transfer to an agent whose reservation timed out
        self.on_transfer_timed_out: Callable[[Task], None] = lambda task: None
        #: the decision behind each offer, per task, and each task's last failed attempt
        self.decisions: dict[str, list[Decision]] = {}
        self.last_attempt: dict[str, Decision] = {}
        #: the tasks the event under way changed, collected only while `Engine.apply`
        #: asks (None: nobody does, and a long run keeps none); those it closed
        self.changed: dict[str, Task] | None = None
        self.closed: list[Task] = []
        clock.on_timer(None, "reservation_timeout", self._reservation_timed_out)
        clock.on_timer(None, "release_hold", self._release_if_held)

    # --- reservations ------------------------------------------------------------------

    def reservation(self, reservation_id: str) -> Reservation:
        """A reservation by its id (`r<n>`: the n-th made)."""
        state = self.state
        number = reservation_id[1:] if reservation_id.startswith("r") else ""
        if number.isdigit() and 0 < int(number) <= state.forgotten_offers + len(state.offers):
            if int(number) <= state.forgotten_offers:
                raise EventError(f"reservation {reservation_id!r} is no longer kept")
            return state.offers[int(number) - 1 - state.forgotten_offers]
        raise EventError(f"unknown reservation {reservation_id!r}")

    def answered(
        self,
        task_in: Callable[[str, tuple[str, ...], str], Task],
        task_id: str | None,
        agent_id: str | None,
        reservation_id: str | None,
        action: str,
    ) -> Task:
        """The reserved task an answer is for, once the answer is known to be current:
        by its reservation, or by the task (and the agent it must be reserved for)."""
        if reservation_id is None:
            if task_id is None:
                raise EventError(f"{action}: name the task or the reservation")
            found = self.state.tasks.get(task_id)
            if found is not None and found.transfer is not None:
                task = found
            else:
                task = task_in(task_id, ("reserved",), action)
            # An assigned task answers for its pending transfer to another agent.
            offer = task.transfer or task.reservation
            pending = offer.id if offer is not None else None
            recipient = task.transfer.agent if task.transfer is not None else task.agent
            if agent_id is not None and agent_id != recipient:
                raise EventError(
                    f"cannot {action} task {task_id!r} as {agent_id!r}: its pending reservation "
                    f"{pending!r} is for {recipient!r}"
                )
            return task
        reservation = self.reservation(reservation_id)
        given = ((task_id, "task", reservation.task), (agent_id, "agent", reservation.agent))
        for named, kind, actual in given:
            if named is not None and named != actual:
                raise EventError(
                    f"cannot {action} reservation {reservation_id!r}: it is for {kind} "
                    f"{actual!r}, not {named!r}"
                )
        if reservation.state != "pending":
            raise EventError(
                f"cannot {action} reservation {reservation_id!r} (task {reservation.task!r}, "
                f"agent {reservation.agent!r}): it is {reservation.state}, not pending"
            )
        return self.state.tasks[reservation.task]

    def forget_offers(self) -> list[Reservation]:
        offers = self.state.offers
        taken = list(offers)
        self.state.forgotten_offers += len(offers)
        offers.clear()
        return taken

    def reserve(self, task: Task, agent: Agent, decision: Decision | None) -> None:
        now = self.state.now
        self._undo.keep(task)
        self._undo.keep(agent)
        task.state = "reserved"
        task.agent = agent.id
        task.offered_at = now
        self.waiting.remove(task)
        terms = self.offer_terms(task, agent)
        reservation = task.reservation = self.open_reservation(task, agent, decision, terms)
        self.log(task, f"offered to {agent.id}")
        self.offer_made(task, agent, reservation, terms, self.accept)

    def offer_made(
        self,
        task: Task,
        agent: Agent,
        reservation: Reservation,
        terms: OfferTerms,
        accept: Callable[[Task], None],
    ) -> None:
        """Tell of the offer, then answer it at once or start its timeout, as its terms say
        (an offer of routing, or a transfer to an agent)."""
        if terms.why is not None:
            self.log(task, terms.why)
        self._notify("offered", task, agent)
        if terms.auto:
            accept(task)
        elif reservation.expires_at is not None:
            self._clock.set_timer(
                reservation.expires_at, "reservation_timeout", [task.id, reservation.id]
            )

    def open_reservation(
        self, task: Task, agent: Agent, decision: Decision | None, terms: OfferTerms
    ) -> Reservation:
        """A new pending reservation of the task for the agent, which holds it from now
        on: made, listed in `offers`, and its decision recorded."""
        now = self.state.now
        self._undo.keep(agent)
        agent.held.setdefault(task.channel, set()).add(task.id)
        agent.last_offer_at = now
        agent.touch()
        options = self.options
        timeout = terms.timeout
        reservation = Reservation(
            f"r{self.state.forgotten_offers + len(self.state.offers) + 1}",
            task.id,
            agent.id,
            now,
            now + timeout if timeout is not None else None,
            task.queue,
        )
        self._undo.created(reservation)  # undone, the offers are cut back to before it
        self.state.offers.append(reservation)
        if options.record_decisions:
            if task.id not in self.decisions:
                self._undo.added(self.decisions, task.id)
            assert decision is not None  # the engine records a decision for every offer
            records = self.decisions.setdefault(task.id, [])
            self._undo.push(records.pop)
            records.append(decision)
            self.record_attempt(task.id, None)
        return reservation

    def record_attempt(self, task_id: str, decision: Decision | None) -> None:
        """Keep (None: drop) the task's last unsuccessful attempt, recorded for the undo log."""
        attempts = self.last_attempt
        if task_id in attempts:
            self._undo.removed(attempts, task_id)
        elif decision is not None:
            self._undo.added(attempts, task_id)
        if decision is None:
            attempts.pop(task_id, None)
        else:
            attempts[task_id] = decision

    def _reservation_timed_out(self, payload: list[Any]) -> None:
        task_id, reservation_id = payload
        task = self.state.tasks.get(task_id)
        if task is None or task.reservation is None:
            return
        if task.reservation.id == reservation_id and task.reservation.state == "pending":
            self.missed(task)
        elif task.transfer is not None and task.transfer.id == reservation_id:
            self.on_transfer_timed_out(task)

    # --- task states -------------------------------------------------------------------

    def log(self, task: Task, what: str) -> None:
        if self._undo.active:
            self._undo.keep(task)
        if self.changed is not None:
            self.changed[task.id] = task
        task.history.append((self.state.now, what))

    def queue(self, task: Task) -> None:
        """The task waits in `task.queue` (newly, or again, or in another target)."""
        self._undo.keep(task)
        task.state = "queued"
        task.agent = None
        self.waiting.add(task)

    def close(self, task: Task, state: str, reason: str | None, message: str | None = None) -> None:
        self._undo.keep(task)
        task.state = state
        task.reason = reason
        task.message = message
        task.agent = None
        self.waiting.remove(task)
        self.closed.append(task)
        self.log(task, state + (f" ({reason})" if reason else ""))

    def release_agent(self, task: Task, ending: str = "revoked") -> Agent | None:
        """Free the capacity the task holds on its agent, if any; a pending reservation
        ends as `ending`, and a pending transfer to another agent is revoked."""
        recipient = self.drop_transfer(task, "revoked")
        if recipient is not None:
            self.log(task, f"transfer to {recipient.id} revoked")
            self._notify("timed_out", task, recipient)
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
            agent.free_since = self.state.now
        agent.touch()
        task.agent = None
        return agent

    def drop_transfer(self, task: Task, ending: str) -> Agent | None:
        """End the task's pending transfer to another agent, if any, as `ending`: the
        recipient no longer holds it. The task stays with its agent."""
        reservation = task.transfer
        if reservation is None:
            return None
        recipient = self.state.agents[reservation.agent]
        self._undo.keep(task)
        self._undo.keep(recipient)
        self._undo.keep(reservation)
        reservation.state = ending
        task.transfer = None
        recipient.held.get(task.channel, set()).discard(task.id)
        recipient.touch()
        return recipient

    def revoke_pending(self, agent: Agent, why: str) -> None:
        """The agent lost availability (`why`): it loses every pending reservation. An
        offered task goes back to its queue, keeping its queue time; a task transferred to
        the agent stays with its sender. Plugins see either as a timeout."""
        assigned = {task for ids in agent.assigned.values() for task in ids}
        for task_id in sorted(task for ids in agent.held.values() for task in ids):
            if task_id in assigned:
                continue
            task = self.state.tasks[task_id]
            if task.transfer is not None and task.transfer.agent == agent.id:
                self.drop_transfer(task, "revoked")
                self.log(task, f"transfer to {agent.id} revoked ({why})")
                self._notify("timed_out", task, agent)
            else:
                revoked = f"offer to {agent.id} revoked ({why})"
                self.return_to_queue(task, "timed_out", ending="revoked", logged=revoked)

    def accept(self, task: Task) -> None:
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
        agent.last_accept_at = self.state.now
        agent.touch()
        self.log(task, f"accepted by {agent.id}")
        self._notify("accepted", task, agent)

    def return_to_queue(
        self, task: Task, why: str, ending: str | None = None, logged: str | None = None
    ) -> None:
        """The task goes back to its queue; plugins see `why`, the history `logged` (by
        default `why` and the agent)."""
        agent = self.release_agent(task, ending or why)
        if agent is not None:
            self._undo.keep(task)
            task.declined_by.append(agent.id)
        self.queue(task)
        self.log(task, logged or why + (f" by {agent.id}" if agent else ""))
        self._notify(why, task, agent)
        if task.target_expired and task.state == "queued":
            self.on_target_expired(task)

    def missed(self, task: Task) -> None:
        """The offer went unanswered: the task goes back, its agent as the policy says."""
        agent = self.state.agents[task.agent] if task.agent else None
        self.return_to_queue(task, "timed_out")
        if agent is not None:
            self.on_missed_offer(task, agent)

    def complete(self, task: Task) -> None:
        agent = self.release_agent(task)
        self.close(task, "completed", None)
        self._notify("completed", task, agent)

    def cancel(self, task: Task, reason: str) -> None:
        agent = self.release_agent(task)
        self.close(task, "canceled", reason)
        self._notify("canceled", task, agent)

    def transfer_to_queue(self, task: Task, queue: str) -> None:
        agent = self.release_agent(task)
        self._undo.keep(task)
        task.queue = queue
        task.filter_index = task.target_index = None
        task.target_expired = False
        task.transferred = True
        task.queued_at = self.state.now
        self.queue(task)
        self.log(task, f"transferred to queue {queue}")
        self._notify("transferred", task, agent)
        self._notify("entered_queue", task, None)

    # --- holds and agents --------------------------------------------------------------

    def hold(self, task: Task, until: float | None, reason: str) -> None:
        self._undo.keep(task)
        task.hold_reason = reason
        task.held_until = until
        if until is not None:
            self._clock.set_timer(until, "release_hold", [task.id, until])

    def release(self, task: Task) -> None:
        self._undo.keep(task)
        task.hold_reason = None
        task.held_until = None
        self.waiting.released(task)

    def _release_if_held(self, payload: list[Any]) -> None:
        task_id, until = payload
        task = self.state.tasks.get(task_id)
        if task is not None and task.hold_reason is not None and task.held_until == until:
            self.release(task)

    def set_status(self, agent: Agent, status: str) -> None:
        self._undo.keep(agent)
        agent.status = status
        agent.status_since = self.state.now
        agent.touch()

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        self._undo.keep(agent)
        # replaced, not changed in place: the undo log keeps the old dictionary as it is
        agent.capacity = {**agent.capacity, channel: capacity}
        agent.touch()
