"""Reading a TOML, YAML or JSON file into data, and checking data any file may hold.

Whatever the bytes, the outcome is the data or a `DeploymentError` naming the file and
the problem: unreadable, too big, not UTF-8, not valid syntax, too deep, or holding a
number no file may hold (`check_data`, which also runs on mappings given directly).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .converter import key_path
from .errors import DeploymentError, Problem
from .limits import MAX_FILE_BYTES, MAX_INTEGER, MAX_NESTING


class _UniqueKeys(yaml.constructor.SafeConstructor):
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


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser: the one whose error messages users see."""


#: libyaml's parser, where PyYAML was built with it: twice as fast on a 10,000-agent
#: roster. It only reads files that parse; anything it refuses is parsed again by
#: `_UniqueKeyLoader`, so that errors read as they always have.
_FastUniqueKeyLoader: type[yaml.CSafeLoader] | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _FastUniqueKeyLoader(_UniqueKeys, yaml.CSafeLoader):  # type: ignore[no-redef]
        pass


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def _construct_mapping(
    loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.MappingNode, deep: bool = False
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
if _FastUniqueKeyLoader is not None:
    _FastUniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
    )


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
    # (value, the path of its container, its key there): a path is made only for a
    # container or a problem, not for each of the 100,000 values of a large roster.
    stack: list[tuple[Any, tuple[str | int, ...], str | int | None]] = [(raw, (), None)]
    while stack:
        value, parent, key = stack.pop()
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is float or (kind is not int and isinstance(value, float)):
            if not math.isfinite(value):
                problems.append(
                    Problem(
                        key_path(_join(parent, key), prefix),
                        f"expected a finite number, got {value!r}",
                    )
                )
        elif kind is int or (isinstance(value, int) and not isinstance(value, bool)):
            if not -MAX_INTEGER <= value <= MAX_INTEGER:
                problems.append(
                    Problem(
                        key_path(_join(parent, key), prefix),
                        f"a whole number must be between -{MAX_INTEGER} and {MAX_INTEGER}",
                    )
                )
        elif kind is dict or kind is list or isinstance(value, (Mapping, list, tuple)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            path = _join(parent, key)
            if len(path) >= MAX_NESTING:
                problems.append(
                    Problem(key_path(path, prefix), f"nests deeper than {MAX_NESTING} levels")
                )
                continue
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for part, item in items:
                if not (type(part) is str or type(part) is int):
                    part = (
                        part
                        if isinstance(part, (int, str)) and not isinstance(part, bool)
                        else str(part)
                    )
                stack.append((item, path, part))
        if len(problems) >= 100:
            problems.append(Problem(prefix, "more than 100 problems; stopped looking"))
            break
    problems.sort(key=lambda problem: problem.path)
    return problems


def _join(parent: tuple[str | int, ...], key: str | int | None) -> tuple[str | int, ...]:
    return parent if key is None else (*parent, key)


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
        if _FastUniqueKeyLoader is not None:
            try:
                return yaml.load(text, Loader=_FastUniqueKeyLoader)  # noqa: S506 - CSafeLoader
            except Exception:  # noqa: S110 - the parse below says what is wrong
                pass
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        message = f"nests deeper than {MAX_NESTING} levels"
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
