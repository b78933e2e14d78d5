"""Text to syntax tree: the Lark LALR parser, the limits checked before it, and errors.

The parser is built once per process from `expression.lark`; a Transformer passed to it
builds nodes while parsing, so no parse tree is kept and nothing recurses on user input.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import ExpressionError, ExpressionSyntaxError, position_of
from .nodes import (
    And,
    Compare,
    Condition,
    Literal,
    Not,
    Or,
    OrderClause,
    Reference,
    Truth,
)

MAX_SOURCE_LENGTH = 20_000
MAX_DEPTH = 32
MAX_ARRAY_LENGTH = 1_000
#: Segments of one reference (`task.a.b[0]` has four). Each becomes a nested call in the
#: safe function, and Python's compiler stops at 200 nested parentheses.
MAX_PATH_LENGTH = 64
#: Characters of one number literal: enough for any real value, short of the 4,300-digit
#: limit of `int()` and of float literals that round to infinity.
MAX_NUMBER_LENGTH = 100

_OPERATOR_SPELLINGS = {"=": "==", ">-": "has", "<-": "in"}

_TERMINAL_NAMES = {
    "COMPARE_OP": "a comparison operator",
    "_IN": "IN",
    "_AND": "AND",
    "_OR": "OR",
    "_NOT": "NOT",
    "NAME": "a name",
    "INDEX": "an index",
    "STRING": "a string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "DIRECTION": "ASC or DESC",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "_DOT": "'.'",
    "$END": "the end of the expression",
}


def _depth_of(*children: Any) -> int:
    return 1 + max((getattr(child, "depth", 1) for child in children), default=0)


class _ToNodes(Transformer[Token, Any]):
    """Builds nodes bottom-up as the LALR parser reduces."""

    def start(self, children: list[Condition]) -> Condition:
        return children[0]

    def or_test(self, children: list[Condition]) -> Or:
        return Or(tuple(children), _depth_of(*children))

    def and_test(self, children: list[Condition]) -> And:
        return And(tuple(children), _depth_of(*children))

    def negation(self, children: list[Condition]) -> Not:
        return Not(children[0], _depth_of(children[0]))

    def compare(self, children: list[Any]) -> Compare:
        left, op_token, right = children
        op = str(op_token).lower()
        return Compare(_OPERATOR_SPELLINGS.get(op, op), left, right, _depth_of(left, right))

    def in_(self, children: list[Any]) -> Compare:
        return Compare("in", children[0], children[1], _depth_of(*children))

    def not_in(self, children: list[Any]) -> Compare:
        return Compare("not_in", children[0], children[1], _depth_of(*children))

    def truth(self, children: list[Any]) -> Truth:
        return Truth(children[0], _depth_of(children[0]))

    def reference(self, children: list[Token]) -> Reference:
        first = children[0]
        if len(children) > MAX_PATH_LENGTH:
            raise _LimitExceeded(
                f"a reference may have at most {MAX_PATH_LENGTH} parts; this one has {len(children)}",
                first,
            )
        for token in children:
            if token.type == "INDEX" and len(token) > MAX_NUMBER_LENGTH:
                raise _LimitExceeded(f"an index may have at most {MAX_NUMBER_LENGTH} digits", token)
        path: list[str | int] = [
            int(token) if token.type == "INDEX" else str(token) for token in children
        ]
        return Reference(tuple(path), first.line or 1, first.column or 1)

    def string(self, children: list[Token]) -> Literal:
        return Literal(str(children[0])[1:-1])

    def number(self, children: list[Token]) -> Literal:
        token = children[0]
        text = str(token)
        if len(text) > MAX_NUMBER_LENGTH:
            raise _LimitExceeded(
                f"a number may be at most {MAX_NUMBER_LENGTH} characters long; this one has {len(text)}",
                token,
            )
        return Literal(float(text) if "." in text else int(text))

    def true(self, _: list[Token]) -> Literal:
        return Literal(True)

    def false(self, _: list[Token]) -> Literal:
        return Literal(False)

    def null(self, _: list[Token]) -> Literal:
        return Literal(None)

    def array(self, children: list[Literal | None]) -> Literal:
        items = [child for child in children if child is not None]
        if len(items) > MAX_ARRAY_LENGTH:
            raise _LimitExceeded(f"an array may hold at most {MAX_ARRAY_LENGTH} values")
        return Literal([item.value for item in items], _depth_of(*items))

    def order_by(self, children: list[OrderClause]) -> tuple[OrderClause, ...]:
        return tuple(children)

    def order_clause(self, children: list[Any]) -> OrderClause:
        reference = children[0]
        descending = len(children) > 1 and str(children[1]).lower() == "desc"
        return OrderClause(reference, descending)


class _LimitExceeded(Exception):
    """A limit met while parsing; `token` says where, for the caret."""

    def __init__(self, message: str, token: Token | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = token.line if token is not None else None
        self.column = token.column if token is not None else None


@cache
def _parser() -> Lark:
    grammar = files(__package__).joinpath("expression.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        start=["start", "order_by"],
        transformer=_ToNodes(),
        propagate_positions=False,
        maybe_placeholders=True,
    )


_WORD = re.compile(r"[A-Za-z0-9_$.]+")
_BRACKETS_OUTSIDE_STRINGS = re.compile(r"""[()\[\]]|"[^"\n]*"?|'[^'\n]*'?""")


