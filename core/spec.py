"""The deployment file's shape (what cattrs structures) and the compiled deployment.

`*Spec` classes mirror the file: strings where the file has expressions. `Deployment` and
the classes it holds are what the engine uses: expressions compiled, queues inherited,
plugin sections structured by the plugins' own classes.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

import attrs

from omniroute.grammar import Expression, OrderBy

from .errors import Problem

Duration = NewType("Duration", float)
"""Seconds; in files a number or a string such as "90s", "5m", "1h30m"."""

PositiveDuration = NewType("PositiveDuration", float)
"""A Duration that must be above zero: a timeout of 0 would fire at the moment it is set."""


@attrs.frozen
class ChannelSpec:
    """A media type of the deployment. No keys of its own yet; plugins key their settings by name."""


@attrs.frozen
class QueueSpec:
    target_workers: str = "1 == 1"
    task_order: Literal["fifo", "lifo"] = "fifo"
    profile: str | None = None
    skill: str | None = None


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


# --- compiled ----------------------------------------------------------------------------


@attrs.frozen
class Queue:
    name: str
    target_workers: Expression
    task_order: str = "fifo"
    profile: str | None = None
    skill: str | None = None


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

    def section(self, plugin: str) -> Any:
        """The structured config section of a plugin (None when the plugin declares none)."""
        return self.sections.get(plugin)
