"""Many `omniroute serve` instances on one PostgreSQL: each deployment is written by the
one instance that holds its lease, the others follow its journal.

Every instance runs the same loop, a round every third of the lease (sooner when a lease
it watches is about to expire):

- it says it is alive (the `instances` table) and counts the live instances;
- it renews the leases it holds; one it cannot renew (taken over, or not renewed within
  the lease while the database was away), or whose writer failed, it steps down from:
  the runner is dropped, queued commands are answered 503 and never journaled, and a
  fresh replica is restored from the store;
- it takes free, released or expired leases while it holds fewer than its share
  (deployments / live instances, rounded up): the epoch goes up, the replica catches up
  with the journal, and the writer starts, firing in order the timers that fell due;
- it hands one lease back when it holds more than its share, so that an instance that
  joins gets its part.

Between rounds every replica follows its journal (ten times a second). Whatever a round
decides, safety rests on the fencing in the store: a write with a stale epoch is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from .service import Runner
from .storage_pg import Lease, PostgresStore

log = logging.getLogger("omniroute.cluster")

FOLLOW_EVERY = 0.1


class Cluster:
    def __init__(
        self,
        runners: dict[str, Runner],
        make_runner: Callable[[str], Runner],
        store: PostgresStore,
        *,
        instance: str,
        address: str,
        lease: float,
    ) -> None:
        #: shared with the service: a step down replaces a runner here
        self.runners = runners
        self.make_runner = make_runner
        self.store = store
        self.instance = instance
        self.address = address
        self.lease = lease
        #: the leases as last read (the HTTP layer redirects with them)
        self.leases: dict[str, Lease] = {}
        self.live = 1
        self._leases_read_at = 0.0
        self._renewed: dict[str, float] = {}
        self._restored: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._first_round = asyncio.Event()
        self._stopping = False

    # --- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the rounds and the followers; return after the first round."""
        self._tasks = [
            asyncio.create_task(self._rounds(), name="cluster rounds"),
            asyncio.create_task(self._follow_loop(), name="cluster followers"),
        ]
        await self._first_round.wait()

    async def _rounds(self) -> None:
        while not self._stopping:
            wait = self.lease / 3
            try:
                wait = min(wait, await self._round())
            except Exception as error:
                log.warning("cluster round failed (%s); trying again", error)
            self._first_round.set()
            await asyncio.sleep(max(wait, 0.05))

    async def _round(self) -> float:
        """One round (see the module's docstring); seconds until the next is due."""
        store = self.store
        self.live = await asyncio.to_thread(
            store.heartbeat, self.instance, self.address, self.lease
        )
        for name, runner in list(self.runners.items()):
            if runner.owner:
                await self._keep(name, runner)
        self.leases = await asyncio.to_thread(store.leases)
        self._leases_read_at = time.monotonic()
        for name in list(self.runners):
            if name not in self._restored:
                await self._restore_replica(name)
        share = math.ceil(len(self.runners) / max(self.live, 1))
        owned = [name for name, runner in self.runners.items() if runner.owner]
        next_due = self.lease / 3
        for name, runner in self.runners.items():
            if runner.owner or len(owned) >= share:
                continue
            lease = self.leases.get(name)
            free = lease is None or lease.owner is None or lease.remaining < 0
            if lease is not None and lease.owner == self.instance:
                free = True  # ours before a step down: take it again with a new epoch
            if free:
                if await self._take(name, runner):
                    owned.append(name)
            elif lease is not None:
                # Wake just after it expires: failover waits for the lease, not the round.
                next_due = min(next_due, lease.remaining + 0.02)
        if len(owned) > share and self.live > 1:
            await self.hand_back(owned[-1])
        return next_due

    async def _keep(self, name: str, runner: Runner) -> None:
        """Renew a held lease, or step down."""
        assert runner.epoch is not None
        if runner.failed is not None:
            await self._step_down(name, runner, runner.failed)
            return
        try:
            kept = await asyncio.to_thread(
                self.store.renew, name, self.instance, runner.epoch, self.lease
            )
        except Exception as error:
            if time.monotonic() - self._renewed.get(name, 0.0) < self.lease:
                log.warning("renewing the lease of %s failed (%s); still within it", name, error)
                return
            kept = False
        if kept:
            self._renewed[name] = time.monotonic()
        else:
            await self._step_down(name, runner, "the lease was lost")

    async def _restore_replica(self, name: str) -> None:
        runner = self.runners[name]
        runner.owner = False
        try:
            restored = await asyncio.to_thread(runner.restore, create=False)
        except Exception as error:
            log.warning("restoring a replica of %s failed (%s); trying again", name, error)
            return
        if restored:
            runner.ready = True
            self._restored.add(name)

    async def _take(self, name: str, runner: Runner) -> bool:
        epoch = await asyncio.to_thread(
            self.store.acquire, name, self.instance, self.address, self.lease
        )
        if epoch is None:
            return False
        self._renewed[name] = time.monotonic()
        began = time.perf_counter()
        try:
            runner.epoch = epoch
            if name not in self._restored:
                # Nothing to follow yet: restore (or create) it as its owner.
                await asyncio.to_thread(runner.restore)
                self._restored.add(name)
            else:
                while await runner.follow():
                    pass
            runner.owner = True
            await runner.run()
        except Exception as error:
            log.exception("taking over %s failed", name)
            await self._step_down(name, runner, f"taking over failed: {error}")
            return False
        log.info(
            "took over %s at epoch %d (journal at %d) in %.3f s",
            name,
            epoch,
            runner.seq,
            time.perf_counter() - began,
            extra={"deployment": name, "epoch": epoch},
        )
        return True

    async def _step_down(self, name: str, runner: Runner, why: str) -> None:
        """Stop writing `name` and follow it again, from a fresh restore."""
        log.warning("stepping down from %s (epoch %s): %s", name, runner.epoch, why)
        await runner.abandon(f"this instance no longer owns {name!r}: {why}")
        await self._follow_again(name, runner)

    async def _follow_again(self, name: str, runner: Runner) -> None:
        """Replace the runner of `name` by a replica restored afresh, keeping its
        subscribers."""
        fresh = self.make_runner(name)
        fresh.owner = False
        fresh.subscribers = runner.subscribers
        fresh.on_commit = runner.on_commit
        self.runners[name] = fresh
        self._restored.discard(name)
        await self._restore_replica(name)

    async def hand_back(self, name: str) -> None:
        """Give a lease back gracefully: finish the queued commands, snapshot, release."""
        runner = self.runners[name]
        epoch = runner.epoch
        log.info("handing %s back (more than this instance's share)", name)
        await runner.stop()
        if epoch is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release, name, self.instance, epoch)
        await self._follow_again(name, runner)

    async def _follow_loop(self) -> None:
        while not self._stopping:
            for name, runner in list(self.runners.items()):
                if runner.owner or name not in self._restored:
                    continue
                try:
                    await runner.follow()
                except Exception as error:
                    log.debug("following %s failed (%s)", name, error)
            await asyncio.sleep(FOLLOW_EVERY)

    async def stop(self) -> None:
        """A graceful stop: stop the rounds, then each held lease is released once its
        runner has stopped (the caller stops the runners)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task

    async def release_all(self) -> None:
        for name, runner in self.runners.items():
            if runner.owner and runner.epoch is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.release, name, self.instance, runner.epoch)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.forget_instance, self.instance)

    # --- what the HTTP layer asks --------------------------------------------------------

    def owner_of(self, name: str) -> tuple[str | None, str | None]:
        """(instance, address) of the owner as last read, or (None, None) while the lease is
        free or expired."""
        runner = self.runners.get(name)
        if runner is not None and runner.owner:
            return self.instance, self.address
        lease = self.leases.get(name)
        elapsed = time.monotonic() - self._leases_read_at
        if lease is None or lease.owner is None or lease.remaining < elapsed:
            return None, None
        if lease.owner == self.instance:
            return None, None  # ours but stepping down or taking over: a moment
        return lease.owner, lease.address
