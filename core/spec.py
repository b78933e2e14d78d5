"""The deployment file's shape (what cattrs structures) and the compiled deployment.

`*Spec` classes mirror the file: strings where the file has expressions. `Deployment` and
the classes it holds are what the engine uses: expressions compiled, queues inherited,
plugin sections structured by the plugins' own classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NewType

import attrs

from omniroute.grammar import Expression, OrderBy

from .errors import Problem

if TYPE_CHECKING:
    from .state import Task

Duration = NewType("Duration", float)
"""Seconds; in files a number or a string such as "90s", "5m", "1h30m"."""

PositiveDuration = NewType("PositiveDuration", float)
"""A Duration that must be above zero: a timeout of 0 would fire at the moment it is set."""


@attrs.frozen
class OfferSpec:
    """How an offer is made to an agent (docs/offer-policy.md). `auto_answer` is true,
    false or an expression over `task` and `worker`, checked in `config.py`."""

    timeout: PositiveDuration | None = None
    on_timeout: Literal["stay", "not_ready"] | None = None
    auto_answer: Any = None


@attrs.frozen
class ChannelSpec:
    """A media type of the deployment. Plugins key their own settings by its name."""

    #: after-contact work after each task of the channel (docs/wrap-up.md)
    wrap_up: Duration | None = None
    offer: OfferSpec | None = None


def fraction_of_tasks(_instance: Any, _attribute: Any, value: float) -> None:
    if not 0 < value <= 1:
        hint = f"; did you mean {value / 100:g}?" if 1 < value <= 100 else ""
        raise ValueError(
            f"must be a fraction above 0 and at most 1, such as 0.8 for 80%, got {value!r}{hint}"
        )


@attrs.frozen
class ServiceLevel:
    """A service-level target: `target` (a fraction) of the tasks answered within `threshold`
    seconds, over answered plus abandoned. The same class is the file's shape and the value."""

    threshold: PositiveDuration
    target: float = attrs.field(validator=fraction_of_tasks)


@attrs.frozen
class PriorityAging:
    """`queues.<q>.priority_aging`: every `every` seconds of waiting add `step` to the
    priority that orders the task, up to `cap` (docs/priority-aging.md)."""

    every: PositiveDuration
    step: int = attrs.field(default=1, validator=lambda _i, _a, step: _at_least_one(step))
    cap: int | None = None


def _at_least_one(step: int) -> None:
    if step < 1:
        raise ValueError(f"must be at least 1, got {step}")


@attrs.frozen
class StepSpec:
    """One of `queues.<q>.steps`: from `after` seconds in the queue, `expression` also admits."""

    after: Duration
    expression: str


@attrs.frozen
class PreferredAgent:
    """`queues.<q>.preferred_agent`: wait up to `wait` for the agent the task names in its
    `attribute`, else for the customer's last agent (`last_agent` names the task attribute
    that keys the history, kept `window` seconds) (docs/preferred-agent.md)."""

    wait: Duration = Duration(30.0)
    attribute: str = "preferred_agent"
    last_agent: str | None = None
    window: PositiveDuration = PositiveDuration(7 * 86400.0)


@attrs.frozen
class QueueSpec:
    target_workers: str = "1 == 1"
    task_order: Literal["fifo", "lifo"] = "fifo"
    profile: str | None = None
    skill: str | None = None
    service_level: ServiceLevel | None = None
    #: overrides the channel's wrap_up and offer keys for the queue's tasks
    wrap_up: Duration | None = None
    offer: OfferSpec | None = None
    priority_aging: PriorityAging | None = None
    steps: tuple[StepSpec, ...] = ()
    preferred_agent: PreferredAgent | None = None


@attrs.frozen
class TargetSpec:
    queue: str | None = None
    expression: str | None = None
    timeout: Duration | None = None
    priority: int | None = None
    order_by: str | None = None
    skip_if: str | None = None
    profile: str | None = None


@attrs.frozen
class FilterSpec:
    expression: str
    targets: tuple[TargetSpec, ...]
    name: str | None = None
    profile: str | None = None


@attrs.frozen
class WorkflowSpec:
    filters: tuple[FilterSpec, ...] = ()
    default_queue: str | None = None


@attrs.frozen
class DeploymentSpec:
    plugins: tuple[str, ...] = ()
    channels: dict[str, ChannelSpec] = attrs.Factory(dict)
    queues: dict[str, QueueSpec] = attrs.Factory(dict)
    workflow: WorkflowSpec | None = None
    #: the default for queues that declare none (and for tasks in no queue)
    service_level: ServiceLevel | None = None


# --- compiled ----------------------------------------------------------------------------


