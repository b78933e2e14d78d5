"""What `omniroute serve` reads and writes, as attrs classes, and the OpenAPI 3.1
document generated from them (and from the engine's own event classes), so that the
schema and the code that validates requests cannot drift apart.

Request bodies are structured with the project's strict cattrs converter (no `"2"` for
2, no unknown keys); every problem comes back with its path.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import attrs

from omniroute.core import events

AgentStatus = Literal["ready", "not_ready", "offline"]
TaskState = Literal["queued", "reserved", "assigned", "completed", "canceled", "rejected"]
ReservationState = Literal["pending", "accepted", "declined", "timed_out", "revoked"]
EVENT_TYPES = (
    "task.created",
    "task.queued",
    "task.rejected",
    "task.canceled",
    "task.completed",
    "task.transferred",
    "task.converted",
    "reservation.created",
    "reservation.accepted",
    "reservation.declined",
    "reservation.timed_out",
    "reservation.revoked",
    "agent.updated",
    "agent.status",
    "deployment.updated",
)


# --- requests -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TaskRequest:
    """`POST …/tasks`: a new interaction. A client-given `id` makes it idempotent."""

    channel: str
    id: str | None = None
    attributes: dict[str, Any] = attrs.Factory(dict)
    priority: int = 0
    queue: str | None = None
    profile: str | None = None


@attrs.frozen(kw_only=True)
class AgentRequest:
    """`PUT …/agents/{id}`: add an agent, or replace what may change of one."""

    channels: dict[str, int]
    attributes: dict[str, Any] = attrs.Factory(dict)
    groups: tuple[str, ...] = ()
    status: AgentStatus | None = None


@attrs.frozen(kw_only=True)
class StatusRequest:
    status: AgentStatus


@attrs.frozen(kw_only=True)
class TransferRequest:
    """Give exactly one of `queue` and `agent`."""

    queue: str | None = None
    agent: str | None = None


@attrs.frozen(kw_only=True)
class ConvertRequest:
    """A queued or reserved task becomes a task of `channel`, keeping its queue time;
    `queue` moves it to another queue (docs/callbacks.md)."""

    channel: str
    queue: str | None = None


@attrs.frozen(kw_only=True)
class EndWrapUpRequest:
    """End the agent's wrap-up early: that of one `task`, or (no task) all of it."""

    task: str | None = None


@attrs.frozen(kw_only=True)
class CancelRequest:
    reason: str = "canceled"


# --- responses ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReservationView:
    id: str
    task: str
    agent: str
    created_at: str
    expires_at: str | None
    state: ReservationState
    queue: str | None = None


@attrs.frozen(kw_only=True)
class TaskView:
    id: str
    channel: str
    state: TaskState
    reason: str | None
    message: str | None
    queue: str | None
    agent: str | None
    reservation: ReservationView | None
    priority: int
    attributes: dict[str, Any]
    created_at: str
    requested_queue: str | None = None
    profile: str | None = None


@attrs.frozen(kw_only=True)
class ChannelView:
    capacity: int
    #: units of capacity taken: reserved and assigned tasks, and wrap-ups
    held: int
    #: of those, wrap-ups after ended tasks (docs/wrap-up.md)
    wrap_up: int = 0


@attrs.frozen(kw_only=True)
class AgentView:
    id: str
    status: AgentStatus
    channels: dict[str, ChannelView]
    attributes: dict[str, Any]
    groups: list[str]


@attrs.frozen(kw_only=True)
class EventView:
    """One event out: `id` increases by one within a deployment, without gaps."""

    id: int
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    at: str
    deployment: str
    data: dict[str, Any]


@attrs.frozen(kw_only=True)
class DeploymentInfo:
    name: str
    version: int


@attrs.frozen(kw_only=True)
class AgentCounts:
    total: int
    available: int


@attrs.frozen(kw_only=True)
class QueueView:
    name: str
    waiting: int
    longest_wait: float
    agents: dict[str, AgentCounts]
    created: int
    answered: int
    abandoned: int
    service_level: float | None
    #: seconds: the queue's service_level.threshold, else the deployment's, else 20
    service_level_threshold: float
    #: the queue's service_level.target, else the deployment's; null when neither declares one
    service_level_target: float | None


@attrs.frozen(kw_only=True)
class ProblemItem:
    path: str
    message: str


@attrs.frozen(kw_only=True)
class ProblemView:
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] | None = None


