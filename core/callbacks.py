"""A callback that keeps its place: a waiting task becomes a task of another channel.

The customer on hold asks to be called back: the task (queued, or reserved and not yet
answered, whose reservation is then revoked) becomes a task of the callback channel. It
keeps its id, attributes, priority, creation time and queue time (`queued_at`), so it is
ordered among the queue's waiting tasks where it stood. It stays in its queue and
workflow target, or moves to the `queue` given, still with its queue time; a transfer, by
contrast, starts the queue time afresh (docs/callbacks.md).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import EventError
from .lifecycle import Notify, TaskLifecycle
from .spec import Deployment
from .state import EngineState, Task
from .undo import UndoLog

Change = Callable[[], None]

CONVERTIBLE = ("queued", "reserved")


class Callbacks:
    """Converting the waiting tasks of one engine."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        undo: UndoLog,
        lifecycle: TaskLifecycle,
        notify: Notify,
        forget_task: Callable[[Task], None],
    ) -> None:
        self.deployment = deployment
        self._state = state
        self._undo = undo
        self._tasks = lifecycle
        self._notify = notify
        #: drop what the engine cached about the task (its channel changes)
        self._forget_task = forget_task

    def converting(self, task_id: str, channel: str, queue: str | None) -> Change:
        what = f"convert_to_callback of {task_id!r}"
        task = self._state.tasks.get(task_id)
        if task is None:
            raise EventError(f"{what}: unknown task {task_id!r}")
        if task.state not in CONVERTIBLE:
            raise EventError(
                f"{what}: it is {task.state}; only a queued or reserved task can become a callback"
            )
        declared = self.deployment.channels
        if declared and channel not in declared:
            raise EventError(
                f"{what}: unknown channel {channel!r} (channels: {', '.join(declared)})"
            )
        if channel == task.channel:
            raise EventError(f"{what}: it is already a task of channel {channel!r}")
        if queue is not None and queue not in self.deployment.queues:
            queues = ", ".join(self.deployment.queues) or "none"
            raise EventError(f"{what}: unknown queue {queue!r} (queues: {queues})")
        return lambda: self._convert(task, channel, queue)

    def _convert(self, task: Task, channel: str, queue: str | None) -> None:
        agent = self._tasks.release_agent(task) if task.state == "reserved" else None
        self._undo.keep(task)
        before = task.channel
        task.channel = channel
        moved = queue is not None and queue != task.queue
        if moved:
            task.queue = queue
            task.filter_index = task.target_index = None
            task.target_expired = False
        self._forget_task(task)
        self._tasks.queue(task)
        where = f", to queue {queue}" if moved else ""
        self._tasks.log(
            task,
            f"converted from {before} to {channel}{where}, keeping its queue time "
            f"{task.queued_at:g} s" + (f" (reservation of {agent.id} revoked)" if agent else ""),
        )
        self._notify("converted", task, agent)
        if moved:
            self._notify("entered_queue", task, None)
