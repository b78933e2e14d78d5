"""Errors raised while compiling an expression.

Every error knows where it happened, so the message can show the source line with a caret
under the fault; a configuration loader adds the file and key path in front of it.
"""

from __future__ import annotations

from collections.abc import Iterable


class ExpressionError(ValueError):
    """An expression that cannot be compiled (bad syntax, a limit exceeded, a bad name)."""

    def __init__(
        self,
        message: str,
        source: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.line is None or self.column is None:
            return self.message
        lines = self.source.splitlines() or [""]
        text = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        caret = " " * (self.column - 1) + "^"
        return f"{self.message} (line {self.line}, column {self.column})\n  {text}\n  {caret}"


class ExpressionSyntaxError(ExpressionError):
    """The text is not a sentence of the language; `expected` names what could come next."""

    def __init__(
        self,
        message: str,
        source: str,
        line: int,
        column: int,
        expected: Iterable[str] = (),
    ) -> None:
        self.expected = tuple(sorted(set(expected)))
        super().__init__(message, source, line, column)


def position_of(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a 0-based character offset."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column
