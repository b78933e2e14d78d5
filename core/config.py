"""Loading a deployment: a TOML, YAML or JSON file (or a mapping) into a `Deployment`.

Two passes, and every problem of both is reported at once: the strict converter checks
the shape; then expressions are compiled where they stand, and references between parts
(queues named by targets, plugins named in `plugins`) are checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omniroute.grammar import ExpressionError, compile_expression, compile_order_by

from . import checks
from . import plugins as plugin_registry
from .converter import key_path, structure
from .errors import DeploymentError, PluginError, Problem
from .files import check_data, read_mapping_file
from .spec import (
    Deployment,
    DeploymentSpec,
    FilterSpec,
    Queue,
    QueueSpec,
    Target,
    Workflow,
    WorkflowFilter,
)
from .timed_config import STEP_ROOTS, timed_keys

__all__ = ["CORE_KEYS", "check_data", "load_deployment", "read_mapping_file"]

CORE_KEYS = ("plugins", "channels", "queues", "workflow")


# --- the deployment ---------------------------------------------------------------------


def load_deployment(
    source: str | Path | Mapping[str, Any], *, name: str | None = None
) -> Deployment:
    """A validated Deployment from a file path or a mapping; DeploymentError lists every problem."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw = read_mapping_file(path)
        label = name or str(path)
    else:
        raw = source
        label = name or "<deployment>"
        found = check_data(raw)
        if found:
            raise DeploymentError(label, found)
    problems: list[Problem] = []
    deployment = _build(raw, label, problems)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors or deployment is None:
        raise DeploymentError(label, problems)
    return deployment


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _build(raw: Any, label: str, problems: list[Problem]) -> Deployment | None:
    if not isinstance(raw, Mapping):
        problems.append(
            Problem("", f"a deployment must be a mapping of keys, not {type(raw).__name__}")
        )
        return None
    installed = plugin_registry.installed()
    broken = plugin_registry.broken()
    for key in raw:
        if key not in CORE_KEYS and key not in installed and key not in broken:
            problems.append(
                Problem(
                    key_path([str(key)]),
                    "unknown key"
                    + (
                        _suggest(str(key), [*CORE_KEYS, *installed])
                        or f" (known: {', '.join([*CORE_KEYS, *installed])})"
                    ),
                )
            )
    spec, shape_problems = structure(
        {key: raw[key] for key in CORE_KEYS if key in raw}, DeploymentSpec
    )
    problems += shape_problems

    active = _check_plugin_list(raw.get("plugins"), installed, problems)
    sections = _structure_sections(raw, active, installed, problems)
    if spec is None:
        _check_raw_expressions(raw, problems)
        return None

    channels = tuple(spec.channels)
    queues = _compile_queues(spec, problems)
    workflow = _compile_workflow(spec, queues, problems)
    deployment = Deployment(
        source=label,
        plugins=tuple(active),
        channels=channels,
        queues=queues,
        workflow=workflow,
        sections=sections,
        raw=dict(raw),
    )
    if not any(problem.severity == "error" for problem in problems):
        problems.extend(checks.workflow_warnings(deployment))
        problems.extend(checks.channel_warnings(deployment))
        for plugin in active:
            try:
                found = plugin_registry.call_for(
                    plugin,
                    "omniroute_validate",
                    deployment=deployment,
                    section=sections.get(plugin),
                )
            except PluginError as error:
                problems.append(Problem(plugin, str(error)))
                continue
            problems.extend(found or ())
    return Deployment(
        source=label,
        plugins=deployment.plugins,
        channels=channels,
        queues=queues,
        workflow=workflow,
        sections=sections,
        warnings=tuple(problem for problem in problems if problem.severity != "error"),
        raw=dict(raw),
    )


def _check_plugin_list(value: Any, installed: list[str], problems: list[Problem]) -> list[str]:
    if not isinstance(value, (list, tuple)):
        return []
    active: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str):
            continue  # the converter reported it
        if name == plugin_registry.CORE_PLUGIN:
            problems.append(Problem(f"plugins[{index}]", "'core' is always active; leave it out"))
        elif (problem := plugin_registry.broken_problem(name, f"plugins[{index}]")) is not None:
            problems.append(problem)
        elif name not in installed:
            problems.append(
                Problem(
                    f"plugins[{index}]",
                    f"unknown plugin {name!r}{_suggest(name, installed)} (installed: {', '.join(installed) or 'none'})",
                )
            )
        elif name in active:
            problems.append(Problem(f"plugins[{index}]", f"plugin {name!r} is listed twice"))
        else:
            active.append(name)
    return active


def _structure_sections(
    raw: Mapping[str, Any], active: list[str], installed: list[str], problems: list[Problem]
) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for name in installed:
        if name in raw and name not in active:
            problems.append(
                Problem(
                    name,
                    f"section for plugin {name!r}, which is not in `plugins`: it has no effect",
                    "warning",
                )
            )
    for name in active:
        try:
            kind = plugin_registry.section_class(name)
        except PluginError as error:
            problems.append(Problem(name, str(error)))
            continue
        if kind is None:
            if name in raw:
                problems.append(Problem(name, f"plugin {name!r} reads no configuration section"))
            continue
        section, section_problems = structure(
            raw.get(name) if raw.get(name) is not None else {}, kind, prefix=name
        )
        problems.extend(section_problems)
        if section is not None:
            sections[name] = section
    return sections


