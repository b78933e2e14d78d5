"""Routing that changes with time in a queue: priority that ages, proficiency steps that
widen, and the wait for a preferred or last agent (docs/priority-aging.md,
docs/proficiency-steps.md, docs/preferred-agent.md).

These are the core's own behaviour, contributed through the core plugin: filters, a
preference and event handlers, and timers with named handlers owned by the engine, so
that when a step widens or a wait ends the engine routes again by itself. What a task
has reached (its step, the agent it waits for) is kept in its core plugin state, and the
last agents in the core's engine-wide plugin state: both are recorded for undo and saved.
"""

from __future__ import annotations

from typing import Any

from .components import EventHandler, Filter, Preference
from .context import PluginContext
from .spec import Deployment, Queue
from .state import Agent, Task

#: the key of the core plugin's state (task and engine-wide)
CORE = "core"


def needs_time_dependent_handling(queue: Queue | None) -> bool:
    """Whether who may take a task of the queue, or the order of its tasks, changes with
    time alone: priority aging, proficiency steps or a preferred-agent wait.

    The roster index does not hold such a queue, so its tasks are routed by the
    reference scan (`selection.py`), exactly as the oracle decides; and when any queue
    ages priorities, waiting tasks are ordered afresh on every routing pass."""
    return queue is not None and (
        queue.priority_aging is not None or bool(queue.steps) or queue.preferred_agent is not None
    )


def aged_priority(deployment: Deployment, task: Task, now: float) -> int:
    """The priority that orders the task now (`Deployment.aged_priority`)."""
    return deployment.aged_priority(task, now)


def _mine(task: Task) -> Any:
    """The core's state of the task, read without creating it (None: none yet)."""
    return task.plugin_state.get(CORE)


def stage(task: Task) -> int:
    """A number that changes whenever the task's step or wait changes: a failed routing
    attempt is stale once it moved (`selection.py`)."""
    mine = _mine(task)
    return int(mine.get("stage", 0)) if mine else 0


def decision_notes(deployment: Deployment, task: Task, now: float) -> tuple[str, ...]:
    """What `explain` shows of the task's time-dependent routing at a decision."""
    queue = deployment.queue_of(task)
    if not needs_time_dependent_handling(queue):
        return ()
    assert queue is not None
    notes = []
    aging = queue.priority_aging
    if aging is not None:
        cap = f", cap {aging.cap}" if aging.cap is not None else ""
        notes.append(
            f"priority {aged_priority(deployment, task, now)}: "
            f"{deployment.effective_priority(task)} raised by {aging.step} every {aging.every:g} s "
            f"of waiting{cap}, after {max(now - task.queued_at, 0.0):g} s "
            f"(queues.{queue.name}.priority_aging)"
        )
    mine = _mine(task) or {}
    if queue.steps and mine.get("queue") == queue.name and mine.get("step") is not None:
        index = min(int(mine["step"]), len(queue.steps) - 1)  # fewer steps after a replacement
        step = queue.steps[index]
        following = (
            f"{queue.steps[index + 1].label} widens at {mine['since'] + queue.steps[index + 1].after:g} s"
            if index + 1 < len(queue.steps)
            else "the last step"
        )
        notes.append(f"proficiency {step.label} in force ({step.expression.source}); {following}")
    prefer = mine.get("prefer")
    if prefer:
        if "until" in prefer:
            notes.append(
                f"waits for its {prefer['source']} {prefer['agent']} until {prefer['until']:g} s "
                f"(queues.{queue.name}.preferred_agent)"
            )
        else:
            notes.append(f"prefers its {prefer['source']} {prefer['agent']} (no wait left)")
    return tuple(notes)