def _check_limits(source: str) -> None:
    """Refuse over-nested or oversized text before the parser sees it.

    Nesting is checked first because it can say where the problem is. Brackets are
    matched here too, so that an unclosed one is reported where it opens
    rather than at the end of the text.
    """
    open_brackets: list[int] = []
    for match in _BRACKETS_OUTSIDE_STRINGS.finditer(source):
        char, offset = match.group(), match.start()
        if char in "([":
            open_brackets.append(offset)
            if len(open_brackets) > MAX_DEPTH:
                line, column = position_of(source, offset)
                raise ExpressionError(
                    f"expression nests deeper than {MAX_DEPTH} levels", source, line, column
                )
        elif char in ")]":
            expected_open = "(" if char == ")" else "["
            if not open_brackets or source[open_brackets[-1]] != expected_open:
                line, column = position_of(source, offset)
                raise ExpressionSyntaxError(f"'{char}' closes nothing", source, line, column)
            open_brackets.pop()
    if open_brackets:
        offset = open_brackets[-1]
        line, column = position_of(source, offset)
        closer = ")" if source[offset] == "(" else "]"
        raise ExpressionSyntaxError(
            f"'{source[offset]}' is never closed", source, line, column, expected=(f"'{closer}'",)
        )
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters long; the limit is {MAX_SOURCE_LENGTH}"
        )


def _syntax_error(source: str, error: UnexpectedInput, start: str) -> ExpressionSyntaxError:
    names = _expected_of(error)
    # The contextual lexer shares states between the two start rules; keep the list to
    # what can really follow in the rule being parsed.
    if start == "start":
        names.discard("DIRECTION")
        if "[" not in source[: getattr(error, "pos_in_stream", None) or len(source)]:
            names.discard("COMMA")
    expected = sorted({_TERMINAL_NAMES.get(name, name) for name in names})
    hint = f"; expected {', '.join(expected)}" if expected else ""
    line, column = error.line, error.column
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream or 0
        char = source[offset]
        if (
            char == "-"
            and offset > 0
            and (source[offset - 1].isalnum() or source[offset - 1] in "_$")
        ):
            message = "'-' cannot appear in a name (names are letters, digits, '_' and '$')"
            hint = ""
        elif char in "\"'":
            message = "string is never closed"
            hint = ""
        else:
            message = f"unexpected character {char!r}"
    elif isinstance(error, UnexpectedToken) and error.token.type != "$END":
        token = error.token
        message = f"unexpected {_TERMINAL_NAMES.get(token.type, token.type).split(' ')[-1]} {str(token)!r}"
        if token.type in ("NAME", "NUMBER", "STRING"):
            message = f"unexpected {str(token)!r}"
        elif token.type == "INDEX":
            # Digits outside `[...]` only lex as INDEX when they do not form a number.
            word = _WORD.match(source, token.start_pos or 0)
            message = f"{word.group() if word else str(token)!r} is not a number or a name"
            hint = ""
        line, column = token.line, token.column
    else:
        message = "expression ends too early"
        line, column = position_of(source, len(source.rstrip()))
        column = max(column, 1)
    if not isinstance(line, int) or line < 1:
        line, column = position_of(source, len(source))
    return ExpressionSyntaxError(message + hint, source, line, column, expected)


def _expected_of(error: UnexpectedInput) -> set[str]:
    if isinstance(error, UnexpectedToken):
        return set(error.accepts or error.expected)
    if isinstance(error, UnexpectedCharacters):
        return set(error.allowed or ())
    if isinstance(error, UnexpectedEOF):
        return set(error.expected)
    return set()


def _parse(source: str, start: str) -> Any:
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {type(source).__name__}")
    _check_limits(source)
    if not source.strip():
        raise ExpressionSyntaxError("expression is empty", source, 1, 1, expected=())
    try:
        return _parser().parse(source, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(source, error, start) from None
    except _LimitExceeded as error:
        raise ExpressionError(error.message, source, error.line, error.column) from None


def parse_condition(source: str) -> Condition:
    """Parse a boolean expression; nodes deeper than MAX_DEPTH are refused."""
    node: Condition = _parse(source, "start")
    if node.depth > MAX_DEPTH:
        raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels", source, 1, 1)
    return node


def parse_order_by(source: str) -> tuple[OrderClause, ...]:
    clauses: tuple[OrderClause, ...] = _parse(source, "order_by")
    return clauses
