"""What a plugin's setup-time hooks receive: its configuration and the engine's services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .engine import Engine
    from .spec import Deployment
    from .state import Agent, Task


@attrs.frozen
class Setup:
    """Services for one plugin in one engine.

    Keep every piece of mutable state in the dictionaries this gives (`agent_state`,
    `task_state`, `state`): the engine snapshots them with the rest of its state, so an
    event that fails is undone for plugins too. Closures over other mutable objects are
    not rolled back.
    """

    plugin: str
    deployment: Deployment
    section: Any
    engine: Engine

    @property
    def now(self) -> float:
        """Seconds since the engine's start, on the engine's clock."""
        return self.engine.now

    def agent_state(self, agent: Agent) -> dict[str, Any]:
        return agent.plugin_state.setdefault(self.plugin, {})

    def task_state(self, task: Task) -> dict[str, Any]:
        return task.plugin_state.setdefault(self.plugin, {})

    def state(self) -> dict[str, Any]:
        """The plugin's own state, one per engine (counters, round-robin positions...)."""
        return self.engine.state.plugin_state.setdefault(self.plugin, {})

    def set_timer(self, at: float, callback: Callable[[], None]) -> int:
        """Call `callback()` at engine time `at` (seconds), then route. Returns a timer id."""
        return self.engine.set_timer(at, callback, owner=self.plugin)

    def cancel_timer(self, timer_id: int) -> None:
        self.engine.cancel_timer(timer_id)

    def agent_changed(self, agent: Agent) -> None:
        """Say that something a filter or ranking key reads of the agent changed (its
        plugin state, say) outside an event that already touched it: the engine's
        caches and roster index then look at the agent again."""
        agent.touch()

    def set_capacity(self, agent: Agent, channel: str, capacity: int) -> None:
        """Change an agent's capacity on a channel (as a supervisor would)."""
        self.engine.set_capacity(agent, channel, capacity)

    def hold_task(self, task: Task, until: float | None, reason: str) -> None:
        """Keep a queued task from being offered until `until` (None: until released)."""
        self.engine.hold_task(task, until, reason)

    def release_task(self, task: Task) -> None:
        self.engine.release_task(task)
