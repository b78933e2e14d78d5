"""One strict cattrs converter for every file the project reads.

cattrs' defaults turn "false" into True, 2.9 into 2 and "abc" into ['a', 'b', 'c']; a
routing configuration must not. Numbers must be finite and in range. Problems come back
as `Problem`s with key paths (`workflow.filters[1].targets[0].timeout`) and "did you mean"
for misspelled keys, read from the structure of cattrs' exception groups, never from
their text.

Validators of a class run one by one when its `__init__` fails, so that a section with
three bad fields reports three problems; a validator or `__attrs_post_init__` can report
several at once by raising `ConfigProblems`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)

from .durations import parse_duration
from .errors import Problem
from .limits import MAX_INTEGER
from .spec import Duration, PositiveDuration

T = TypeVar("T")

PathPart = str | int


class ConfigProblems(ValueError):
    """Several problems of one value at once: (key path below the value, message) pairs.

    Raise it from an attrs validator or `__attrs_post_init__` of a config section to
    report every problem rather than the first; an empty path means the value itself.
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(message for _, message in self.problems))


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {describe(value)}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {describe(value)}")
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise ValueError(f"must be between -{MAX_INTEGER} and {MAX_INTEGER}, got {describe(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {describe(value)}")
    if isinstance(value, int) and not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise ValueError(f"must be between -{MAX_INTEGER} and {MAX_INTEGER}, got {describe(value)}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {describe(value)}")
    return value


def _duration(value: Any, _: type) -> float:
    return parse_duration(value)


def _positive_duration(value: Any, _: type) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {describe(value)}")
    return seconds


def describe(value: Any) -> str:
    """A short description of a value for a message: its kind, and its text when short."""
    kinds = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        type(None): "nothing",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"a whole number of {len(str(abs(value)))} digits" if abs(value) < 10**4000 else kind
    shown = repr(value)
    return f"{kind} {shown}" if len(shown) <= 40 else kind


_describe = describe


def _all_validators(validator: Any) -> list[Any]:
    """The validators of a field, an `and_` of several split into its parts."""
    if validator is None:
        return []
    parts = getattr(validator, "_validators", None)
    if parts is not None:
        return [single for part in parts for single in _all_validators(part)]
    return [validator]


def _noted(error: Exception, kind: type, field: Any) -> Exception:
    error.__notes__ = [
        AttributeValidationNote(
            f"Structuring class {kind.__qualname__} @ attribute {field.name}",
            field.name,
            field.type,
        )
    ]
    return error


def _constructor_errors(kind: type, value: Any, inner: Any, target: Any) -> list[Exception]:
    """Every validator of `kind` run on its own, once constructing it failed.

    The instance is built with validators switched off, then each validator runs and
    what each raises is kept. Empty when the failure was elsewhere (`__attrs_post_init__`).
    """
    try:
        with attrs.validators.disabled():
            instance = inner(value, target)
    except Exception:  # the post-init failed: its own error is the one to report
        return []
    found: list[Exception] = []
    for field in attrs.fields(kind):
        for validator in _all_validators(field.validator):
            try:
                validator(instance, field, getattr(instance, field.name))
            except (ValueError, TypeError) as error:
                found.append(_noted(error, kind, field))
    return found


def _remaining_field_errors(
    kind: type, value: Mapping[str, Any], failed: set[str], conv: cattrs.Converter
) -> list[Exception]:
    """The validators of the fields that did structure, when others did not.

    A validator that needs the whole instance cannot run without one; it is skipped.
    """
    found: list[Exception] = []
    for field in attrs.fields(kind):
        validators = _all_validators(field.validator)
        key = field.alias or field.name
        if field.name in failed or not validators or key not in value:
            continue
        try:
            structured = conv.structure(value[key], field.type)
        except Exception:  # noqa: S112 - reported by the first pass
            continue
        for validator in validators:
            try:
                validator(None, field, structured)
            except (ValueError, TypeError) as error:
                found.append(_noted(error, kind, field))
            except Exception:  # noqa: S112 - needs the instance
                continue
    return found


