"""Checks the engine applies to what plugin components return at run time.

Hooks are checked when a pipeline is built (core/plugins.py). Components are called on
the hot path, so their results are checked only where a wrong one would surface as a raw
error: an arrival check's verdict, and ranking keys that cannot be compared. Both give a
`PluginError` naming the plugin; the engine rolls the event back as for any plugin error.

The engine calls them as:

    verdict = guards.arrival_verdict(plugin, arrival.name, arrival.check(task))

    try:
        ranked = sorted(candidates, key=...)
    except TypeError as error:
        raise guards.incomparable_keys(named_keys, [key_of(c) for c in candidates], error)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import PluginError


def arrival_verdict(plugin: str, name: str, verdict: Any) -> tuple[str, str | None] | None:
    """An arrival check's result, checked: None, or (reason, message) with text in both."""
    if verdict is None:
        return None
    if (
        isinstance(verdict, tuple)
        and len(verdict) == 2
        and isinstance(verdict[0], str)
        and (verdict[1] is None or isinstance(verdict[1], str))
    ):
        return verdict
    shown = repr(verdict) if len(repr(verdict)) <= 60 else f"a {type(verdict).__name__}"
    raise PluginError(
        plugin,
        f"the arrival check {name!r}",
        TypeError(f"returned {shown}; expected None or (reason, message)"),
    )


def incomparable_keys(
    named_keys: Sequence[tuple[str, str]],
    keys: Sequence[Sequence[Any]],
    error: TypeError,
    kind: str = "ranking key",
) -> PluginError:
    """The PluginError for ranking keys (or task orderings: `kind`) that could not be sorted.

    `named_keys` is (plugin, key name) per position of the key tuples; `keys` the tuples
    that were being sorted. Blames the first position whose values cannot all be
    compared with one another (the first plugin then, if none can be singled out).
    """
    found = find_incomparable(named_keys, keys, kind)
    if found is not None:
        return found
    plugin, name = named_keys[0] if named_keys else ("?", "?")
    return PluginError(plugin, f"the {kind} {name!r}", error)


def find_incomparable(
    named_keys: Sequence[tuple[str | None, str]], keys: Sequence[Sequence[Any]], kind: str
) -> PluginError | None:
    """The PluginError naming the first plugin whose key values cannot be compared with
    one another, or None when every position sorts (or the culprit is the core's own:
    plugin None), so that the caller re-raises what it caught."""
    for position, (plugin, name) in enumerate(named_keys):
        values = [key[position] for key in keys if position < len(key)]
        try:
            sorted(values)
        except TypeError as found:
            if plugin is None:
                return None
            return PluginError(plugin, f"the {kind} {name!r}", found)
    return None
