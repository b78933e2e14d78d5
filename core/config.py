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

import attrs

from omniroute.grammar import ExpressionError, compile_expression, compile_order_by

from . import checks
from . import plugins as plugin_registry
from .converter import key_path, structure, structure_all
from .errors import DeploymentError, PluginError, Problem
from .files import check_data, read_mapping_file
from .offer_policy import offer_warnings
from .options import MIN_RESERVATION_TIMEOUT
from .spec import (
    ChannelSettings,
    Deployment,
    DeploymentSpec,
    FilterSpec,
    OfferPolicy,
    OfferSpec,
    Queue,
    QueueSpec,
    Target,
    Workflow,
    WorkflowFilter,
)
from .timed_config import STEP_ROOTS, timed_keys

__all__ = ["CORE_KEYS", "check_data", "load_deployment", "read_mapping_file"]

CORE_KEYS = ("plugins", "channels", "queues", "workflow", "service_level")


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
    # Every problem of a file at once: what is wrong is dropped and the rest checked on,
    # so that one bad key cannot hide the problems of its neighbours.
    spec, shape_problems = structure_all(
        {key: raw[key] for key in CORE_KEYS if key in raw}, DeploymentSpec
    )
    problems += shape_problems

    active = _check_plugin_list(raw.get("plugins"), installed, problems)
    sections, partial = _structure_sections(raw, active, installed, problems)
    if spec is None:
        _check_raw_expressions(raw, problems)
        return None

    channels = tuple(spec.channels)
    channel_settings = _compile_channels(spec, problems)
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
        channel_settings=channel_settings,
        service_level=spec.service_level,
    )
    wrong = any(problem.severity == "error" for problem in problems)
    checked = _with_placeholders(deployment, spec) if wrong else deployment
    problems.extend(checks.workflow_warnings(checked))
    problems.extend(checks.channel_warnings(checked))
    problems.extend(offer_warnings(queue.offer for queue in queues.values()))
    for plugin in active:
        if plugin not in sections and plugin not in partial:
            continue  # nothing of its section could be read: its problems are listed
        try:
            found = list(
                plugin_registry.call_for(
                    plugin,
                    "omniroute_validate",
                    deployment=checked,
                    section=sections.get(plugin, partial.get(plugin)),
                )
                or ()
            )
        except PluginError as error:
            if not wrong:  # on a file already wrong, a plugin's check may trip on it
                problems.append(Problem(plugin, str(error)))
            continue
        problems.extend(found)
    return Deployment(
        source=label,
        plugins=deployment.plugins,
        channels=channels,
        queues=queues,
        workflow=workflow,
        sections=sections,
        warnings=tuple(problem for problem in problems if problem.severity != "error"),
        raw=dict(raw),
        channel_settings=channel_settings,
        service_level=spec.service_level,
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


def _with_placeholders(deployment: Deployment, spec: DeploymentSpec) -> Deployment:
    """The deployment for the checks of a file that has errors: a queue whose expression
    did not compile is still there (it matches nobody), so that checks of the other parts
    do not call it unknown."""
    missing = [name for name in spec.queues if name not in deployment.queues]
    if not missing:
        return deployment
    nobody = compile_expression("1 == 0", default_root="worker")
    queues = dict(deployment.queues)
    for name in missing:
        queue = spec.queues[name]
        queues[name] = Queue(name, nobody, queue.task_order, queue.profile, queue.skill)
    return attrs.evolve(deployment, queues=queues)


def _structure_sections(
    raw: Mapping[str, Any], active: list[str], installed: list[str], problems: list[Problem]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plugins' sections, and for those with problems what could be read of them
    once the wrong parts were dropped (for the plugins' checks, not for routing)."""
    sections: dict[str, Any] = {}
    partial: dict[str, Any] = {}
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
        section, section_problems = structure_all(
            raw.get(name) if raw.get(name) is not None else {}, kind, prefix=name
        )
        problems.extend(section_problems)
        if section is not None:
            (partial if section_problems else sections)[name] = section
    return sections, partial


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
    for part in ("channels", "queues"):
        items = raw.get(part)
        for name, item in items.items() if isinstance(items, Mapping) else ():
            offer = item.get("offer") if isinstance(item, Mapping) else None
            answer = offer.get("auto_answer") if isinstance(offer, Mapping) else None
            if answer is not None and not isinstance(answer, (bool, str)):
                problems.append(
                    Problem(
                        key_path([name, "offer", "auto_answer"], part),
                        "expected true, false or an expression over task and worker",
                    )
                )
            elif isinstance(answer, str):
                path = key_path([name, "offer", "auto_answer"], part)
                _compile(answer, path, problems, None, frozenset({"task", "worker"}))
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
        offer = _compile_offer(queue.offer, key_path([name, "offer"], "queues"), problems)
        timed = timed_keys(name, queue, problems, _compile)
        if expression is not None:
            queues[name] = Queue(
                name,
                expression,
                queue.task_order,
                queue.profile,
                queue.skill,
                wrap_up=queue.wrap_up,
                offer=offer,
                service_level=queue.service_level,
                **timed,
            )
    return queues


def _compile_channels(spec: DeploymentSpec, problems: list[Problem]) -> dict[str, ChannelSettings]:
    """The channels that set keys of their own (wrap_up, offer)."""
    settings = {}
    for name, channel in spec.channels.items():
        offer = _compile_offer(channel.offer, key_path([name, "offer"], "channels"), problems)
        if channel.wrap_up is not None or offer is not None:
            settings[name] = ChannelSettings(name, channel.wrap_up, offer)
    return settings


def _compile_offer(
    spec: OfferSpec | None, path: str, problems: list[Problem]
) -> OfferPolicy | None:
    """An `offer` mapping of a channel or a queue (docs/offer-policy.md)."""
    if spec is None:
        return None
    if spec.timeout is not None and spec.timeout < MIN_RESERVATION_TIMEOUT:
        problems.append(
            Problem(
                f"{path}.timeout",
                f"must be at least {MIN_RESERVATION_TIMEOUT:g} s, got {spec.timeout:g}",
            )
        )
    auto_answer: Any = spec.auto_answer
    if isinstance(auto_answer, str):
        auto_answer = _compile(
            auto_answer, f"{path}.auto_answer", problems, None, frozenset({"task", "worker"})
        )
    elif auto_answer is not None and not isinstance(auto_answer, bool):
        problems.append(
            Problem(
                f"{path}.auto_answer", "expected true, false or an expression over task and worker"
            )
        )
        auto_answer = None
    return OfferPolicy(path, spec.timeout, spec.on_timeout, auto_answer)


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
