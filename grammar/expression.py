"""Compiled expressions and order-by clauses: the objects callers hold on to."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import attrs

from . import semantics
from .compiler import KNOWN_ROOTS, Evaluator, build_evaluator, references_of, resolve_references
from .errors import ExpressionError
from .nodes import Reference
from .parser import parse_condition, parse_order_by


@attrs.frozen(slots=True, eq=False)
class Expression:
    """A compiled boolean expression.

    `evaluate(context)` returns True or False for any JSON-like mapping and never raises.
    `references` holds the attribute paths it reads, after the default root was applied.
    """

    source: str
    default_root: str | None
    references: frozenset[str]
    evaluate: Evaluator = attrs.field(repr=False)
    #: The same answer by the reference semantics alone: what `evaluate` falls back to.
    evaluate_safely: Evaluator = attrs.field(repr=False)
    python_source: str = attrs.field(repr=False)
    #: The names a reference may start with (TaskRouter's unless the caller named others).
    roots: frozenset[str] = KNOWN_ROOTS

    def __call__(self, context: Mapping[str, Any]) -> bool:
        return self.evaluate(context)


# What the grammar reads as a name, less the words it reads as something else.
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_RESERVED = frozenset({"and", "or", "not", "in", "has", "contains", "true", "false", "null"})
_RESERVED_IN_ORDER_BY = frozenset({"asc", "desc"})
MAX_ROOTS = 256


def _check_roots(roots: Iterable[str] | None) -> frozenset[str]:
    """The roots a caller named, each one a name an expression can spell."""
    if roots is None:
        return KNOWN_ROOTS
    if isinstance(roots, str):
        raise TypeError(f"roots must be a collection of names, such as [{roots!r}], not a string")
    checked = frozenset(roots)
    if len(checked) > MAX_ROOTS:
        raise ValueError(f"roots: at most {MAX_ROOTS} names, got {len(checked)}")
    for root in sorted(checked, key=repr):
        if not isinstance(root, str) or _NAME.fullmatch(root) is None:
            raise ValueError(
                f"roots: {root!r} is not a name an expression can spell "
                "(letters, digits, _ and $, not starting with a digit)"
            )
        if root.lower() in _RESERVED | _RESERVED_IN_ORDER_BY:
            raise ValueError(f"roots: {root!r} is a keyword of the language, not a name")
    return checked


def _check_default_root(default_root: str | None, roots: frozenset[str]) -> None:
    if default_root is not None and default_root not in roots:
        raise ValueError(
            f"default_root must be one of {', '.join(sorted(roots)) or '(no roots)'}, "
            f"not {default_root!r}"
        )


def compile_expression(
    source: str, default_root: str | None = None, *, roots: Iterable[str] | None = None
) -> Expression:
    """Compile `source` once; later calls with the same text and roots return the same object.

    `roots` names what a reference may start with: `roots={"customer", "order"}` lets
    `customer.tier == "gold"` compile. By default they are TaskRouter's (`task`,
    `worker`, `workers`, `taskrouter`). `default_root`, if given, must be one of them.

    Raises ExpressionSyntaxError (line, column, expected tokens, a caret in `str()`) for
    text that is not an expression, and ExpressionError for a bare reference without a
    default root or a size limit exceeded; ValueError for roots that are not names.
    """
    known = _check_roots(roots)
    _check_default_root(default_root, known)
    return _compile_cached(source, default_root, known)


@lru_cache(maxsize=8192)
def _compile_cached(source: str, default_root: str | None, roots: frozenset[str]) -> Expression:
    node = resolve_references(parse_condition(source), default_root, source, roots)
    evaluate, evaluate_safely, python_source = build_evaluator(node, source)
    return Expression(
        source, default_root, references_of(node), evaluate, evaluate_safely, python_source, roots
    )


@attrs.frozen(slots=True, order=False)
class _Descending:
    """Reverses the order of the value it wraps, for DESC clauses on strings."""

    value: Any

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)


# A present value sorts before a missing one in both directions; across kinds, numbers
# come before strings before booleans so that the key is a total order.
_MISSING = (1, 0, 0)


def _clause_key(
    getter: Callable[[Mapping[str, Any]], Any], descending: bool
) -> Callable[[Any], Any]:
    def key(context: Mapping[str, Any]) -> tuple[int, int, Any]:
        value = getter(context)
        if isinstance(value, bool):
            return (0, 2, -int(value) if descending else int(value))
        if semantics.is_number(value) and value == value:  # NaN has no place: missing
            return (0, 0, -value if descending else value)
        if isinstance(value, str):
            return (0, 1, _Descending(value) if descending else value)
        return _MISSING

    return key


def _getter(reference: Reference) -> Callable[[Mapping[str, Any]], Any]:
    path = reference.path

    def get(context: Mapping[str, Any]) -> Any:
        value: Any = context
        for part in path:
            value = (
                semantics.index(value, part)
                if isinstance(part, int)
                else semantics.get(value, part)
            )
            if value is None:
                return None
        return value

    return get


@attrs.frozen(slots=True, eq=False)
class OrderBy:
    """A compiled `order_by`: `key(context)` sorts agents as the clauses say.

    An agent whose value is missing (or null, NaN, an array or an object) sorts after
    every agent that has one, in both directions; ties fall to the next clause.
    """

    source: str
    clauses: tuple[tuple[str, bool], ...]
    references: frozenset[str]
    _keys: tuple[Callable[[Mapping[str, Any]], Any], ...] = attrs.field(repr=False)

    def key(self, context: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(clause_key(context) for clause_key in self._keys)


def compile_order_by(
    source: str, default_root: str | None = None, *, roots: Iterable[str] | None = None
) -> OrderBy:
    """Compile an `order_by` such as `worker.level DESC, worker.idle ASC`; `roots` and
    `default_root` as for `compile_expression`."""
    known = _check_roots(roots)
    _check_default_root(default_root, known)
    return _compile_order_by_cached(source, default_root, known)


@lru_cache(maxsize=1024)
def _compile_order_by_cached(
    source: str, default_root: str | None, roots: frozenset[str]
) -> OrderBy:
    clauses = []
    for clause in parse_order_by(source):
        reference = clause.reference
        if reference.path[0] not in roots:
            if default_root is None:
                example = "worker" if roots == KNOWN_ROOTS else min(roots, default="ROOT")
                raise ExpressionError(
                    f"{reference.text!r} names no root; write {example}.{reference.text}",
                    source,
                    reference.line,
                    reference.column,
                )
            reference = Reference((default_root, *reference.path), reference.line, reference.column)
        clauses.append((reference, clause.descending))
    return OrderBy(
        source,
        tuple((reference.text, descending) for reference, descending in clauses),
        frozenset(reference.text for reference, _ in clauses),
        tuple(_clause_key(_getter(reference), descending) for reference, descending in clauses),
    )
