"""The expression language, row by row from spec/expressions.md and TaskRouter's docs.

Every case is checked on both evaluators: the generated fast path and the safe path that
uses the reference semantics alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.grammar import compile_expression

W = {
    "skills": ["support", "sales"],
    "languages": ["english", "spanish"],
    "level": 4,
    "rating": 5.1,
    "email": "ana@example.com",
    "tags": [1, 2.0, True, None, "x"],
    "flag": True,
    "off": False,
    "nothing": None,
    "name": "Ana",
    "code": "6",
    "object": {"param": "pear", "list": [10, 20]},
    "channel": {"chat": {"available_capacity_percentage": 100, "available": True}},
    "$id": 7,
    "first_name": "Ana",
}
T = {
    "language": "es",
    "type": "ticket",
    "customer_value": "Gold",
    "priority": 5,
    "count": 0,
    "one": 1,
    "ratio": 1.0,
    "truth": True,
    "text": "5",
    "list": ["a", "b"],
    "nested": {"deep": {"value": 3}},
}
CONTEXT = {
    "task": T,
    "worker": W,
    "workers": {"available": 0, "total": 3},
    "taskrouter": {"currentTime": 930, "currentHour": "09", "currentMin": "30", "dayOfWeek": "Mon"},
}

CASES: list[tuple[str, bool]] = [
    # TaskRouter's documented examples
    ("1 == 1", True),
    ("0 != 1", True),
    ('"apple" != "orange"', True),
    ("worker.level > 1", True),
    ('worker.object.param != "apple"', True),
    ('task.language IN ["en", "es"]', True),
    ("(worker.flag == true) OR (worker.off == true)", True),
    ('(task.language == "en" OR task.language == "fr") AND worker.rating >= 5.1', False),
    ("(worker.skills HAS 'support') AND (worker.languages HAS 'english')", True),
    ("task.customer_value == 'Gold' AND task.type == 'ticket'", True),
    ("taskrouter.currentTime > 0800 AND taskrouter.currentTime < 1830", True),
    ("taskrouter.currentHour > 8 AND taskrouter.currentHour < 18", True),
    ("taskrouter.currentMin > 10 AND taskrouter.currentMin < 50", True),
    ('taskrouter.dayOfWeek IN ["Mon", "Tue", "Wed", "Thu", "Fri"]', True),
    ("worker.channel.chat.available_capacity_percentage == 100", True),
    ("workers.available == 0", True),
    # strings: both quotes, spaces and punctuation inside
    ("'a b-c+d@e/f:g' == \"a b-c+d@e/f:g\"", True),
    ('worker.email == "ana@example.com"', True),
    # numbers: leading zeros, signs, decimals
    ("0800 == 800", True),
    ("-2 < 0", True),
    ("worker.level > -2", True),
    ("3.5 > 3", True),
    ("1.00 == 1", True),
    # constants in any case
    ("worker.flag == TRUE", True),
    ("worker.off == False", True),
    ("worker.nothing == NULL", True),
    ("worker.flag == true", True),
    # arrays and indexes
    ('["en", "es", 3] HAS 3', True),
    ("[] HAS 1", False),
    ('worker.skills[0] == "support"', True),
    ("worker.skills[5] == null", True),
    ("worker.object.list[1] == 20", True),
    ("worker.$id == 7", True),
    ('worker.first_name == "Ana"', True),
    # comparison spellings
    ("worker.level = 4", True),
    ("worker.level != 4", False),
    ("worker.level < 5 AND worker.level <= 4 AND worker.level > 3 AND worker.level >= 4", True),
    ('worker.email CONTAINS "@example"', True),
    ('worker.email contains "@other"', False),
    ('worker.skills HAS "sales"', True),
    ('worker.skills >- "sales"', True),
    ('"sales" IN worker.skills', True),
    ('"sales" <- worker.skills', True),
    ('task.language NOT IN ["en", "fr"]', True),
    ('task.language not in ["es"]', False),
    ('worker.skills has "vip"', False),
    # logic spellings and precedence
    ("1 == 1 && 2 == 2", True),
    ("1 == 2 || 2 == 2", True),
    ("!(1 == 2)", True),
    ("NOT 1 == 2", True),
    ("not 1 == 1", False),
    ("1 == 1 OR 1 == 2 AND 1 == 2", True),  # OR (AND): true
    ("(1 == 1 OR 1 == 2) AND 1 == 2", False),
    ("NOT 1 == 2 AND 1 == 2", False),  # (NOT a) AND b
    ("1 == 1 and 2 == 2 or 1 == 2", True),
    ("\n  worker.level\n  >=\n  4\n", True),
    # missing is null; null tests on every type
    ("worker.missing == null", True),
    ("worker.missing != null", False),
    ("worker.nothing != null", False),
    ("worker.skills != null", True),
    ("worker.object != null", True),
    ("worker.level != null", True),
    ("worker.missing.deeper == null", True),
    ('worker.missing != "x"', True),
    ('worker.missing == "x"', False),
    ("null == null", True),
    # scalar operators with an array operand are false (except null tests)
    ('worker.skills == "support"', False),
    ('worker.skills != "support"', False),
    ("worker.skills > 1", False),
    ('worker.skills CONTAINS "sup"', False),
    ("worker.object == 1", False),
    ("worker.object != 1", False),
    # array operators without an array are false
    ('worker.email HAS "a"', False),
    ('"a" IN worker.email', False),
    ('"a" NOT IN worker.email', False),
    ('worker.missing HAS "a"', False),
    ('"x" NOT IN worker.missing', False),
    ('worker.missing NOT IN ["a"]', True),
    ("worker.missing IN [null]", True),
    # strict equality
    ("task.ratio == 1", True),
    ("task.one == 1.0", True),
    ('task.priority == "5"', False),
    ("task.truth == 1", False),
    ("task.one == true", False),
    ("task.count == false", False),
    ("task.count == 0", True),
    ("task.truth != 1", True),
    ("task.text != 5", True),
    # ordering: numeric strings against numbers, code points between strings
    ("worker.code > 5", True),
    ('"6" > 5', True),
    ('5 < "6"', True),
    ('"10" < "9"', True),
    ('"abc" < "abd"', True),
    ('"B" < "a"', True),
    ("worker.name > 1", False),
    ("worker.missing < 1", False),
    ("worker.missing >= worker.missing", False),
    ("worker.flag > 0", False),
    ("null < 1", False),
    ('"1e3" > 5', False),
    ('" 6" > 5', False),
    ('worker.code >= "6"', True),
    ("task.nested.deep.value >= 3", True),
    # HAS and IN compare elements with == rules
    ("worker.tags HAS 1", True),
    ("worker.tags HAS 2", True),
    ("worker.tags HAS true", True),
    ("worker.tags HAS null", True),
    ('worker.tags HAS "1"', False),
    ("1.0 IN worker.tags", True),
    ("false IN worker.tags", False),
    ("0 IN worker.tags", False),
    ("task.list HAS worker.missing", False),
    ("task.language IN worker.languages", False),
    ('"spanish" IN worker.languages', True),
    ("task.count IN [false]", False),
    ("task.truth IN [1]", False),
    ("task.one IN [true, 1]", True),
    # lone operands are true only for JSON true
    ("worker.flag", True),
    ("worker.level", False),
    ("worker.missing", False),
    ("true", True),
    ("NOT worker.off", True),
    ("worker.channel.chat.available", True),
    # references compared with references
    ("task.priority > worker.level", True),
    ("task.priority == worker.level", False),
    ("task.list != worker.skills", False),
    ("worker.level != task.priority", True),
    ("worker.email CONTAINS worker.name", False),
]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[case[0] for case in CASES])
def test_conformance(source: str, expected: bool) -> None:
    expression = compile_expression(source)
    assert expression.evaluate(CONTEXT) is expected
    assert expression.evaluate_safely(CONTEXT) is expected


DEFAULT_ROOT_CASES = [
    ('skills HAS "support"', "worker", True, {"worker.skills"}),
    ("type == 'ticket'", "task", True, {"task.type"}),
    (
        'skills HAS "support" AND task.priority > 3',
        "worker",
        True,
        {"worker.skills", "task.priority"},
    ),
    ("worker.level == 4", "task", True, {"worker.level"}),
    ("available > 0", "workers", False, {"workers.available"}),
]


@pytest.mark.parametrize(("source", "root", "expected", "references"), DEFAULT_ROOT_CASES)
def test_default_root(source: str, root: str, expected: bool, references: set[str]) -> None:
    expression = compile_expression(source, default_root=root)
    assert expression.evaluate(CONTEXT) is expected
    assert expression.references == frozenset(references)


def test_references_and_source() -> None:
    source = "task.language IN worker.languages AND worker.object.list[1] >= 3 OR 1 == 1"
    expression = compile_expression(source)
    assert expression.source == source
    assert expression.references == {"task.language", "worker.languages", "worker.object.list[1]"}


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("worker.level >= 3") is compile_expression("worker.level >= 3")
    assert compile_expression("level >= 3", default_root="worker") is not compile_expression(
        "level >= 3", default_root="task"
    )


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"task": None, "worker": None},
        {"task": "text", "worker": [1, 2]},
        {"task": {"language": {"nested": 1}}, "worker": {"languages": "es"}},
        {"task": {"language": ["es"]}, "worker": {"languages": [["es"]]}},
        {"worker": {"skills": None, "object": "param"}},
        {"worker": {"object": {"list": "not a list"}}},
    ],
)
def test_evaluation_never_raises_for_json_data(context: dict[str, Any]) -> None:
    for source, _ in CASES:
        expression = compile_expression(source)
        assert expression.evaluate(context) is expression.evaluate_safely(context)


def test_non_mapping_context_is_not_an_error() -> None:
    expression = compile_expression("worker.level == null")
    assert expression.evaluate(None) is True  # type: ignore[arg-type]
    assert expression.evaluate([1, 2]) is True  # type: ignore[arg-type]


def test_callable_and_generated_source_are_inspectable() -> None:
    expression = compile_expression('worker.skills HAS "x"')
    assert expression({"worker": {"skills": ["x"]}}) is True
    assert "def fast(ctx)" in expression.python_source
    assert "def safe(ctx)" in expression.python_source


def test_default_root_must_be_known() -> None:
    with pytest.raises(ValueError, match="default_root"):
        compile_expression("a == 1", default_root="agent")