class TimedRouting:
    """The core plugin's components for time-dependent queues, for one engine."""

    def __init__(self, context: PluginContext) -> None:
        self._context = context
        deployment = context.deployment
        self._deployment = deployment
        self._stepped = any(queue.steps for queue in deployment.queues.values())
        self._preferring = [
            queue for queue in deployment.queues.values() if queue.preferred_agent is not None
        ]
        #: per task attribute keying last agents: the history's bucket (the longest window)
        self._history: dict[str, float] = {}
        for queue in self._preferring:
            assert queue.preferred_agent is not None
            key, window = queue.preferred_agent.last_agent, queue.preferred_agent.window
            if key is not None:
                self._history[key] = max(window, self._history.get(key, 0.0))
        context.on_timer("step_widens", self._step_widens)
        context.on_timer("preferred_wait_over", self._wait_over)

    # --- components ----------------------------------------------------------------------

    def filters(self) -> list[Filter]:
        found = []
        if self._stepped:
            found.append(Filter("step", self._in_step, self._outside_step))
        if self._preferring:
            found.append(Filter("preferred_agent", self._waited_for, self._waits_for_another))
        return found

    def preferences(self) -> list[Preference]:
        if not self._preferring:
            return []
        return [Preference("preferred_agent", self._preferred, self._not_preferred)]

    def handlers(self) -> list[EventHandler]:
        if not (self._stepped or self._preferring):
            return []
        found = [
            EventHandler("entered_queue", self._entered),
            EventHandler("accepted", self._accepted),
            EventHandler("canceled", lambda task, _agent: self._cancel_timers(task)),
            EventHandler("rejected", lambda task, _agent: self._cancel_timers(task)),
        ]
        if self._preferring:
            found += [
                EventHandler("declined", self._answered),
                EventHandler("timed_out", self._answered),
                EventHandler("logout", self._logged_out),
            ]
        return found

    def _cancel_timers(self, task: Task | None) -> None:
        """A task accepted, closed or starting a new wait needs its pending step and wait
        timers no more (a simulation makes many tasks, most answered before their first
        step widens; a timer that fires makes the engine look at every waiting task)."""
        mine = _mine(task) if task is not None else None
        for name in ("step_timer", "wait_timer"):
            if mine and mine.get(name) is not None:
                assert task is not None
                self._context.cancel_timer(mine[name])
                self._context.task_state(task)[name] = None

    def _accepted(self, task: Task | None, agent: Agent | None) -> None:
        self._cancel_timers(task)
        self._remember_agent(task, agent)

    # --- entering a queue ----------------------------------------------------------------

    def _entered(self, task: Task | None, _agent: Agent | None) -> None:
        """A new wait in a queue restarts its steps and its preferred agent; moving to
        another workflow target of the same queue (same queue time) keeps them."""
        if task is None:
            return
        context = self._context
        queue = context.queue_of(task)
        mine = _mine(task)
        if mine and mine.get("queue") == task.queue and mine.get("queued_at") == task.queued_at:
            return
        self._cancel_timers(task)
        if not (queue is not None and (queue.steps or queue.preferred_agent is not None)):
            if mine and (mine.get("step") is not None or mine.get("prefer")):
                state = context.task_state(task)
                state.update(queue=None, step=None, prefer=None, stage=stage(task) + 1)
            return
        state = context.task_state(task)
        state.update(
            queue=queue.name, queued_at=task.queued_at, since=context.now, step=None, prefer=None
        )
        state["stage"] = stage(task) + 1
        if queue.steps:
            state["step"] = 0
            first = queue.steps[0]
            context.note(task, f"{first.label} applies: {first.expression.source}")
            self._next_step_timer(task, queue, 0)
        if queue.preferred_agent is not None:
            self._start_wait(task, queue)

    # --- proficiency steps ---------------------------------------------------------------

    def _next_step_timer(self, task: Task, queue: Queue, index: int) -> None:
        if index + 1 < len(queue.steps):
            since = self._context.task_state(task)["since"]
            at = since + queue.steps[index + 1].after
            self._context.task_state(task)["step_timer"] = self._context.set_timer(
                at, "step_widens", [task.id, queue.name, since, index + 1]
            )

    def _step_widens(self, payload: list[Any]) -> None:
        task_id, queue_name, since, index = payload
        task = self._context.task(task_id)
        if task is None or task.state not in ("queued", "reserved"):
            return
        mine = _mine(task)
        queue = self._deployment.queues.get(queue_name)
        if (
            not mine
            or queue is None
            or mine.get("queue") != queue_name
            or mine.get("since") != since
            or mine.get("step") is None
            or index >= len(queue.steps)
            or mine["step"] >= index
        ):
            return
        state = self._context.task_state(task)
        state.update(step=index, stage=stage(task) + 1)
        step = queue.steps[index]
        self._context.note(
            task,
            f"{queue.steps[index - 1].label} expired after {step.after:g} s in the queue: "
            f"{step.label} also admits {step.expression.source}",
        )
        self._next_step_timer(task, queue, index)

    def _in_step(self, task: Task, agent: Agent) -> bool:
        queue = self._deployment.queue_of(task)
        if queue is None or not queue.steps:
            return True
        mine = _mine(task)
        # A task without a step of this queue (the deployment was replaced while it
        # waited) gets every step: it must not wait narrower than the queue's widest.
        last = (
            int(mine["step"])
            if mine and mine.get("queue") == queue.name and mine.get("step") is not None
            else len(queue.steps) - 1
        )
        context = self._context.expression_context(task, agent)
        return any(step.expression.evaluate(context) for step in queue.steps[: last + 1])

    def _outside_step(self, task: Task, agent: Agent) -> str:
        queue = self._deployment.queue_of(task)
        assert queue is not None
        mine = _mine(task) or {}
        index = min(int(mine.get("step") or 0), len(queue.steps) - 1)
        reason = f"no step up to {queue.steps[index].label} admits it"
        if index + 1 < len(queue.steps) and "since" in mine:
            following = queue.steps[index + 1]
            reason += f" ({following.label} widens at {mine['since'] + following.after:g} s)"
        return reason

    # --- preferred and last agent --------------------------------------------------------

    def _wanted(self, task: Task, queue: Queue) -> tuple[str | None, str]:
        config = queue.preferred_agent
        assert config is not None
        named = task.attributes.get(config.attribute)
        if isinstance(named, str) and named:
            return named, "preferred agent"
        if config.last_agent is not None:
            last = self._last_agent(config.last_agent, task.attributes.get(config.last_agent))
            if last is not None and self._context.now - last[1] <= config.window:
                return last[0], "last agent"
        return None, ""

    def _start_wait(self, task: Task, queue: Queue) -> None:
        context = self._context
        config = queue.preferred_agent
        assert config is not None
        wanted, source = self._wanted(task, queue)
        if wanted is None:
            return
        state = context.task_state(task)
        state["prefer"] = {"agent": wanted, "source": source}
        agent = context.agent(wanted)
        if agent is None or agent.status == "offline":
            context.note(task, f"its {source} {wanted} is not logged in: no wait")
            return
        if not queue.target_workers.evaluate(context.expression_context(task, agent)):
            context.note(task, f"its {source} {wanted} does not serve queue {queue.name}: no wait")
            return
        if config.wait <= 0:
            context.note(task, f"prefers its {source} {wanted} if free now (wait 0)")
            return
        until = context.now + config.wait
        state["prefer"]["until"] = until
        context.note(task, f"waits up to {config.wait:g} s for its {source} {wanted}")
        state["wait_timer"] = context.set_timer(
            until, "preferred_wait_over", [task.id, queue.name, until]
        )

    def _end_wait(self, task: Task, why: str) -> None:
        mine = _mine(task)
        prefer = mine.get("prefer") if mine else None
        if not prefer or "until" not in prefer:
            return
        state = self._context.task_state(task)
        del state["prefer"]["until"]
        state["stage"] = stage(task) + 1
        if task.state == "queued" and task.hold_reason is None:
            # Try it again: no agent opened, so a path that visits only groups where
            # something happened (the roster index's) would not look at it otherwise.
            self._context.release_task(task)
        self._context.note(task, f"{why}: every agent of the queue may take it now")

    def _wait_over(self, payload: list[Any]) -> None:
        task_id, queue_name, until = payload
        task = self._context.task(task_id)
        if task is None or not task.is_open:
            return
        mine = _mine(task) or {}
        prefer = mine.get("prefer")
        if prefer and mine.get("queue") == queue_name and prefer.get("until") == until:
            self._end_wait(task, f"the wait for its {prefer['source']} {prefer['agent']} is over")

    def _answered(self, task: Task | None, agent: Agent | None) -> None:
        mine = _mine(task) if task is not None else None
        prefer = mine.get("prefer") if mine else None
        if task is not None and agent is not None and prefer and prefer["agent"] == agent.id:
            self._end_wait(task, f"its {prefer['source']} {agent.id} did not take it")

    def _logged_out(self, _task: Task | None, agent: Agent | None) -> None:
        if agent is None:
            return
        for queue in self._preferring:
            for task in list(self._context.waiting(queue.name)):
                mine = _mine(task)
                prefer = mine.get("prefer") if mine else None
                if prefer and prefer["agent"] == agent.id:
                    self._end_wait(task, f"its {prefer['source']} {agent.id} logged out")

    def _waited_for(self, task: Task, agent: Agent) -> bool:
        mine = _mine(task)
        prefer = mine.get("prefer") if mine else None
        return not prefer or "until" not in prefer or prefer["agent"] == agent.id

    def _waits_for_another(self, task: Task, _agent: Agent) -> str:
        prefer = (_mine(task) or {}).get("prefer") or {}
        return f"it waits for its {prefer.get('source')} {prefer.get('agent')} until {prefer.get('until', 0):g} s"

    def _preferred(self, task: Task, agent: Agent) -> bool:
        mine = _mine(task)
        prefer = mine.get("prefer") if mine else None
        return not prefer or (prefer["agent"] == agent.id and agent.id not in task.declined_by)

    def _not_preferred(self, task: Task, _agent: Agent) -> str:
        prefer = (_mine(task) or {}).get("prefer") or {}
        return f"its {prefer.get('source')} {prefer.get('agent')} is eligible"

    # --- the history of last agents ------------------------------------------------------

    @staticmethod
    def _value_key(value: Any) -> str | None:
        if isinstance(value, str):
            return "s:" + value
        if isinstance(value, int) and not isinstance(value, bool):
            return f"i:{value}"
        return None

    def _remember_agent(self, task: Task | None, agent: Agent | None) -> None:
        """Who accepted the task is the last agent of each customer key it carries. The
        history is kept in buckets of the longest window, so that dropping what is too
        old to matter costs one key, whatever the order entries came in."""
        if task is None or agent is None or not self._history:
            return
        context = self._context
        now = context.now
        for attribute, size in self._history.items():
            value = self._value_key(task.attributes.get(attribute))
            if value is None:
                continue
            kept = context.state().setdefault("last_agent", {}).setdefault(attribute, {})
            bucket = int(now // size)
            for old in [name for name in kept if int(name) < bucket - 1]:
                del kept[old]
            kept.setdefault(str(bucket), {})[value] = [agent.id, now]

    def _last_agent(self, attribute: str, value: Any) -> tuple[str, float] | None:
        key = self._value_key(value)
        history = self._context.state().get("last_agent", {}).get(attribute)
        if key is None or not history:
            return None
        bucket = int(self._context.now // self._history[attribute])
        for name in (str(bucket), str(bucket - 1)):
            found = history.get(name, {}).get(key)
            if found is not None:
                return str(found[0]), float(found[1])
        return None


def timed_routing(context: PluginContext) -> TimedRouting:
    """The engine's one `TimedRouting`, made by the first core hook that asks."""
    shared = context.shared
    if "timed" not in shared:
        shared["timed"] = TimedRouting(context)
    routing: TimedRouting = shared["timed"]
    return routing
