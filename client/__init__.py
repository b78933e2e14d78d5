"""A thin typed client for `omniroute serve`, over httpx.

>>> from omniroute.client import Client
>>> # client = Client("http://127.0.0.1:8787", token="...")
>>> # client.create_task("support", channel="chat", attributes={"language": "es"})

Every method returns the JSON the server answered with; an error answer raises
`ProblemError`, which carries the RFC 9457 problem (`status`, `title`, `detail`, `errors`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["Client", "Event", "ProblemError"]

JSON = Any
Event = dict[str, Any]


class ProblemError(Exception):
    """The server answered with a problem (4xx or 5xx)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.errors: list[dict[str, str]] = list(problem.get("errors") or [])
        super().__init__(f"{status} {self.title}: {self.detail}")


class Client:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8787",
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A cluster of instances answers a command at a non-owner with 307 to the owner.
        self.http = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def request(self, method: str, path: str, body: JSON = None, **params: Any) -> JSON:
        query = {key: value for key, value in params.items() if value is not None}
        response = self.http.request(
            method, path, json=body if body is not None else None, params=query or None
        )
        return self._answer(response)

    @staticmethod
    def _answer(response: httpx.Response) -> JSON:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text}
            raise ProblemError(response.status_code, problem)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _d(deployment: str) -> str:
        return f"/v1/deployments/{deployment}"

    # --- deployments ---------------------------------------------------------------------

    def deployments(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/deployments")  # type: ignore[no-any-return]

    def deployment(self, deployment: str) -> dict[str, Any]:
        return self.request("GET", self._d(deployment))  # type: ignore[no-any-return]

    def replace_deployment(self, deployment: str, document: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", self._d(deployment), document)  # type: ignore[no-any-return]

    # --- agents --------------------------------------------------------------------------

    def put_agent(
        self,
        deployment: str,
        agent: str,
        *,
        channels: dict[str, int],
        attributes: dict[str, Any] | None = None,
        groups: list[str] | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"channels": channels}
        if attributes is not None:
            body["attributes"] = attributes
        if groups is not None:
            body["groups"] = groups
        if status is not None:
            body["status"] = status
        return self.request("PUT", f"{self._d(deployment)}/agents/{agent}", body)  # type: ignore[no-any-return]

    def remove_agent(self, deployment: str, agent: str) -> None:
        self.request("DELETE", f"{self._d(deployment)}/agents/{agent}")

    def set_status(self, deployment: str, agent: str, status: str) -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST", f"{self._d(deployment)}/agents/{agent}/status", {"status": status}
        )

    def agents(self, deployment: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{self._d(deployment)}/agents")  # type: ignore[no-any-return]

    def agent(self, deployment: str, agent: str) -> dict[str, Any]:
        return self.request("GET", f"{self._d(deployment)}/agents/{agent}")  # type: ignore[no-any-return]

    # --- tasks ---------------------------------------------------------------------------

    def create_task(
        self,
        deployment: str,
        *,
        channel: str,
        id: str | None = None,
        attributes: dict[str, Any] | None = None,
        priority: int | None = None,
        queue: str | None = None,
        profile: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": channel}
        for key, value in (
            ("id", id),
            ("attributes", attributes),
            ("priority", priority),
            ("queue", queue),
            ("profile", profile),
        ):
            if value is not None:
                body[key] = value
        return self.request("POST", f"{self._d(deployment)}/tasks", body)  # type: ignore[no-any-return]

    def task(self, deployment: str, task: str) -> dict[str, Any]:
        return self.request("GET", f"{self._d(deployment)}/tasks/{task}")  # type: ignore[no-any-return]

    def tasks(
        self,
        deployment: str,
        *,
        state: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        return self.request(  # type: ignore[no-any-return]
            "GET",
            f"{self._d(deployment)}/tasks",
            state=state,
            queue=queue,
            limit=limit,
            after=after,
        )

    def complete(self, deployment: str, task: str) -> dict[str, Any]:
        return self.request("POST", f"{self._d(deployment)}/tasks/{task}/complete")  # type: ignore[no-any-return]

    def cancel(self, deployment: str, task: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason is not None else None
        return self.request("POST", f"{self._d(deployment)}/tasks/{task}/cancel", body)  # type: ignore[no-any-return]

    def transfer(
        self, deployment: str, task: str, *, queue: str | None = None, agent: str | None = None
    ) -> dict[str, Any]:
        body = {"queue": queue} if queue is not None else {"agent": agent}
        return self.request("POST", f"{self._d(deployment)}/tasks/{task}/transfer", body)  # type: ignore[no-any-return]

    def convert_to_callback(
        self, deployment: str, task: str, channel: str, *, queue: str | None = None
    ) -> dict[str, Any]:
        """A queued or reserved task becomes a task of `channel`, keeping its queue time."""
        body = {"channel": channel, **({"queue": queue} if queue is not None else {})}
        path = f"{self._d(deployment)}/tasks/{task}/convert_to_callback"
        return self.request("POST", path, body)  # type: ignore[no-any-return]

    def end_wrap_up(self, deployment: str, agent: str, task: str | None = None) -> dict[str, Any]:
        """End an agent's wrap-up early: that of one task, or all of it."""
        body = {"task": task} if task is not None else None
        path = f"{self._d(deployment)}/agents/{agent}/end_wrap_up"
        return self.request("POST", path, body)  # type: ignore[no-any-return]

    def explain(self, deployment: str, task: str) -> dict[str, Any]:
        return self.request("GET", f"{self._d(deployment)}/tasks/{task}/explain")  # type: ignore[no-any-return]

    # --- reservations --------------------------------------------------------------------

    def accept(self, deployment: str, reservation: str) -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST", f"{self._d(deployment)}/reservations/{reservation}/accept"
        )

    def decline(self, deployment: str, reservation: str) -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST", f"{self._d(deployment)}/reservations/{reservation}/decline"
        )

    # --- queues and events ---------------------------------------------------------------

    def queues(self, deployment: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{self._d(deployment)}/queues")  # type: ignore[no-any-return]

    def events(self, deployment: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        """A page of events after the id `after`."""
        return self.request(  # type: ignore[no-any-return]
            "GET", f"{self._d(deployment)}/events", format="json", after=after, limit=limit
        )

    def stream(
        self, deployment: str, *, after: int = 0, timeout: float | None = None
    ) -> Iterator[Event]:
        """Server-Sent Events after the id `after`, as they come (stops when the server
        ends the stream; resume with the last id seen)."""
        with self.http.stream(
            "GET",
            f"{self._d(deployment)}/events",
            headers={"Last-Event-ID": str(after)},
            timeout=httpx.Timeout(self.http.timeout.connect, read=timeout),
        ) as response:
            if response.status_code >= 400:
                response.read()
                self._answer(response)
            for line in response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[len("data: ") :])

    def healthy(self) -> bool:
        return self.http.get("/healthz").status_code == 200

    def ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False
