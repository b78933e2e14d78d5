"""Properties over generated expressions and data."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.grammar import ExpressionError, compile_expression, compile_order_by, semantics

NAMES = ["a", "b", "level", "skills", "x"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from(["", "a", "b", "5", "10", "x y"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(NAMES), children, max_size=3)
    ),
    max_leaves=8,
)
contexts = st.dictionaries(
    st.sampled_from(["task", "worker", "workers", "taskrouter"]),
    json_values | st.dictionaries(st.sampled_from(NAMES), json_values, max_size=4),
    max_size=4,
)

literal_text = st.sampled_from(
    [
        '"a"',
        "'b'",
        '"5"',
        "5",
        "0",
        "1",
        "-2",
        "1.0",
        "0800",
        "true",
        "FALSE",
        "null",
        "[]",
        '["a", 1, true, null]',
        '["a", "b"]',
        "[0, 1]",
    ]
)
reference_text = st.builds(
    lambda root, path, index: (
        root + "".join("." + part for part in path) + (f"[{index}]" if index is not None else "")
    ),
    st.sampled_from(["task", "worker", "workers", "taskrouter"]),
    st.lists(st.sampled_from(NAMES), min_size=0, max_size=3),
    st.none() | st.integers(0, 2),
)
operand_text = literal_text | reference_text
operator_text = st.sampled_from(
    [
        "==",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "CONTAINS",
        "HAS",
        ">-",
        "IN",
        "<-",
        "NOT IN",
        "has",
        "in",
    ]
)
comparison_text = (
    st.builds(lambda a, op, b: f"{a} {op} {b}", operand_text, operator_text, operand_text)
    | reference_text
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return (
        st.builds(lambda a, b: f"{a} AND {b}", children, children)
        | st.builds(lambda a, b: f"{a} || {b}", children, children)
        | st.builds(lambda a: f"NOT {a}", children)
        | st.builds(lambda a: f"!({a})", children)
        | st.builds(lambda a: f"({a})", children)
    )


expressions_text = st.recursive(comparison_text, _combine, max_leaves=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=expressions_text, context=contexts)
def test_valid_expressions_evaluate_to_a_bool_on_any_json(
    source: str, context: dict[str, Any]
) -> None:
    expression = compile_expression(source)
    result = expression.evaluate(context)
    assert result is True or result is False
    assert result is expression.evaluate_safely(context)


@settings(max_examples=300, deadline=None)
@given(left=json_values, right=json_values, op=st.sampled_from(sorted(semantics.OPERATORS)))
def test_literal_comparisons_agree_with_semantics(left: Any, right: Any, op: str) -> None:
    # The fast path specialises on literals on either side; check it against the rules.
    result = semantics.OPERATORS[op](left, right)
    assert result is True or result is False
    context = {"task": {"left": left, "right": right}}
    spelled = {"not_in": "NOT IN"}.get(op, op)
    assert compile_expression(f"task.left {spelled} task.right").evaluate(context) is result


def test_not_equal_negates_equal_on_scalars() -> None:
    scalars = [None, True, False, 0, 1, 1.0, 2, "a", "1", ""]
    for left in scalars:
        for right in scalars:
            assert semantics.not_equal(left, right) is (not semantics.equal(left, right))


@settings(max_examples=500, deadline=None)
@given(source=st.text(max_size=60))
def test_random_text_only_raises_expression_error(source: str) -> None:
    try:
        expression = compile_expression(source, default_root="task")
    except ExpressionError:
        return
    assert expression.evaluate({}) in (True, False)


@settings(max_examples=200, deadline=None)
@given(source=st.text(alphabet="()[]!\"' .,=<>-&|aNDoTIShx01", max_size=80))
def test_operator_soup_only_raises_expression_error(source: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_expression(source, default_root="worker")


@settings(max_examples=200, deadline=None)
@given(
    workers=st.lists(st.dictionaries(st.sampled_from(["v"]), json_values, max_size=1), max_size=8),
    descending=st.booleans(),
)
def test_order_by_keys_are_a_total_order_with_missing_last(
    workers: list[dict[str, Any]], descending: bool
) -> None:
    order = compile_order_by("worker.v " + ("DESC" if descending else "ASC"))
    ranked = sorted(workers, key=lambda w: order.key({"worker": w}))

    def present(w: dict[str, Any]) -> bool:
        value = w.get("v")
        return isinstance(value, (bool, str)) or semantics.is_number(value)

    flags = [present(w) for w in ranked]
    assert flags == sorted(flags, reverse=True)
