"""Service-level targets as the simulator and the planners read them.

A queue's target is, first found: its own `service_level` in the deployment, the
deployment's `service_level`, then the workload's `service_level_threshold` and
`service_level_target` (20 s and 80% unless the workload says otherwise). docs/service-levels.md
is the reference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from omniroute.core import Deployment, Problem
from omniroute.core.converter import key_path
from omniroute.core.spec import Workflow

#: How far a level may fall short of its target and still meet it: float sums of shares.
TOLERANCE = 1e-12

Source = Literal["queue", "deployment", "workload"]


@attrs.frozen
class Objective:
    """What a queue is measured against: `target` answered within `threshold` seconds."""

    threshold: float
    target: float
    source: Source

    def met(self, level: float | None) -> bool | None:
        """Whether `level` reaches the target (None when there is no level to judge)."""
        return None if level is None else level >= self.target - TOLERANCE

    def text(self) -> str:
        return f"{self.target:.0%} within {self.threshold:g} s"


@attrs.frozen
class Objectives:
    """The objective of every queue of a deployment, and the one for everything else."""

    by_queue: Mapping[str, Objective]
    #: tasks in no queue (or in a queue the deployment lacks), and the overall target when
    #: the deployment declares one
    default: Objective

    def of(self, queue: str | None) -> Objective:
        found = self.by_queue.get(queue) if queue is not None else None
        return found if found is not None else self.default

    def threshold_of(self, queue: str | None) -> float:
        return self.of(queue).threshold

    def summary(self, queues: Iterable[str | None], level: float | None) -> dict[str, Any]:
        """The keys a block of figures gets beside its `service_level`.

        Over several queues the threshold and target are the ones they share (None when
        they differ); the deployment's own target, when it declares one, is the target of
        the whole (`overall`).
        """
        found = {self.of(queue) for queue in queues}
        thresholds = {objective.threshold for objective in found}
        targets = {objective.target for objective in found}
        threshold = next(iter(thresholds)) if len(thresholds) == 1 else None
        target = next(iter(targets)) if len(targets) == 1 else None
        if not found:
            threshold, target = self.default.threshold, self.default.target
        return {
            "service_level_threshold": threshold,
            "service_level_target": target,
            "service_level_met": None
            if target is None or level is None
            else level >= target - TOLERANCE,
        }

    def overall(self, queues: Iterable[str | None], level: float | None) -> dict[str, Any]:
        result = self.summary(queues, level)
        if self.default.source == "deployment":
            target = self.default.target
            result["service_level_target"] = target
            result["service_level_met"] = None if level is None else level >= target - TOLERANCE
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "default": attrs.asdict(self.default),
            "by_queue": {queue: attrs.asdict(o) for queue, o in sorted(self.by_queue.items())},
        }


def objectives(deployment: Deployment, threshold: float, target: float) -> Objectives:
    """Each queue's objective; `threshold` and `target` are the workload's fallbacks."""
    fallback = Objective(threshold, target, "workload")
    default = (
        Objective(deployment.service_level.threshold, deployment.service_level.target, "deployment")
        if deployment.service_level is not None
        else fallback
    )
    by_queue = {}
    for name, queue in deployment.queues.items():
        own = queue.service_level
        by_queue[name] = (
            Objective(own.threshold, own.target, "queue") if own is not None else default
        )
    return Objectives(by_queue, default)


# --- lines on charts ----------------------------------------------------------------------


def target_lines(objectives: Objectives, queues: Iterable[str]) -> list[tuple[float, list[str]]]:
    """The targets to draw, lowest first, each with the queues it is the target of; none are
    named when one target is every queue's. The deployment's own target is drawn too."""
    by_target: dict[float, list[str]] = {}
    for queue in queues:
        by_target.setdefault(objectives.of(queue).target, []).append(queue)
    if not by_target or objectives.default.source == "deployment":
        by_target.setdefault(objectives.default.target, [])
    if len(by_target) == 1:
        return [(target, []) for target in by_target]
    return sorted(by_target.items())


def threshold_lines(objectives: Objectives, queues: Iterable[str]) -> list[tuple[float, list[str]]]:
    """The queues' thresholds, lowest first, each with its queues (none named when all share one)."""
    by_threshold: dict[float, list[str]] = {}
    for queue in queues:
        by_threshold.setdefault(objectives.threshold_of(queue), []).append(queue)
    if len(by_threshold) <= 1:
        return [(next(iter(by_threshold), objectives.default.threshold), [])]
    return sorted(by_threshold.items())


