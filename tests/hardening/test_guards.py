"""core/guards.py: run-time results of plugin components, checked (issue 12, item 8)."""

from __future__ import annotations

import pytest

from omniroute.core import PluginError
from omniroute.core.guards import arrival_verdict, incomparable_keys


def test_an_arrival_verdict_is_none_or_reason_and_message() -> None:
    assert arrival_verdict("p", "c", None) is None
    assert arrival_verdict("p", "c", ("closed", None)) == ("closed", None)
    assert arrival_verdict("p", "c", ("closed", "we are closed")) == ("closed", "we are closed")


@pytest.mark.parametrize(
    "verdict", [("a", "b", "c"), "closed", (1, None), ("a", 2), 0, ["a", None]]
)
def test_a_wrong_arrival_verdict_is_a_plugin_error(verdict: object) -> None:
    with pytest.raises(
        PluginError, match="plugin 'p' failed during the arrival check 'c': TypeError"
    ):
        arrival_verdict("p", "c", verdict)


def test_incomparable_ranking_keys_blame_their_plugin() -> None:
    keys = [(1, "a"), (2, 3), (1, None)]
    try:
        sorted(keys)
    except TypeError as error:
        found = incomparable_keys([("first", "k1"), ("second", "k2")], keys, error)
    assert found.plugin == "second"
    assert "the ranking key 'k2'" in str(found)


def test_when_no_position_is_to_blame_the_first_plugin_is_named() -> None:
    found = incomparable_keys([("first", "k1")], [(1,), (2,)], TypeError("odd"))
    assert found.plugin == "first"
    assert "odd" in str(found)
