"""Events as transactions: one writer at a time, and everything undone on failure.

`Transactions.run` applies an event's changes and the routing that follows; if anything
raises, the undo log (`undo.py`) puts back what the event changed and the counters it
moved, and the engine rebuilds what it derives from its state. A second thread calling in
while an event is under way gets a `ConcurrentWriteError`: an engine has one writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from .errors import ConcurrentWriteError, EventError, PluginError
from .state import EngineState
from .undo import UndoLog

#: what only grows, measured before an event instead of recorded as it changes: the
#: offers made, and the task, wait and agent counters (timer ids are never given back:
#: an undone timer stays canceled under its id)
Mark = tuple[int, int, float, int, int]

_SECOND_WRITER = (
    "the engine is already applying an event in another thread: an engine has one writer "
    "(see docs/api.md, 'One writer')"
)


class Transactions:
    """The undo log and the writer of one engine."""

    def __init__(self, state: EngineState, *, recorded: bool) -> None:
        self.undo = UndoLog()
        self._state = state
        #: False: no undo log (a failing event leaves what it changed; the simulator)
        self.recorded = recorded
        self.in_event = False
        self._writer: int | None = None
        self._lock = threading.Lock()

    def writing(self) -> _Writing:
        """Hold the engine for this thread (again, if it holds it already), as a `with`
        block. A plain class rather than a generator: it is entered on every event."""
        return _Writing(self)

    def run(
        self,
        what: str,
        apply: Callable[[], None],
        owner: str | None,
        rebuild: Callable[[], None],
        then: Callable[[], None],
    ) -> bool:
        """Apply an event, then `then` (the routing it causes), as one transaction; False
        when it ran inside an event already under way, which owns the transaction.

        The writer check of `writing` is written out here: this runs for every event."""
        me = threading.get_ident()
        if self.in_event:
            if self._writer is not None and self._writer != me:
                raise ConcurrentWriteError(
                    "the engine is applying an event in another thread: an engine has one writer"
                )
            apply()
            then()
            return False
        outermost = self.take(me)
        self.in_event = True
        try:
            if self.recorded:
                self.undo.begin()
                state = self._state
                mark: Mark | None = (
                    len(state.offers),
                    state.task_sequence,
                    state.now,
                    state.wait_sequence,
                    state.agent_sequence,
                )
            else:
                mark = None
            try:
                apply()
                then()
            except BaseException as error:
                if mark is not None:
                    self._rollback(mark)
                    rebuild()
                if owner is not None and not isinstance(error, (EventError, PluginError)):
                    raise PluginError(owner, what, error) from error
                raise
            if mark is not None:
                self.undo.commit()
        finally:
            self.in_event = False
            if outermost:
                self._writer = None
                self._lock.release()
        return True

    def move_clock(self, at: float) -> None:
        """Set the clock to `at` under the writer check: the commonest event of a long run
        (a time with no timer due). The lock free, this thread takes it for the moment;
        held, only by this thread may the clock move."""
        if self._lock.acquire(blocking=False):
            try:
                self._state.now = at
            finally:
                self._lock.release()
            return
        if self._writer != threading.get_ident():
            raise ConcurrentWriteError(_SECOND_WRITER)
        self._state.now = at

    def take(self, me: int) -> bool:
        """Take the writer lock for thread `me`: True when taken now, False when `me`
        holds it already; another thread's holding it is a `ConcurrentWriteError`."""
        if self._writer == me:
            return False
        if not self._lock.acquire(blocking=False):
            raise ConcurrentWriteError(_SECOND_WRITER)
        self._writer = me
        return True

    def _rollback(self, mark: Mark) -> None:
        self.undo.rollback()
        state = self._state
        offers, state.task_sequence, state.now, state.wait_sequence, state.agent_sequence = mark
        del state.offers[offers:]
        # An agent removed and put back returns at the end: roster order is its index.
        state.agents = dict(sorted(state.agents.items(), key=lambda item: item[1].roster_index))


class _Writing:
    """One `with transactions.writing()` block: the outermost takes the lock."""

    __slots__ = ("_outermost", "_owner")

    def __init__(self, owner: Transactions) -> None:
        self._owner = owner
        self._outermost = False

    def __enter__(self) -> None:
        self._outermost = self._owner.take(threading.get_ident())

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._outermost:
            owner = self._owner
            owner._writer = None
            owner._lock.release()
