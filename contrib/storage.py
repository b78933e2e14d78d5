"""Where `omniroute serve` keeps what must survive a restart: the journal of commands,
the events sent out, the tasks as they stand, snapshots and webhook progress.

`Store` is the whole interface the service uses, so the PostgreSQL back end
(storage_pg.py) sits beside `SQLiteStore` without touching the engine. A `Batch` is everything
one group commit writes; `write` makes it durable at once or not at all.

The journal is the truth: a record is `(seq, at, event)`, an engine event in the JSON of
`omniroute.core.events` applied at `at` seconds since the deployment's start (replay
moves the clock to `at`, then applies the event). Events, tasks, reservations and
explanations are derived from it, written in the same transaction so they never
disagree with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import attrs

log = logging.getLogger("omniroute.store")


@attrs.define
class Batch:
    """What one commit writes for one deployment."""

    deployment: str
    #: (seq, at, event JSON text, command id or None)
    journal: list[tuple[int, float, str, str | None]] = attrs.Factory(list)
    #: (id, type, at ISO text, JSON text of the whole event)
    events: list[tuple[int, str, str, str]] = attrs.Factory(list)
    #: task id -> (seq, state, queue, JSON text of the task view)
    tasks: dict[str, tuple[int, str, str | None, str]] = attrs.Factory(dict)
    #: reservation id -> (state, JSON text of the reservation view)
    reservations: dict[str, tuple[str, str]] = attrs.Factory(dict)
    #: task id -> JSON text of its explanation (written as the task closes)
    explanations: dict[str, str] = attrs.Factory(dict)
    #: meta key -> value, for this deployment
    meta: dict[str, str] = attrs.Factory(dict)
    #: the writer's lease epoch (PostgreSQL refuses the batch when it is stale; None:
    #: no lease, as on SQLite)
    epoch: int | None = None

    def __bool__(self) -> bool:
        return bool(self.journal or self.events or self.tasks or self.meta)


class StoreUnavailable(Exception):
    """The store cannot be reached (a database restarting, a network cut): nothing was
    changed by the call that raised it, or for a write, whether it committed is unknown."""


@attrs.frozen
class Snapshot:
    seq: int
    data: dict[str, Any]


class Store:
    """The storage interface of the service (a back end implements every method)."""

    def write(self, batch: Batch) -> None:
        """Make the batch durable, all of it or none of it."""
        raise NotImplementedError

    def meta(self, deployment: str, key: str) -> str | None:
        raise NotImplementedError

    def journal(self, deployment: str, after: int) -> Iterator[tuple[int, float, dict[str, Any]]]:
        """The records after `after`, in order: (seq, at, event JSON)."""
        raise NotImplementedError

    def last_seq(self, deployment: str) -> int:
        raise NotImplementedError

    def command_ids(self, deployment: str, ids: list[str]) -> set[str]:
        """Which of these command ids the journal holds (tests and audits use it)."""
        raise NotImplementedError

    def save_snapshot(self, deployment: str, seq: int, body: str, epoch: int | None = None) -> None:
        """Keep a snapshot (JSON text) of the state after journal record `seq` (refused,
        like a batch, when `epoch` is stale)."""
        raise NotImplementedError

    def snapshot(self, deployment: str) -> Snapshot | None:
        """The latest snapshot, if any."""
        raise NotImplementedError

    def last_event_id(self, deployment: str) -> int:
        raise NotImplementedError

    def events(self, deployment: str, after: int, limit: int) -> list[str]:
        """Events after `after`, as the JSON text sent out."""
        raise NotImplementedError

    def task(self, deployment: str, task_id: str) -> str | None:
        raise NotImplementedError

    def tasks(
        self,
        deployment: str,
        *,
        state: str | None,
        queue: str | None,
        after_seq: int,
        limit: int,
    ) -> list[tuple[int, str]]:
        """Tasks in creation order after `after_seq`: (seq, JSON text)."""
        raise NotImplementedError

    def task_seq(self, deployment: str, task_id: str) -> int | None:
        """The creation order of a task (None: unknown)."""
        raise NotImplementedError

    def task_counts(self, deployment: str) -> dict[str, int]:
        raise NotImplementedError

    def reservation(self, deployment: str, reservation_id: str) -> str | None:
        raise NotImplementedError

    def explanation(self, deployment: str, task_id: str) -> str | None:
        raise NotImplementedError

    def webhook_progress(self, deployment: str, url: str) -> int:
        raise NotImplementedError

    def set_webhook_progress(self, deployment: str, url: str, event_id: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLStore(Store):
    """The reads both SQL back ends share, each query written once: they differ only in
    the placeholder (`PARAM`, put where a query says `{p}`) and in how a query runs
    (`_rows`, `_one`)."""

    #: the driver's placeholder: "?" for sqlite3, "%s" for psycopg
    PARAM: ClassVar[str]

    def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, *args: Any) -> Any:
        """The first column of the first row (None: no row)."""
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text.replace("{p}", self.PARAM)

    def _text(self, sql: str, *args: Any) -> str | None:
        value = self._one(self._sql(sql), *args)
        return None if value is None else str(value)

    def meta(self, deployment: str, key: str) -> str | None:
        return self._text(
            "SELECT value FROM meta WHERE deployment = {p} AND key = {p}", deployment, key
        )

    def last_seq(self, deployment: str) -> int:
        return int(
            self._one(self._sql("SELECT MAX(seq) FROM journal WHERE deployment = {p}"), deployment)
            or 0
        )

    def snapshot(self, deployment: str) -> Snapshot | None:
        rows = self._rows(
            self._sql(
                "SELECT seq, body FROM snapshots WHERE deployment = {p} ORDER BY seq DESC LIMIT 1"
            ),
            deployment,
        )
        return Snapshot(int(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def last_event_id(self, deployment: str) -> int:
        return int(
            self._one(self._sql("SELECT MAX(id) FROM events WHERE deployment = {p}"), deployment)
            or 0
        )

    def events(self, deployment: str, after: int, limit: int) -> list[str]:
        rows = self._rows(
            self._sql(
                "SELECT body FROM events WHERE deployment = {p} AND id > {p} ORDER BY id LIMIT {p}"
            ),
            deployment,
            after,
            limit,
        )
        return [row[0] for row in rows]

    def task(self, deployment: str, task_id: str) -> str | None:
        return self._text(
            "SELECT body FROM tasks WHERE deployment = {p} AND id = {p}", deployment, task_id
        )

    def tasks(
        self,
        deployment: str,
        *,
        state: str | None,
        queue: str | None,
        after_seq: int,
        limit: int,
    ) -> list[tuple[int, str]]:
        sql = "SELECT seq, body FROM tasks WHERE deployment = {p} AND seq > {p}"
        args: list[Any] = [deployment, after_seq]
        if state is not None:
            sql += " AND state = {p}"
            args.append(state)
        if queue is not None:
            sql += " AND queue = {p}"
            args.append(queue)
        sql += " ORDER BY seq LIMIT {p}"
        args.append(limit)
        return [(int(row[0]), row[1]) for row in self._rows(self._sql(sql), *args)]

    def task_seq(self, deployment: str, task_id: str) -> int | None:
        value = self._one(
            self._sql("SELECT seq FROM tasks WHERE deployment = {p} AND id = {p}"),
            deployment,
            task_id,
        )
        return None if value is None else int(value)

    def task_counts(self, deployment: str) -> dict[str, int]:
        rows = self._rows(
            self._sql("SELECT state, COUNT(*) FROM tasks WHERE deployment = {p} GROUP BY state"),
            deployment,
        )
        return {row[0]: int(row[1]) for row in rows}

    def reservation(self, deployment: str, reservation_id: str) -> str | None:
        return self._text(
            "SELECT body FROM reservations WHERE deployment = {p} AND id = {p}",
            deployment,
            reservation_id,
        )

    def explanation(self, deployment: str, task_id: str) -> str | None:
        return self._text(
            "SELECT body FROM explanations WHERE deployment = {p} AND task = {p}",
            deployment,
            task_id,
        )

    def webhook_progress(self, deployment: str, url: str) -> int:
        sql = self._sql("SELECT delivered FROM webhooks WHERE deployment = {p} AND url = {p}")
        return int(self._one(sql, deployment, url) or 0)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    deployment TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (deployment, key));
CREATE TABLE IF NOT EXISTS journal (
    deployment TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL,
    command TEXT, PRIMARY KEY (deployment, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_command ON journal (deployment, command)
    WHERE command IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    deployment TEXT NOT NULL, id INTEGER NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (deployment, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    deployment TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
    queue TEXT, body TEXT NOT NULL, PRIMARY KEY (deployment, id));
CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (deployment, seq);
CREATE TABLE IF NOT EXISTS reservations (
    deployment TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (deployment, id));
CREATE TABLE IF NOT EXISTS explanations (
    deployment TEXT NOT NULL, task TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (deployment, task));
CREATE TABLE IF NOT EXISTS snapshots (
    deployment TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (deployment, seq));
CREATE TABLE IF NOT EXISTS webhooks (
    deployment TEXT NOT NULL, url TEXT NOT NULL, delivered INTEGER NOT NULL,
    PRIMARY KEY (deployment, url));
"""


