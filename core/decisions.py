"""Decision records: why a task went where it went, or why nobody could take it."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Candidate:
    """One agent considered: excluded by a filter (with the reason), or ranked (with its keys)."""

    agent: str
    excluded_by: str | None
    reason: str | None
    keys: tuple[tuple[str, Any], ...]

    @property
    def eligible(self) -> bool:
        return self.excluded_by is None


@attrs.frozen
class Decision:
    """One routing attempt for a task: who was considered and who won (None: nobody could)."""

    task: str
    at: float
    queue: str | None
    target: str | None
    candidates: tuple[Candidate, ...]
    winner: str | None
    why: str
    #: what of the task's routing changes with time, at this decision (its aged
    #: priority, its proficiency step, the agent it waits for): `timed.decision_notes`
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "at": self.at,
            "queue": self.queue,
            "target": self.target,
            "winner": self.winner,
            "why": self.why,
            "notes": list(self.notes),
            "candidates": [
                {"agent": c.agent, "excluded_by": c.excluded_by, "reason": c.reason}
                if not c.eligible
                else {"agent": c.agent, "keys": {name: _plain(value) for name, value in c.keys}}
                for c in self.candidates
            ],
        }


def _plain(value: Any) -> Any:
    """Ranking keys as JSON: tuples become lists, infinities become null."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


def explain_winner(ranked: tuple[Candidate, ...]) -> str:
    """Why the first ranked candidate beat the second: the first key where they differ."""
    if len(ranked) == 1:
        return f"{ranked[0].agent} was the only eligible agent"
    winner, runner_up = ranked[0], ranked[1]
    for (name, mine), (_, theirs) in zip(winner.keys, runner_up.keys, strict=True):
        if mine != theirs:
            return f"{winner.agent} beat {runner_up.agent} on {name} ({_plain(mine)!r} before {_plain(theirs)!r})"
    return f"{winner.agent} tied with {runner_up.agent} on every key"
