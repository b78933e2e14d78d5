"""The syntax tree the parser builds, before it is compiled to Python.

Nodes are small frozen values. Each records its nesting depth as it is built (bottom-up,
without recursion) so that the compiler can refuse a too-deep expression before any
recursive pass runs.
"""

from __future__ import annotations

from typing import Any

import attrs

JsonValue = Any


@attrs.frozen(slots=True)
class Reference:
    """A path into the context: `task.skills[0]` is ("task", "skills", 0)."""

    path: tuple[str | int, ...]
    line: int
    column: int
    depth: int = 1

    @property
    def text(self) -> str:
        out = str(self.path[0])
        for part in self.path[1:]:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out


@attrs.frozen(slots=True)
class Literal:
    value: JsonValue
    depth: int = 1


Operand = Reference | Literal


@attrs.frozen(slots=True)
class Compare:
    """`left OP right`; op is one of == != < <= > >= contains has in not_in."""

    op: str
    left: Operand
    right: Operand
    depth: int = 2


@attrs.frozen(slots=True)
class Truth:
    """A lone operand used as a condition: true only when it is JSON `true`."""

    operand: Operand
    depth: int = 2


@attrs.frozen(slots=True)
class Not:
    operand: Condition
    depth: int


@attrs.frozen(slots=True)
class And:
    operands: tuple[Condition, ...]
    depth: int


@attrs.frozen(slots=True)
class Or:
    operands: tuple[Condition, ...]
    depth: int


Condition = Compare | Truth | Not | And | Or


@attrs.frozen(slots=True)
class OrderClause:
    reference: Reference
    descending: bool