# --- JSON Schema from attrs -----------------------------------------------------------


def json_schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses it) of a type annotation; attrs
    classes become `$ref`s into `components`."""
    if kind is Any or kind is object:
        return {}
    if kind is type(None):
        return {"type": "null"}
    if kind is str:
        return {"type": "string"}
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer"}
    if kind is float:
        return {"type": "number"}
    if attrs.has(kind):
        name = kind.__name__
        if name not in components:
            components[name] = {}  # a placeholder breaks cycles
            components[name] = _object_schema(kind, components)
        return {"$ref": f"#/components/schemas/{name}"}
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if origin is Literal:
        return {"enum": list(arguments)}
    if origin in (typing.Union, types.UnionType):
        options = [json_schema(argument, components) for argument in arguments]
        return {"anyOf": options}
    if origin in (list, tuple) or origin is typing.Sequence:
        item = arguments[0] if arguments else Any
        return {"type": "array", "items": json_schema(item, components)}
    if origin is dict:
        value = arguments[1] if len(arguments) == 2 else Any
        return {"type": "object", "additionalProperties": json_schema(value, components)}
    raise TypeError(f"no JSON Schema for {kind!r}")


def _object_schema(kind: type, components: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(kind)
    properties: dict[str, Any] = {}
    required = []
    for field in attrs.fields(kind):
        properties[field.name] = json_schema(hints[field.name], components)
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if kind.__doc__ and not kind.__doc__.startswith(kind.__name__ + "("):
        schema["description"] = " ".join(kind.__doc__.split())
    if required:
        schema["required"] = required
    type_tag = getattr(kind, "type", None)
    if isinstance(type_tag, str) and kind in events.EVENT_TYPES.values():
        schema["properties"] = {"type": {"const": type_tag}, **properties}
        schema["required"] = ["type", *required]
    return schema


# --- the document ---------------------------------------------------------------------

_PROBLEM = {"$ref": "#/components/schemas/ProblemView"}


def _body(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": json_schema(kind, components)}},
    }


def _answer(status: int, kind: Any, components: dict[str, Any], what: str) -> dict[str, Any]:
    if kind is None:
        return {str(status): {"description": what}}
    return {
        str(status): {
            "description": what,
            "content": {"application/json": {"schema": json_schema(kind, components)}},
        }
    }


def openapi_document(version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    d = {"name": "d", "in": "path", "required": True, "schema": {"type": "string"}}

    def path_id(name: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}

    def query(name: str, kind: Any, what: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": json_schema(kind, components),
            "description": what,
        }

    def operation(
        summary: str,
        answers: dict[str, Any],
        *,
        body: Any = None,
        parameters: list[dict[str, Any]] | None = None,
        errors: tuple[int, ...] = (400, 401, 403, 404, 409, 413, 422),
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"summary": summary, "responses": dict(answers)}
        if parameters:
            result["parameters"] = parameters
        if body is not None:
            result["requestBody"] = _body(body, components)
        for status in errors:
            result["responses"][str(status)] = {
                "description": "problem",
                "content": {"application/problem+json": {"schema": _PROBLEM}},
            }
        return result

    base = "/v1/deployments/{d}"
    paths: dict[str, Any] = {
        "/v1/deployments": {
            "get": operation(
                "The deployments served",
                _answer(200, list[DeploymentInfo], components, "deployments"),
                errors=(401, 403),
            )
        },
        base: {
            "get": operation(
                "The deployment document in force",
                _answer(200, dict[str, Any], components, "the document"),
                parameters=[d],
                errors=(401, 403, 404),
            ),
            "put": operation(
                "Replace the deployment: validated first, journaled, versioned",
                _answer(200, DeploymentInfo, components, "the new version"),
                body=dict[str, Any],
                parameters=[d],
                errors=(400, 401, 403, 404, 409, 413, 422),
            ),
        },
        base + "/agents": {
            "get": operation(
                "The roster",
                _answer(200, list[AgentView], components, "agents"),
                parameters=[d],
                errors=(401, 403, 404),
            )
        },
        base + "/agents/{id}": {
            "get": operation(
                "One agent",
                _answer(200, AgentView, components, "the agent"),
                parameters=[d, path_id("id")],
                errors=(401, 403, 404),
            ),
            "put": operation(
                "Add (201) or update (200) an agent",
                {
                    **_answer(200, AgentView, components, "updated"),
                    **_answer(201, AgentView, components, "created"),
                },
                body=AgentRequest,
                parameters=[d, path_id("id")],
            ),
            "delete": operation(
                "Remove an agent (409 while it holds tasks)",
                _answer(204, None, components, "removed"),
                parameters=[d, path_id("id")],
            ),
        },
        base + "/agents/{id}/status": {
            "post": operation(
                "Set an agent's status",
                _answer(200, AgentView, components, "the agent"),
                body=StatusRequest,
                parameters=[d, path_id("id")],
            )
        },
        base + "/agents/{id}/end_wrap_up": {
            "post": operation(
                "End an agent's wrap-up early (409 when it is not wrapping up)",
                _answer(200, AgentView, components, "the agent"),
                body=EndWrapUpRequest,
                parameters=[d, path_id("id")],
            )
        },
        base + "/tasks": {
            "post": operation(
                "A new task, routed at once",
                {
                    **_answer(201, TaskView, components, "created"),
                    **_answer(200, TaskView, components, "the same id and body again"),
                },
                body=TaskRequest,
                parameters=[d],
            ),
            "get": operation(
                "Tasks in creation order",
                _answer(200, list[TaskView], components, "tasks"),
                parameters=[
                    d,
                    query("state", TaskState, "only tasks in this state"),
                    query("queue", str, "only tasks in this queue"),
                    query("limit", int, "at most this many (default 100, at most 1000)"),
                    query("after", str, "the tasks created after this task id"),
                ],
                errors=(401, 403, 404, 422),
            ),
        },
        base + "/tasks/{id}": {
            "get": operation(
                "One task, open or closed",
                _answer(200, TaskView, components, "the task"),
                parameters=[d, path_id("id")],
                errors=(401, 403, 404),
            )
        },
        base + "/tasks/{id}/explain": {
            "get": operation(
                "The decision records of a task (as `omniroute explain --json`)",
                _answer(200, dict[str, Any], components, "the explanation"),
                parameters=[d, path_id("id")],
                errors=(401, 403, 404),
            )
        },
        base + "/queues": {
            "get": operation(
                "Per queue: waiting, longest wait, agents, today's figures",
                _answer(200, list[QueueView], components, "queues"),
                parameters=[d],
                errors=(401, 403, 404),
            )
        },
        base + "/events": {
            "get": operation(
                "Server-Sent Events (resume with Last-Event-ID or ?after=N), or a JSON page "
                "with ?format=json",
                {
                    "200": {
                        "description": "the events",
                        "content": {
                            "text/event-stream": {"schema": {"type": "string"}},
                            "application/json": {
                                "schema": json_schema(list[EventView], components)
                            },
                        },
                    }
                },
                parameters=[
                    d,
                    query("after", int, "events after this id"),
                    query("limit", int, "with format=json: at most this many"),
                    query("format", Literal["json", "sse"], "json for a page"),
                ],
                errors=(401, 403, 404, 422),
            )
        },
    }
    for action, kind, what in (
        ("complete", None, "Complete an assigned task"),
        ("cancel", CancelRequest, "Cancel an open task (the body is optional)"),
        ("transfer", TransferRequest, "Transfer to a queue or an agent"),
        (
            "convert_to_callback",
            ConvertRequest,
            "A queued or reserved task becomes a callback that keeps its queue time",
        ),
    ):
        paths[base + f"/tasks/{{id}}/{action}"] = {
            "post": operation(
                what,
                _answer(200, TaskView, components, "the task"),
                body=kind,
                parameters=[d, path_id("id")],
            )
        }
    for action in ("accept", "decline"):
        paths[base + f"/reservations/{{rid}}/{action}"] = {
            "post": operation(
                f"{action.capitalize()} a pending reservation (409 if no longer pending)",
                _answer(200, ReservationView, components, "the reservation"),
                parameters=[d, path_id("rid")],
            )
        }
    for path, what in (
        ("/healthz", "liveness"),
        ("/readyz", "ready once state is restored (503 before)"),
        ("/metrics", "Prometheus metrics"),
    ):
        paths[path] = {"get": {"summary": what, "responses": {"200": {"description": what}}}}
    json_schema(ProblemView, components)
    # The journal holds the engine's own events: document them too.
    for event_class in events.EVENT_TYPES.values():
        json_schema(event_class, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "omniroute", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
