"""The undo log: how a failing event changes nothing, at the cost of what it changed.

An event runs inside a transaction. Everything it changes is recorded as it changes, as
the action that puts the old value back: the first change of an agent or a task keeps a
copy of that one object (`UndoLog.keep`), a new entry of a dictionary records its key,
and plugin state records each key it sets (`RecordedDict`). When the event fails, the
actions run in reverse order; when it succeeds, they are dropped. Nothing is copied that
the event did not touch, so an event costs the same on a roster of ten agents as on one
of fifty thousand, and a plugin that remembers a hundred thousand customers pays only for
the customers the event changed.

Plugin state lives in `RecordedDict` and `RecordedList` containers. A dictionary or list
stored into one is converted on the way in, so nested state is recorded too. Limits:

- a `RecordedDict` records per key, at the cost of the key changed; a `RecordedList`
  keeps a copy of itself on its first change in an event, at the cost of its length, so
  keep long collections in dictionaries;
- values should be JSON-like (dict, list, str, int, float, bool, None); tuples are
  allowed and kept as they are, but a saved engine gives them back as lists; other
  mutable objects (sets, instances of your own classes) are not recorded when changed in
  place, so replace them instead of changing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol, SupportsIndex

_MISSING: Any = object()


class Undoable(Protocol):
    """An object the log can keep a copy of on its first change in an event."""

    def saved(self) -> Any: ...

    def put_back(self, saved: Any) -> None: ...


class UndoLog:
    """The changes of the event under way, as the actions that undo them."""

    __slots__ = ("_kept", "_undo", "active")

    def __init__(self) -> None:
        #: how to undo each change, oldest first: an action to call, or a kept item and
        #: its copy (a pair: cheaper to make than a bound method wrapped in a partial)
        self._undo: list[Callable[[], object] | tuple[Undoable, Any]] = []
        #: what the event has kept a copy of (or made): objects, and ids of lists
        self._kept: set[object] = set()
        #: whether an event is under way; outside one, nothing is recorded
        self.active = False

    def begin(self) -> None:
        self._undo.clear()
        self._kept.clear()
        self.active = True

    def commit(self) -> None:
        self._undo.clear()
        self._kept.clear()
        self.active = False

    def rollback(self) -> None:
        """Undo every change of the event, newest first."""
        undo, self._undo = self._undo, []
        self._kept.clear()
        self.active = False
        for action in reversed(undo):
            if action.__class__ is tuple:
                item, saved = action
                item.put_back(saved)
            else:
                action()

    def __len__(self) -> int:
        return len(self._undo)

    def push(self, action: Callable[[], object]) -> None:
        """Record how to undo a change about to be made."""
        if self.active:
            self._undo.append(action)

    def keep(self, item: Undoable) -> None:
        """Call before changing `item`: its first change in the event keeps a copy.

        Items are told apart by identity (agents, tasks and reservations compare so):
        hashing the object itself spares a call of `id` on every change."""
        if self.active and item not in self._kept:
            self._kept.add(item)
            self._undo.append((item, item.saved()))

    def created(self, item: Undoable) -> None:
        """Call when the event makes `item` and records how to take it away again: its
        later changes in the event need no copy, since undoing the event drops it."""
        if self.active:
            self._kept.add(item)

    def added(self, mapping: dict[Any, Any], key: Any) -> None:
        """Call before adding `key` to `mapping` (a key not in it yet)."""
        if self.active:
            self._undo.append(partial(mapping.pop, key, None))

    def removed(self, mapping: dict[Any, Any], key: Any) -> None:
        """Call before removing `key` from `mapping`. Order is kept only for the last key:
        a dictionary used as an ordered set gets the key back at its end."""
        if self.active and key in mapping:
            self._undo.append(partial(mapping.__setitem__, key, mapping[key]))


#: values `recorded` gives back as they are (the common case, checked first)
_SCALARS = frozenset({int, float, str, bool, type(None)})
#: values a `RecordedDict` stores as they are: scalars, and tuples (kept as given)
_STORED_AS_GIVEN = _SCALARS | {tuple}


def recorded(value: Any, log: UndoLog) -> Any:
    """`value` with every dictionary and list in it made a recorded one."""
    if isinstance(value, RecordedDict | RecordedList):
        if value.log is log:
            return value
        return recorded(value.plain(), log)
    if isinstance(value, dict):
        return RecordedDict(log, value)
    if isinstance(value, list):
        return RecordedList(log, value)
    return value


def plain(value: Any) -> Any:
    """A recorded value as plain dictionaries and lists (what `save` writes)."""
    if isinstance(value, RecordedDict | RecordedList):
        return value.plain()
    return value


class RecordedDict(dict[Any, Any]):
    """A dictionary whose every change in an event is recorded in the engine's undo log.

    Reading costs what reading a dict costs; each change records the key's old value.
    """

    __slots__ = ("log",)

    def __init__(self, log: UndoLog, items: Mapping[Any, Any] | None = None) -> None:
        super().__init__()
        self.log = log
        if items:  # (no empty dict built to loop over)
            for key, value in items.items():
                dict.__setitem__(self, key, recorded(value, log))

    def _record(self, key: Any) -> None:
        old = dict.get(self, key, _MISSING)
        if old is _MISSING:
            self.log.push(partial(dict.pop, self, key, None))
        else:
            self.log.push(partial(dict.__setitem__, self, key, old))

    def __setitem__(self, key: Any, value: Any) -> None:
        log = self.log
        if log.active:
            self._record(key)
        if value.__class__ not in _STORED_AS_GIVEN:  # a container is made a recorded one
            value = recorded(value, log)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if self.log.active and key in self:
            self._record(key)
        dict.__delitem__(self, key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        # one lookup when the key is there (plugin state is read this way on every change)
        value = dict.get(self, key, _MISSING)
        if value is not _MISSING:
            return value
        self[key] = default
        return dict.__getitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key = next(reversed(self))
        return key, self.pop(key)

    def update(self, *others: Any, **items: Any) -> None:
        # keyword arguments alone arrive in a dict of their own: no copy needed
        changes = dict(*others, **items) if others else items
        if not self.log.active:  # nothing to record: store at once what needs no converting
            for value in changes.values():
                if value.__class__ not in _STORED_AS_GIVEN:
                    break
            else:
                dict.update(self, changes)
                return
        for key, value in changes.items():
            self[key] = value

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def __ior__(self, other: Any) -> RecordedDict:  # type: ignore[misc]
        self.update(other)
        return self

    def copy(self) -> dict[Any, Any]:
        """A plain, unrecorded copy."""
        return self.plain()

    def plain(self) -> dict[Any, Any]:
        return {key: plain(value) for key, value in self.items()}

    def __reduce__(self) -> Any:
        return (dict, (self.plain(),))


class RecordedList(list[Any]):
    """A list that keeps a copy of itself on its first change in an event."""

    __slots__ = ("log",)

    def __init__(self, log: UndoLog, items: Iterable[Any] = ()) -> None:
        super().__init__(recorded(item, log) for item in items)
        self.log = log

    def _keep(self) -> None:
        log = self.log
        if log.active and id(self) not in log._kept:
            log._kept.add(id(self))
            log.push(partial(list.__setitem__, self, slice(None), list(self)))

    def append(self, value: Any) -> None:
        self._keep()
        list.append(self, recorded(value, self.log))

    def extend(self, values: Iterable[Any]) -> None:
        self._keep()
        list.extend(self, (recorded(value, self.log) for value in values))

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self._keep()
        list.insert(self, index, recorded(value, self.log))

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._keep()
        return list.pop(self, index)

    def remove(self, value: Any) -> None:
        self._keep()
        list.remove(self, value)

    def clear(self) -> None:
        self._keep()
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._keep()
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self._keep()
        list.reverse(self)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._keep()
        if isinstance(index, slice):
            list.__setitem__(self, index, [recorded(item, self.log) for item in value])
        else:
            list.__setitem__(self, index, recorded(value, self.log))

    def __delitem__(self, index: Any) -> None:
        self._keep()
        list.__delitem__(self, index)

    def __iadd__(self, values: Iterable[Any]) -> RecordedList:  # type: ignore[misc]
        self.extend(values)
        return self

    def __imul__(self, count: SupportsIndex) -> RecordedList:
        self._keep()
        list.__setitem__(self, slice(None), list(self) * int(count))
        return self

    def copy(self) -> list[Any]:
        return self.plain()

    def plain(self) -> list[Any]:
        return [plain(value) for value in self]

    def __reduce__(self) -> Any:
        return (list, (self.plain(),))
