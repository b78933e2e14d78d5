"""The PostgreSQL back end of `omniroute serve`: the same tables and semantics as
`SQLiteStore`, plus what many instances on one database need: a lease per deployment
(owner, address, epoch, expiry) and fencing.

Fencing. Every batch and snapshot an owner writes carries the epoch of its lease; the
write first runs `omniroute_fence(deployment, epoch)`, which takes a share lock on the
lease row and raises unless the epoch is still the row's. A takeover bumps the epoch
with an UPDATE of that row, so it either waits for a write in flight to commit (and then
replays it) or commits first (and the write is refused). An instance that was paused
past its lease can never write again.

Expiry is judged on the database's clock alone (`clock_timestamp()`), so the instances'
clocks need not agree. The schema lives in numbered migrations, applied at start under
an advisory lock, so instances starting together do not race.

Connections are psycopg 3, one for writes and one for reads, each under a lock (calls
come from several threads); a broken connection is opened again on the next call, so the
instances reconnect after the database restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import psycopg

from .storage import Batch, SQLStore, StoreUnavailable

log = logging.getLogger("omniroute.store")

T = TypeVar("T")

#: (version, SQL): applied in order, each once, recorded in schema_migrations
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE meta (
            deployment TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (deployment, key));
        CREATE TABLE journal (
            deployment TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL,
            event TEXT NOT NULL, command TEXT, epoch BIGINT,
            PRIMARY KEY (deployment, seq));
        CREATE INDEX journal_command ON journal (deployment, command)
            WHERE command IS NOT NULL;
        CREATE TABLE events (
            deployment TEXT NOT NULL, id BIGINT NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL,
            body TEXT NOT NULL, PRIMARY KEY (deployment, id));
        CREATE TABLE tasks (
            deployment TEXT NOT NULL, id TEXT NOT NULL, seq BIGINT NOT NULL,
            state TEXT NOT NULL, queue TEXT, body TEXT NOT NULL, PRIMARY KEY (deployment, id));
        CREATE INDEX tasks_seq ON tasks (deployment, seq);
        CREATE TABLE reservations (
            deployment TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL,
            body TEXT NOT NULL, PRIMARY KEY (deployment, id));
        CREATE TABLE explanations (
            deployment TEXT NOT NULL, task TEXT NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (deployment, task));
        CREATE TABLE snapshots (
            deployment TEXT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (deployment, seq));
        CREATE TABLE webhooks (
            deployment TEXT NOT NULL, url TEXT NOT NULL, delivered BIGINT NOT NULL,
            PRIMARY KEY (deployment, url));
        CREATE TABLE leases (
            deployment TEXT PRIMARY KEY, owner TEXT, address TEXT,
            epoch BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
            renewed_at TIMESTAMPTZ NOT NULL);
        CREATE TABLE instances (
            id TEXT PRIMARY KEY, address TEXT NOT NULL, seen_at TIMESTAMPTZ NOT NULL);
        CREATE FUNCTION omniroute_fence(wanted TEXT, held BIGINT) RETURNS VOID AS $$
        DECLARE found_epoch BIGINT;
        BEGIN
            SELECT epoch INTO found_epoch FROM leases WHERE deployment = wanted FOR SHARE;
            IF found_epoch IS DISTINCT FROM held THEN
                RAISE EXCEPTION 'omniroute: stale epoch % for deployment % (current %)',
                    held, wanted, found_epoch;
            END IF;
        END $$ LANGUAGE plpgsql;
        """,
    ),
]
#: any key: every instance's migration run serializes on it
_MIGRATION_LOCK = 0x6F6D6E69


class Fenced(Exception):
    """The lease's epoch moved on: this instance no longer owns the deployment."""


@attrs.frozen
class Lease:
    deployment: str
    owner: str | None
    address: str | None
    epoch: int
    #: seconds until it expires, on the database's clock (negative: expired)
    remaining: float