# --- the warning of `check --workload` and `simulate` -------------------------------------


#: attribute combinations of a stream tried against the workflow; beyond, every queue it names
MAX_COMBINATIONS = 4096


def queues_used(deployment: Deployment, streams: Iterable[Any]) -> list[str]:
    """The queues a workload's traffic may wait in, in the deployment's order.

    Without a workflow, a stream's `queue` (or the only queue). With one, the queues of the
    filters each combination of the stream's attribute values can match (all the targets
    of a filter: timeouts move tasks along), the later filters where a target may be
    skipped, and the default queue where none matches for sure. A filter that reads the
    clock (`taskrouter.*`, `task.age`) may match any time.
    """
    wanted: set[str] = set()
    for stream in streams:
        if deployment.workflow is not None:
            wanted |= _through_workflow(deployment.workflow, stream)
        elif stream.queue is not None:
            wanted.add(stream.queue)
        elif len(deployment.queues) == 1:
            wanted.update(deployment.queues)
    return [name for name in deployment.queues if name in wanted]


def _through_workflow(workflow: Workflow, stream: Any) -> set[str]:
    values: dict[str, tuple[Any, ...]] = getattr(stream, "attribute_values", {}) or {}
    count = math.prod(len(choices) for choices in values.values())
    named = {target.queue for item in workflow.filters for target in item.targets}
    if count > MAX_COMBINATIONS:
        return named | ({workflow.default_queue} if workflow.default_queue else set())
    found: set[str] = set()
    keys = list(values)
    for combination in itertools.product(*(values[key] for key in keys)):
        task = {
            **dict(zip(keys, combination, strict=True)),
            "id": "",
            "channel": stream.channel,
            "priority": stream.priority,
            "queue": stream.queue,
            "age": 0.0,
        }
        settled = False
        for item in workflow.filters:
            if not item.targets:
                continue
            timeless = not any(
                ref.startswith(("taskrouter", "task.age")) for ref in item.expression.references
            )
            try:
                matched = bool(item.expression.evaluate({"task": task}))
            except Exception:  # a filter that cannot be judged here may match
                matched, timeless = True, False
            if matched or not timeless:
                found.update(target.queue for target in item.targets)
            if matched and timeless and all(t.skip_if is None for t in item.targets):
                settled = True
                break
        if not settled and workflow.default_queue is not None:
            found.add(workflow.default_queue)
    return found


def missing_service_levels(
    deployment: Deployment, queues: Iterable[str], threshold: float, target: float
) -> list[Problem]:
    """A warning per queue that declares no service level, when the deployment has no
    default either: it is measured against the workload's fallback, which may not be
    what was agreed for it."""
    if deployment.service_level is not None:
        return []
    fallback = Objective(threshold, target, "workload").text()
    return [
        Problem(
            key_path([name, "service_level"], "queues"),
            f"queue {name!r} has no service level and the workload's traffic reaches it: it is"
            f" measured against the workload's {fallback}; fix: declare"
            f" {key_path([name, 'service_level'], 'queues')}:"
            f" {{threshold: {threshold:g}s, target: {target:g}}}, or a deployment-wide"
            " service_level",
            "warning",
        )
        for name in queues
        if deployment.queues[name].service_level is None
    ]