@cache
def converter() -> cattrs.Converter:
    result = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    result.register_structure_hook(str, _strict_str)
    result.register_structure_hook(int, _strict_int)
    result.register_structure_hook(float, _strict_float)
    result.register_structure_hook(bool, _strict_bool)
    result.register_structure_hook(Duration, _duration)
    result.register_structure_hook(PositiveDuration, _positive_duration)

    def sequence_factory(kind: Any, conv: cattrs.Converter) -> Any:
        if getattr(kind, "__origin__", kind) is tuple:
            inner = homogenous_tuple_structure_factory(kind, conv)
        else:
            inner = list_structure_factory(kind, conv)

        def structure(value: Any, target: Any) -> Any:
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
                raise TypeError(f"expected a list, got {describe(value)}")
            return inner(value, target)

        return structure

    def mapping_factory(kind: Any, conv: cattrs.Converter) -> Any:
        inner = mapping_structure_factory(kind, conv)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping, got {describe(value)}")
            return inner(value, target)

        return structure

    def attrs_factory(kind: Any, conv: cattrs.Converter) -> Any:
        inner = cattrs.gen.make_dict_structure_fn(kind, conv, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping, got {describe(value)}")
            try:
                return inner(value, target)
            except ClassValidationError as error:
                with_notes, _ = error.group_exceptions()
                if with_notes:
                    failed = {note.name for _, note in with_notes}
                    more = _remaining_field_errors(kind, value, failed, conv)
                else:
                    found = _constructor_errors(kind, value, inner, target)
                    if not found:
                        raise
                    raise ClassValidationError(error.message, found, kind) from None
                if not more:
                    raise
                raise ClassValidationError(
                    error.message, [*error.exceptions, *more], kind
                ) from None

        return structure

    result.register_structure_hook_factory(is_sequence, sequence_factory)
    result.register_structure_hook_factory(is_mapping, mapping_factory)
    result.register_structure_hook_factory(attrs.has, attrs_factory)
    return result


# --- problems, from the structure of cattrs' exception groups ----------------------------

_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_$-]+")


