"""The store on its own, on SQLite and on PostgreSQL: a batch is written whole or not at
all, times come back exact, snapshots keep the latest two, URLs name the right back end;
on PostgreSQL, a write with a stale lease epoch is refused."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from omniroute.contrib.storage import Batch, SQLiteStore, Store, open_store, sqlite_path

from .postgres import Postgres


def test_a_batch_round_trips_and_times_are_exact(store_url: str) -> None:
    store = open_store(store_url)
    rng = random.Random(3)
    times = [rng.uniform(0, 1e7) for _ in range(200)] + [0.1 + 0.2, 1e-7, 123456.789012345]
    batch = Batch("d")
    for seq, at in enumerate(times, start=1):
        batch.journal.append((seq, at, json.dumps({"type": "advance", "to": at}), f"c{seq}"))
    batch.events.append((1, "task.created", "2026-01-05T09:00:00Z", '{"id":1}'))
    batch.tasks["t1"] = (0, "queued", "support", '{"id":"t1","state":"queued"}')
    batch.reservations["r1"] = ("declined", '{"id":"r1","state":"declined"}')
    batch.explanations["t0"] = '{"task":"t0"}'
    batch.meta["start"] = "2026-01-05T09:00:00+00:00"
    store.write(batch)
    replayed = list(store.journal("d", 0))
    assert [at for _, at, _ in replayed] == times  # bit for bit: a replay applies these
    assert [event["to"] for _, _, event in replayed] == times
    assert store.last_seq("d") == len(times)
    assert store.command_ids("d", ["c1", "c2", "nope"]) == {"c1", "c2"}
    assert store.events("d", 0, 10) == ['{"id":1}']
    assert store.last_event_id("d") == 1
    assert json.loads(store.task("d", "t1") or "")["state"] == "queued"
    assert store.task_seq("d", "t1") == 0
    assert store.tasks("d", state="queued", queue=None, after_seq=-1, limit=5) == [
        (0, '{"id":"t1","state":"queued"}')
    ]
    assert store.reservation("d", "r1") is not None
    assert store.explanation("d", "t0") == '{"task":"t0"}'
    assert store.meta("d", "start") == "2026-01-05T09:00:00+00:00"
    assert store.meta("other", "start") is None
    store.close()


def test_a_failing_batch_writes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    store.write(Batch("d", journal=[(1, 0.0, '{"type":"advance","to":0}', None)]))
    clash = Batch(
        "d",
        journal=[(2, 1.0, '{"type":"advance","to":1}', None), (1, 1.0, "{}", None)],
        events=[(1, "task.created", "x", "{}")],
    )
    with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"):
        store.write(clash)
    assert store.last_seq("d") == 1
    assert store.last_event_id("d") == 0
    store.close()


def kept_snapshots(store: Store) -> list[int]:
    if isinstance(store, SQLiteStore):
        rows = store._reader.execute("SELECT seq FROM snapshots ORDER BY seq").fetchall()
    else:
        rows = store._rows("SELECT seq FROM snapshots ORDER BY seq")  # type: ignore[attr-defined]
    return [row[0] for row in rows]


def test_snapshots_keep_the_latest_two_and_webhook_progress(store_url: str) -> None:
    store = open_store(store_url)
    assert store.snapshot("d") is None
    for seq in (10, 20, 30):
        store.save_snapshot("d", seq, json.dumps({"seq": seq}))
    latest = store.snapshot("d")
    assert latest is not None
    assert latest.seq == 30
    assert latest.data == {"seq": 30}
    assert kept_snapshots(store) == [20, 30]
    assert store.webhook_progress("d", "http://127.0.0.1:1/x") == 0
    store.set_webhook_progress("d", "http://127.0.0.1:1/x", 7)
    assert store.webhook_progress("d", "http://127.0.0.1:1/x") == 7
    store.close()


def test_urls() -> None:
    assert sqlite_path("sqlite:///omniroute.db") == Path("omniroute.db")
    assert sqlite_path("sqlite:////var/lib/o.db") == Path("/var/lib/o.db")
    assert sqlite_path("plain.db") == Path("plain.db")
    with pytest.raises(ValueError, match="not a SQLite URL"):
        sqlite_path("mysql://x/y")


def test_stale_epochs_are_fenced_and_leases_expire(postgres: Postgres) -> None:
    from omniroute.contrib.storage_pg import Fenced, PostgresStore

    url = postgres.new_database()
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    PostgresStore(url).close()  # a second start finds its migrations applied
    first = store.acquire("d", "a", "http://a", ttl=0.4)
    assert first == 1
    assert store.acquire("d", "b", "http://b", ttl=0.4) is None  # held, not expired
    store.write(Batch("d", journal=[(1, 0.0, "{}", "c1")], epoch=first))
    assert store.renew("d", "a", first, ttl=0.4)
    import time

    time.sleep(0.5)
    second = store.acquire("d", "b", "http://b", ttl=5)
    assert second == first + 1
    assert not store.renew("d", "a", first, ttl=0.4)  # the old owner learns it lost
    with pytest.raises(Fenced, match="stale epoch"):
        store.write(Batch("d", journal=[(2, 1.0, "{}", "old")], epoch=first))
    with pytest.raises(Fenced):
        store.save_snapshot("d", 1, "{}", epoch=first)
    store.write(Batch("d", journal=[(2, 1.0, "{}", "new")], epoch=second))
    assert [seq for seq, _, _ in store.journal("d", 0)] == [1, 2]
    assert store.command_ids("d", ["c1", "old", "new"]) == {"c1", "new"}
    lease = store.leases()["d"]
    assert (lease.owner, lease.address, lease.epoch) == ("b", "http://b", second)
    store.release("d", "b", second)
    assert store.acquire("d", "c", "http://c", ttl=5) == second + 1  # released: free at once
    store.close()
