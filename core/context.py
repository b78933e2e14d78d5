"""What a plugin's hooks receive: its configuration, read-only queries and the engine's services.

One `PluginContext` is made per active plugin per engine, when the engine builds its
pipeline, and every hook of that plugin receives the same one. It is the whole of what a
plugin may reach of the engine: the engine itself sits behind the small `EngineServices`
protocol, held privately, so the contract stays narrow and typed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .errors import PluginError

if TYPE_CHECKING:
    from .spec import Deployment, Queue, Target
    from .state import Agent, EngineState, Task

TimerHandler = Callable[[Any], None]
"""Called with the payload given to `set_timer` when the timer fires."""

_SCALARS = (str, int, float, bool, type(None))


def json_like(value: Any) -> bool:
    """Whether `value` is made of dict (with string keys), list, tuple, str, int, float,
    bool and None only: what plugin state and timer payloads may hold, so that an engine's
    state can be saved as JSON (tuples come back as lists)."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(json_like(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and json_like(item) for key, item in value.items())
    return False


class EngineServices(Protocol):
    """What a `PluginContext` needs of the engine; the engine implements it."""

    start: datetime
    state: EngineState

    @property
    def now(self) -> float: ...

    def wall_time(self, at: float | None = None) -> datetime: ...

    def queue_counts(self, queue_name: str | None, channel: str) -> dict[str, int]: ...

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]: ...

    def waiting_in(self, queue: str | None) -> Iterator[Task]: ...

    def on_timer(self, owner: str | None, name: str, handler: TimerHandler) -> None: ...

    def set_timer(
        self, at: float, name: str, payload: Any = None, owner: str | None = None
    ) -> int: ...

    def cancel_timer(self, timer_id: int) -> None: ...

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None: ...

    def hold_task(self, task: Task, until: float | None, reason: str) -> None: ...

    def release_task(self, task: Task) -> None: ...

    def note(self, task: Task, what: str) -> None: ...


