"""Checking and compiling a queue's time-dependent keys: `priority_aging`, `steps` and
`preferred_agent` (docs/priority-aging.md, docs/proficiency-steps.md,
docs/preferred-agent.md). Every problem is reported with its key path, all at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .converter import key_path
from .errors import Problem
from .spec import ProficiencyStep, QueueSpec

#: compiles an expression where it stands: (source, key path, problems, default root, roots)
Compile = Callable[[str, str, list[Problem], str | None, frozenset[str] | None], Any]

#: what a step's expression may read: the agent (the default root) and the task
STEP_ROOTS = frozenset({"task", "worker"})


def timed_keys(
    name: str, queue: QueueSpec, problems: list[Problem], compile_at: Compile
) -> dict[str, Any]:
    """The compiled time-dependent keys of queue `name`, as `Queue` fields."""
    where = key_path([name], "queues")
    steps: list[ProficiencyStep] = []
    previous: float | None = None
    for index, step in enumerate(queue.steps):
        path = f"{where}.steps[{index}]"
        if index == 0 and float(step.after) != 0.0:
            problems.append(
                Problem(
                    f"{path}.after",
                    f"the first step applies when the task enters the queue: after must be 0, "
                    f"got {step.after:g}",
                )
            )
        if previous is not None and step.after <= previous:
            problems.append(
                Problem(
                    f"{path}.after",
                    f"steps widen in order: after must be above the step before it "
                    f"({previous:g} s), got {step.after:g}",
                )
            )
        previous = step.after
        expression = compile_at(
            step.expression, f"{path}.expression", problems, "worker", STEP_ROOTS
        )
        if expression is not None:
            steps.append(ProficiencyStep(name, index, step.after, expression))
    preferred = queue.preferred_agent
    if preferred is not None:
        for key in ("attribute", "last_agent"):
            value = getattr(preferred, key)
            if value is not None and not value.strip():
                problems.append(
                    Problem(f"{where}.preferred_agent.{key}", "must name a task attribute")
                )
    return {
        "priority_aging": queue.priority_aging,
        "steps": tuple(steps),
        "preferred_agent": preferred,
    }