def key_path(parts: Iterable[PathPart], prefix: str = "") -> str:
    """`queues.sales.target_workers`, `filters[1]`; an odd key is quoted: `queues["x @ y"]`."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += "[" + _quote(part) + "]"
    return out


def _quote(key: str) -> str:
    shown = key if len(key) <= 60 else key[:57] + "..."
    escaped = shown.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


def _leaves(
    error: BaseException, path: tuple[PathPart, ...], kind: Any
) -> Iterator[tuple[tuple[PathPart, ...], BaseException, Any]]:
    """Every plain error inside a cattrs error, with its path and the type it was meant to be."""
    if isinstance(error, (ClassValidationError, IterableValidationError)):
        with_notes, without = error.group_exceptions()
        for inner, note in with_notes:
            part: Any = note.name if isinstance(error, ClassValidationError) else note.index  # type: ignore[union-attr]
            if not isinstance(part, (str, int)) or isinstance(part, bool):
                part = str(part)
            yield from _leaves(inner, (*path, part), note.type)
        for inner in without:
            yield from _leaves(inner, path, None)
    else:
        yield path, error, kind


def _problems_of(
    error: BaseException, kind: Any, path: tuple[PathPart, ...], prefix: str
) -> list[Problem]:
    where = key_path(path, prefix)
    if isinstance(error, ForbiddenExtraKeysError):
        known = [field.name for field in attrs.fields(error.cl)] if attrs.has(error.cl) else []
        problems = []
        for key in sorted(error.extra_fields, key=str):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f" (known: {', '.join(known)})"
                if known
                else ""
            )
            problems.append(Problem(key_path((*path, str(key)), prefix), f"unknown key{hint}"))
        return problems
    if isinstance(error, ConfigProblems):
        return [
            Problem(
                where + ("." + sub if sub and where and not sub.startswith("[") else sub),
                message,
            )
            for sub, message in error.problems
        ]
    if isinstance(error, KeyError):
        return [Problem(where, "required key is missing")]
    # a Literal, or an optional one (`Literal[...] | None`)
    literal = next((k for k in (kind, *get_args(kind)) if get_origin(k) is Literal), None)
    if literal is not None:
        choices = ", ".join(repr(choice) for choice in get_args(literal))
        return [Problem(where, f"must be one of {choices}, got {_offending(error)}")]
    if isinstance(error, (TypeError, ValueError)):
        return [Problem(where, str(error))]
    return [Problem(where, f"{type(error).__name__}: {error}")]


def _offending(error: BaseException) -> str:
    text = str(error)
    match = re.match(r"(.*) not in literal ", text, re.DOTALL)
    return repr(match.group(1)) if match else text


def structure(value: Any, kind: type[T], prefix: str = "") -> tuple[T | None, list[Problem]]:
    """Structure `value` into `kind`; on failure, None and every problem found."""
    try:
        return converter().structure(value, kind), []
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
        problems: list[Problem] = []
        for path, leaf, leaf_kind in _leaves(error, (), kind):
            problems += _problems_of(leaf, leaf_kind, path, prefix)
        return None, problems
    except RecursionError:
        return None, [Problem(prefix, "nested too deeply")]


# --- every problem, when the first ones would hide others -------------------------------

#: rounds of pruning before giving up; each round drops at least one part
_PRUNING_ROUNDS = 12


def structure_all(value: Any, kind: type[T], prefix: str = "") -> tuple[T | None, list[Problem]]:
    """Structure `value` into `kind`; on failure, structure what is left once each
    offending part is dropped, again and again, so that problems the first failure hid
    (a validator that never ran because a sibling key was unknown, say) are found too.

    Returns the structured object of what was left (for checks that read the rest of the
    section; never for routing), or None when nothing could be, and every problem found.
    A part that is dropped because it is wrong is not also reported as missing.
    """
    result, problems = structure(value, kind, prefix)
    if result is not None or not isinstance(value, Mapping):
        return result, problems
    pruned: Any = _plain_copy(value)
    dropped: set[tuple[PathPart, ...]] = set()
    seen = set(problems)
    for _ in range(_PRUNING_ROUNDS):
        try:
            return converter().structure(pruned, kind), problems
        except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
            leaves = list(_leaves(error, (), kind))
        except RecursionError:
            return None, problems
        progress = False
        for path, leaf, leaf_kind in leaves:
            if isinstance(leaf, KeyError) and path in dropped:
                path = path[:-1]  # a required part we dropped: drop what holds it
            else:
                for problem in _problems_of(leaf, leaf_kind, path, prefix):
                    if problem not in seen:
                        seen.add(problem)
                        problems.append(problem)
            targets = _offending_parts(pruned, path, leaf)
            for target in targets:
                progress |= _drop(pruned, target)
                dropped.add(target)
        if not progress:
            break
    return None, problems


def _offending_parts(
    data: Any, path: tuple[PathPart, ...], error: BaseException
) -> list[tuple[PathPart, ...]]:
    """What to drop for an error at `path`: the unknown keys, the entries of a mapping a
    validator named (`ConfigProblems` with keys of it), else the part itself."""
    if isinstance(error, ForbiddenExtraKeysError):
        return [(*path, key) for key in error.extra_fields]
    if isinstance(error, ConfigProblems):
        value = _at(data, path)
        keys = [sub for sub, _ in error.problems]
        if isinstance(value, Mapping) and keys and all(key in value for key in keys):
            return [(*path, key) for key in keys]
    return [path]


def _at(data: Any, path: tuple[PathPart, ...]) -> Any:
    for part in path:
        in_mapping = isinstance(data, Mapping) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_mapping or in_list):
            return None
        data = data[part]
    return data


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def _drop(data: Any, path: tuple[PathPart, ...]) -> bool:
    """Remove the part at `path`. A list element takes its whole list with it: dropping
    one element would shift the others, and their problems would name wrong indices."""
    parts = list(path)
    while parts and isinstance(parts[-1], int):
        parts.pop()
    if not parts:
        return False
    holder = _at(data, tuple(parts[:-1]))
    if isinstance(holder, dict) and parts[-1] in holder:
        del holder[parts[-1]]
        return True
    return False


def structure_each(
    value: Any, kind: type[T], prefix: str
) -> tuple[list[T | None] | None, list[Problem]]:
    """Structure a list one entry at a time (`structure_all` each), so that one bad entry
    neither hides the problems of the others nor keeps their checks from running.

    Returns one object (or None, when it could not be) per entry, aligned with the
    indices of the list, or None when `value` is not a list; and every problem found.
    """
    if not isinstance(value, list):
        return None, structure(value, tuple[kind, ...], prefix)[1]  # type: ignore[valid-type]
    entries: list[T | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(value):
        entry, found = structure_all(item, kind, f"{prefix}[{index}]")
        entries.append(entry)
        problems += found
    return entries, problems
