"""The contact's flow around routing: offer policy, wrap-up and callbacks, for one engine.

This wires the three into the engine's parts: the task lifecycle asks the offer policy
for each offer's terms and reports missed offers to it; the roster ends an agent's
wrap-ups at logout; the engine's events `end_wrap_up` and `convert_to_callback` are
checked and applied here (docs/offer-policy.md, docs/wrap-up.md, docs/callbacks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from . import events
from .callbacks import Callbacks
from .clock import Clock
from .contexts import Contexts
from .lifecycle import Notify, TaskLifecycle
from .offer_policy import NOT_READY, OfferPolicies
from .options import EngineOptions
from .roster import AgentRoster
from .spec import Deployment
from .state import Agent, EngineState, Task
from .undo import UndoLog
from .wrap_up import WrapUps

Change = Callable[[], None]


class Flow:
    """Offer policy, wrap-ups and callbacks of one engine."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        contexts: Contexts,
        options: EngineOptions,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self._undo = undo
        self._clock = clock
        self._contexts = contexts
        self.offers = OfferPolicies(deployment, options, contexts)

    def attach(
        self,
        lifecycle: TaskLifecycle,
        roster: AgentRoster,
        notify: Notify,
        forget: Callable[[str], None],
    ) -> None:
        """Wire into the engine's lifecycle and roster; `forget(task_id)` drops what the
        selection remembers of a task."""
        self._tasks = lifecycle
        self._roster = roster
        state, undo = self._state, self._undo
        self.wrap_ups = WrapUps(self.deployment, state, undo, self._clock, lifecycle, notify)

        def forget_task(task: Task) -> None:
            forget(task.id)
            self._contexts.forget_task()

        self.callbacks = Callbacks(self.deployment, state, undo, lifecycle, notify, forget_task)
        lifecycle.offer_terms = self.offers.terms
        lifecycle.on_missed_offer = self._missed
        roster.on_logout = self.wrap_ups.logged_out

    def _missed(self, task: Task, agent: Agent) -> None:
        """A missed offer of `task`: the agent becomes not ready if the policy says so."""
        action, where = self.offers.on_timeout(task)
        if action == NOT_READY and agent.status == "ready":
            self._tasks.log(task, f"{agent.id} made not ready by the missed offer ({where})")
            self._roster.setting_status(agent.id, NOT_READY)()

    def ending(self, task: Task, end: Callable[[Task], None]) -> Change:
        """`end(task)` (complete, or cancel) as an event, with the wrap-up the task leaves
        its agent when it was assigned: the wrap-up takes the agent's capacity before the
        task releases it."""

        return partial(self._end, task, end)

    def _end(self, task: Task, end: Callable[[Task], None]) -> None:
        agent = self._state.agents.get(task.agent or "") if task.state == "assigned" else None
        if agent is not None:
            self.wrap_ups.begin(task)
        end(task)
        if agent is not None:
            self.wrap_ups.started(task, agent)

    def end_wrap_up(self, agent_id: str, task_id: str | None) -> Change:
        return self.wrap_ups.ending(agent_id, task_id)

    def convert_to_callback(self, task_id: str, channel: str, queue: str | None) -> Change:
        return self.callbacks.converting(task_id, channel, queue)

    def change(self, event: events.EndWrapUp | events.ConvertToCallback) -> Change:
        """What one of this module's events does, once checked (EventError otherwise)."""
        if isinstance(event, events.EndWrapUp):
            return self.end_wrap_up(event.agent, event.task)
        return self.convert_to_callback(event.task, event.channel, event.queue)
