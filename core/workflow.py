"""The TaskRouter workflow: where a task waits, and where it goes next.

A new task is placed by the first workflow filter whose expression it matches, in that
filter's first target; without a workflow it goes to the queue it names, or to the only
queue. A target may time out (the task moves to the next target; after the last, it is
canceled with `workflow_timeout`) or be skipped at once (`skip_if`: the task tries the
next target, then later filters, then the default queue).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .clock import Clock
from .contexts import Contexts
from .lifecycle import Notify, TaskLifecycle
from .spec import Deployment, Target, WorkflowFilter
from .state import TASK_BUILT_INS, EngineState, Task
from .undo import UndoLog

QueueCounts = Callable[[str | None, str], dict[str, int]]

#: `attribute == "text"` (or `task.attribute = "text"`), a filter a dictionary can decide
_EQUALS_TEXT = re.compile(r'\s*(?:task\.)?([A-Za-z_][A-Za-z0-9_]*)\s*==?\s*"([^"\\]*)"\s*')


def literal_table(filters: Sequence[WorkflowFilter]) -> tuple[str, dict[str, int]] | None:
    """When every filter tests one attribute for equality with text, the index of the
    first filter (with targets) for each text; a task is placed by one lookup instead of
    one expression per filter. `==` is type-strict: only text equals text."""
    attribute = None
    table: dict[str, int] = {}
    for item in filters:
        match = _EQUALS_TEXT.fullmatch(item.expression.source)
        if match is None or (attribute is not None and match[1] != attribute):
            return None
        attribute = match[1]
        if item.targets:
            table.setdefault(match[2], item.index)
    return (attribute, table) if attribute is not None else None


class WorkflowRouter:
    """Places tasks in queues and moves them along their workflow targets."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        undo: UndoLog,
        clock: Clock,
        contexts: Contexts,
        lifecycle: TaskLifecycle,
        notify: Notify,
        queue_counts: QueueCounts,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self._undo = undo
        self._clock = clock
        self._contexts = contexts
        self._tasks = lifecycle
        self._notify = notify
        self._queue_counts = queue_counts
        #: (task, filter, target) entered with a `skip_if` still to evaluate
        self._skip_checks: list[tuple[str, int, int]] = []
        workflow = deployment.workflow
        self._literals = literal_table(workflow.filters) if workflow is not None else None
        #: some filter reads `taskrouter.*`: only then is the clock's view built
        self._filters_read_clock = workflow is not None and any(
            reference.startswith("taskrouter")
            for item in workflow.filters
            for reference in item.expression.references
        )
        clock.on_timer(None, "target_timeout", self._target_timed_out)
        lifecycle.on_target_expired = lambda task: self.leave_target(task, timed_out=True)

    def forget_pending(self) -> None:
        self._skip_checks.clear()

    def place(self, task: Task) -> None:
        """Put a new task in its first queue: by the workflow, its own queue field, or the
        only queue; without a match and a default queue, reject it."""
        workflow = self.deployment.workflow
        self._undo.keep(task)
        if workflow is None:
            queue = task.requested_queue
            if queue is None and len(self.deployment.queues) == 1:
                queue = next(iter(self.deployment.queues))
            task.queue = queue
            self._tasks.queue(task)
            self._notify("entered_queue", task, None)
            return
        if self._enter_matching_filter(task, start=0):
            return
        if workflow.default_queue is not None:
            self._enter_default_queue(task)
            return
        self._tasks.close(
            task,
            "rejected",
            "no_matching_filter",
            "no workflow filter matches the task and there is no default_queue",
        )

    def _enter_matching_filter(self, task: Task, start: int) -> bool:
        workflow = self.deployment.workflow
        assert workflow is not None
        contexts = self._contexts
        if self._literals is not None and start == 0:
            attribute, table = self._literals
            # An attribute of the task's own is read without building `task.*`.
            value = (
                contexts.task_view(task).get(attribute)
                if attribute in TASK_BUILT_INS
                else task.attributes.get(attribute)
            )
            found = table.get(value) if isinstance(value, str) else None
            if found is None:
                return False
            item = workflow.filters[found]
            self._tasks.log(task, f"matched filter {item.name!r}")
            self._enter_target(task, item.targets[0])
            return True
        context = {"task": contexts.task_view(task)}
        if self._filters_read_clock:
            context["taskrouter"] = contexts.clock_context()
        for item in workflow.filters[start:]:
            if item.targets and item.expression.evaluate(context):
                self._tasks.log(task, f"matched filter {item.name!r}")
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
        self._tasks.log(task, f"default queue {task.queue}")
        self._tasks.queue(task)
        self._notify("entered_queue", task, None)

    def _enter_target(self, task: Task, target: Target) -> None:
        now = self._clock.now
        self._undo.keep(task)
        task.filter_index, task.target_index = target.filter_index, target.index
        task.queue = target.queue
        task.target_entered_at = now
        task.target_expired = False
        self._tasks.log(task, f"entered {target.label} (queue {target.queue})")
        self._tasks.queue(task)
        self._contexts.forget_task()
        self._notify("entered_queue", task, None)
        if target.timeout is not None:
            self._clock.set_timer(
                now + target.timeout,
                "target_timeout",
                [task.id, target.filter_index, target.index, now],
            )
        if target.skip_if is not None:
            self._skip_checks.append((task.id, target.filter_index, target.index))

    def _target_timed_out(self, payload: list[Any]) -> None:
        task_id, filter_index, target_index, entered = payload
        task = self._state.tasks.get(task_id)
        if task is None:
            return
        if (task.filter_index, task.target_index, task.target_entered_at) != (
            filter_index,
            target_index,
            entered,
        ):
            return
        if task.state == "queued":
            self.leave_target(task, timed_out=True)
        elif task.state == "reserved":
            self._undo.keep(task)
            task.target_expired = True

    def leave_target(self, task: Task, *, timed_out: bool) -> None:
        """Go on to the next target; after the last one, time out or try later filters."""
        workflow = self.deployment.workflow
        assert workflow is not None
        assert task.filter_index is not None
        assert task.target_index is not None
        targets = workflow.filters[task.filter_index].targets
        what = "timed out of " if timed_out else "skipped "
        self._tasks.log(task, what + targets[task.target_index].label)
        if task.target_index + 1 < len(targets):
            self._enter_target(task, targets[task.target_index + 1])
            return
        if timed_out:
            self._tasks.close(task, "canceled", "workflow_timeout")
            self._notify("canceled", task, None)
            return
        if self._enter_matching_filter(task, start=task.filter_index + 1):
            return
        if workflow.default_queue is not None:
            self._enter_default_queue(task)
            return
        self._tasks.close(task, "canceled", "workflow_exhausted")
        self._notify("canceled", task, None)

    def run_skip_checks(self) -> bool:
        """Evaluate the `skip_if` of targets entered since the last call; whether any
        task moved on."""
        moved = False
        contexts = self._contexts
        while self._skip_checks:
            task_id, filter_index, target_index = self._skip_checks.pop(0)
            task = self._state.tasks[task_id]
            if task.state != "queued" or (task.filter_index, task.target_index) != (
                filter_index,
                target_index,
            ):
                continue
            target = self.deployment.target_of(task)
            assert target is not None
            assert target.skip_if is not None
            context = {
                "workers": self._queue_counts(task.queue, task.channel),
                "task": contexts.task_view(task),
                "taskrouter": contexts.clock_context(),
            }
            if target.skip_if.evaluate(context):
                self.leave_target(task, timed_out=False)
                moved = True
        return moved

    def adopt_tasks(self) -> None:
        """After the deployment was replaced: tasks whose workflow target is gone wait on
        in their queue, outside the workflow; tasks waiting or reserved in a queue that is
        gone go to the default queue, or are canceled (`queue_removed`). Assigned tasks
        stay with their agents."""
        deployment = self.deployment
        default = deployment.workflow.default_queue if deployment.workflow is not None else None
        for task in sorted(self._state.tasks.values(), key=lambda task: task.seq):
            if not task.is_open:
                continue
            if task.filter_index is not None and not self._target_kept(task):
                self._undo.keep(task)
                task.filter_index = task.target_index = None
                task.target_expired = False
            if task.queue in deployment.queues or task.state == "assigned":
                continue
            if task.state == "reserved":
                self._tasks.return_to_queue(task, "timed_out", ending="revoked")
            if default is None:
                self._tasks.cancel(task, "queue_removed")
                continue
            self._undo.keep(task)
            task.queue = default
            task.filter_index = task.target_index = None
            self._tasks.log(task, f"queue removed: default queue {default}")
            self._tasks.queue(task)

    def _target_kept(self, task: Task) -> bool:
        """Whether the task's workflow target is still there, on the same queue."""
        workflow = self.deployment.workflow
        if workflow is None or task.filter_index is None or task.target_index is None:
            return False
        if task.filter_index >= len(workflow.filters):
            return False
        targets = workflow.filters[task.filter_index].targets
        return task.target_index < len(targets) and targets[task.target_index].queue == task.queue
