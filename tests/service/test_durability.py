"""kill -9 at random points of a random command stream: every acknowledged command is in
the journal, the state after restart equals a replay of the journal into a fresh engine
(written here, apart from the service), and no task is lost or held twice."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from omniroute.core import Engine, EngineOptions, load_deployment
from omniroute.core.events import AdvanceClock, from_json
from omniroute.core.state import Task

from .server import Server

D = "d"
TIMEOUT_DEPLOYMENT = """
channels: {chat: {}, voice: {}}
queues:
  support: {}
  sales: {target_workers: 'skills HAS "sales"'}
workflow:
  filters:
    - name: sales
      expression: 'type == "sales"'
      targets: [{queue: sales, timeout: 1}]
  default_queue: support
"""


class Stream:
    """Random commands from several clients at once, remembering what was acknowledged."""

    def __init__(self, url: str, seed: int, prefix: str) -> None:
        self.url = url
        self.random = random.Random(seed)
        self.prefix = prefix
        self.acked: list[str] = []
        self.created: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.count = 0

    def send(self, http: httpx.Client, method: str, path: str, body: Any = None) -> Any:
        command = uuid.uuid4().hex
        response = http.request(
            method,
            f"/v1/deployments/{D}{path}",
            json=body,
            headers={"X-Request-Id": command},
        )
        assert response.status_code < 500, response.text
        if response.status_code < 300 and "Omniroute-Journal-Seq" in response.headers:
            # Acknowledged and journaled (a command that changed nothing is not).
            with self.lock:
                self.acked.append(command)
            return response.json() if response.content else None
        return None

    def worker(self, number: int) -> None:
        rng = random.Random(self.random.random())
        known: list[dict[str, Any]] = []
        try:
            with httpx.Client(base_url=self.url, timeout=5) as http:
                while not self.stop.is_set():
                    with self.lock:
                        self.count += 1
                        serial = self.count
                    choice = rng.random()
                    if choice < 0.05:
                        agent = f"{self.prefix}a{rng.randrange(3)}-{number}"
                        self.send(
                            http,
                            "PUT",
                            f"/agents/{agent}",
                            {
                                "channels": {"chat": 2, "voice": 1},
                                "attributes": {"skills": ["sales"] if rng.random() < 0.5 else []},
                            },
                        )
                    elif choice < 0.45 or not known:
                        task_id = f"{self.prefix}t{serial}"
                        body: dict[str, Any] = {
                            "id": task_id,
                            "channel": rng.choice(["chat", "voice"]),
                        }
                        if rng.random() < 0.4:
                            body["attributes"] = {"type": "sales"}
                        task = self.send(http, "POST", "/tasks", body)
                        if task is not None:
                            with self.lock:
                                self.created.append(task_id)
                            known.append(task)
                    else:
                        task = rng.choice(known)
                        fresh = http.get(f"/v1/deployments/{D}/tasks/{task['id']}").json()
                        action = rng.random()
                        reservation = fresh.get("reservation")
                        if reservation and reservation["state"] == "pending" and action < 0.5:
                            verb = "accept" if action < 0.4 else "decline"
                            self.send(http, "POST", f"/reservations/{reservation['id']}/{verb}")
                        elif fresh.get("state") == "assigned" and action < 0.8:
                            self.send(http, "POST", f"/tasks/{task['id']}/complete")
                        elif action < 0.9:
                            self.send(http, "POST", f"/tasks/{task['id']}/cancel")
                        else:
                            self.send(
                                http, "POST", f"/tasks/{task['id']}/transfer", {"queue": "support"}
                            )
                        if fresh.get("state") in ("completed", "canceled", "rejected"):
                            known.remove(task)
        except (httpx.TransportError, json.JSONDecodeError):
            return  # the server was killed under us


def replay(server: Server) -> tuple[Engine, list[Task]]:
    """The journal into a fresh engine: the state an uninterrupted run would have."""
    document = json.loads(server.meta("initial_deployment"))
    engine = Engine(
        load_deployment(document),
        start=datetime.fromisoformat(server.meta("start")),
        options=EngineOptions(reservation_timeout=None, keep_closed_tasks=False),
    )
    closed: list[Task] = []
    engine.on_close = closed.append
    for _, at, event, _ in server.journal():
        engine.apply(AdvanceClock(to=at))
        if event["type"] != "advance":
            engine.apply(from_json(event))
    return engine, closed


def served_state(server: Server) -> tuple[dict[str, Any], dict[str, Any]]:
    client = server.client()
    tasks: dict[str, Any] = {}
    after = None
    while True:
        page = client.tasks(D, limit=1000, after=after)
        tasks.update({task["id"]: task for task in page})
        if len(page) < 1000:
            break
        after = page[-1]["id"]
    agents = {agent["id"]: agent for agent in client.agents(D)}
    return tasks, agents


def wait_quiet(server: Server, quiet: float = 1.6) -> None:
    """Until no event has come for `quiet` seconds (the workflow timers have fired)."""
    client = server.client()
    last = -1
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        page = client.events(D, after=max(last, 0), limit=10_000)
        newest = page[-1]["id"] if page else last
        if newest != last:
            last, since = newest, time.monotonic()
        time.sleep(0.2)


def check_against_replay(server: Server) -> None:
    tasks, agents = served_state(server)
    engine, closed = replay(server)
    expected_open = {
        task.id: (
            task.state,
            task.queue,
            task.agent,
            task.reservation.id if task.reservation and task.state != "queued" else None,
        )
        for task in engine.state.tasks.values()
    }
    served_open = {
        task["id"]: (
            task["state"],
            task["queue"],
            task["agent"],
            task["reservation"]["id"] if task["reservation"] else None,
        )
        for task in tasks.values()
        if task["state"] in ("queued", "reserved", "assigned")
    }
    assert served_open == expected_open
    assert {t.id: (t.state, t.reason) for t in closed} == {
        task["id"]: (task["state"], task["reason"])
        for task in tasks.values()
        if task["state"] not in ("queued", "reserved", "assigned")
    }
    assert {
        agent.id: (agent.status, {ch: len(ids) for ch, ids in agent.held.items() if ids})
        for agent in engine.agents
    } == {
        agent["id"]: (
            agent["status"],
            {ch: view["held"] for ch, view in agent["channels"].items() if view["held"]},
        )
        for agent in agents.values()
    }
    # No task held twice: each agent's held count is the number of open tasks naming it.
    holding = Counter(
        task["agent"] for task in tasks.values() if task["state"] in ("reserved", "assigned")
    )
    for agent in agents.values():
        assert holding.get(agent["id"], 0) == sum(v["held"] for v in agent["channels"].values())


@pytest.mark.parametrize("seed", [7])
def test_kill_9_at_random_points(tmp_path: Path, make_server: type[Server], seed: int) -> None:
    deployment = tmp_path / "timeouts.yaml"
    deployment.write_text(TIMEOUT_DEPLOYMENT)
    # A small snapshot interval: restarts go through snapshot + journal tail when the
    # engine can save, and through the whole journal otherwise.
    server = make_server(
        tmp_path,
        "--reservation-timeout",
        "none",
        "--snapshot-every",
        "50",
        deployments=(f"d={deployment}",),
    ).start()
    rng = random.Random(seed)
    created: list[str] = []
    for round_number in range(6):
        stream = Stream(server.url, rng.randrange(1 << 30), prefix=f"k{round_number}")
        threads = [threading.Thread(target=stream.worker, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.2, 1.0))
        deadline = time.monotonic() + 10  # a loaded machine: at least one answer first
        while not stream.acked and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # SIGKILL, with commands in flight
        stream.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert stream.acked, "the stream should have got some commands through"
        journaled = {command for _, _, _, command in server.journal() if command}
        missing = set(stream.acked) - journaled
        assert not missing, f"{len(missing)} acknowledged commands lost"
        created += stream.created
        server.restart()
        wait_quiet(server)
        check_against_replay(server)
        client = server.client()
        for task_id in created:  # no acknowledged task lost
            assert client.task(D, task_id)["id"] == task_id

    # Killed at rest: the state after restart is exactly the state before.
    before = served_state(server)
    server.kill()
    server.restart()
    wait_quiet(server)
    assert served_state(server) == before
    # The restarts went through snapshots (every 50 records) and the journal after them.
    restored = re.findall(r"snapshot at (\d+), (\d+) journal records", server.log.read_text())
    assert any(int(at) > 0 for at, _ in restored)


def test_timers_due_while_down_fire_at_restart_in_order(
    make_server: type[Server], tmp_path: Path
) -> None:
    server = make_server(tmp_path, "--reservation-timeout", "1s").start()
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 3})
    offered = []
    for number in range(3):
        offered.append(client.create_task(D, id=f"t{number}", channel="chat")["reservation"])
        time.sleep(0.05)
    # Nobody to offer them to again: ana keeps her pending offers (going not ready
    # would revoke them) but has no room left once they time out.
    client.put_agent(D, "ana", channels={"chat": 0})
    server.kill()
    time.sleep(1.5)  # every reservation expires while the server is down
    server.restart()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        timed_out = [e for e in client_events(server) if e["type"] == "reservation.timed_out"]
        if len(timed_out) == 3:
            break
        time.sleep(0.1)
    assert [e["data"]["id"] for e in timed_out] == [r["id"] for r in offered]
    # Each fired at its own time, not at the restart's.
    assert [e["at"] for e in timed_out] == [r["expires_at"] for r in offered]
    assert {t["state"] for t in server.client().tasks(D)} == {"queued"}


def client_events(server: Server) -> list[dict[str, Any]]:
    return server.client().events(D, limit=10_000)


def test_sigterm_is_graceful(make_server: type[Server], tmp_path: Path) -> None:
    server = make_server(tmp_path, "--reservation-timeout", "none").start()
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 1})
    client.create_task(D, id="t1", channel="chat")
    stream = threading.Thread(target=lambda: list(client.stream(D, timeout=30)))
    stream.start()  # an open event stream must not hold the shutdown up
    time.sleep(0.3)
    before = served_state(server)
    began = time.monotonic()
    assert server.kill(15) == 0
    assert time.monotonic() - began < 10
    stream.join(timeout=10)
    assert not stream.is_alive()
    server.restart()
    assert served_state(server) == before


def test_event_stream_resumes_across_a_kill(make_server: type[Server], tmp_path: Path) -> None:
    """Follow the stream, kill the server, resume from the last id seen: every event once."""
    server = make_server(tmp_path, "--reservation-timeout", "none").start()
    client = server.client()
    client.put_agent(D, "ana", channels={"chat": 3})
    seen: list[int] = []

    def follow(url: str, after: int, until: int) -> None:
        with httpx.stream(
            "GET",
            f"{url}/v1/deployments/{D}/events",
            headers={"Last-Event-ID": str(after)},
            timeout=httpx.Timeout(5, read=10),
        ) as response:
            try:
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        seen.append(int(line[4:]))
                        if seen[-1] >= until:
                            return
            except httpx.HTTPError:
                return  # killed under us

    for number in range(5):
        client.create_task(D, id=f"a{number}", channel="chat")
    before = len(client.events(D, limit=1000))
    reader = threading.Thread(target=follow, args=(server.url, 0, 10_000))
    reader.start()
    wait = time.monotonic() + 10
    while len(seen) < before and time.monotonic() < wait:
        time.sleep(0.05)
    server.kill()
    reader.join(timeout=10)
    server.restart()
    client = server.client()
    client.cancel(D, "a4")
    client.create_task(D, id="b1", channel="chat")
    total = len(client.events(D, limit=1000))
    follow(server.url, seen[-1], total)
    assert seen == list(range(1, total + 1))