class PluginContext:
    """One plugin's view of one engine: its configuration, queries and services.

    Configuration: `plugin` (its name), `deployment`, `section` (its own section,
    structured by its section class). `shared` is a dictionary for objects the plugin
    builds once per engine and shares between its hooks (a model of its settings,
    caches that can be rebuilt): it is neither saved nor rolled back, so keep no state
    there that an event changes — that goes in `agent_state`, `task_state` and `state`.
    """

    __slots__ = ("_engine", "_owner", "deployment", "plugin", "section", "shared")

    def __init__(
        self,
        plugin: str,
        deployment: Deployment,
        section: Any,
        engine: EngineServices,
        *,
        owner: str | None = None,
    ) -> None:
        self.plugin = plugin
        self.deployment = deployment
        self.section = section
        self.shared: dict[str, Any] = {}
        self._engine = engine
        #: what the engine's timers and errors name (None: the engine's own behaviour)
        self._owner = owner

    @property
    def owner(self) -> str | None:
        """What the engine's errors and timers name: the plugin, or None for the engine's
        own built-in behaviour (the core plugin)."""
        return self._owner

    def __repr__(self) -> str:
        return f"PluginContext(plugin={self.plugin!r})"

    # --- the clock ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Seconds since the engine's start, on the engine's clock."""
        return self._engine.state.now  # read on every change by some plugins: one call

    @property
    def start(self) -> datetime:
        """The wall-clock moment of engine time 0 (timezone-aware)."""
        return self._engine.start

    def wall_time(self, at: float | None = None) -> datetime:
        """The wall-clock moment of engine time `at` (default: now)."""
        return self._engine.wall_time(at)

    # --- read-only queries -----------------------------------------------------------------

    def queue_of(self, task: Task) -> Queue | None:
        """The queue the task waits in (None: it has none)."""
        return self.deployment.queue_of(task)

    def target_of(self, task: Task) -> Target | None:
        """The workflow target the task is in (None: not in a workflow target)."""
        return self.deployment.target_of(task)

    def target_label(self, task: Task) -> str:
        """Where the task is, as the deployment's key paths name it."""
        return self.deployment.target_label(task)

    def effective_priority(self, task: Task) -> int:
        """The priority that orders the task now: its own, or its workflow target's while
        it is there, raised by its queue's `priority_aging` for the time it has waited.
        (Expressions read `task.priority` without the aging.)"""
        return self.deployment.aged_priority(task, self._engine.now)

    def queue_counts(self, queue: str | None, channel: str) -> dict[str, int]:
        """`{"available": n, "total": n}`: agents of the queue ready with room on the
        channel, and all logged-in agents of the queue (what `skip_if` reads)."""
        return self._engine.queue_counts(queue, channel)

    def expression_context(self, task: Task, agent: Agent | None = None) -> dict[str, Any]:
        """What a compiled expression of the deployment reads for this task (and agent):
        `task`, `worker` and `taskrouter`."""
        return self._engine.expression_context(task, agent)

    def waiting(self, queue: str | None) -> Iterator[Task]:
        """The tasks waiting in one queue (held ones included), in the order they started
        waiting (`Task.wait_seq`). Read from the engine's per-queue lists: the cost
        follows that queue's tasks, not every open task."""
        return self._engine.waiting_in(queue)

    def task(self, task_id: str) -> Task | None:
        """An open task by id (None when it is unknown, or closed and forgotten)."""
        return self._engine.state.tasks.get(task_id)

    def agent(self, agent_id: str) -> Agent | None:
        """An agent by id (None when it is not on the roster)."""
        return self._engine.state.agents.get(agent_id)

    # --- state ------------------------------------------------------------------------------

    def agent_state(self, agent: Agent) -> dict[str, Any]:
        """This plugin's state for an agent. Saved and rolled back with the engine's."""
        # a plain read first: plugins read their state on every change, and it is there
        state: dict[str, Any] | None = agent.plugin_state.get(self.plugin)
        return agent.plugin_state.setdefault(self.plugin, {}) if state is None else state

    def task_state(self, task: Task) -> dict[str, Any]:
        """This plugin's state for a task. Saved and rolled back with the engine's."""
        state: dict[str, Any] | None = task.plugin_state.get(self.plugin)
        return task.plugin_state.setdefault(self.plugin, {}) if state is None else state

    def state(self) -> dict[str, Any]:
        """This plugin's own state, one per engine (counters, round-robin positions...)."""
        mine = self._engine.state.plugin_state
        state: dict[str, Any] | None = mine.get(self.plugin)
        return mine.setdefault(self.plugin, {}) if state is None else state

    # --- timers -----------------------------------------------------------------------------

    def on_timer(self, name: str, handler: TimerHandler) -> None:
        """Declare the handler of this plugin's timers called `name` (at setup, once).

        A timer is data — a time, a name and a JSON-like payload — so that it can be
        saved; the handler is looked up by name when the timer fires.
        """
        self._engine.on_timer(self._owner, name, handler)

    def set_timer(self, at: float, name: str, payload: Any = None) -> int:
        """At engine time `at` (seconds), call the handler declared for `name` with
        `payload` (JSON-like: dict, list, str, int, float, bool, None), then route.
        Returns a timer id for `cancel_timer`."""
        if not json_like(payload):
            raise TypeError(
                f"timer {name!r} of {self.plugin}: the payload must be JSON-like (dict, list, "
                f"str, int, float, bool, None), not {payload!r}"
            )
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
            error = ValueError(f"the time must be a finite number of seconds, not {at!r}")
            if self._owner is None:
                raise error
            raise PluginError(self._owner, f"setting timer {name!r}", error)
        return self._engine.set_timer(at, name, payload, owner=self._owner)

    def cancel_timer(self, timer_id: int) -> None:
        self._engine.cancel_timer(timer_id)

    # --- changes ----------------------------------------------------------------------------

    def agent_changed(self, agent: Agent) -> None:
        """Say that something a filter or ranking key reads of the agent changed (its
        plugin state, say) outside an event that already touched it: the engine's
        caches and roster index then look at the agent again."""
        agent.touch()

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        """Change an agent's capacity on a channel (as a supervisor would)."""
        self._engine.set_capacity(agent, channel, capacity)

    def hold_task(self, task: Task, until: float | None, reason: str) -> None:
        """Keep a queued task from being offered until `until` (None: until released)."""
        self._engine.hold_task(task, until, reason)

    def release_task(self, task: Task) -> None:
        """Let a held task be offered again."""
        self._engine.release_task(task)

    def note(self, task: Task, what: str) -> None:
        """Add a line to the task's history (what `omniroute explain` shows), at now."""
        self._engine.note(task, what)
