"""The meaning of every operator, as plain functions over JSON-like values.

These functions are the reference semantics of spec/expressions.md. Compiled expressions
call them wherever an inline fast path cannot be proven equal, and the fallback evaluator
uses nothing else. None of them raises for JSON-like data.

Kinds: JSON null is `None`; booleans are not numbers; arrays are lists or tuples; objects
are mappings. Arrays and objects are "non-scalar": scalar operators on them are false.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_NUMERIC_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ARRAY_TYPES = (list, tuple)


def is_number(value: Any) -> bool:
    cls = value.__class__
    return cls is int or cls is float or (isinstance(value, (int, float)) and cls is not bool)


def is_scalar(value: Any) -> bool:
    return not isinstance(value, (list, tuple, Mapping))


def get(value: Any, key: str) -> Any:
    """`value.key`: None unless value is a mapping that has the key."""
    if isinstance(value, Mapping):
        return value.get(key)
    return None


def index(value: Any, position: int) -> Any:
    """`value[position]`: None unless value is an array long enough."""
    if isinstance(value, ARRAY_TYPES) and position < len(value):
        return value[position]
    return None


def equal(left: Any, right: Any) -> bool:
    """`==`: a null test when either side is null; otherwise type-strict on scalars."""
    if left is None or right is None:
        return left is None and right is None
    if not (is_scalar(left) and is_scalar(right)):
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return False


def not_equal(left: Any, right: Any) -> bool:
    """`!=`: the negation of `==`, except that a non-null array or object makes it false."""
    if left is None or right is None:
        return not (left is None and right is None)
    if not (is_scalar(left) and is_scalar(right)):
        return False
    return not equal(left, right)


def _as_number(text: str) -> int | float | Decimal | None:
    """The number a numeric string spells, exactly, however many digits it has.

    `int()` refuses more than 4,300 digits and `float()` rounds to infinity, so a long
    text becomes a Decimal: data alone must never make a comparison raise.
    """
    if _NUMERIC_TEXT.fullmatch(text) is None:
        return None
    if len(text) > 300:
        return Decimal(text)
    return float(text) if "." in text else int(text)


def _ordered_pair(left: Any, right: Any) -> tuple[Any, Any] | None:
    """The two sides made comparable, or None when `<` and friends must be false."""
    left_number, right_number = is_number(left), is_number(right)
    if left_number and right_number:
        return left, right
    if (left_number and left != left) or (right_number and right != right):
        return None  # NaN is not ordered, and a Decimal compared with it would raise
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    if left_number and isinstance(right, str):
        converted = _as_number(right)
        return None if converted is None else (left, converted)
    if right_number and isinstance(left, str):
        converted = _as_number(left)
        return None if converted is None else (converted, right)
    return None


def less(left: Any, right: Any) -> bool:
    pair = _ordered_pair(left, right)
    return pair is not None and bool(pair[0] < pair[1])


def less_equal(left: Any, right: Any) -> bool:
    pair = _ordered_pair(left, right)
    return pair is not None and bool(pair[0] <= pair[1])


def greater(left: Any, right: Any) -> bool:
    pair = _ordered_pair(left, right)
    return pair is not None and bool(pair[0] > pair[1])


def greater_equal(left: Any, right: Any) -> bool:
    pair = _ordered_pair(left, right)
    return pair is not None and bool(pair[0] >= pair[1])


def contains(left: Any, right: Any) -> bool:
    """`CONTAINS`: left string contains right string."""
    return isinstance(left, str) and isinstance(right, str) and right in left


def has(left: Any, right: Any) -> bool:
    """`HAS`: left array holds an element equal to right."""
    return isinstance(left, ARRAY_TYPES) and any(equal(item, right) for item in left)


def in_(left: Any, right: Any) -> bool:
    """`IN`: left equals an element of the right array."""
    return isinstance(right, ARRAY_TYPES) and any(equal(left, item) for item in right)


def not_in(left: Any, right: Any) -> bool:
    """`NOT IN`: right is an array and no element of it equals left."""
    return isinstance(right, ARRAY_TYPES) and not any(equal(left, item) for item in right)


def truth(value: Any) -> bool:
    """A lone operand used as a condition."""
    return value is True


OPERATORS = {
    "==": equal,
    "!=": not_equal,
    "<": less,
    "<=": less_equal,
    ">": greater,
    ">=": greater_equal,
    "contains": contains,
    "has": has,
    "in": in_,
    "not_in": not_in,
}
