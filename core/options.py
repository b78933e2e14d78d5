"""How an engine behaves beyond its deployment."""

from __future__ import annotations

import attrs


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
    reservation_timeout: float | None = None
    record_decisions: bool = True
    transactional: bool = True
    indexed: bool = True
    keep_closed_tasks: bool = True
