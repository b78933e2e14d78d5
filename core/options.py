"""How an engine behaves beyond its deployment."""

from __future__ import annotations

import math
from typing import Any

import attrs

#: The shortest reservation timeout: below it, `now + timeout` may round back to `now`
#: late in a long run (floats are 5e-7 s apart at 100 years), and the clock would not move.
MIN_RESERVATION_TIMEOUT = 0.001


def _positive_seconds(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """None, or a finite number of seconds of at least a millisecond: a timeout of 0 (or
    less, or NaN) would expire every reservation the moment it is made, and routing would
    never settle."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number of seconds or None, not {value!r}")
    if not (math.isfinite(value) and value >= MIN_RESERVATION_TIMEOUT):
        raise ValueError(
            f"{attribute.name} must be a finite number of seconds, at least "
            f"{MIN_RESERVATION_TIMEOUT:g} (or None: never), not {value!r}"
        )


@attrs.frozen
class EngineOptions:
    """How an engine behaves beyond its deployment.

    auto_accept: a reservation is accepted the moment it is made.
    reservation_timeout: seconds after which an unanswered reservation times out (None: never).
    record_decisions: keep a decision record for every offer and for each task's last
        unsuccessful attempt (the explain command needs them; the simulator turns them off).
    transactional: record what each event changes in an undo log, so that a failing
        event (a plugin raising half way) leaves the state untouched. It costs in
        proportion to what the event changed; the simulator, which stops at the first
        error, turns it off.
    indexed: without decision records, route through the roster index (per-queue members,
        open agents and ranking ladders) instead of scanning the roster for every task. The
        decisions are the same either way; a decision record lists every agent, so with
        `record_decisions` the engine scans.
    keep_closed_tasks: keep completed, canceled and rejected tasks in `state.tasks`. A long
        simulation turns it off and reads each task as it closes (`on_close`).
    """

    auto_accept: bool = False
    reservation_timeout: float | None = attrs.field(default=None, validator=_positive_seconds)
    record_decisions: bool = True
    transactional: bool = True
    indexed: bool = True
    keep_closed_tasks: bool = True
