"""Syntax tree to Python: each expression becomes two generated functions.

The *fast* function inlines the common cases (a reference compared with a literal, list
membership, `.get` chains through mappings). Every inline form is written so that on
any JSON-like context it either returns exactly what `semantics` would, or raises
AttributeError, TypeError or KeyError (a missing root or intermediate mapping, a null
or a string where a mapping was expected, an unhashable value tested against a set);
the fast function then hands the context to the *safe* function, which calls only the
`semantics` functions and never raises.

Generated text is assembled from validated pieces only: attribute names and scalar
literals go through `repr()`, arrays become named constants, and the operator spellings
come from a fixed table. The text is registered with `linecache` so tracebacks show it.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Mapping
from typing import Any

from . import semantics
from .errors import ExpressionError
from .nodes import And, Compare, Condition, Literal, Not, Operand, Or, Reference, Truth

KNOWN_ROOTS = frozenset({"task", "worker", "workers", "taskrouter"})
"""The roots of TaskRouter's expressions: what `compile_expression` knows unless told."""

Evaluator = Callable[[Mapping[str, Any]], bool]

_FUNCTION_OF = {
    "==": "equal",
    "!=": "not_equal",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "contains": "contains",
    "has": "has",
    "in": "in_",
    "not_in": "not_in",
}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_PYTHON_ORDERING = {"<", "<=", ">", ">="}
_compiled_count = itertools.count()


def resolve_references(
    node: Condition,
    default_root: str | None,
    source: str,
    roots: frozenset[str] = KNOWN_ROOTS,
) -> Condition:
    """Put the default root in front of bare references; refuse them without one."""

    def operand(item: Operand) -> Operand:
        if isinstance(item, Literal) or item.path[0] in roots:
            return item
        if default_root is None:
            ordered = sorted(roots)
            hint = (
                f"write task.{item.text} or worker.{item.text}"
                if roots == KNOWN_ROOTS
                else f"write {ordered[0]}.{item.text}"
                if ordered
                else "give a default root"
            )
            raise ExpressionError(
                f"{item.text!r} names no root; {hint}"
                f" (known roots: {', '.join(ordered) or 'none'})",
                source,
                item.line,
                item.column,
            )
        return Reference((default_root, *item.path), item.line, item.column)

    def condition(item: Condition) -> Condition:
        if isinstance(item, Compare):
            return Compare(item.op, operand(item.left), operand(item.right), item.depth)
        if isinstance(item, Truth):
            return Truth(operand(item.operand), item.depth)
        if isinstance(item, Not):
            return Not(condition(item.operand), item.depth)
        parts = tuple(condition(part) for part in item.operands)
        return And(parts, item.depth) if isinstance(item, And) else Or(parts, item.depth)

    return condition(node)


def references_of(node: Condition) -> frozenset[str]:
    found: set[str] = set()

    def walk(item: Condition | Operand) -> None:
        if isinstance(item, Reference):
            found.add(item.text)
        elif isinstance(item, Compare):
            walk(item.left)
            walk(item.right)
        elif isinstance(item, (Truth, Not)):
            walk(item.operand)
        elif isinstance(item, (And, Or)):
            for part in item.operands:
                walk(part)

    walk(node)
    return frozenset(found)


def _is_plain_number(value: Any) -> bool:
    return semantics.is_number(value)


def _membership_by_python_in_is_exact(value: Any) -> bool:
    """True when `value in some_list` (Python's ==) agrees with the language's `HAS`.

    Python's `==` differs from ours only where a bool meets 0 or 1, so strings and
    numbers other than 0 and 1 are safe.
    """
    if isinstance(value, str):
        return True
    return _is_plain_number(value) and value != 0 and value != 1


