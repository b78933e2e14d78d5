"""Compile-time errors: each names the line and column and shows a caret."""

from __future__ import annotations

import pytest

from omniroute.grammar import (
    MAX_ARRAY_LENGTH,
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
    compile_order_by,
)

SYNTAX_ERRORS = [
    # (source, line, column, words the message must contain)
    ("worker.first-name == 1", 1, 13, "'-' cannot appear in a name"),
    ("worker.level ==", 1, 16, "ends too early"),
    ("worker.level == 1 AND", 1, 22, "ends too early"),
    ("(worker.level == 1", 1, 1, "'(' is never closed"),
    ("worker.level == 1)", 1, 18, "')' closes nothing"),
    ('worker.skills HAS ["a", "b"', 1, 19, "'[' is never closed"),
    ("a == b == c", 1, 8, "unexpected"),
    ("worker.level == 1 2", 1, 19, "unexpected '2'"),
    ('worker.name == "Ana', 1, 16, "string is never closed"),
    ("worker.level & 1", 1, 14, "unexpected character '&'"),
    ("== 1", 1, 1, "unexpected"),
    ("", 1, 1, "empty"),
    ("   ", 1, 1, "empty"),
    ("worker.level >= 3 AND\n  worker.skills HAS", 2, 20, "ends too early"),
    ("worker.level\n  AND == 3", 2, 7, "unexpected"),
    ("1worker == 1", 1, 1, "'1worker' is not a number or a name"),
    ("x == 1.5.3", 1, 6, "'1.5.3' is not a number or a name"),
    ("worker.[0] == 1", 1, 8, "unexpected"),
    ("worker.level IN", 1, 16, "ends too early"),
    ("worker NOT == 1", 1, 12, "unexpected"),
    ("[1, [2]] HAS 1 AND worker.x[-1] == 1", 1, 29, "unexpected"),
]


@pytest.mark.parametrize(("source", "line", "column", "words"), SYNTAX_ERRORS)
def test_syntax_errors_point_at_the_fault(source: str, line: int, column: int, words: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression(source)
    error = caught.value
    assert (error.line, error.column) == (line, column), str(error)
    assert words in str(error)
    shown = str(error).splitlines()
    assert shown[-1] == "  " + " " * (column - 1) + "^"
    assert isinstance(error, ExpressionError)
    assert isinstance(error, ValueError)


def test_expected_tokens_are_listed() -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression("worker.level ==")
    assert "a number" in caught.value.expected
    assert "a string" in caught.value.expected
    assert "ASC or DESC" not in caught.value.expected


def test_bare_reference_without_default_root() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression('worker.level > 1 AND skills HAS "x"')
    assert (caught.value.line, caught.value.column) == (1, 22)
    assert "'skills' names no root" in str(caught.value)


def test_too_long() -> None:
    with pytest.raises(ExpressionError, match="characters long"):
        compile_expression("1 == 1 AND " * (MAX_SOURCE_LENGTH // 10) + "1 == 1")


def test_deep_parentheses_give_a_clear_error() -> None:
    source = "(" * 10_000 + "1 == 1" + ")" * 10_000
    with pytest.raises(ExpressionError, match=f"deeper than {MAX_DEPTH}") as caught:
        compile_expression(source)
    assert caught.value.column == MAX_DEPTH + 1


def test_deep_not_chain_gives_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="deeper than"):
        compile_expression("NOT " * 3_000 + "1 == 1")


def test_deep_arrays_give_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="deeper than"):
        compile_expression("x.y IN " + "[" * 5_000 + "]" * 5_000)


def test_nesting_within_the_limit_compiles() -> None:
    depth = MAX_DEPTH - 2
    source = "(" * depth + "1 == 1" + ")" * depth
    assert compile_expression(source).evaluate({}) is True


def test_long_arrays_are_refused() -> None:
    values = ", ".join(str(n) for n in range(MAX_ARRAY_LENGTH + 1))
    with pytest.raises(ExpressionError, match="at most"):
        compile_expression(f"task.n IN [{values}]")


def test_long_flat_chains_compile() -> None:
    source = " AND ".join(f"task.a{n} == {n}" for n in range(500))
    context = {"task": {f"a{n}": n for n in range(500)}}
    assert compile_expression(source).evaluate(context) is True


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError, match="must be text"):
        compile_expression(42)  # type: ignore[arg-type]


def test_order_by_errors() -> None:
    with pytest.raises(ExpressionSyntaxError):
        compile_order_by("worker.level DOWN")
    with pytest.raises(ExpressionError, match="names no root"):
        compile_order_by("level DESC")
    with pytest.raises(ValueError, match="default_root"):
        compile_order_by("level", default_root="nobody")


def test_error_without_position_is_plain() -> None:
    assert str(ExpressionError("plain message")) == "plain message"
