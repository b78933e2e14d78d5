"""Webhooks: every event POSTed to each `--webhook URL`, at least once and in order per
deployment, signed, retried with backoff; the last delivered id is kept in the store, so a
restart resumes after it (an event whose answer was lost to the restart is sent again).

Signature: `Omniroute-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of the body under
OMNIROUTE_WEBHOOK_SECRET>`. The body is the event's JSON, which carries its id and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING

import httpx

from .storage import StoreUnavailable

if TYPE_CHECKING:
    from .http import Service

log = logging.getLogger("omniroute.webhooks")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


def signature(secret: str, body: bytes, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


class Webhooks:
    def __init__(self, service: Service, urls: list[str], secret: str) -> None:
        self.service = service
        self.urls = urls
        self.secret = secret
        self.tasks: list[asyncio.Task[None]] = []
        self.wake: dict[str, asyncio.Event] = {}
        self.client: httpx.AsyncClient | None = None

    def start(self) -> None:
        if not self.urls:
            return
        self.client = httpx.AsyncClient(timeout=10.0)
        for name, runner in self.service.runners.items():
            wake = self.wake.setdefault(name, asyncio.Event())
            runner.on_commit.append(wake.set)
            for url in self.urls:
                self.tasks.append(
                    asyncio.create_task(self._deliver(name, url, wake), name=f"webhook {url}")
                )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.client is not None:
            await self.client.aclose()

    async def _deliver(self, deployment: str, url: str, wake: asyncio.Event) -> None:
        store = self.service.store
        assert self.client is not None
        delivered = store.webhook_progress(deployment, url)
        owner = True
        while True:
            # In a cluster only the deployment's owner delivers; one that becomes the owner
            # resumes from the progress its predecessor kept.
            runner = self.service.runners.get(deployment)
            if runner is None or not runner.owner:
                owner = False
                await asyncio.sleep(0.5)
                continue
            try:
                if not owner:
                    delivered = await asyncio.to_thread(store.webhook_progress, deployment, url)
                    owner = True
                wake.clear()
                rows = store.events(deployment, delivered, 100)
            except StoreUnavailable:
                await asyncio.sleep(1.0)  # the database is away: delivery waits for it
                continue
            if not rows:
                await wake.wait()
                continue
            for body in rows:
                await self._post(url, body.encode())
                delivered = int(json.loads(body)["id"])
            # Progress is kept once a page: after a crash, at most that page is sent again
            # (at least once), and delivery does not cost a disk flush per event.
            with contextlib.suppress(StoreUnavailable):
                await asyncio.to_thread(store.set_webhook_progress, deployment, url, delivered)

    async def _post(self, url: str, body: bytes) -> None:
        assert self.client is not None
        delay = BACKOFF_FIRST
        while True:
            try:
                response = await self.client.post(
                    url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "Omniroute-Signature": signature(self.secret, body),
                    },
                )
                if response.status_code < 300:
                    return
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                why = f"{type(error).__name__}"
            log.warning("webhook %s failed (%s); retrying in %.1f s", url, why, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
