"""Issue 12, items 1, 2 and 11: every limit is an ExpressionError at compile time, both
generated functions are buildable, evaluation never raises, and linecache does not grow."""

from __future__ import annotations

import gc
import linecache

import pytest

from omniroute.grammar import ExpressionError, compile_expression
from omniroute.grammar.compiler import MAX_GENERATED_NESTING, build_evaluator, nesting_bound
from omniroute.grammar.expression import _compile_cached
from omniroute.grammar.nodes import Compare, Literal, Reference
from omniroute.grammar.parser import MAX_DEPTH, MAX_NUMBER_LENGTH, MAX_PATH_LENGTH

HUGE_DATA = [
    "9" * 5000,
    "1" * 5000 + ".5",
    "-" + "9" * 5000,
    float("nan"),
    float("inf"),
    -float("inf"),
    10**5000,
    "a\0b",
    "\ud800",
    None,
    [[[]]],
    {"a": {}},
]


def _path(parts: int) -> str:
    return "task." + ".".join(["a"] * (parts - 1))


@pytest.mark.parametrize("parts", [MAX_PATH_LENGTH + 1, 199, 3000])
def test_a_reference_over_the_limit_is_an_expression_error(parts: int) -> None:
    with pytest.raises(ExpressionError, match=f"at most {MAX_PATH_LENGTH} parts") as caught:
        compile_expression(f"{_path(parts)} == 1")
    assert (caught.value.line, caught.value.column) == (1, 1)


def test_the_deepest_allowed_expression_builds_both_functions() -> None:
    inner = f"{_path(MAX_PATH_LENGTH - 1)}[3] != {_path(MAX_PATH_LENGTH)}"
    # NOTs up to the depth limit around the longest references allowed.
    expression = compile_expression("NOT " * (MAX_DEPTH - 2) + inner)
    assert expression.evaluate({}) is False
    assert expression.evaluate_safely({}) is False  # compiles the lazy safe function


def test_the_nesting_bound_refuses_a_tree_the_parser_would_not_build() -> None:
    reference = Reference(("task", *["a"] * 200), 1, 1)
    node = Compare("==", reference, Literal(1))
    assert nesting_bound(node) > MAX_GENERATED_NESTING
    with pytest.raises(ExpressionError, match="too complex"):
        build_evaluator(node, "x")


@pytest.mark.parametrize(
    "literal", ["9" * 400 + ".5", "9" * 4400, "0." + "0" * 200 + "1", "1" * (MAX_NUMBER_LENGTH + 1)]
)
def test_a_number_literal_over_the_limit_is_an_expression_error(literal: str) -> None:
    with pytest.raises(ExpressionError, match="a number may be at most") as caught:
        compile_expression(f"task.x == {literal}")
    assert caught.value.column == 11


def test_an_index_over_the_limit_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="an index may have at most"):
        compile_expression(f"task.x[{'9' * 200}] == 1")


def test_the_longest_number_literal_compiles_and_evaluates() -> None:
    expression = compile_expression(f"task.x < {'9' * MAX_NUMBER_LENGTH} OR task.x > 1.{'5' * 98}")
    assert expression.evaluate({"task": {"x": 1}}) is True


@pytest.mark.parametrize(
    "source",
    [
        "task.x < 5",
        "task.x >= '5'",
        "5 > task.x",
        "task.x == 5",
        "task.x != 5",
        "task.x IN [1, '2', 3.5]",
        "task.x HAS 5",
        "task.x CONTAINS 'a'",
        "task.x < task.y",
        "task.x NOT IN task.y",
        "task.x",
        "task.x[0] > 1.5",
        "worker.a == 'a\\0b' OR task.x <= 99",
    ],
)
@pytest.mark.parametrize("value", HUGE_DATA, ids=lambda value: type(value).__name__)
def test_evaluation_never_raises_whatever_the_data(source: str, value: object) -> None:
    expression = compile_expression(source)
    for context in (
        {"task": {"x": value, "y": value}},
        {"task": {"x": value, "y": [value]}},
        {"task": {"x": [value], "y": "9" * 5000}},
        {"task": value},
        {"task": {"x": value}, "worker": value},
    ):
        fast = expression.evaluate(context)
        assert fast is expression.evaluate_safely(context)
        assert isinstance(fast, bool)


def test_a_huge_numeric_string_compares_exactly() -> None:
    expression = compile_expression("task.x > 5")
    assert expression.evaluate({"task": {"x": "9" * 5000}}) is True
    assert expression.evaluate({"task": {"x": "-" + "9" * 5000}}) is False
    assert compile_expression("task.x < 5.5").evaluate({"task": {"x": "5." + "4" * 5000}}) is True
    assert compile_expression("task.x > 5").evaluate({"task": {"x": float("nan")}}) is False


def test_nul_and_newlines_in_the_source_are_only_text() -> None:
    expression = compile_expression("task.x == 'a\0b'\n OR task.y == 'c\rd'")
    assert expression.evaluate({"task": {"x": "a\0b"}}) is True
    assert expression.evaluate_safely({"task": {"y": "c\rd"}}) is True


def test_linecache_does_not_keep_collected_expressions() -> None:
    gc.collect()
    before = len(linecache.cache)
    for number in range(3000):
        expression = compile_expression(f"task.limits_test == {number}")
        expression.evaluate_safely({})
    _compile_cached.cache_clear()
    del expression
    gc.collect()
    assert len(linecache.cache) <= before + 5
