"""Transfers straight to an agent, bypassing routing (Pega's agent-to-agent transfer).

The request goes to the named agent only when it is ready, has room on the task's
channel and passes every plugin's filters for the task (a required spare, a
`max_concurrent`, ...); otherwise the transfer is refused with the reason and nothing
changes. An assigned task stays with its sender until the recipient accepts ("the
conversation is transferred only when the recipient CSR accepts the request"): the
recipient holds a pending reservation meanwhile, and on decline, timeout or the
recipient's loss of availability the task stays with the sender. A task no agent has
accepted yet (queued, or offered) is offered to the agent at once instead; if the agent
does not take it, it goes back to its queue, keeping its queue time.
"""

from __future__ import annotations

from collections.abc import Callable

from .clock import Clock
from .decisions import Candidate, Decision
from .errors import EventError
from .lifecycle import Notify, TaskLifecycle
from .pipeline import Pipeline
from .plugin_calls import blame
from .state import Agent, EngineState, Task
from .undo import UndoLog


class AgentTransfers:
    """Transfers to an agent, and the answers to them, for one engine."""

    def __init__(
        self,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        lifecycle: TaskLifecycle,
        pipeline: Pipeline,
        notify: Notify,
    ) -> None:
        self._state = state
        self._undo = undo
        self._clock = clock
        self._tasks = lifecycle
        self._pipeline = pipeline
        self._notify = notify
        lifecycle.on_transfer_timed_out = self.timeout

    def refusal(self, task: Task, agent: Agent) -> str | None:
        """Why the task may not be transferred to the agent now; None when it may."""
        if agent.id == task.agent:
            return "it is already with the agent"
        if task.transfer is not None:
            return f"its transfer to {task.transfer.agent!r} is still pending"
        if agent.status != "ready":
            return f"the agent is {agent.status}, not ready"
        filters = self._pipeline.filters
        for position, (plugin, item) in enumerate(filters):
            # The core's room check applies (it counts wrap-ups and says so); its queue
            # and target filters are routing's own.
            if plugin is None and item.name != "capacity":
                continue
            try:
                if not item.test(task, agent):
                    reason = item.reason(task, agent)
                    return reason if plugin is None else f"{plugin}.{item.name}: {reason}"
            except Exception as error:
                blame(filters, position, "filter", error)
        return None

    def transferring(self, task: Task, agent: Agent) -> Callable[[], None]:
        """The transfer to run as a transaction, once it is known to be allowed."""
        refusal = self.refusal(task, agent)
        if refusal is not None:
            raise EventError(
                f"transfer of {task.id!r} to {agent.id!r} refused: {refusal}; the task stays "
                "where it was"
            )
        return lambda: self.request(task, agent)

    def request(self, task: Task, agent: Agent) -> None:
        tasks = self._tasks
        decision = Decision(
            task=task.id,
            at=self._clock.now,
            queue=task.queue,
            target="transfer to agent",
            candidates=(Candidate(agent.id, None, None, ()),),
            winner=agent.id,
            why=f"transferred directly to {agent.id}, bypassing routing",
        )
        self._undo.keep(task)
        task.transferred = True
        if task.state != "assigned":
            previous = tasks.release_agent(task)
            tasks.waiting.remove(task)
            tasks.log(task, f"transferred to agent {agent.id}")
            self._notify("transferred", task, previous)
            tasks.reserve(task, agent, decision)
            return
        terms = tasks.offer_terms(task, agent)
        reservation = task.transfer = tasks.open_reservation(task, agent, decision, terms)
        tasks.log(task, f"transfer to {agent.id} requested by {task.agent}")
        tasks.offer_made(task, agent, reservation, terms, self.accept)

    # --- answers: to a transfer, or else to an ordinary offer ---------------------------

    def accept(self, task: Task) -> None:
        reservation = task.transfer
        if reservation is None:
            self._tasks.accept(task)
            return
        recipient = self._state.agents[reservation.agent]
        self._undo.keep(task)
        task.transfer = None
        sender = self._tasks.release_agent(task)
        task.agent = recipient.id
        task.reservation = reservation
        task.offered_at = reservation.created_at
        self._tasks.log(task, f"transferred from {sender.id if sender else None} to {recipient.id}")
        self._notify("transferred", task, sender)
        self._tasks.accept(task)

    def decline(self, task: Task) -> None:
        if task.transfer is None:
            self._tasks.return_to_queue(task, "declined")
        else:
            self.end(task, "declined")

    def timeout(self, task: Task) -> None:
        """A missed offer: the recipient of a transfer is treated as any agent who missed
        one (the offer policy's `on_timeout`), and the task stays with its sender."""
        if task.transfer is None:
            self._tasks.missed(task)
            return
        recipient = self._state.agents[task.transfer.agent]
        self.end(task, "timed_out")
        self._tasks.on_missed_offer(task, recipient)

    def end(self, task: Task, why: str) -> None:
        """The recipient did not take it: the task stays with its sender."""
        recipient = self._tasks.drop_transfer(task, why)
        if recipient is not None:
            self._tasks.log(task, f"transfer to {recipient.id} {why}; it stays with {task.agent}")
            self._notify(why, task, recipient)