def _rows(table: str, columns: int, verb: str = "INSERT OR REPLACE") -> str:
    """Rows from a JSON list of lists (one per row) for one deployment."""
    values = ", ".join(f"json_extract(j.value, '$[{n}]')" for n in range(columns))
    return f"{verb} INTO {table} SELECT ?, {values} FROM json_each(?) AS j"  # noqa: S608 - no user text


# Journal records and events are only ever added: a second writer's seq collides.
_INSERT_JOURNAL = _rows("journal", 4, "INSERT")
_INSERT_EVENTS = _rows("events", 4, "INSERT")
_INSERT_TASKS = _rows("tasks", 5)
_INSERT_RESERVATIONS = _rows("reservations", 3)
_INSERT_EXPLANATIONS = _rows("explanations", 2)
_INSERT_META = _rows("meta", 2)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or a plain path."""
    if "://" not in url:
        return Path(url)
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        raise ValueError(f"not a SQLite URL: {url!r}")
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
    if not path:
        raise ValueError(f"no file in {url!r} (use sqlite:///omniroute.db)")
    return Path(path)


class SQLiteStore(SQLStore):
    """SQLite in WAL mode with `synchronous=FULL`: a commit is on disk when `write`
    returns. One connection writes (under a lock), another reads; WAL lets reads go on
    while a commit is in flight."""

    PARAM = "?"

    def __init__(self, path: str | Path, *, checkpoint_every: float = 1.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        # Commits never checkpoint (copying the WAL into the database in a commit stalls
        # every command waiting on it); a thread of its own does, passively, beside them.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._reader = self._connect()
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(checkpoint_every,), daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self, every: float) -> None:
        connection = self._connect()
        try:
            while not self._closing.wait(every):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.exception("checkpoint of %s failed; commits go on", self.path)
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def write(self, batch: Batch) -> None:
        # Each table's rows go in as one JSON parameter (one statement each): the writing
        # thread then needs the GIL a handful of times per commit instead of once a row,
        # and does not queue behind the event loop for each. `at` is kept as the text of
        # its repr, so that a replay reads back exactly the float that was applied.
        name = batch.deployment
        statements: list[tuple[str, str]] = []
        if batch.journal:
            rows = [[seq, repr(at), event, command] for seq, at, event, command in batch.journal]
            statements.append((_INSERT_JOURNAL, _dumps(rows)))
        if batch.events:
            statements.append((_INSERT_EVENTS, _dumps(batch.events)))
        if batch.tasks:
            rows = [[key, *row] for key, row in batch.tasks.items()]
            statements.append((_INSERT_TASKS, _dumps(rows)))
        if batch.reservations:
            rows = [[key, *row] for key, row in batch.reservations.items()]
            statements.append((_INSERT_RESERVATIONS, _dumps(rows)))
        if batch.explanations:
            statements.append((_INSERT_EXPLANATIONS, _dumps(list(batch.explanations.items()))))
        if batch.meta:
            statements.append((_INSERT_META, _dumps(list(batch.meta.items()))))
        with self._lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows_text in statements:
                    db.execute(sql, (name, rows_text))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self._reader.execute(sql, args).fetchall()

    def _one(self, sql: str, *args: Any) -> Any:
        row = self._reader.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def journal(self, deployment: str, after: int) -> Iterator[tuple[int, float, dict[str, Any]]]:
        # A connection of its own: the replay of a long journal streams it in pages.
        connection = self._connect()
        try:
            last = after
            while True:
                rows = connection.execute(
                    "SELECT seq, at, event FROM journal WHERE deployment = ? AND seq > ? "
                    "ORDER BY seq LIMIT 10000",
                    (deployment, last),
                ).fetchall()
                if not rows:
                    return
                for seq, at, event in rows:
                    yield seq, float(at), json.loads(event)
                last = rows[-1][0]
        finally:
            connection.close()

    def command_ids(self, deployment: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._reader.execute(
                f"SELECT command FROM journal WHERE deployment = ? AND command IN ({marks})",  # noqa: S608 - placeholders only
                (deployment, *chunk),
            ).fetchall()
            found.update(row[0] for row in rows)
        return found

    def save_snapshot(self, deployment: str, seq: int, body: str, epoch: int | None = None) -> None:
        with self._lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (deployment, seq, body)
                )
                # Keep the latest two: one to fall back on should the newest not restore.
                db.execute(
                    "DELETE FROM snapshots WHERE deployment = ? AND seq NOT IN "
                    "(SELECT seq FROM snapshots WHERE deployment = ? ORDER BY seq DESC LIMIT 2)",
                    (deployment, deployment),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def set_webhook_progress(self, deployment: str, url: str, event_id: int) -> None:
        with self._lock:
            self._writer.execute(
                "INSERT OR REPLACE INTO webhooks VALUES (?, ?, ?)", (deployment, url, event_id)
            )

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join(timeout=30)
        with self._lock:
            self._reader.close()
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer.close()


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> Store:
    """The back end a `--db` URL names (PostgreSQL: psycopg is imported only then)."""
    if is_postgresql(url):
        try:
            from .storage_pg import PostgresStore
        except ImportError as error:
            raise ValueError(
                "the PostgreSQL back end needs psycopg: pip install 'omniroute[postgresql]'"
            ) from error

        return PostgresStore(url)
    return SQLiteStore(sqlite_path(url))
