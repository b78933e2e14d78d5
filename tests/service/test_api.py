"""The service over real HTTP: agents, tasks, reservations, transfers, events, and bad
input on every endpoint (its status, a problem+json body, and nothing changed)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from omniroute.client import Client, ProblemError

from .server import Server

D = "d"


def events_of(client: Client, after: int = 0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = client.events(D, after=after, limit=1000)
        found += page
        if len(page) < 1000:
            return found
        after = page[-1]["id"]


def test_agents_tasks_reservations_and_transfers(server: Server) -> None:
    client = server.client()
    assert client.deployments() == [{"name": "d", "version": 1}]
    ana = client.put_agent(D, "ana", channels={"chat": 2}, attributes={"skills": ["sales"]})
    assert ana == {
        "id": "ana",
        "status": "ready",
        "channels": {"chat": {"capacity": 2, "held": 0, "wrap_up": 0}},
        "attributes": {"skills": ["sales"]},
        "groups": [],
    }
    client.put_agent(D, "bo", channels={"chat": 1, "voice": 1})

    sale = client.create_task(D, id="s1", channel="chat", attributes={"type": "sales"})
    assert (sale["state"], sale["queue"], sale["agent"]) == ("reserved", "sales", "ana")
    reservation = sale["reservation"]
    assert reservation["state"] == "pending"
    assert reservation["task"] == "s1"
    accepted = client.accept(D, reservation["id"])
    assert accepted["state"] == "accepted"
    assert client.task(D, "s1")["state"] == "assigned"
    assert client.agent(D, "ana")["channels"]["chat"] == {"capacity": 2, "held": 1, "wrap_up": 0}

    # Transfer to an agent, then to a queue.
    # The task stays with ana until bo accepts (Pega: "transferred only when the
    # recipient CSR accepts the request").
    moved = client.transfer(D, "s1", agent="bo")
    assert (moved["state"], moved["agent"]) == ("assigned", "ana")
    assert (moved["transfer"]["agent"], moved["transfer"]["state"]) == ("bo", "pending")
    client.accept(D, moved["transfer"]["id"])
    assert client.task(D, "s1")["agent"] == "bo"
    assert client.task(D, "s1")["transfer"] is None
    back = client.transfer(D, "s1", queue="sales")
    assert (back["queue"], back["agent"]) == ("sales", "ana")

    # A decline sends it back; with no one else it waits (ana declined it).
    declined = client.decline(D, back["reservation"]["id"])
    assert declined["state"] == "declined"
    waiting = client.task(D, "s1")
    assert waiting["state"] in ("queued", "reserved")

    # Complete a task: it leaves memory and stays readable.
    support = client.create_task(D, id="c2", channel="voice")
    assert support["agent"] == "bo"
    client.accept(D, support["reservation"]["id"])
    done = client.complete(D, "c2")
    assert done["state"] == "completed"
    assert done["agent"] is None
    assert client.task(D, "c2")["state"] == "completed"
    assert client.explain(D, "c2")["state"] == "completed"
    assert client.explain(D, "c2")["decisions"][0]["winner"] == "bo"
    assert [t["id"] for t in client.tasks(D, state="completed")] == ["c2"]

    # Idempotent creation: the same body answers 200, another body 409.
    again = client.create_task(D, id="c2", channel="voice")
    assert again["state"] == "completed"
    with pytest.raises(ProblemError) as problem:
        client.create_task(D, id="c2", channel="chat")
    assert problem.value.status == 409

    # Status, cancel and removal.
    assert client.set_status(D, "bo", "not_ready")["status"] == "not_ready"
    canceled = client.cancel(D, "s1", reason="abandoned")
    assert (canceled["state"], canceled["reason"]) == ("canceled", "abandoned")
    client.remove_agent(D, "bo")
    assert [a["id"] for a in client.agents(D)] == ["ana"]

    # The events: gapless ids, each command's effects in order.
    seen = events_of(client)
    assert [e["id"] for e in seen] == list(range(1, len(seen) + 1))
    kinds = [e["type"] for e in seen]
    for kind in (
        "agent.updated",
        "task.created",
        "reservation.created",
        "reservation.accepted",
        "task.transferred",
        "reservation.declined",
        "task.completed",
        "agent.status",
        "task.canceled",
    ):
        assert kind in kinds
    assert all(e["deployment"] == D and e["at"].endswith("Z") for e in seen)
    queues = {q["name"]: q for q in client.queues(D)}
    assert queues["support"]["created"] == 1
    assert queues["support"]["answered"] == 1


def test_event_stream_resumes_without_gaps(server: Server) -> None:
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 5})
    for number in range(3):
        client.create_task(D, id=f"t{number}", channel="chat")
    page = events_of(client)
    streamed: list[dict[str, Any]] = []

    def read() -> None:
        for event in client.stream(D, after=2, timeout=10):
            streamed.append(event)
            if event["id"] >= len(page) + 2:
                return

    reader = threading.Thread(target=read)
    reader.start()
    client.create_task(D, id="t9", channel="chat")  # 2 more events while streaming
    reader.join(timeout=20)
    assert [e["id"] for e in streamed] == list(range(3, len(page) + 3))
    assert streamed[: len(page) - 2] == page[2:]


def test_concurrent_clients_one_writer(server: Server) -> None:
    """Eight clients at once: every task is in exactly one place, no agent over capacity,
    event ids without gaps."""
    client = server.client()
    for number in range(4):
        client.put_agent(D, f"a{number}", channels={"chat": 3})
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            with server.client() as mine:
                for number in range(40):
                    task = mine.create_task(D, id=f"w{worker}-{number}", channel="chat")
                    if task["reservation"] is not None and number % 2 == 0:
                        assert mine.accept(D, task["reservation"]["id"])["state"] == "accepted"
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    tasks = client.tasks(D, limit=1000)
    assert len(tasks) == 320
    held = Counter(t["agent"] for t in tasks if t["state"] in ("reserved", "assigned"))
    assert set(held.values()) == {3}
    assert len(held) == 4
    assert sum(1 for t in tasks if t["state"] == "queued") == 320 - 12
    seen = events_of(client)
    assert [e["id"] for e in seen] == list(range(1, len(seen) + 1))
    offered = [e["data"]["task"] for e in seen if e["type"] == "reservation.created"]
    assert len(offered) == len(set(offered)) == 12


# --- bad input ------------------------------------------------------------------------------


def snapshot(client: Client) -> Any:
    return (
        client.agents(D),
        client.tasks(D, limit=1000),
        events_of(client),
    )


BAD = [
    # (method, path, body or raw bytes, status)
    ("POST", "/tasks", b"{", 400),
    ("POST", "/tasks", b"[1, 2", 400),
    ("POST", "/tasks", {"channel": 3}, 422),
    ("POST", "/tasks", {"channel": "chat", "priority": "high"}, 422),
    ("POST", "/tasks", {"channel": "chat", "colour": "red"}, 422),
    ("POST", "/tasks", [], 422),
    ("POST", "/tasks", {"channel": "fax"}, 409),
    ("POST", "/tasks", {"channel": "chat", "queue": "nowhere"}, 409),
    ("POST", "/tasks", {"id": "open", "channel": "voice"}, 409),
    ("GET", "/tasks/nope", None, 404),
    ("GET", "/tasks?state=lost", None, 422),
    ("GET", "/tasks?limit=0", None, 422),
    ("GET", "/tasks?after=nope", None, 422),
    ("GET", "/tasks/nope/explain", None, 404),
    ("POST", "/tasks/nope/complete", None, 404),
    ("POST", "/tasks/waiting/complete", None, 409),
    ("POST", "/tasks/nope/cancel", None, 404),
    ("POST", "/tasks/open/cancel", {"reason": 5}, 422),
    ("POST", "/tasks/open/transfer", {}, 422),
    ("POST", "/tasks/open/transfer", {"queue": "sales", "agent": "ana"}, 422),
    ("POST", "/tasks/open/transfer", {"queue": "nowhere"}, 404),
    ("POST", "/tasks/open/transfer", {"agent": "nobody"}, 404),
    ("POST", "/tasks/open/transfer", b"{nope", 400),
    ("POST", "/reservations/r99/accept", None, 404),
    ("POST", "/reservations/r1/accept", None, 409),  # declined: a late answer
    ("POST", "/reservations/r1/decline", None, 409),
    ("PUT", "/agents/bo", {"channels": {"chat": "two"}}, 422),
    ("PUT", "/agents/bo", {"channels": {"fax": 1}}, 422),
    ("PUT", "/agents/bo", {"channels": {"chat": 1}, "status": "asleep"}, 422),
    ("PUT", "/agents/bo", {}, 422),
    ("PUT", "/agents/ana", {"channels": {"chat": 1}, "groups": ["new"]}, 409),
    ("PUT", "/agents/bo", b"not json", 400),
    ("GET", "/agents/nobody", None, 404),
    ("DELETE", "/agents/nobody", None, 404),
    ("DELETE", "/agents/ana", None, 409),  # ana holds a task
    ("POST", "/agents/nobody/status", {"status": "ready"}, 404),
    ("POST", "/agents/ana/status", {"status": 1}, 422),
    ("POST", "/agents/ana/status", {"status": "offline"}, 409),  # holds an assigned task
    ("GET", "/events?after=x", None, 422),
    ("GET", "/events?format=json&limit=0", None, 422),
    ("PUT", "", {"queues": {"q": {"target_workers": "skills HAS"}}}, 422),
    ("PUT", "", b"{", 400),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for every bad request (none of them may change anything)."""
    running = Server(tmp_path_factory.mktemp("bad"), "--reservation-timeout", "none").start()
    client = running.client()
    client.put_agent(D, "ana", channels={"chat": 1, "voice": 0})
    first = client.create_task(D, id="open", channel="chat")
    client.decline(D, first["reservation"]["id"])  # r1 declined; r2 offered again
    client.accept(D, client.task(D, "open")["reservation"]["id"])
    client.create_task(D, id="waiting", channel="chat")
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"), BAD, ids=[f"{m} {p} {s}" for m, p, _, s in BAD]
)
def test_bad_input_changes_nothing(
    prepared: Server, method: str, path: str, body: Any, status: int
) -> None:
    server = prepared
    client = server.client()
    before = snapshot(client)
    content = (
        body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    )
    response = httpx.request(
        method,
        f"{server.url}/v1/deployments/{D}{path}",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert "Traceback" not in response.text
    if status == 422 and method != "GET":
        assert problem["errors"]
    assert snapshot(client) == before


def test_unknown_deployment_path_and_method(server: Server) -> None:
    for method, path, status in (
        ("GET", "/v1/deployments/nope/agents", 404),
        ("POST", "/v1/deployments/nope/tasks", 404),
        ("GET", "/v1/nothing", 404),
        ("DELETE", "/v1/deployments", 405),
    ):
        response = httpx.request(method, server.url + path, json={"channel": "chat"})
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


def test_huge_body_is_refused(server: Server) -> None:
    client = server.client()
    before = snapshot(client)
    huge = b'{"channel": "chat", "attributes": {"x": "' + b"a" * (1024 * 1024) + b'"}}'
    response = httpx.post(f"{server.url}/v1/deployments/{D}/tasks", content=huge)
    assert response.status_code == 413
    assert response.json()["status"] == 413

    def chunks() -> Any:  # no Content-Length: the cap holds on the stream itself
        for _ in range(20):
            yield b"a" * 65536 * 2

    response = httpx.post(f"{server.url}/v1/deployments/{D}/tasks", content=chunks())
    assert response.status_code == 413
    assert snapshot(client) == before


def test_openapi_document_covers_the_routes(server: Server) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    for path in (
        "/v1/deployments/{d}/tasks",
        "/v1/deployments/{d}/reservations/{rid}/accept",
        "/v1/deployments/{d}/agents/{id}",
        "/v1/deployments/{d}/events",
    ):
        assert path in paths
    schemas = document["components"]["schemas"]
    assert schemas["TaskRequest"]["required"] == ["channel"]
    assert schemas["TaskRequest"]["additionalProperties"] is False
    assert schemas["CreateTask"]["properties"]["type"] == {"const": "create"}
    assert "reservation" in schemas["TaskView"]["properties"]


def test_health_ready_and_metrics(server: Server) -> None:
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 1})
    client.create_task(D, id="m1", channel="chat")
    client.create_task(D, id="m2", channel="chat")
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    text = httpx.get(server.url + "/metrics").text
    assert 'omniroute_tasks{deployment="d",state="reserved"} 1.0' in text
    assert 'omniroute_queue_depth{deployment="d",queue="support"} 1.0' in text
    assert "omniroute_routing_seconds_bucket" in text
    assert "omniroute_journal_lag" in text