class PostgresStore(SQLStore):
    """The store on PostgreSQL (see the module's docstring)."""

    PARAM = "%s"

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: psycopg.Connection[Any] | None = None
        self._reader: psycopg.Connection[Any] | None = None
        self.migrate()

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, int(self.connect_timeout)),
            application_name="omniroute",
        )

    def _with(
        self, which: str, work: Callable[[psycopg.Connection[Any]], T], *, retry: bool = True
    ) -> T:
        """Run `work` on the reader or writer connection, opening it again once if it broke
        (a write is not retried: whether it committed is unknown, so it fails upward)."""
        lock = self._write_lock if which == "writer" else self._read_lock
        with lock:
            for attempt in (1, 2):
                connection = getattr(self, f"_{which}")
                if connection is None or connection.closed or connection.broken:
                    try:
                        connection = self._connect()
                    except psycopg.OperationalError as error:
                        raise StoreUnavailable(f"the database is unavailable: {error}") from error
                    setattr(self, f"_{which}", connection)
                try:
                    return work(connection)
                except psycopg.OperationalError as error:
                    if connection.broken or connection.closed:
                        setattr(self, f"_{which}", None)
                        with contextlib.suppress(Exception):
                            connection.close()
                    if attempt == 2 or not retry:
                        raise StoreUnavailable(f"the database is unavailable: {error}") from error
        raise AssertionError("unreachable")

    def migrate(self) -> None:
        """Apply the migrations this database has not seen, in order."""

        def run(db: psycopg.Connection[Any]) -> None:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
                for version, sql in MIGRATIONS:
                    if version in done:
                        continue
                    db.execute(sql)  # our own text, no parameters
                    db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    log.info("store: applied migration %d", version)

        self._with("writer", run)

    # --- writing -------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        name = batch.deployment

        def run(db: psycopg.Connection[Any]) -> None:
            # Pipelined: every statement goes out at once, one round trip and the commit.
            try:
                with db.pipeline(), db.transaction():
                    if batch.epoch is not None:
                        db.execute("SELECT omniroute_fence(%s, %s)", (name, batch.epoch))
                    if batch.journal:
                        seqs, ats, bodies, commands = zip(*batch.journal, strict=True)
                        db.execute(
                            "INSERT INTO journal SELECT %s, s, a, e, c, %s FROM "
                            "unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
                            "AS r(s, a, e, c)",
                            (
                                name,
                                batch.epoch,
                                list(seqs),
                                [repr(at) for at in ats],
                                list(bodies),
                                list(commands),
                            ),
                        )
                    if batch.events:
                        ids, kinds, ats, bodies = zip(*batch.events, strict=True)
                        db.execute(
                            "INSERT INTO events SELECT %s, i, k, a, b FROM "
                            "unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
                            "AS r(i, k, a, b)",
                            (name, list(ids), list(kinds), list(ats), list(bodies)),
                        )
                    if batch.tasks:
                        keys = list(batch.tasks)
                        rows = [batch.tasks[key] for key in keys]
                        db.execute(
                            "INSERT INTO tasks SELECT %s, i, s, st, q, b FROM unnest("
                            "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[]) "
                            "AS r(i, s, st, q, b) ON CONFLICT (deployment, id) DO UPDATE SET "
                            "seq = EXCLUDED.seq, state = EXCLUDED.state, queue = EXCLUDED.queue, "
                            "body = EXCLUDED.body",
                            (name, keys, *(list(column) for column in zip(*rows, strict=True))),
                        )
                    if batch.reservations:
                        keys = list(batch.reservations)
                        db.execute(
                            "INSERT INTO reservations SELECT %s, i, s, b FROM "
                            "unnest(%s::text[], %s::text[], %s::text[]) AS r(i, s, b) "
                            "ON CONFLICT (deployment, id) DO UPDATE SET "
                            "state = EXCLUDED.state, body = EXCLUDED.body",
                            (
                                name,
                                keys,
                                [batch.reservations[k][0] for k in keys],
                                [batch.reservations[k][1] for k in keys],
                            ),
                        )
                    if batch.explanations:
                        db.execute(
                            "INSERT INTO explanations SELECT %s, t, b FROM "
                            "unnest(%s::text[], %s::text[]) AS r(t, b) "
                            "ON CONFLICT (deployment, task) DO UPDATE SET body = EXCLUDED.body",
                            (name, list(batch.explanations), list(batch.explanations.values())),
                        )
                    if batch.meta:
                        db.execute(
                            "INSERT INTO meta SELECT %s, k, v FROM "
                            "unnest(%s::text[], %s::text[]) AS r(k, v) "
                            "ON CONFLICT (deployment, key) DO UPDATE SET value = EXCLUDED.value",
                            (name, list(batch.meta), list(batch.meta.values())),
                        )
            except psycopg.errors.RaiseException as error:
                if "stale epoch" in str(error):
                    raise Fenced(str(error).splitlines()[0]) from error
                raise

        self._with("writer", run, retry=False)

    def save_snapshot(self, deployment: str, seq: int, body: str, epoch: int | None = None) -> None:
        def run(db: psycopg.Connection[Any]) -> None:
            try:
                with db.transaction():
                    if epoch is not None:
                        db.execute("SELECT omniroute_fence(%s, %s)", (deployment, epoch))
                    db.execute(
                        "INSERT INTO snapshots VALUES (%s, %s, %s) ON CONFLICT (deployment, seq) "
                        "DO UPDATE SET body = EXCLUDED.body",
                        (deployment, seq, body),
                    )
                    # Keep the latest two: one to fall back on should the newest not restore.
                    db.execute(
                        "DELETE FROM snapshots WHERE deployment = %s AND seq NOT IN (SELECT seq "
                        "FROM snapshots WHERE deployment = %s ORDER BY seq DESC LIMIT 2)",
                        (deployment, deployment),
                    )
            except psycopg.errors.RaiseException as error:
                raise Fenced(str(error).splitlines()[0]) from error

        self._with("writer", run, retry=False)

    def set_webhook_progress(self, deployment: str, url: str, event_id: int) -> None:
        self._with(
            "writer",
            lambda db: db.execute(
                "INSERT INTO webhooks VALUES (%s, %s, %s) ON CONFLICT (deployment, url) "
                "DO UPDATE SET delivered = EXCLUDED.delivered",
                (deployment, url, event_id),
            ),
        )

    # --- reading -------------------------------------------------------------------------

    def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self._with("reader", lambda db: db.execute(sql, args).fetchall())

    def _one(self, sql: str, *args: Any) -> Any:
        rows = self._rows(sql, *args)
        return rows[0][0] if rows else None

    def journal(self, deployment: str, after: int) -> Iterator[tuple[int, float, dict[str, Any]]]:
        last = after
        while True:
            rows = self._rows(
                "SELECT seq, at, event FROM journal WHERE deployment = %s AND seq > %s "
                "ORDER BY seq LIMIT 10000",
                deployment,
                last,
            )
            if not rows:
                return
            for seq, at, event in rows:
                yield int(seq), float(at), json.loads(event)
            last = int(rows[-1][0])

    def command_ids(self, deployment: str, ids: list[str]) -> set[str]:
        rows = self._rows(
            "SELECT command FROM journal WHERE deployment = %s AND command = ANY(%s)",
            deployment,
            ids,
        )
        return {row[0] for row in rows}

    # --- leases --------------------------------------------------------------------------

    def heartbeat(self, instance: str, address: str, ttl: float) -> int:
        """Say this instance is alive; how many instances are (seen within `ttl`)."""

        def run(db: psycopg.Connection[Any]) -> int:
            db.execute(
                "INSERT INTO instances VALUES (%s, %s, clock_timestamp()) ON CONFLICT (id) "
                "DO UPDATE SET address = EXCLUDED.address, seen_at = EXCLUDED.seen_at",
                (instance, address),
            )
            row = db.execute(
                "SELECT COUNT(*) FROM instances WHERE seen_at > clock_timestamp() - "
                "make_interval(secs => %s)",
                (ttl,),
            ).fetchone()
            return int(row[0]) if row else 1

        return self._with("reader", run)

    def forget_instance(self, instance: str) -> None:
        self._with(
            "reader", lambda db: db.execute("DELETE FROM instances WHERE id = %s", (instance,))
        )

    def leases(self) -> dict[str, Lease]:
        rows = self._rows(
            "SELECT deployment, owner, address, epoch, "
            "EXTRACT(EPOCH FROM expires_at - clock_timestamp()) FROM leases"
        )
        return {row[0]: Lease(row[0], row[1], row[2], int(row[3]), float(row[4])) for row in rows}

    def acquire(self, deployment: str, owner: str, address: str, ttl: float) -> int | None:
        """Take the lease if it is free, released or expired (or was ours before a step
        down): the new epoch, or None when another instance holds it."""
        row = self._with(
            "reader",
            lambda db: db.execute(
                "INSERT INTO leases VALUES (%s, %s, %s, 1, clock_timestamp() + "
                "make_interval(secs => %s), clock_timestamp()) ON CONFLICT (deployment) DO "
                "UPDATE SET owner = EXCLUDED.owner, address = EXCLUDED.address, "
                "epoch = leases.epoch + 1, expires_at = EXCLUDED.expires_at, "
                "renewed_at = EXCLUDED.renewed_at WHERE leases.owner IS NULL "
                "OR leases.owner = EXCLUDED.owner OR leases.expires_at < clock_timestamp() "
                "RETURNING epoch",
                (deployment, owner, address, ttl),
            ).fetchone(),
        )
        return None if row is None else int(row[0])

    def renew(self, deployment: str, owner: str, epoch: int, ttl: float) -> bool:
        """Extend the lease; False when it is no longer ours at this epoch."""
        row = self._with(
            "reader",
            lambda db: db.execute(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => %s), "
                "renewed_at = clock_timestamp() WHERE deployment = %s AND owner = %s "
                "AND epoch = %s RETURNING 1",
                (ttl, deployment, owner, epoch),
            ).fetchone(),
        )
        return row is not None

    def release(self, deployment: str, owner: str, epoch: int) -> None:
        """Give the lease up at once (a graceful stop): another instance takes it now."""
        self._with(
            "reader",
            lambda db: db.execute(
                "UPDATE leases SET owner = NULL, expires_at = clock_timestamp() "
                "WHERE deployment = %s AND owner = %s AND epoch = %s",
                (deployment, owner, epoch),
            ),
        )

    def close(self) -> None:
        for lock, which in ((self._write_lock, "_writer"), (self._read_lock, "_reader")):
            with lock:
                connection = getattr(self, which)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
                setattr(self, which, None)