class _Emitter:
    """Writes the Python text of one expression, fast or safe flavour."""

    def __init__(self, fast: bool, constants: dict[str, Any]) -> None:
        self.fast = fast
        self.constants = constants
        self.temporaries = itertools.count()
        # Root name -> the local variable that holds it. Variables are numbered, not named
        # after the root: a caller's root may be any expression name, `$` included.
        self.roots: dict[str, str] = {}

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def temporary(self) -> str:
        return f"_v{next(self.temporaries)}"

    # --- operands ----------------------------------------------------------------------

    def operand(self, item: Operand) -> str:
        if isinstance(item, Literal):
            return self.literal(item.value)
        return self.reference(item)

    def literal(self, value: Any) -> str:
        if isinstance(value, list):
            return self.constant(tuple(value))
        return repr(value)

    def reference(self, item: Reference) -> str:
        root, *rest = item.path
        if not rest:
            return f"ctx.get({root!r})" if self.fast else f"get(ctx, {root!r})"
        if not self.fast:
            code = f"get(ctx, {root!r})"
            for part in rest:
                code = (
                    f"index({code}, {part})" if isinstance(part, int) else f"get({code}, {part!r})"
                )
            return code
        code = self.roots.setdefault(str(root), f"_root{len(self.roots)}")
        for position, part in enumerate(rest):
            next_is_name = position + 1 < len(rest) and isinstance(rest[position + 1], str)
            if isinstance(part, int):
                code = f"index({code}, {part})"
            elif code.startswith(("index(", "get(")):
                code = f"get({code}, {part!r})"
            else:
                # Intermediate mappings are nearly always there; a missing one raises
                # KeyError and takes the safe path. Leaves are often missing: `.get`.
                code = f"{code}[{part!r}]" if next_is_name else f"{code}.get({part!r})"
        return code

    # --- conditions --------------------------------------------------------------------

    def condition(self, item: Condition) -> str:
        if isinstance(item, And):
            return "(" + " and ".join(self.condition(part) for part in item.operands) + ")"
        if isinstance(item, Or):
            return "(" + " or ".join(self.condition(part) for part in item.operands) + ")"
        if isinstance(item, Not):
            return f"(not {self.condition(item.operand)})"
        if isinstance(item, Truth):
            if isinstance(item.operand, Literal):
                return repr(semantics.truth(item.operand.value))
            return f"({self.operand(item.operand)} is True)"
        return self.compare(item)

    def compare(self, item: Compare) -> str:
        left, op, right = item.left, item.op, item.right
        if isinstance(left, Literal) and isinstance(right, Literal):
            return repr(semantics.OPERATORS[op](left.value, right.value))
        if self.fast:
            inline = self.inline_compare(left, op, right)
            if inline is not None:
                return inline
        return f"{_FUNCTION_OF[op]}({self.operand(left)}, {self.operand(right)})"

    def inline_compare(self, left: Operand, op: str, right: Operand) -> str | None:
        """A faster exact form, or None when only the semantics function will do."""
        if isinstance(left, Literal) and op in _MIRRORED:
            left, op, right = right, _MIRRORED[op], left
        elif isinstance(left, Literal) and op == "in" and not isinstance(left.value, list):
            left, op, right = right, "has", left
        elif isinstance(left, Literal) and op == "has" and isinstance(left.value, list):
            left, op, right = right, "in", left
        if isinstance(right, Literal):
            return self.compare_with_literal(self.operand(left), op, right.value)
        if op == "in" and isinstance(left, Reference):
            item, array = self.temporary(), self.temporary()
            return (
                f"({item} in {array} if (({array} := {self.operand(right)}).__class__ is list)"
                f" & (({item} := {self.operand(left)}).__class__ is str)"
                f" else in_({item}, {array}))"
            )
        return None

    def compare_with_literal(self, value_code: str, op: str, literal: Any) -> str | None:
        v = self.temporary()
        if op == "==":
            if literal is None or isinstance(literal, bool):
                return f"({value_code} is {literal!r})"
            if _membership_by_python_in_is_exact(literal):
                return f"({value_code} == {literal!r})"
            return None
        if op == "!=":
            if literal is None:
                return f"({value_code} is not None)"
            if isinstance(literal, str):
                return f"({v} != {literal!r} if ({v} := {value_code}).__class__ is str else not_equal({v}, {literal!r}))"
            if _is_plain_number(literal):
                return f"({v} != {literal!r} if ({v} := {value_code}).__class__ is int else not_equal({v}, {literal!r}))"
            return None
        if op in _PYTHON_ORDERING:
            if isinstance(literal, str) or _is_plain_number(literal):
                kind = "str" if isinstance(literal, str) else "int"
                return (
                    # A missing attribute (None) is common and never ordered: decide it inline.
                    f"({v} {op} {literal!r} if ({v} := {value_code}).__class__ is {kind}"
                    f" else {v} is not None and {_FUNCTION_OF[op]}({v}, {literal!r}))"
                )
            return "False"
        if op == "contains":
            if isinstance(literal, str):
                return f"(({v} := {value_code}).__class__ is str and {literal!r} in {v})"
            return "False"
        if op == "has" and _membership_by_python_in_is_exact(literal):
            return f"({literal!r} in {v} if ({v} := {value_code}).__class__ is list else has({v}, {literal!r}))"
        if op in ("in", "not_in"):
            if not isinstance(literal, list):
                return "False"
            if all(isinstance(element, str) for element in literal):
                # A frozenset probe; an unhashable value raises TypeError and takes the
                # safe path, where it is correctly not found.
                members = self.constant(frozenset(literal))
                return f"({value_code} {'in' if op == 'in' else 'not in'} {members})"
        return None


