"""`roots=`: the evaluator on the caller's own data, with every guarantee of the language."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.grammar import (
    KNOWN_ROOTS,
    MAX_DEPTH,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
    compile_order_by,
)

from .test_properties import _combine, json_values, literal_text, operator_text

ROOTS = ("customer", "order", "$env", "__class__")


def test_a_caller_names_its_own_roots() -> None:
    rule = compile_expression(
        'customer.tier == "gold" AND order.total > 100', roots={"customer", "order"}
    )
    assert rule.roots == frozenset({"customer", "order"})
    assert rule.references == frozenset({"customer.tier", "order.total"})
    assert rule.evaluate({"customer": {"tier": "gold"}, "order": {"total": 120}}) is True
    assert rule.evaluate({"customer": {"tier": "gold"}, "order": {"total": 80}}) is False
    # a missing root is a missing attribute: null, so false, never an exception
    assert rule.evaluate({"customer": {"tier": "gold"}}) is False


def test_the_taskrouter_roots_stay_the_default() -> None:
    assert compile_expression("task.a == 1").roots == KNOWN_ROOTS
    with pytest.raises(ExpressionError, match=r"names no root; write task\.customer"):
        compile_expression('customer.tier == "gold"')


def test_a_name_outside_the_callers_roots_is_an_error_with_a_caret() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression('task.a == 1 OR tier == "gold"', roots=["customer"])
    message = str(caught.value)
    assert "'task.a' names no root; write customer.task.a" in message
    assert "known roots: customer" in message
    assert "^" in message
    # and the TaskRouter roots are not known unless named
    with pytest.raises(ExpressionError, match="known roots: customer"):
        compile_expression("worker.level > 1", roots=["customer"])


def test_default_root_applies_and_must_be_one_of_the_roots() -> None:
    rule = compile_expression('tier == "gold"', default_root="customer", roots=["customer"])
    assert rule.references == frozenset({"customer.tier"})
    assert rule.evaluate({"customer": {"tier": "gold"}}) is True
    with pytest.raises(ValueError, match="default_root must be one of customer, not 'worker'"):
        compile_expression('tier == "gold"', default_root="worker", roots=["customer"])


@pytest.mark.parametrize(
    ("roots", "message"),
    [
        (["a-b"], "not a name"),
        (["1x"], "not a name"),
        ([""], "not a name"),
        (["a.b"], "not a name"),
        ([3], "not a name"),
        (["AND"], "keyword"),
        (["null"], "keyword"),
        (["desc"], "keyword"),
        ([f"r{n}" for n in range(300)], "at most 256"),
    ],
)
def test_roots_that_an_expression_cannot_spell_are_refused(roots: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_expression("x == 1", roots=roots)


def test_a_single_string_is_not_taken_for_its_letters() -> None:
    with pytest.raises(TypeError, match=r"such as \['customer'\]"):
        compile_expression("customer.x == 1", roots="customer")


def test_any_name_is_read_by_subscript_never_as_an_attribute() -> None:
    rule = compile_expression("__class__.__name__ == 'dict' OR $env.x == 1", roots=ROOTS)
    assert "__class__" not in rule.python_source.replace("'__class__'", "")
    assert rule.evaluate({}) is False
    assert rule.evaluate({"__class__": {"__name__": "dict"}}) is True
    assert rule.evaluate({"$env": {"x": 1}}) is True
    assert rule.evaluate({"$env": "not a mapping"}) is False


def test_the_limits_still_hold() -> None:
    deep = "(" * (MAX_DEPTH + 5) + "customer.a == 1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(ExpressionError, match="nest"):
        compile_expression(deep, roots=["customer"])
    with pytest.raises(ExpressionSyntaxError):
        compile_expression("customer.a == == 1", roots=["customer"])


def test_the_same_text_with_other_roots_is_another_expression() -> None:
    first = compile_expression("a == 1", default_root="customer", roots=["customer"])
    again = compile_expression("a == 1", default_root="customer", roots=("customer",))
    other = compile_expression("a == 1", default_root="order", roots=["order"])
    assert first is again
    assert first is not other
    assert other.references == frozenset({"order.a"})


def test_order_by_takes_roots_too() -> None:
    order = compile_order_by(
        "customer.spend DESC, since ASC", default_root="customer", roots=["customer"]
    )
    assert order.clauses == (("customer.spend", True), ("customer.since", False))
    rows = [{"customer": {"spend": 5}}, {"customer": {"spend": 9}}, {"customer": {}}]
    assert [row["customer"].get("spend") for row in sorted(rows, key=order.key)] == [9, 5, None]
    with pytest.raises(ExpressionError, match=r"write customer\.spend"):
        compile_order_by("spend DESC", roots=["customer"])


reference_text = st.builds(
    lambda root, path: root + "".join("." + part for part in path),
    st.sampled_from(ROOTS),
    st.lists(st.sampled_from(["a", "b", "tier", "__dict__"]), max_size=3),
)
comparison_text = (
    st.builds(
        lambda a, op, b: f"{a} {op} {b}",
        literal_text | reference_text,
        operator_text,
        literal_text | reference_text,
    )
    | reference_text
)
contexts = st.dictionaries(
    st.sampled_from(ROOTS), json_values | st.dictionaries(st.text(max_size=3), json_values)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.recursive(comparison_text, _combine, max_leaves=6), context=contexts)
def test_evaluation_with_named_roots_never_raises_and_agrees_with_the_semantics(
    source: str, context: dict[str, Any]
) -> None:
    expression = compile_expression(source, roots=ROOTS)
    result = expression.evaluate(context)
    assert result is True or result is False
    assert result is expression.evaluate_safely(context)