def test_put_deployment_applies_live_and_survives_a_kill(server: Server) -> None:
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 1}, attributes={"skills": ["sales"]})
    client.create_task(D, id="busy", channel="chat")
    waiting = client.create_task(D, id="s1", channel="chat", attributes={"type": "sales"})
    assert (waiting["state"], waiting["queue"]) == ("queued", "sales")
    document = {
        "channels": {"chat": {}, "voice": {}},
        "queues": {"support": {}, "vip": {}},
        "workflow": {"filters": [], "default_queue": "support"},
    }
    answer = client.replace_deployment(D, document)
    assert answer == {"name": D, "version": 2}
    assert client.deployments() == [{"name": D, "version": 2}]
    assert client.deployment(D) == document
    moved = client.task(D, "s1")
    assert moved["queue"] == "support"  # its queue is gone: to the default queue
    assert client.events(D, limit=1000)[-1]["type"] == "deployment.updated"
    with pytest.raises(ProblemError) as problem:  # invalid: every problem, nothing changed
        client.replace_deployment(D, {"queues": {"q": {"target_workers": "x =="}}, "colour": 1})
    assert problem.value.status == 422
    assert len(problem.value.errors) >= 2
    assert client.deployment(D) == document
    server.kill()
    server.restart()
    client = server.client()
    assert client.deployments() == [{"name": D, "version": 2}]
    assert client.deployment(D) == document
    assert client.task(D, "s1")["queue"] == "support"
    assert [queue["name"] for queue in client.queues(D)] == ["support", "vip"]


def test_the_queue_view_measures_each_queue_against_its_service_level(server: Server) -> None:
    client = server.client()
    client.replace_deployment(
        D,
        {
            "channels": {"chat": {}, "voice": {}},
            "service_level": {"threshold": "45s", "target": 0.8},
            "queues": {
                "support": {"service_level": {"threshold": "5s", "target": 0.9}},
                "sales": {},
            },
            "workflow": {"filters": [], "default_queue": "support"},
        },
    )
    client.put_agent(D, "ana", channels={"chat": 1})
    task = client.create_task(D, id="c1", channel="chat")
    client.accept(D, task["reservation"]["id"])  # answered at once: within 5 s
    queues = {queue["name"]: queue for queue in client.queues(D)}
    support, sales = queues["support"], queues["sales"]
    assert (support["service_level_threshold"], support["service_level_target"]) == (5.0, 0.9)
    assert (sales["service_level_threshold"], sales["service_level_target"]) == (45.0, 0.8)
    assert (support["answered"], support["service_level"]) == (1, 1.0)
    client.replace_deployment(D, {"channels": {"chat": {}}, "queues": {"support": {}}})
    (bare,) = client.queues(D)
    assert (bare["service_level_threshold"], bare["service_level_target"]) == (20.0, None)
