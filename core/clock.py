"""The engine's clock and timers.

Time is seconds since the engine's `start` (a timezone-aware datetime); it moves only
when the engine is told to move it. A timer is data, `(at, id, owner, name, payload)`,
kept in a heap in the engine's state so that it can be saved; the function it calls is
declared once per (owner, name) with `on_timer` and looked up when it fires. A canceled
timer stays in the heap, marked, and is dropped when it reaches the top.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .errors import EventError
from .limits import MAX_TIMERS_AT_ONE_INSTANT
from .state import EngineState
from .undo import UndoLog

TimerHandler = Callable[[Any], None]
Timer = tuple[float, int, str | None, str, Any]


def finite_time(at: Any) -> bool:
    """Whether `at` can be a time: a finite number (not a bool, not NaN, not infinite)."""
    return not isinstance(at, bool) and isinstance(at, (int, float)) and math.isfinite(at)


class Clock:
    """The clock and the timers of one engine (owner None: the engine's own timers)."""

    def __init__(self, start: datetime, state: EngineState, undo: UndoLog) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.start = start
        self.state = state
        self._undo = undo
        self._handlers: dict[tuple[str | None, str], TimerHandler] = {}
        #: the loop guard: the instant timers last fired at, how many, and the bound
        self._instant: float | None = None
        self._fired = 0
        self._bound = 0

    @property
    def now(self) -> float:
        return self.state.now

    def wall_time(self, at: float | None = None) -> datetime:
        return self.start + timedelta(seconds=self.state.now if at is None else at)

    def on_timer(self, owner: str | None, name: str, handler: TimerHandler) -> None:
        """Declare what timers `name` of `owner` (a plugin; None: the engine) call."""
        self._handlers[(owner, name)] = handler

    def handles(self, owner: str | None, name: str) -> bool:
        return (owner, name) in self._handlers

    def set_timer(self, at: float, name: str, payload: Any = None, owner: str | None = None) -> int:
        """At `at` (never before now), call the handler of (owner, name) with `payload`.

        `at` must be a finite number: a NaN would break the order of the timers, and an
        infinite time would never be reached."""
        if not finite_time(at):
            raise ValueError(
                f"timer {name!r} of {owner or 'the engine'}: the time must be a finite number "
                f"of seconds, not {at!r}"
            )
        if (owner, name) not in self._handlers:
            raise ValueError(
                f"no handler for timer {name!r} of {owner or 'the engine'}; declare it with on_timer"
            )
        state = self.state
        timer_id = state.timer_sequence
        state.timer_sequence += 1
        # Undone by canceling: the heap entry is then skipped like any canceled timer.
        self._undo.push(functools.partial(state.canceled_timers.add, timer_id))
        heapq.heappush(state.timers, (max(at, state.now), timer_id, owner, name, payload))
        return timer_id

    def cancel_timer(self, timer_id: int) -> None:
        canceled = self.state.canceled_timers
        if timer_id not in canceled:
            self._undo.push(functools.partial(canceled.discard, timer_id))
            canceled.add(timer_id)

    def next_timer_at(self) -> float | None:
        timers, canceled = self.state.timers, self.state.canceled_timers
        while timers and timers[0][1] in canceled:
            canceled.discard(heapq.heappop(timers)[1])
        return timers[0][0] if timers else None

    def loop_guard(self, when: float, owner: str | None, name: str) -> Exception | None:
        """Count a timer about to fire at `when`; past the bound of timers at one instant,
        the error that timer's transaction raises instead of calling its handler (an
        EventError for the engine's own timers; a plugin's error is named by the
        transaction). No input may keep the clock where it is."""
        if when != self._instant:
            self._instant, self._fired = when, 0
            self._bound = MAX_TIMERS_AT_ONE_INSTANT + 10 * len(self.state.timers)
        self._fired += 1
        if self._fired <= self._bound:
            return None
        message = (
            f"more than {self._bound} timers fired at {when:g} s without the clock moving; "
            f"the last, {name!r}, keeps setting timers at the current time"
        )
        return EventError(message) if owner is None else RuntimeError(message)

    def only_moves(self, at: Any) -> bool:
        """Whether moving the clock to `at` fires no timer and needs no check: a float,
        not before now and finite, with no timer due by then (the common case of a long
        run). A canceled timer on top makes this False: the full path drops it."""
        state = self.state
        timers = state.timers
        return (
            at.__class__ is float
            and state.now <= at < math.inf
            and (not timers or timers[0][0] > at)
        )

    def pop_due(self, at: float) -> tuple[Timer, TimerHandler] | None:
        """The next timer due by `at`, taken off the heap, with its handler."""
        due = self.next_timer_at()
        if due is None or due > at:
            return None
        timer = heapq.heappop(self.state.timers)
        return timer, self._handlers[(timer[2], timer[3])]