def _compile(
    source: str,
    path: str,
    problems: list[Problem],
    default_root: str | None,
    roots: frozenset[str] | None = None,
) -> Any:
    try:
        expression = compile_expression(source, default_root=default_root)
    except ExpressionError as error:
        problems.append(Problem(path, str(error)))
        return None
    if roots is not None:
        stray = sorted(
            ref for ref in expression.references if ref.split(".")[0].split("[")[0] not in roots
        )
        if stray:
            problems.append(
                Problem(
                    path,
                    f"may only read {' and '.join(sorted(roots))}; it reads {', '.join(stray)}",
                )
            )
            return None
    return expression


def _check_raw_expressions(raw: Mapping[str, Any], problems: list[Problem]) -> None:
    """Compile what expressions can be found even when the shape is wrong elsewhere."""
    queues = raw.get("queues")
    if isinstance(queues, Mapping):
        for name, queue in queues.items():
            alone, _ = structure(queue, QueueSpec)
            if alone is not None:  # a sound queue: check its timed keys too
                timed_keys(str(name), alone, problems, _compile)
            if isinstance(queue, Mapping) and isinstance(queue.get("target_workers"), str):
                _compile(
                    queue["target_workers"],
                    key_path([name, "target_workers"], "queues"),
                    problems,
                    "worker",
                )
            steps = queue.get("steps") if isinstance(queue, Mapping) and alone is None else None
            for index, step in enumerate(steps if isinstance(steps, list) else []):
                if isinstance(step, Mapping) and isinstance(step.get("expression"), str):
                    path = key_path([name, "steps"], "queues") + f"[{index}].expression"
                    _compile(step["expression"], path, problems, "worker", STEP_ROOTS)
    workflow = raw.get("workflow")
    filters = workflow.get("filters") if isinstance(workflow, Mapping) else None
    for index, item in enumerate(filters if isinstance(filters, list) else []):
        if isinstance(item, Mapping) and isinstance(item.get("expression"), str):
            _compile(item["expression"], f"workflow.filters[{index}].expression", problems, "task")


def _compile_queues(spec: DeploymentSpec, problems: list[Problem]) -> dict[str, Queue]:
    queues = {}
    for name, queue in spec.queues.items():
        expression = _compile(
            queue.target_workers, key_path([name, "target_workers"], "queues"), problems, "worker"
        )
        timed = timed_keys(name, queue, problems, _compile)
        if expression is not None:
            queues[name] = Queue(
                name, expression, queue.task_order, queue.profile, queue.skill, **timed
            )
    return queues


def _compile_workflow(
    spec: DeploymentSpec, queues: dict[str, Queue], problems: list[Problem]
) -> Workflow | None:
    if spec.workflow is None:
        return None
    known = sorted(spec.queues)
    filters = [
        compiled
        for index, item in enumerate(spec.workflow.filters)
        if (compiled := _compile_filter(index, item, known, problems)) is not None
    ]
    default_queue = spec.workflow.default_queue
    if default_queue is not None and default_queue not in spec.queues:
        problems.append(
            Problem(
                "workflow.default_queue",
                f"unknown queue {default_queue!r}{_suggest(default_queue, known)}",
            )
        )
    if not spec.workflow.filters and default_queue is None:
        problems.append(
            Problem("workflow", "a workflow needs at least one filter or a default_queue")
        )
    return Workflow(tuple(filters), default_queue)


def _compile_filter(
    index: int, item: FilterSpec, known_queues: list[str], problems: list[Problem]
) -> WorkflowFilter | None:
    path = f"workflow.filters[{index}]"
    expression = _compile(item.expression, f"{path}.expression", problems, "task")
    if not item.targets:
        problems.append(Problem(f"{path}.targets", "a filter needs at least one target"))
    targets = []
    queue: str | None = None
    for position, target in enumerate(item.targets):
        where = f"{path}.targets[{position}]"
        if target.queue is not None:
            queue = target.queue
            if queue not in known_queues:
                problems.append(
                    Problem(
                        f"{where}.queue", f"unknown queue {queue!r}{_suggest(queue, known_queues)}"
                    )
                )
        elif queue is None:
            problems.append(
                Problem(
                    f"{where}.queue", "the first target must name a queue (later ones inherit it)"
                )
            )
        task_and_worker = frozenset({"task", "worker"})
        target_expression = (
            _compile(target.expression, f"{where}.expression", problems, None, task_and_worker)
            if target.expression is not None
            else None
        )
        skip_if = (
            _compile(target.skip_if, f"{where}.skip_if", problems, "workers")
            if target.skip_if is not None
            else None
        )
        order_by = None
        if target.order_by is not None:
            try:
                order_by = compile_order_by(target.order_by)
            except ExpressionError as error:
                problems.append(Problem(f"{where}.order_by", str(error)))
        if queue is not None:
            targets.append(
                Target(
                    filter_index=index,
                    index=position,
                    queue=queue,
                    expression=target_expression,
                    timeout=target.timeout,
                    priority=target.priority,
                    order_by=order_by,
                    skip_if=skip_if,
                    profile=target.profile,
                )
            )
    if expression is None:
        return None
    return WorkflowFilter(
        index, item.name or f"filter {index}", expression, tuple(targets), item.profile
    )
