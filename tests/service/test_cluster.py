"""Three real `omniroute serve` instances on one real PostgreSQL.

The owner of a deployment is SIGKILLed at random moments while several clients send
commands to any instance: every acknowledged command is in the journal, the journal has
no gap, no agent ever holds more than its capacity, no reservation is made twice. A
paused owner (SIGSTOP past its lease) writes nothing once it wakes and steps down. The
database restarted under load loses nothing acknowledged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from omniroute.core import Engine, EngineOptions, load_deployment
from omniroute.core.events import AdvanceClock, from_json

from .postgres import Postgres
from .server import Server

LEASE = "1.5s"
DEPLOYMENT = """
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
#: how many times the owner is killed (more in a soak run: OMNIROUTE_FAILOVER_ROUNDS=50)
ROUNDS = int(os.environ.get("OMNIROUTE_FAILOVER_ROUNDS", "4"))


class Cluster:
    def __init__(self, workdir: Path, url: str, deployments: tuple[str, ...]) -> None:
        self.url = url
        self.servers = [
            Server(
                workdir / f"i{number}",
                "--reservation-timeout",
                "2s",
                "--lease",
                LEASE,
                "--snapshot-every",
                "40",
                deployments=deployments,
                db_url=url,
            )
            for number in range(3)
        ]
        for server in self.servers:
            server.workdir.mkdir()

    def start(self) -> Cluster:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_ready()
        return self

    def live(self) -> list[Server]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    def owners(self, via: Server | None = None) -> dict[str, str | None]:
        server = via or self.live()[0]
        listed = httpx.get(server.url + "/v1/deployments", timeout=5).json()
        return {entry["name"]: entry["owner"] for entry in listed}

    def by_instance(self, instance: str) -> Server:
        return next(s for s in self.servers if s.instance == instance)

    def wait_owner(self, deployment: str, other_than: str | None, timeout: float = 20) -> str:
        """Until some live instance owns the deployment (not `other_than`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for server in self.live():
                try:
                    listed = httpx.get(server.url + "/v1/deployments", timeout=2).json()
                except httpx.HTTPError:
                    continue
                for entry in listed:
                    mine = entry["name"] == deployment and entry["here"]
                    if mine and entry["owner"] != other_than:
                        return str(entry["owner"])
            time.sleep(0.05)
        raise AssertionError(f"no new owner of {deployment} within {timeout} s")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def cluster(postgres: Postgres, tmp_path: Path) -> Iterator[Cluster]:
    document = tmp_path / "d.yaml"
    document.write_text(DEPLOYMENT)
    running = Cluster(tmp_path, postgres.new_database(), (f"d={document}", f"e={document}")).start()
    yield running
    running.stop()


class Clients:
    """Several clients sending random commands to any live instance (following redirects,
    trying another instance when one is down), remembering what was acknowledged."""

    def __init__(self, cluster: Cluster, seed: int, deployment: str = "d") -> None:
        self.cluster = cluster
        self.deployment = deployment
        self.random = random.Random(seed)
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.count = 0
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def send(self, rng: random.Random, method: str, path: str, body: Any = None) -> Any:
        command = uuid.uuid4().hex
        for _ in range(3):
            servers = self.cluster.live()
            if not servers:
                return None
            server = rng.choice(servers)
            try:
                response = httpx.request(
                    method,
                    f"{server.url}/v1/deployments/{self.deployment}{path}",
                    json=body,
                    headers={"X-Request-Id": command},
                    follow_redirects=True,
                    timeout=5,
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 503:
                time.sleep(0.1)
                continue
            assert response.status_code < 500, response.text
            if response.status_code < 300 and "Omniroute-Journal-Seq" in response.headers:
                with self.lock:
                    self.acked.append(command)
                return response.json() if response.content else None
            return None
        return None

    def worker(self, number: int) -> None:
        try:
            self.commands(number)
        except AssertionError as error:  # a 5xx but 503: the test fails on it
            self.errors.append(str(error))

    def commands(self, number: int) -> None:
        rng = random.Random(self.random.random())
        open_tasks: list[str] = []
        while not self.stop.is_set():
            with self.lock:
                self.count += 1
                serial = self.count
            choice = rng.random()
            if choice < 0.1:
                agent = f"a{rng.randrange(4)}"
                skills = ["sales"] if rng.random() < 0.5 else []
                self.send(
                    rng,
                    "PUT",
                    f"/agents/{agent}",
                    {"channels": {"chat": 2, "voice": 1}, "attributes": {"skills": skills}},
                )
            elif choice < 0.5 or not open_tasks:
                task_id = f"w{number}-{serial}-{uuid.uuid4().hex[:4]}"
                body: dict[str, Any] = {"id": task_id, "channel": rng.choice(["chat", "voice"])}
                if rng.random() < 0.4:
                    body["attributes"] = {"type": "sales"}
                if self.send(rng, "POST", "/tasks", body) is not None:
                    open_tasks.append(task_id)
            else:
                task_id = rng.choice(open_tasks)
                task = self.read(rng, f"/tasks/{task_id}")
                if task is None:
                    continue
                reservation = task.get("reservation")
                if reservation and reservation["state"] == "pending" and rng.random() < 0.7:
                    verb = "accept" if rng.random() < 0.8 else "decline"
                    self.send(rng, "POST", f"/reservations/{reservation['id']}/{verb}")
                elif task["state"] == "assigned":
                    self.send(rng, "POST", f"/tasks/{task_id}/complete")
                elif rng.random() < 0.2:
                    self.send(rng, "POST", f"/tasks/{task_id}/cancel")
                if task["state"] in ("completed", "canceled", "rejected"):
                    open_tasks.remove(task_id)

    def read(self, rng: random.Random, path: str) -> Any:
        servers = self.cluster.live()
        if not servers:
            return None
        server = rng.choice(servers)
        try:
            response = httpx.get(f"{server.url}/v1/deployments/{self.deployment}{path}", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def __enter__(self) -> Clients:
        rng = random.Random(0)
        for number in range(4):  # a roster to route to from the start
            body = {"channels": {"chat": 2, "voice": 1}, "attributes": {"skills": ["sales"]}}
            assert self.send(rng, "PUT", f"/agents/a{number}", body) is not None
        self.threads = [threading.Thread(target=self.worker, args=(n,)) for n in range(3)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors


def check_journal(cluster: Cluster, deployment: str, acked: list[str]) -> None:
    """No acknowledged command lost; no gap, no duplicate, epochs never going back; a
    replay never holds an agent past its capacity; every reservation made once."""
    server = cluster.servers[0]
    rows = server.sql(
        "SELECT seq, at, event, command, epoch FROM journal WHERE deployment = ? ORDER BY seq",
        deployment,
    )
    seqs = [row[0] for row in rows]
    assert seqs == list(range(1, len(seqs) + 1)), "the journal has a gap or a duplicate"
    epochs = [row[4] for row in rows]
    assert epochs == sorted(epochs), "a record of an older epoch follows a newer one"
    journaled = {row[3] for row in rows if row[3]}
    missing = set(acked) - journaled
    assert not missing, f"{len(missing)} acknowledged commands lost"
    meta = dict(server.sql("SELECT key, value FROM meta WHERE deployment = ?", deployment))
    engine = Engine(
        load_deployment(json.loads(meta["initial_deployment"])),
        start=datetime.fromisoformat(meta["start"]),
        options=EngineOptions(reservation_timeout=2.0, keep_closed_tasks=False),
    )
    for _, at, event, _, _ in rows:
        engine.apply(AdvanceClock(to=float(at)))
        record = json.loads(event)
        if record["type"] not in ("advance", "service.options"):
            engine.apply(from_json(record))
        for agent in engine.agents:
            for channel, capacity in agent.capacity.items():
                assert agent.held_count(channel) <= capacity, f"{agent.id} over {channel}"
    created = Counter(
        json.loads(body)["data"]["id"]
        for (body,) in server.sql(
            "SELECT body FROM events WHERE deployment = ? AND type = 'reservation.created'",
            deployment,
        )
    )
    kinds = Counter(json.loads(row[2])["type"] for row in rows)
    assert created, f"the clients should have got reservations made ({kinds}, {len(acked)} acked)"
    assert max(created.values()) == 1, "a reservation was made twice"
    ids = [
        row[0]
        for row in server.sql("SELECT id FROM events WHERE deployment = ? ORDER BY id", deployment)
    ]
    assert ids == list(range(1, len(ids) + 1)), "the events have a gap or a duplicate"


def test_deployments_spread_and_commands_redirect(cluster: Cluster) -> None:
    # Two deployments, three instances: each instance holds at most one.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        owners = cluster.owners()
        if all(owners.values()) and len(set(owners.values())) == 2:
            break
        time.sleep(0.2)
    assert len(set(owners.values())) == 2, owners
    owner = cluster.by_instance(str(owners["d"]))
    other = next(s for s in cluster.servers if s is not owner)
    # A command at a non-owner: 307 to the owner, with the same path.
    response = httpx.put(
        f"{other.url}/v1/deployments/d/agents/ana", json={"channels": {"chat": 1}}, timeout=5
    )
    assert response.status_code == 307
    assert response.headers["location"] == f"{owner.url}/v1/deployments/d/agents/ana"
    assert response.json()["status"] == 307
    followed = httpx.put(
        f"{other.url}/v1/deployments/d/agents/ana",
        json={"channels": {"chat": 1}},
        follow_redirects=True,
        timeout=5,
    )
    assert followed.status_code == 201
    # The Python client follows the redirect too.
    task = other.client().create_task("d", id="t1", channel="chat")
    assert task["agent"] == "ana"
    # Non-owners follow the journal: the read and the events show up there too.
    # (They lag the owner by up to about 0.1 s.)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        agent = httpx.get(f"{other.url}/v1/deployments/d/agents/ana", timeout=5).json()
        if agent.get("channels", {}).get("chat", {}).get("held") == 1:
            break  # (404 until the replica has applied the agent)
        time.sleep(0.05)
    assert agent["channels"]["chat"]["held"] == 1
    seen = httpx.get(f"{other.url}/v1/deployments/d/tasks/t1", timeout=5).json()
    assert seen["state"] == "reserved"
    assert seen["reservation"]["id"] == task["reservation"]["id"]
    events = httpx.get(
        f"{other.url}/v1/deployments/d/events", params={"format": "json"}, timeout=5
    ).json()
    assert [e["type"] for e in events][-2:] == ["task.created", "reservation.created"]


def test_owner_killed_again_and_again(cluster: Cluster) -> None:
    rng = random.Random(11)
    acked: list[str] = []
    with Clients(cluster, seed=5) as clients:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.3, 1.2))
            owner = cluster.by_instance(cluster.wait_owner("d", other_than=None))
            killed_at = time.monotonic()
            owner.kill()  # SIGKILL, commands in flight
            cluster.wait_owner("d", other_than=owner.instance)
            assert time.monotonic() - killed_at < 10
            owner.restart()
        time.sleep(0.5)
    acked = clients.acked
    assert len(acked) > 20, "the clients should have got commands through"
    check_journal(cluster, "d", acked)
    # The restarted instances restored from snapshots and the journal after them.
    logs = "".join(s.log.read_text() for s in cluster.servers)
    assert "took over d" in logs


def test_a_paused_owner_is_fenced_and_steps_down(cluster: Cluster) -> None:
    owner = cluster.by_instance(cluster.wait_owner("d", other_than=None))
    http = httpx.Client(timeout=5)
    http.put(f"{owner.url}/v1/deployments/d/agents/ana", json={"channels": {"chat": 5}})
    assert owner.process is not None
    owner.process.send_signal(signal.SIGSTOP)
    try:
        new_owner = cluster.wait_owner("d", other_than=owner.instance)
        successor = cluster.by_instance(new_owner)
        made = http.post(
            f"{successor.url}/v1/deployments/d/tasks", json={"id": "after", "channel": "chat"}
        )
        assert made.status_code == 201
        # Commands sent to the paused owner wait in its socket until it wakes.
        answers: list[httpx.Response] = []

        def send(number: int) -> None:
            answers.append(
                httpx.post(
                    f"{owner.url}/v1/deployments/d/tasks",
                    json={"id": f"stale{number}", "channel": "chat"},
                    timeout=20,
                )
            )

        senders = [threading.Thread(target=send, args=(n,)) for n in range(5)]
        for sender in senders:
            sender.start()
        time.sleep(0.3)
    finally:
        owner.process.send_signal(signal.SIGCONT)
    for sender in senders:
        sender.join(timeout=30)
    # Every one refused (503 from a fenced write) or sent on to the new owner (307).
    assert sorted({a.status_code for a in answers}) in ([307], [503], [307, 503])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = {e["name"]: e for e in http.get(f"{owner.url}/v1/deployments").json()}
        if not mine["d"]["here"] and mine["d"]["owner"] == new_owner:
            break
        time.sleep(0.1)
    assert not mine["d"]["here"]
    assert mine["d"]["owner"] == new_owner
    assert "stepping down from d" in owner.log.read_text()
    # Nothing of the old owner's reached the journal after the takeover.
    rows = owner.sql("SELECT command, epoch FROM journal WHERE deployment = ? ORDER BY seq", "d")
    assert not [row for row in rows if row[0] and row[0].startswith("stale")]
    epochs = [row[1] for row in rows]
    assert epochs == sorted(epochs)
    assert http.get(f"{successor.url}/v1/deployments/d/tasks/stale0").status_code == 404
    http.close()


def test_database_restarted_under_load(cluster: Cluster, postgres: Postgres) -> None:
    with Clients(cluster, seed=9) as clients:
        time.sleep(1.0)
        postgres.restart(down_for=1.0)
        time.sleep(3.0)
        before = len(clients.acked)
        time.sleep(1.5)
        assert len(clients.acked) > before, "commands should go through again"
    check_journal(cluster, "d", clients.acked)


def test_timers_due_during_failover_fire_in_order(cluster: Cluster) -> None:
    owner = cluster.by_instance(cluster.wait_owner("d", other_than=None))
    client = owner.client()
    client.put_agent("d", "ana", channels={"chat": 3})
    offered = [
        client.create_task("d", id=f"t{number}", channel="chat")["reservation"]
        for number in range(3)
    ]
    # (ana stays ready: going not ready would revoke the offers at once; once timed out,
    # they are offered to her again, so only the first three timeouts are of these offers)
    owner.kill()  # the offers time out (2 s) while the lease (1.5 s) runs out
    successor = cluster.by_instance(cluster.wait_owner("d", other_than=owner.instance))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = successor.client().events("d", limit=1000)
        timed_out = [e for e in seen if e["type"] == "reservation.timed_out"][:3]
        if len(timed_out) == 3:
            break
        time.sleep(0.1)
    assert [e["data"]["id"] for e in timed_out] == [r["id"] for r in offered]
    assert [e["at"] for e in timed_out] == [r["expires_at"] for r in offered]
