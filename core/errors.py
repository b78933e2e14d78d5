"""Errors a user can act on: a deployment with problems, an event that cannot apply."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class Problem:
    """One thing wrong (or suspicious) in a configuration, at a key path."""

    path: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = self.path or "(top level)"
        if "\n" in self.message:
            first, rest = self.message.split("\n", 1)
            indented = "\n".join("    " + line for line in rest.splitlines())
            return f"{where}: {first}\n{indented}"
        return f"{where}: {self.message}"


class OmnirouteError(Exception):
    """Base of the errors that are the user's to fix; the CLI prints them without a traceback."""


class DeploymentError(OmnirouteError, ValueError):
    """A deployment (or scenario, or workload) file with problems; lists every one of them."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = [problem for problem in problems if problem.severity == "error"]
        self.warnings = [problem for problem in problems if problem.severity != "error"]
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        lines = [f"{self.source}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


class EventError(OmnirouteError, ValueError):
    """An event that cannot apply; the engine's state is exactly as it was before it."""


class PluginError(OmnirouteError, RuntimeError):
    """A plugin raised while handling an event; names the plugin. State was rolled back."""

    def __init__(self, plugin: str, during: str, error: BaseException) -> None:
        self.plugin = plugin
        self.during = during
        self.error = error
        super().__init__(
            f"plugin {plugin!r} failed during {during}: {type(error).__name__}: {error}"
        )


class ConcurrentWriteError(OmnirouteError, RuntimeError):
    """A second thread called into an engine while it was applying an event.

    An engine has one writer: serialize the calls (one thread, or a lock, or a queue in
    front of it, as `omniroute serve` does). Nothing was changed by the refused call.
    """
