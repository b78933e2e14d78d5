"""Calling plugins' components, and naming the plugin when one fails.

Every component sits in the pipeline with its owner: a plugin's name, or None for the
engine's built-in behaviour, whose errors are the engine's own and pass as they are. A
plugin's error becomes a `PluginError` that names the plugin and what it was doing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import EventError, PluginError

if TYPE_CHECKING:
    from .components import RankingKey
    from .state import Agent, Task


def call_named(
    plugin: str | None, what: str, name: str, function: Callable[..., Any], *args: Any
) -> Any:
    """Call a component; `what.format(name)` is only built if the call fails."""
    if plugin is None:
        return function(*args)
    try:
        return function(*args)
    except (EventError, PluginError):
        raise
    except Exception as error:
        raise PluginError(plugin, what.format(name), error) from error


def blame(
    components: tuple[tuple[str | None, Any], ...], position: int, kind: str, error: Exception
) -> NoReturn:
    """Raise what component `position` raised, as a PluginError naming its plugin (one
    try around a hot loop instead of one per call; the loop's length says who failed)."""
    plugin, component = components[position]
    if plugin is None or isinstance(error, (EventError, PluginError)):
        raise error
    raise PluginError(plugin, f"the {kind} {component.name!r}", error) from error


def keys_of(
    rankings: tuple[tuple[str | None, RankingKey], ...], task: Task, agent: Agent
) -> list[Any]:
    """The ranking keys of an agent for a task, in order."""
    keys: list[Any] = []
    try:
        for _plugin, ranking in rankings:
            keys.append(ranking.key(task, agent))
    except Exception as error:
        blame(rankings, len(keys), "ranking key", error)
    return keys


def key_calls(
    rankings: tuple[tuple[str | None, RankingKey], ...],
) -> Callable[[Task, Agent], list[Any]]:
    """`keys_of` for fixed ranking keys, with their callables collected once: the hot
    path calls a list of plain functions, and looks up the owner only if one fails."""
    functions = tuple(ranking.key for _plugin, ranking in rankings)

    def keys(task: Task, agent: Agent) -> list[Any]:
        found: list[Any] = []
        append = found.append
        try:
            for function in functions:
                append(function(task, agent))
        except Exception as error:
            blame(rankings, len(found), "ranking key", error)
        return found

    return keys