@attrs.frozen
class OfferPolicy:
    """The offer keys of one channel or queue, compiled; None: not set here. `where` is
    the key path of the `offer` mapping, for explanations."""

    where: str
    timeout: float | None = None
    on_timeout: str | None = None
    auto_answer: bool | Expression | None = None


@attrs.frozen
class ChannelSettings:
    """A channel's own keys (`channels.<name>`)."""

    name: str
    wrap_up: float | None = None
    offer: OfferPolicy | None = None


@attrs.frozen
class ProficiencyStep:
    """A compiled `queues.<q>.steps[index]`."""

    queue: str
    index: int
    after: float
    expression: Expression

    @property
    def label(self) -> str:
        return f"queues.{self.queue}.steps[{self.index}]"


@attrs.frozen
class Queue:
    name: str
    target_workers: Expression
    task_order: str = "fifo"
    profile: str | None = None
    skill: str | None = None
    #: the queue's own; `Deployment.service_level_of` falls back to the deployment's
    service_level: ServiceLevel | None = None
    wrap_up: float | None = None
    offer: OfferPolicy | None = None
    priority_aging: PriorityAging | None = None
    steps: tuple[ProficiencyStep, ...] = ()
    preferred_agent: PreferredAgent | None = None


@attrs.frozen
class Target:
    """One step of a workflow filter: the queue the task waits in, and how."""

    filter_index: int
    index: int
    queue: str
    expression: Expression | None = None
    timeout: float | None = None
    priority: int | None = None
    order_by: OrderBy | None = None
    skip_if: Expression | None = None
    profile: str | None = None

    @property
    def label(self) -> str:
        return f"workflow.filters[{self.filter_index}].targets[{self.index}]"


@attrs.frozen
class WorkflowFilter:
    index: int
    name: str
    expression: Expression
    targets: tuple[Target, ...]
    profile: str | None = None


@attrs.frozen
class Workflow:
    filters: tuple[WorkflowFilter, ...]
    default_queue: str | None = None


@attrs.frozen
class Deployment:
    """A validated deployment, ready to build an engine from."""

    source: str
    plugins: tuple[str, ...]
    channels: tuple[str, ...]
    queues: dict[str, Queue]
    workflow: Workflow | None
    sections: dict[str, Any]
    warnings: tuple[Problem, ...] = ()
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: the deployment-wide default of `queues.<name>.service_level`
    service_level: ServiceLevel | None = None
    #: the keys set under `channels`, by channel (channels without keys are left out)
    channel_settings: dict[str, ChannelSettings] = attrs.Factory(dict)

    def section(self, plugin: str) -> Any:
        """The structured config section of a plugin (None when the plugin declares none)."""
        return self.sections.get(plugin)

    def service_level_of(self, queue: str | None) -> ServiceLevel | None:
        """The queue's own service level, else the deployment's (None: neither declares one).

        A task in no queue, or in a queue the deployment does not have, gets the deployment's.
        """
        own = self.queues.get(queue) if queue is not None else None
        if own is not None and own.service_level is not None:
            return own.service_level
        return self.service_level

    # --- where a task stands in this deployment --------------------------------------------

    def queue_of(self, task: Task) -> Queue | None:
        """The queue the task waits in (None: no queue, every agent may serve it)."""
        return self.queues.get(task.queue) if task.queue is not None else None

    def target_of(self, task: Task) -> Target | None:
        """The workflow target the task is in (None: no workflow, default queue, transfer)."""
        workflow = self.workflow
        if workflow is None or task.filter_index is None or task.target_index is None:
            return None
        return workflow.filters[task.filter_index].targets[task.target_index]

    def target_label(self, task: Task) -> str:
        """Where the task is, as key paths name it (`workflow.filters[0].targets[1]`)."""
        target = self.target_of(task)
        if target is not None:
            return target.label
        if self.workflow is not None and task.queue == self.workflow.default_queue:
            return "workflow.default_queue"
        return f"queue {task.queue}" if task.queue else "no queue"

    def effective_priority(self, task: Task) -> int:
        """The task's priority, or its workflow target's `priority` while it is there."""
        target = self.target_of(task)
        if target is not None and target.priority is not None:
            return target.priority
        return task.priority

    def aged_priority(self, task: Task, now: float) -> int:
        """The priority that orders the task now: `effective_priority`, raised by its
        queue's `priority_aging` for the time it has waited (its queue time)."""
        base = self.effective_priority(task)
        queue = self.queue_of(task)
        aging = queue.priority_aging if queue is not None else None
        if aging is None:
            return base
        # A hair of tolerance: a step due at exactly 30 s of waiting is not lost to
        # float subtraction (30.1 - 0.1 < 30).
        waited = max(now - task.queued_at, 0.0) + 1e-9
        raised = base + aging.step * int(waited // aging.every)
        return max(base, min(raised, aging.cap)) if aging.cap is not None else raised
