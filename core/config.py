"""Loading a deployment: a TOML, YAML or JSON file (or a mapping) into a `Deployment`.

Two passes, and every problem of both is reported at once: the strict converter checks
the shape; then expressions are compiled where they stand, and references between parts
(queues named by targets, plugins named in `plugins`) are checked.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from omniroute.grammar import ExpressionError, compile_expression, compile_order_by

from . import checks
from . import plugins as plugin_registry
from .converter import key_path, structure
from .errors import DeploymentError, PluginError, Problem
from .limits import MAX_FILE_BYTES, MAX_INTEGER, MAX_NESTING
from .spec import (
    Deployment,
    DeploymentSpec,
    FilterSpec,
    Queue,
    Target,
    Workflow,
    WorkflowFilter,
)

CORE_KEYS = ("plugins", "channels", "queues", "workflow")


# --- reading files ----------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (plain YAML keeps the last).

    Merge keys (`<<: *base`) work: a key the mapping gives itself overrides a merged one,
    as YAML says; only keys the mapping gives twice itself are refused. A constructor that
    fails in any way (a date of 2026-02-30, an integer of 5,000 digits, a list as a key)
    becomes a YAML error at the node's line and column.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except RecursionError:
            raise
        except Exception as error:
            raise yaml.constructor.ConstructorError(
                None, None, _short(str(error) or type(error).__name__), node.start_mark
            ) from None


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def _construct_mapping(
    loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        mark = key_node.start_mark
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be text or a number, not {type(key).__name__}",
                mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {_short(repr(key))} is given twice (line {mark.line + 1})", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {_short(repr(key))} is given twice")
        result[key] = value
    return result


def check_data(raw: Any, prefix: str = "") -> list[Problem]:
    """What no file may hold, wherever it is: NaN or infinity, a whole number beyond
    ±MAX_INTEGER, nesting deeper than MAX_NESTING. Each problem has its key path.

    Iterative, and each list or mapping is visited once even when YAML aliases share it.
    """
    problems: list[Problem] = []
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(raw, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(
                Problem(key_path(path, prefix), f"expected a finite number, got {value!r}")
            )
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_INTEGER <= value <= MAX_INTEGER:
                problems.append(
                    Problem(
                        key_path(path, prefix),
                        f"a whole number must be between -{MAX_INTEGER} and {MAX_INTEGER}",
                    )
                )
        elif isinstance(value, (Mapping, list, tuple)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if len(path) >= MAX_NESTING:
                problems.append(
                    Problem(key_path(path, prefix), f"nests deeper than {MAX_NESTING} levels")
                )
                continue
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for key, item in items:
                part = (
                    key if isinstance(key, (int, str)) and not isinstance(key, bool) else str(key)
                )
                stack.append((item, (*path, part)))
        if len(problems) >= 100:
            problems.append(Problem(prefix, "more than 100 problems; stopped looking"))
            break
    problems.sort(key=lambda problem: problem.path)
    return problems


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise DeploymentError(
            str(path), [Problem("", f"cannot read the file: {error.strerror or error}")]
        ) from error
    if len(data) > MAX_FILE_BYTES:
        raise DeploymentError(
            str(path),
            [Problem("", f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")],
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        raise DeploymentError(
            str(path),
            [
                Problem(
                    "",
                    f"not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column {column}"
                    " (save the file as UTF-8)",
                )
            ],
        ) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def read_mapping_file(path: Path) -> Any:
    """The data in a TOML, YAML or JSON file, chosen by extension; errors name the file.

    Whatever the bytes, the outcome is the data or a DeploymentError: unreadable, too big,
    not UTF-8, not valid syntax, too deep, or holding a number no file may hold.
    """
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise DeploymentError(
            str(path),
            [Problem("", f"unknown file type {suffix!r}; use .toml, .yaml, .yml or .json")],
        )
    text = _read_text(path)
    try:
        data = _parse(text, suffix)
    except DeploymentError as error:
        raise DeploymentError(str(path), error.problems) from None
    problems = check_data(data)
    if problems:
        raise DeploymentError(str(path), problems)
    return data


def _parse(text: str, suffix: str) -> Any:
    """Parse `text` as its suffix says; any failure is a DeploymentError without a file name."""
    kind = {".toml": "TOML", ".json": "JSON"}.get(suffix, "YAML")
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_json_object)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        message = f"nests too deeply (the limit is {MAX_NESTING} levels)"
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        message = f"{problem}{where}"
    except json.JSONDecodeError as error:
        message = f"{error.msg} (line {error.lineno}, column {error.colno})"
    except tomllib.TOMLDecodeError as error:
        message = str(error)
    except Exception as error:  # a parser's own limits: huge integers, odd values
        message = _short(str(error) or type(error).__name__)
    raise DeploymentError("", [Problem("", f"not valid {kind}: {message}")])


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
            if isinstance(queue, Mapping) and isinstance(queue.get("target_workers"), str):
                _compile(
                    queue["target_workers"],
                    key_path([name, "target_workers"], "queues"),
                    problems,
                    "worker",
                )
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
        if expression is not None:
            queues[name] = Queue(name, expression, queue.task_order, queue.profile, queue.skill)
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
