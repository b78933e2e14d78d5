"""One strict cattrs converter for every file the project reads.

cattrs' defaults turn "false" into True, 2.9 into 2 and "abc" into ['a', 'b', 'c']; a
routing configuration must not. Problems come back as `Problem`s with dotted key paths
(`workflow.filters[1].targets[0].timeout`) and "did you mean" for misspelled keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.errors import ForbiddenExtraKeysError

from .durations import parse_duration
from .errors import Problem
from .spec import Duration

T = TypeVar("T")


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {_describe(value)}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {_describe(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {_describe(value)}")
    return float(value)


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_describe(value)}")
    return value


def _duration(value: Any, _: type) -> float:
    return parse_duration(value)


def _describe(value: Any) -> str:
    kinds = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        type(None): "nothing",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown}" if len(shown) <= 40 else kind


@cache
def converter() -> cattrs.Converter:
    result = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    result.register_structure_hook(str, _strict_str)
    result.register_structure_hook(int, _strict_int)
    result.register_structure_hook(float, _strict_float)
    result.register_structure_hook(bool, _strict_bool)
    result.register_structure_hook(Duration, _duration)

    def sequence_factory(kind: Any, conv: cattrs.Converter) -> Any:
        if getattr(kind, "__origin__", kind) is tuple:
            inner = homogenous_tuple_structure_factory(kind, conv)
        else:
            inner = list_structure_factory(kind, conv)

        def structure(value: Any, target: Any) -> Any:
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
                raise TypeError(f"expected a list, got {_describe(value)}")
            return inner(value, target)

        return structure

    def mapping_factory(kind: Any, conv: cattrs.Converter) -> Any:
        inner = mapping_structure_factory(kind, conv)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping, got {_describe(value)}")
            return inner(value, target)

        return structure

    def attrs_factory(kind: Any, conv: cattrs.Converter) -> Any:
        inner = cattrs.gen.make_dict_structure_fn(kind, conv, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping, got {_describe(value)}")
            return inner(value, target)

        return structure

    result.register_structure_hook_factory(is_sequence, sequence_factory)
    result.register_structure_hook_factory(is_mapping, mapping_factory)
    result.register_structure_hook_factory(attrs.has, attrs_factory)
    return result


_LITERAL_MISMATCH = re.compile(r"(.*) not in literal ")
_SUBSCRIPT = re.compile(r"\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


def _dotted(path: str, prefix: str) -> str:
    """cattrs' `.queues['sales'].x` as `queues.sales.x`, below `prefix`."""
    path = _SUBSCRIPT.sub(
        lambda m: "." + (m.group(1) if m.group(1) is not None else m.group(2)), path
    )
    path = path.lstrip(".")
    if prefix and path:
        return f"{prefix}.{path}" if not path.startswith("[") else prefix + path
    return prefix or path


def _unknown_keys(error: ForbiddenExtraKeysError) -> list[str]:
    known = [field.name for field in attrs.fields(error.cl)] if attrs.has(error.cl) else []
    messages = []
    for key in sorted(error.extra_fields):
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f" (known: {', '.join(known)})"
            if known
            else ""
        )
        messages.append(f"\0{key}\0unknown key{hint}")
    return messages


def _format(error: BaseException, kind: type | None) -> str:
    if isinstance(error, ForbiddenExtraKeysError):
        return "\n".join(_unknown_keys(error))
    if isinstance(error, KeyError):
        return "required key is missing"
    text = str(error)
    literal = _LITERAL_MISMATCH.match(text)
    if literal:
        choices = ", ".join(repr(choice) for choice in getattr(kind, "__args__", ()))
        return f"must be one of {choices}, got {literal.group(1)!r}"
    if isinstance(error, (TypeError, ValueError)):
        return text
    return f"{type(error).__name__}: {error}"


def structure(value: Any, kind: type[T], prefix: str = "") -> tuple[T | None, list[Problem]]:
    """Structure `value` into `kind`; on failure, None and every problem found."""
    try:
        return converter().structure(value, kind), []
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
        if not isinstance(error, cattrs.BaseValidationError):
            return None, [Problem(prefix, _format(error, kind))]
        problems = []
        for line in cattrs.transform_error(error, path="", format_exception=_format):
            message, _, where = line.rpartition(" @ ")
            path = _dotted(where, prefix)
            for part in message.split("\n"):
                if part.startswith("\0"):
                    _, key, text = part.split("\0")
                    problems.append(Problem(f"{path}.{key}" if path else key, text))
                elif part == "required key is missing":
                    problems.append(Problem(path, "required key is missing"))
                else:
                    problems.append(Problem(path, part))
        return None, problems
