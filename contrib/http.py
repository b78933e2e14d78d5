"""The HTTP face of `omniroute serve`: Starlette routes over the runners.

Every error is RFC 9457 problem+json and no traceback reaches a client. Bodies are
capped at 1 MiB. A command is answered only once it is durable (see service.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import prometheus_client
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from omniroute.core import events
from omniroute.core.converter import structure

from . import models
from .roles import ROLES
from .service import Metrics, Plan, Reply, Runner, ServiceError, conflict, not_found
from .storage import Store, StoreUnavailable

if typing.TYPE_CHECKING:
    from .cluster import Cluster
from .webhooks import Webhooks

log = logging.getLogger("omniroute.serve")

MAX_BODY = 1024 * 1024
#: what each role may do
ALLOWED = {
    "admin": {"read", "write", "events", "explain", "admin"},
    "platform": {"read", "write", "events", "explain"},
    "supervisor": {"read", "events", "explain"},
}
_REASONS = {
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@attrs.frozen
class Token:
    sha256: str
    role: str
    name: str = ""


def problem(
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _REASONS.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def _reply(reply: Reply) -> Response:
    """A command's answer; `Omniroute-Journal-Seq` names the journal record that holds it
    (absent when the command changed nothing and so was not journaled)."""
    headers = {"Omniroute-Journal-Seq": str(reply.seq)} if reply.seq is not None else None
    if reply.status == 204:
        return Response(status_code=204, headers=headers)
    return Response(
        json.dumps(reply.body, separators=(",", ":")),
        status_code=reply.status,
        media_type="application/json",
        headers=headers,
    )


class Service:
    """The runners, the store and everything the routes share."""

    def __init__(
        self,
        runners: dict[str, Runner],
        store: Store,
        *,
        tokens: list[Token] | None,
        webhooks: list[str] = (),  # type: ignore[assignment]
        webhook_secret: str = "",
        version: str = "0",
        cluster: Cluster | None = None,
    ) -> None:
        self.runners = runners
        #: many instances on PostgreSQL: who owns which deployment (None: this one, all)
        self.cluster = cluster
        self.store = store
        self.tokens = tokens
        self.version = version
        self.stopping = asyncio.Event()
        self.ready = False
        self.registry = prometheus_client.CollectorRegistry()
        self._metrics(self.registry)
        for runner in runners.values():
            runner.metrics = self.metrics
        self.webhooks = Webhooks(self, list(webhooks), webhook_secret)
        self._openapi: bytes | None = None
        self._restore_task: asyncio.Task[None] | None = None

    def _metrics(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.metrics = Metrics(
            routing_seconds=prometheus_client.Histogram(
                "omniroute_routing_seconds",
                "Time to apply one command to the engine (routing included)",
                buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1),
                registry=registry,
            ),
            commit_seconds=prometheus_client.Histogram(
                "omniroute_journal_commit_seconds",
                "Time to make one batch of commands durable",
                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
                registry=registry,
            ),
            batch_size=prometheus_client.Histogram(
                "omniroute_journal_batch_commands",
                "Commands per group commit",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                registry=registry,
            ),
            commands=prometheus_client.Counter(
                "omniroute_commands",
                "Commands applied and journaled",
                ["deployment"],
                registry=registry,
            ),
        )
        self.requests = prometheus_client.Counter(
            "omniroute_http_requests",
            "HTTP requests answered",
            ["method", "status"],
            registry=registry,
        )
        service = self

        class Gauges(prometheus_client.registry.Collector):
            def collect(self) -> Any:
                from prometheus_client.core import GaugeMetricFamily

                tasks = GaugeMetricFamily(
                    "omniroute_tasks", "Open tasks by state", labels=["deployment", "state"]
                )
                depth = GaugeMetricFamily(
                    "omniroute_queue_depth",
                    "Tasks waiting per queue",
                    labels=["deployment", "queue"],
                )
                lag = GaugeMetricFamily(
                    "omniroute_journal_lag",
                    "Commands queued for the writer and not yet journaled",
                    labels=["deployment"],
                )
                events_out = GaugeMetricFamily(
                    "omniroute_last_event_id", "The last event id", labels=["deployment"]
                )
                for name, runner in service.runners.items():
                    if not runner.ready:
                        continue
                    counts = dict.fromkeys(("queued", "reserved", "assigned"), 0)
                    per_queue: dict[str, int] = dict.fromkeys(runner.engine.deployment.queues, 0)
                    for task in runner.engine.state.tasks.values():
                        counts[task.state] = counts.get(task.state, 0) + 1
                        if task.state == "queued" and task.queue is not None:
                            per_queue[task.queue] = per_queue.get(task.queue, 0) + 1
                    for state, count in counts.items():
                        tasks.add_metric([name, state], count)
                    for queue, count in per_queue.items():
                        depth.add_metric([name, queue], count)
                    lag.add_metric([name], runner.queue.qsize())
                    events_out.add_metric([name], runner.event_id)
                yield tasks
                yield depth
                yield lag
                yield events_out

        registry.register(Gauges())

    # --- lifecycle -----------------------------------------------------------------------

    async def startup(self) -> None:
        self._restore_task = asyncio.create_task(self._restore())

    async def _restore(self) -> None:
        try:
            if self.cluster is not None:
                await self.cluster.start()
            else:
                for runner in self.runners.values():
                    await asyncio.to_thread(runner.restore)
                    await runner.run()
            self.ready = True
            self.webhooks.start()
            log.info("ready: %s", ", ".join(self.runners))
        except Exception:
            log.exception("restoring state failed")
            for runner in self.runners.values():
                runner.failed = "restoring state failed; see the log"

    async def shutdown(self) -> None:
        self.stopping.set()
        if self._restore_task is not None and not self._restore_task.done():
            with contextlib.suppress(BaseException):
                await self._restore_task
        if self.cluster is not None:
            await self.cluster.stop()
        for runner in self.runners.values():
            if runner.owner:
                await runner.stop()
        if self.cluster is not None:
            await self.cluster.release_all()
        await self.webhooks.stop()
        self.store.close()
        log.info("stopped")

    def close_streams(self) -> None:
        """SIGTERM: event streams end so that the server can finish in-flight requests."""
        self.stopping.set()
        for runner in self.runners.values():
            for subscriber in list(runner.subscribers):
                subscriber.put_nowait(None)

    # --- request helpers -----------------------------------------------------------------

    def authorize(self, request: Request, need: str) -> None:
        if self.tokens is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceError(401, "Unauthorized", "a bearer token is required")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        role = None
        for known in self.tokens:
            if hmac.compare_digest(digest, known.sha256):
                role = known.role
        if role is None:
            raise ServiceError(401, "Unauthorized", "unknown token")
        if need not in ALLOWED[role]:
            raise ServiceError(403, "Forbidden", f"the role {role!r} may not do this ({need})")

    def runner(self, request: Request) -> Runner:
        name = request.path_params["d"]
        runner = self.runners.get(name)
        if runner is None:
            raise not_found(f"unknown deployment {name!r}")
        if self.cluster is not None and request.method != "GET" and not runner.owner:
            self.redirect_to_owner(request, name)
        if runner.failed is not None:
            raise ServiceError(503, "Service Unavailable", runner.failed)
        if not runner.ready:
            raise ServiceError(503, "Service Unavailable", "state is being restored")
        return runner

    def redirect_to_owner(self, request: Request, name: str) -> typing.NoReturn:
        """A command for a deployment another instance owns: 307 to the owner (the method
        and body are sent again there), or 503 while the lease changes hands."""
        assert self.cluster is not None
        owner, address = self.cluster.owner_of(name)
        if owner is None or address is None or owner == self.cluster.instance:
            raise ServiceError(
                503,
                "Service Unavailable",
                f"deployment {name!r} is changing owner; try again",
                headers={"Retry-After": "1"},
            )
        target = address.rstrip("/") + request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise ServiceError(
            307,
            "Temporary Redirect",
            f"deployment {name!r} is owned by instance {owner!r} at {address}",
            headers={"Location": target, "Omniroute-Owner": owner},
        )


async def read_body(request: Request, *, optional: bool = False) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise ServiceError(413, "Content Too Large", f"the body is over {MAX_BODY} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ServiceError(413, "Content Too Large", f"the body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            return None
        raise ServiceError(400, "Bad Request", "a JSON body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ServiceError(400, "Bad Request", f"malformed JSON: {error}") from error


def _command_id(request: Request) -> str | None:
    """`X-Request-Id`, kept with the command in the journal (audits find a command by it)."""
    value = request.headers.get("x-request-id")
    if value is None:
        return None
    if not 0 < len(value) <= 200:
        raise ServiceError(
            422,
            "Unprocessable Content",
            "X-Request-Id: 1 to 200 characters",
            [{"path": "X-Request-Id", "message": "1 to 200 characters"}],
        )
    return value


def parse(data: Any, kind: type[Any]) -> Any:
    value, problems = structure(data, kind)
    if value is None:
        raise ServiceError(
            422,
            "Unprocessable Content",
            "; ".join(str(p) for p in problems) or "invalid body",
            [{"path": p.path, "message": p.message} for p in problems],
        )
    return value


Handler = Callable[[Service, Request], Awaitable[Response]]


def route(path: str, method: str, need: str | None) -> Callable[[Handler], Route]:
    """A route with its permission, and every error turned into problem+json."""

    def wrap(handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            service: Service = request.app.state.service
            try:
                if need is not None:
                    service.authorize(request, need)
                response = await handler(service, request)
            except ServiceError as error:
                response = problem(
                    error.status, error.detail, error.errors, error.title, error.headers
                )
            except StoreUnavailable as error:
                response = problem(503, str(error), headers={"Retry-After": "1"})
            except Exception:
                log.exception("%s %s failed", method, request.url.path)
                response = problem(500, "the request failed; see the server log")
            service.requests.labels(method, str(response.status_code)).inc()
            return response

        return Route(path, endpoint, methods=[method])

    return wrap


BASE = "/v1/deployments/{d}"
ROUTES: list[Route] = []


def _add(path: str, method: str, need: str | None) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        ROUTES.append(route(path, method, need)(handler))
        return handler

    return decorate


# --- operations ---------------------------------------------------------------------------


@_add("/healthz", "GET", None)
async def healthz(service: Service, request: Request) -> Response:
    return _json({"status": "ok"})


@_add("/readyz", "GET", None)
async def readyz(service: Service, request: Request) -> Response:
    # In a cluster a failed runner is replaced by a replica within a round.
    failed = [r.failed for r in service.runners.values() if r.failed and not service.cluster]
    if failed:
        return problem(503, failed[0])
    if not service.ready or service.stopping.is_set():
        return problem(503, "state is being restored" if not service.ready else "stopping")
    if service.cluster is not None:
        # Ready once every deployment is restored here and owned somewhere.
        for name, runner in service.runners.items():
            if not runner.ready or service.cluster.owner_of(name)[0] is None:
                return problem(503, f"deployment {name!r} has no owner yet")
    return _json({"status": "ready"})


@_add("/metrics", "GET", "read")
async def metrics(service: Service, request: Request) -> Response:
    return Response(
        prometheus_client.generate_latest(service.registry),
        media_type=prometheus_client.CONTENT_TYPE_LATEST,
    )


@_add("/openapi.json", "GET", None)
async def openapi(service: Service, request: Request) -> Response:
    if service._openapi is None:
        service._openapi = json.dumps(models.openapi_document(service.version)).encode()
    return Response(service._openapi, media_type="application/json")


# --- deployments ----------------------------------------------------------------------------


@_add("/v1/deployments", "GET", "read")
async def list_deployments(service: Service, request: Request) -> Response:
    cluster = service.cluster
    if cluster is None:
        return _json([{"name": n, "version": r.version} for n, r in service.runners.items()])
    listed = []
    for name, runner in service.runners.items():
        owner, address = cluster.owner_of(name)
        listed.append(
            {
                "name": name,
                "version": runner.version,
                "owner": owner,
                "owner_address": address,
                "epoch": runner.epoch
                if runner.owner
                else getattr(cluster.leases.get(name), "epoch", None),
                "here": runner.owner,
            }
        )
    return _json(listed)


@_add(BASE, "GET", "read")
async def get_deployment(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    return _json(runner.document)


@_add(BASE, "PUT", "admin")
async def put_deployment(service: Service, request: Request) -> Response:
    from .service import validate_document

    runner = service.runner(request)
    document = await read_body(request)
    validate_document(document, runner.name)

    def plan() -> Plan:
        version = runner.version + 1

        def reply() -> Reply:
            runner.version = version
            runner.document = document
            runner._batch.meta.update({"deployment": json.dumps(document), "version": str(version)})
            runner._emit(
                "deployment.updated", json.dumps({"name": runner.name, "version": version})
            )
            return Reply(200, {"name": runner.name, "version": version})

        return [events.ReplaceDeployment(deployment=document)], reply

    reply = await runner.submit(plan, _command_id(request))
    return _reply(reply)


# --- agents --------------------------------------------------------------------------------


@_add(BASE + "/agents", "GET", "read")
async def list_agents(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    return _json([runner.agent_view(agent) for agent in runner.engine.agents])


@_add(BASE + "/agents/{id}", "GET", "read")
async def get_agent(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    agent = runner.engine.state.agents.get(request.path_params["id"])
    if agent is None:
        raise not_found(f"unknown agent {request.path_params['id']!r}")
    return _json(runner.agent_view(agent))


def _check_channels(runner: Runner, channels: dict[str, int]) -> None:
    declared = runner.engine.deployment.channels
    errors = []
    for channel, capacity in channels.items():
        if declared and channel not in declared:
            errors.append(
                {
                    "path": f"channels.{channel}",
                    "message": f"unknown channel (channels: {', '.join(declared)})",
                }
            )
        elif capacity < 0:
            errors.append({"path": f"channels.{channel}", "message": "must be >= 0"})
    if errors:
        raise ServiceError(
            422, "Unprocessable Content", "; ".join(e["message"] for e in errors), errors
        )


@_add(BASE + "/agents/{id}", "PUT", "write")
async def put_agent(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    agent_id = request.path_params["id"]
    body: models.AgentRequest = parse(await read_body(request), models.AgentRequest)
    _check_channels(runner, body.channels)

    def plan() -> Plan:
        engine = runner.engine
        agent = engine.state.agents.get(agent_id)

        def view() -> dict[str, Any]:
            return runner.agent_view(engine.agent(agent_id))

        if agent is None:
            add = events.AddAgent(
                agent=agent_id,
                channels=dict(body.channels),
                attributes=dict(body.attributes),
                groups=tuple(body.groups),
                status=body.status or "ready",
            )
            return [add], lambda: Reply(201, view())
        if tuple(body.groups) != agent.groups:
            raise conflict(
                f"the groups of agent {agent_id!r} cannot change while it is on the roster; "
                "remove it and add it again"
            )
        todo: list[events.Event] = []
        if body.status is not None and body.status != agent.status:
            todo.append(_status_event(runner, agent_id, body.status))
        attributes: dict[str, Any] = {
            key: value
            for key, value in body.attributes.items()
            if agent.attributes.get(key, None) != value
        }
        attributes.update({key: None for key in agent.attributes if key not in body.attributes})
        channels = {
            channel: capacity
            for channel, capacity in body.channels.items()
            if agent.capacity.get(channel) != capacity
        }
        channels.update({channel: 0 for channel in agent.capacity if channel not in body.channels})
        if attributes or channels:
            todo.append(
                events.SetAgent(
                    agent=agent_id, attributes=attributes or None, channels=channels or None
                )
            )
        if not todo:
            return Reply(200, view())
        return todo, lambda: Reply(200, view())

    reply = await runner.submit(plan, _command_id(request))
    return _reply(reply)


def _status_event(runner: Runner, agent_id: str, status: str) -> events.Event:
    agent = runner.engine.agent(agent_id)
    if status == "offline":
        return events.Logout(agent=agent_id)
    if agent.status == "offline" and status == "ready":
        return events.Login(agent=agent_id)
    return events.SetStatus(agent=agent_id, status=status)


@_add(BASE + "/agents/{id}", "DELETE", "write")
async def delete_agent(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    agent_id = request.path_params["id"]

    def plan() -> Plan:
        if agent_id not in runner.engine.state.agents:
            raise not_found(f"unknown agent {agent_id!r}")
        return [events.RemoveAgent(agent=agent_id)], lambda: Reply(204, None)

    return _reply(await runner.submit(plan, _command_id(request)))


@_add(BASE + "/agents/{id}/status", "POST", "write")
async def agent_status(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    agent_id = request.path_params["id"]
    body: models.StatusRequest = parse(await read_body(request), models.StatusRequest)

    def plan() -> Plan:
        agent = runner.engine.state.agents.get(agent_id)
        if agent is None:
            raise not_found(f"unknown agent {agent_id!r}")

        def view() -> Reply:
            return Reply(200, runner.agent_view(runner.engine.agent(agent_id)))

        if agent.status == body.status:
            return view()
        return [_status_event(runner, agent_id, body.status)], view

    reply = await runner.submit(plan, _command_id(request))
    return _reply(reply)


@_add(BASE + "/agents/{id}/end_wrap_up", "POST", "write")
async def end_wrap_up(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    agent_id = request.path_params["id"]
    data = await read_body(request, optional=True)
    body: models.EndWrapUpRequest = parse(data if data is not None else {}, models.EndWrapUpRequest)

    def plan() -> Plan:
        if agent_id not in runner.engine.state.agents:
            raise not_found(f"unknown agent {agent_id!r}")
        return [events.EndWrapUp(agent=agent_id, task=body.task)], lambda: Reply(
            200, runner.agent_view(runner.engine.agent(agent_id))
        )

    return _reply(await runner.submit(plan, _command_id(request)))


# --- tasks ---------------------------------------------------------------------------------


def _task_body(runner: Runner, task_id: str) -> dict[str, Any] | None:
    """A task as it stands: open ones from the engine, closed ones from the store (or
    from the batch being written)."""
    task = runner.engine.state.tasks.get(task_id)
    if task is not None:
        return runner.task_view(task)
    pending = runner._batch.tasks.get(task_id)
    text = pending[3] if pending is not None else runner.store.task(runner.name, task_id)
    if text is None:
        return None
    found: dict[str, Any] = json.loads(text)
    return found


@_add(BASE + "/tasks", "POST", "write")
async def create_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    body: models.TaskRequest = parse(await read_body(request), models.TaskRequest)
    if body.id is not None and not body.id.strip():
        raise ServiceError(
            422,
            "Unprocessable Content",
            "id: must not be empty",
            [{"path": "id", "message": "must not be empty"}],
        )
    task_id = body.id

    def plan() -> Plan:
        nonlocal task_id
        if task_id is None:
            task_id = "t-" + _new_id()
        existing = _task_body(runner, task_id)
        if existing is not None:
            same = (
                existing["channel"] == body.channel
                and existing["attributes"] == body.attributes
                and existing["priority"] == body.priority
                and existing.get("requested_queue") == body.queue
                and existing.get("profile") == body.profile
            )
            if body.id is None or not same:
                raise conflict(f"task {task_id!r} already exists with a different body")
            return Reply(200, existing)
        event = events.CreateTask(
            task=task_id,
            channel=body.channel,
            attributes=dict(body.attributes),
            priority=body.priority,
            queue=body.queue,
            profile=body.profile,
        )
        return [event], lambda: Reply(201, _task_body(runner, event.task))

    reply = await runner.submit(plan, _command_id(request))
    return _reply(reply)


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex[:16]


@_add(BASE + "/tasks", "GET", "read")
async def list_tasks(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    params = request.query_params
    errors = []
    state = params.get("state")
    if state is not None and state not in typing.get_args(models.TaskState):
        errors.append({"path": "state", "message": f"unknown state {state!r}"})
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        errors.append({"path": "limit", "message": "a whole number from 1 to 1000"})
    after_seq = -1
    after = params.get("after")
    if after is not None:
        open_task = runner.engine.state.tasks.get(after)
        seq = open_task.seq if open_task is not None else runner.store.task_seq(runner.name, after)
        if seq is None:
            errors.append({"path": "after", "message": f"unknown task {after!r}"})
        else:
            after_seq = seq
    if errors:
        raise ServiceError(
            422, "Unprocessable Content", "; ".join(e["message"] for e in errors), errors
        )
    rows = runner.store.tasks(
        runner.name,
        state=state,
        queue=params.get("queue"),
        after_seq=after_seq,
        limit=int(limit_text),
    )
    return _json([json.loads(body) for _, body in rows])


@_add(BASE + "/tasks/{id}", "GET", "read")
async def get_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    body = _task_body(runner, request.path_params["id"])
    if body is None:
        raise not_found(f"unknown task {request.path_params['id']!r}")
    return _json(body)


@_add(BASE + "/tasks/{id}/explain", "GET", "explain")
async def explain_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    task_id = request.path_params["id"]
    task = runner.engine.state.tasks.get(task_id)
    if task is not None:
        return _json(runner.explain(task))
    text = runner.store.explanation(runner.name, task_id)
    if text is None:
        raise not_found(f"unknown task {task_id!r}")
    return Response(text, media_type="application/json")


def _open_task_plan(
    runner: Runner, task_id: str, make: Callable[[], events.Event]
) -> Callable[[], Plan]:
    def plan() -> Plan:
        if task_id not in runner.engine.state.tasks:
            closed = _task_body(runner, task_id)
            if closed is None:
                raise not_found(f"unknown task {task_id!r}")
            raise conflict(f"task {task_id!r} is {closed['state']}")
        return [make()], lambda: Reply(200, _task_body(runner, task_id))

    return plan


@_add(BASE + "/tasks/{id}/complete", "POST", "write")
async def complete_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    task_id = request.path_params["id"]
    await read_body(request, optional=True)
    reply = await runner.submit(
        _open_task_plan(runner, task_id, lambda: events.Complete(task=task_id)),
        _command_id(request),
    )
    return _reply(reply)


@_add(BASE + "/tasks/{id}/cancel", "POST", "write")
async def cancel_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    task_id = request.path_params["id"]
    data = await read_body(request, optional=True)
    body: models.CancelRequest = parse(data if data is not None else {}, models.CancelRequest)
    reply = await runner.submit(
        _open_task_plan(runner, task_id, lambda: events.Cancel(task=task_id, reason=body.reason)),
        _command_id(request),
    )
    return _reply(reply)


@_add(BASE + "/tasks/{id}/transfer", "POST", "write")
async def transfer_task(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    task_id = request.path_params["id"]
    body: models.TransferRequest = parse(await read_body(request), models.TransferRequest)
    if (body.queue is None) == (body.agent is None):
        raise ServiceError(
            422,
            "Unprocessable Content",
            "give exactly one of queue and agent",
            [{"path": "", "message": "give exactly one of queue and agent"}],
        )
    if body.queue is not None and body.queue not in runner.engine.deployment.queues:
        raise not_found(f"unknown queue {body.queue!r}")

    def make() -> events.Event:
        if body.agent is not None and body.agent not in runner.engine.state.agents:
            raise not_found(f"unknown agent {body.agent!r}")
        return events.Transfer(task=task_id, to_queue=body.queue, to_agent=body.agent)

    reply = await runner.submit(_open_task_plan(runner, task_id, make), _command_id(request))
    return _reply(reply)


@_add(BASE + "/tasks/{id}/convert_to_callback", "POST", "write")
async def convert_to_callback(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    task_id = request.path_params["id"]
    body: models.ConvertRequest = parse(await read_body(request), models.ConvertRequest)
    if body.queue is not None and body.queue not in runner.engine.deployment.queues:
        raise not_found(f"unknown queue {body.queue!r}")

    def make() -> events.Event:
        return events.ConvertToCallback(task=task_id, channel=body.channel, queue=body.queue)

    reply = await runner.submit(_open_task_plan(runner, task_id, make), _command_id(request))
    return _reply(reply)


# --- reservations --------------------------------------------------------------------------


def _answer(kind: type[events.Accept] | type[events.Decline]) -> Handler:
    async def handler(service: Service, request: Request) -> Response:
        runner = service.runner(request)
        rid = request.path_params["rid"]
        await read_body(request, optional=True)

        def plan() -> Plan:
            reservation = runner.reservations.get(rid)
            if reservation is None:
                pending = runner._batch.reservations.get(rid)
                text = pending[1] if pending else runner.store.reservation(runner.name, rid)
                if text is None:
                    raise not_found(f"unknown reservation {rid!r}")
                state = json.loads(text)["state"]
                raise conflict(f"reservation {rid!r} is {state}, not pending")
            if reservation.state != "pending":
                raise conflict(f"reservation {rid!r} is {reservation.state}, not pending")
            task = runner.engine.state.tasks.get(reservation.task)
            if task is None or reservation not in (task.reservation, task.transfer):
                raise conflict(f"reservation {rid!r} is no longer the task's offer")
            event = kind(task=reservation.task, agent=reservation.agent)
            return [event], lambda: Reply(200, runner.reservation_view(reservation))

        reply = await runner.submit(plan, _command_id(request))
        return _reply(reply)

    return handler


_add(BASE + "/reservations/{rid}/accept", "POST", "write")(_answer(events.Accept))
_add(BASE + "/reservations/{rid}/decline", "POST", "write")(_answer(events.Decline))


# --- queues and events ---------------------------------------------------------------------


@_add(BASE + "/queues", "GET", "read")
async def queues(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    return _json(runner.queues_view())


@_add(BASE + "/events", "GET", "events")
async def events_out(service: Service, request: Request) -> Response:
    runner = service.runner(request)
    params = request.query_params
    after_text = params.get("after") or request.headers.get("last-event-id") or "0"
    if not after_text.isdigit():
        raise ServiceError(
            422,
            "Unprocessable Content",
            "after / Last-Event-ID: a whole number",
            [{"path": "after", "message": "a whole number"}],
        )
    after = int(after_text)
    if params.get("format") == "json":
        limit_text = params.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10_000:
            raise ServiceError(
                422,
                "Unprocessable Content",
                "limit: a whole number from 1 to 10000",
                [{"path": "limit", "message": "a whole number from 1 to 10000"}],
            )
        rows = runner.store.events(runner.name, after, int(limit_text))
        return Response("[" + ",".join(rows) + "]", media_type="application/json")
    if params.get("format") not in (None, "sse"):
        raise ServiceError(
            422,
            "Unprocessable Content",
            "format: json or sse",
            [{"path": "format", "message": "json or sse"}],
        )
    return StreamingResponse(
        _stream(service, runner, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(service: Service, runner: Runner, after: int) -> AsyncIterator[str]:
    """The backlog from the store, then live events; the subscription starts before the
    backlog is read, and ids already sent are skipped, so nothing is missed or doubled."""
    live: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
    runner.subscribers.add(live)
    try:
        last = after
        while True:
            rows = runner.store.events(runner.name, last, 1000)
            for body in rows:
                last = json.loads(body)["id"]
                yield _sse(last, body)
            if len(rows) < 1000:
                break
        yield ": live\n\n"
        while not service.stopping.is_set():
            try:
                item = await asyncio.wait_for(live.get(), 15)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                break
            event_id, body = item
            if event_id <= last:
                continue
            if event_id != last + 1:
                # The queue fell behind the store (it never should): read the gap.
                for missed in runner.store.events(runner.name, last, event_id - last - 1):
                    missed_id = json.loads(missed)["id"]
                    yield _sse(missed_id, missed)
            last = event_id
            yield _sse(event_id, body)
    finally:
        runner.subscribers.discard(live)


def _sse(event_id: int, body: str) -> str:
    kind = body.split('"type":"', 1)[1].split('"', 1)[0]
    return f"id: {event_id}\nevent: {kind}\ndata: {body}\n\n"


# --- the application -----------------------------------------------------------------------


async def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return problem(404, f"no such path: {request.url.path}")
        if exc.status_code == 405:
            return problem(405, f"{request.method} is not allowed on {request.url.path}")
        return problem(exc.status_code, str(exc.detail))
    return problem(500, "the request failed; see the server log")


def build_app(service: Service) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.startup()
        try:
            yield
        finally:
            await service.shutdown()

    # The commands of every interaction first: Starlette tries routes in order.
    hot = (
        BASE + "/tasks",
        BASE + "/reservations/{rid}/accept",
        BASE + "/tasks/{id}/complete",
        BASE + "/reservations/{rid}/decline",
        BASE + "/tasks/{id}",
    )
    routes = sorted(ROUTES, key=lambda r: hot.index(r.path) if r.path in hot else len(hot))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _not_found, Exception: _not_found},
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tokens(path: str) -> list[Token]:
    from pathlib import Path

    from omniroute.core.config import read_mapping_file

    data = read_mapping_file(Path(path))
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected `tokens: [{{sha256, role, name}}]`")
    tokens = []
    for number, entry in enumerate(entries):
        where = f"{path}: tokens[{number}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping")
        digest = entry.get("sha256")
        role = entry.get("role")
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest.lower())
        ):
            raise ValueError(f"{where}.sha256: expected 64 hex digits (the token's SHA-256)")
        if role not in ROLES:
            raise ValueError(f"{where}.role: one of {', '.join(ROLES)}, not {role!r}")
        tokens.append(Token(digest.lower(), role, str(entry.get("name", ""))))
    return tokens


def monotonic() -> float:
    return time.monotonic()