_HELPERS: dict[str, Any] = {
    name: getattr(semantics, name)
    for name in ("get", "index", "truth", *sorted(set(_FUNCTION_OF.values())))
}


def _register_source(text: str, label: str) -> str:
    filename = f"<omniroute expression #{next(_compiled_count)}: {label[:60]}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    return filename


def generate_source(node: Condition) -> tuple[str, str, dict[str, Any]]:
    """The Python text of `fast(ctx)` and of `safe(ctx)`, with the constants both use."""
    constants: dict[str, Any] = {}
    safe_body = _Emitter(fast=False, constants=constants).condition(node)
    fast_emitter = _Emitter(fast=True, constants=constants)
    fast_body = fast_emitter.condition(node)
    root_lines = "".join(
        f"        {variable} = ctx[{root!r}]\n" for root, variable in fast_emitter.roots.items()
    )
    fast_text = (
        "def fast(ctx):\n"
        "    try:\n"
        f"{root_lines}"
        f"        return {fast_body}\n"
        "    except (AttributeError, TypeError, KeyError):\n"
        "        return safe(ctx)\n"
    )
    safe_text = f"def safe(ctx):\n    return {safe_body}\n"
    return fast_text, safe_text, constants


def _define(text: str, label: str, namespace: dict[str, Any]) -> None:
    filename = _register_source(text, label)
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - our own validated text


def build_evaluator(node: Condition, label: str) -> tuple[Evaluator, Evaluator, str]:
    """Compile the fast function now and the safe one the first time it is needed.

    Most expressions never meet a context that sends them down the safe path, and
    compiling Python text is the larger part of the cost of a cold compile.
    """
    fast_text, safe_text, constants = generate_source(node)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "AttributeError": AttributeError,
        "KeyError": KeyError,
        "TypeError": TypeError,
        "list": list,
        "str": str,
        "int": int,
        **_HELPERS,
        **constants,
    }

    def safe(ctx: Mapping[str, Any]) -> bool:
        _define(safe_text, label, namespace)
        compiled_safe: Evaluator = namespace["safe"]
        return compiled_safe(ctx)

    namespace["safe"] = safe
    _define(fast_text, label, namespace)
    evaluator: Evaluator = namespace["fast"]
    return evaluator, lambda ctx: namespace["safe"](ctx), fast_text + "\n" + safe_text
