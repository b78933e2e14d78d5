"""`omniroute serve` on loopback: durable throughput, routing latency, restart time, memory.

    python -m bench.service throughput [--clients 32] [--seconds 10]
    python -m bench.service latency [--rate 500] [--seconds 10]
    python -m bench.service restart [--events 1000000] [--snapshot-every 10000]
    python -m bench.service memory [--hours 24] [--tasks-per-hour 20000]

- throughput: K clients on keep-alive connections, each looping create task → accept its
  reservation → complete it; every command durable (journaled and committed) before its
  answer. Reports commands per second.
- latency: tasks created at a fixed rate (open loop); each latency is from sending
  `POST /tasks` to reading that task's `reservation.created` on the event stream.
- restart: a store with N journal records, written by the service's own writer
  (create, accept, complete cycles), then the time from starting `omniroute serve` on it
  to `/readyz` answering 200.
- memory: 24 simulated hours of traffic through the service's writer on a simulated clock
  (tasks created, offered, accepted, completed; a few canceled), the process's memory each
  hour. Closed tasks leave memory and stay readable from the store.

All traffic stays on 127.0.0.1. The server is a subprocess (uvloop, httptools).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEPLOYMENT = """\
channels: {chat: {}, voice: {}}
queues:
  support: {}
  sales: {target_workers: 'skills HAS "sales"'}
workflow:
  filters:
    - name: sales
      expression: 'type == "sales"'
      targets: [{queue: sales}]
  default_queue: support
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        (workdir / "bench.yaml").write_text(DEPLOYMENT)
        self.port = free_port()
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omniroute.contrib.cli",
                "serve",
                f"d={self.workdir / 'bench.yaml'}",
                "--db",
                f"sqlite:///{self.workdir / 'bench.db'}",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *self.args,
            ],
            cwd=self.workdir,
            stderr=(self.workdir / "server.log").open("ab"),
        )
        import httpx

        while True:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "server.log").read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)

    def rss_mib(self) -> float:
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


class Connection:
    """HTTP/1.1 keep-alive over asyncio streams: as little client cost as can be."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        self.writer.close()


BASE = "/v1/deployments/d"


async def setup_agents(port: int, agents: int, capacity: int) -> None:
    connection = Connection(port)
    await connection.open()
    for number in range(agents):
        status, _ = await connection.request(
            "PUT", f"{BASE}/agents/a{number}", {"channels": {"chat": capacity}}
        )
        assert status in (200, 201)
    connection.close()


# --- throughput ----------------------------------------------------------------------------


async def _throughput(
    port: int, clients: int, seconds: float, agents: int
) -> tuple[int, float, list[float]]:
    await setup_agents(port, agents, 1000)
    done = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal done
        connection = Connection(port)
        await connection.open()
        serial = 0
        while time.perf_counter() < stop:
            serial += 1
            began = time.perf_counter()
            status, task = await connection.request(
                "POST", f"{BASE}/tasks", {"id": f"c{number}-{serial}", "channel": "chat"}
            )
            assert status == 201, task
            latencies.append(time.perf_counter() - began)
            done += 1
            if task["reservation"] is None:
                continue
            status, _ = await connection.request(
                "POST", f"{BASE}/reservations/{task['reservation']['id']}/accept"
            )
            assert status == 200
            status, _ = await connection.request("POST", f"{BASE}/tasks/{task['id']}/complete")
            assert status == 200
            done += 2
        connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return done, time.perf_counter() - began, latencies


def throughput(clients: int, seconds: float, agents: int, decisions: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        flag = "--decisions" if decisions else "--no-decisions"
        server = Server(Path(workdir), "--reservation-timeout", "none", flag)
        server.start()
        try:
            done, elapsed, latencies = asyncio.run(
                _throughput(server.port, clients, seconds, agents)
            )
        finally:
            server.stop()
    latencies.sort()
    return {
        "clients": clients,
        "agents": agents,
        "decisions": decisions,
        "commands": done,
        "seconds": round(elapsed, 2),
        "commands_per_second": round(done / elapsed),
        "create_p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "create_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
    }


# --- latency -------------------------------------------------------------------------------


async def _latency(port: int, rate: float, seconds: float) -> list[float]:
    await setup_agents(port, 20, 10_000)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {BASE}/events?after=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    async def listen() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data: ") and b'"reservation.created"' in line:
                event = json.loads(line[6:])
                seen[event["data"]["task"]] = time.perf_counter()

    listener = asyncio.create_task(listen())
    connections = [Connection(port) for _ in range(16)]
    for connection in connections:
        await connection.open()
    free = asyncio.Queue[Connection]()
    for connection in connections:
        free.put_nowait(connection)

    async def send(task_id: str) -> None:
        connection = await free.get()
        sent[task_id] = time.perf_counter()
        status, _ = await connection.request(
            "POST", f"{BASE}/tasks", {"id": task_id, "channel": "chat"}
        )
        assert status == 201
        free.put_nowait(connection)

    total = int(rate * seconds)
    began = time.perf_counter()
    pending = []
    for number in range(total):
        delay = began + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(send(f"l{number}")))
    await asyncio.gather(*pending)
    deadline = time.perf_counter() + 5
    while len(seen) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    listener.cancel()
    writer.close()
    missing = total - len(seen)
    assert missing == 0, f"{missing} reservation events never came"
    return [seen[task] - sent[task] for task in sent]


def latency(rate: float, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(Path(workdir), "--reservation-timeout", "none")
        server.start()
        try:
            latencies = asyncio.run(_latency(server.port, rate, seconds))
        finally:
            server.stop()
    latencies.sort()
    return {
        "rate": rate,
        "tasks": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
        "max_ms": round(1000 * latencies[-1], 2),
    }


# --- driving the writer in-process, on a simulated clock ---------------------------------


class SimulatedClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def offline_runner(workdir: Path, clock: SimulatedClock, snapshot_every: int) -> Any:
    from omniroute.contrib.service import Runner
    from omniroute.contrib.storage import SQLiteStore
    from omniroute.core.config import read_mapping_file

    (workdir / "bench.yaml").write_text(DEPLOYMENT)
    document = read_mapping_file(workdir / "bench.yaml")
    store = SQLiteStore(workdir / "bench.db")
    runner = Runner(
        "d",
        document,
        store,
        reservation_timeout=None,
        snapshot_every=snapshot_every,
        clock=clock,
    )
    runner.restore()
    return runner


def drive(runner: Any, plans: list[Any]) -> list[Any]:
    """What the writer loop does for one batch, without the loop: apply, commit."""
    from omniroute.contrib.service import Command

    replies = [runner._execute(Command(plan, f"b{id(plan)}", None)) for plan in plans]
    batch = runner._take_batch()
    if batch:
        runner.store.write(batch)
    if runner.seq - runner.snapshot_seq >= runner.snapshot_every:
        snapshot = runner._snapshot_body()
        if snapshot is not None:
            runner.store.save_snapshot(runner.name, *snapshot)
        runner.snapshot_seq = runner.seq
    return replies


def cycle_plans(runner: Any, task_id: str) -> list[Any]:
    from omniroute.contrib.service import Reply
    from omniroute.core import events

    def create() -> Any:
        return [events.CreateTask(task=task_id, channel="chat")], lambda: Reply(201, None)

    def accept() -> Any:
        return [events.Accept(task=task_id)], lambda: Reply(200, None)

    def complete() -> Any:
        return [events.Complete(task=task_id)], lambda: Reply(200, None)

    return [create, accept, complete]


def add_agents(runner: Any, count: int) -> None:
    from omniroute.contrib.service import Reply
    from omniroute.core import events

    drive(
        runner,
        [
            (
                lambda n=n: (
                    [events.AddAgent(agent=f"a{n}", channels={"chat": 2})],
                    lambda: Reply(201, None),
                )
            )
            for n in range(count)
        ],
    )


def restart(events_wanted: int, snapshot_every: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir_text:
        workdir = Path(workdir_text)
        clock = SimulatedClock()
        runner = offline_runner(workdir, clock, snapshot_every)
        add_agents(runner, 20)
        began = time.perf_counter()
        serial = 0
        while runner.seq < events_wanted:
            plans = []
            for _ in range(100):
                serial += 1
                plans += cycle_plans(runner, f"r{serial}")
            clock.now += timedelta(seconds=1)
            drive(runner, plans)
        written = time.perf_counter() - began
        journal = runner.seq
        runner.store.close()
        size = (workdir / "bench.db").stat().st_size
        server = Server(
            workdir, "--reservation-timeout", "none", "--snapshot-every", str(snapshot_every)
        )
        # `Server` writes its own copy of the deployment under the same name: the same text.
        ready = server.start()
        server.stop()
    return {
        "journal_records": journal,
        "written_in_s": round(written, 1),
        "db_mib": round(size / 2**20, 1),
        "restart_to_ready_s": round(ready, 2),
        "snapshots": _snapshots_available(),
    }


def _snapshots_available() -> bool:
    from omniroute.contrib.service import _snapshots_supported

    return _snapshots_supported()


def memory(hours: int, per_hour: int) -> dict[str, Any]:
    rng = random.Random(1)
    rss: list[float] = []
    with tempfile.TemporaryDirectory() as workdir_text:
        workdir = Path(workdir_text)
        clock = SimulatedClock()
        runner = offline_runner(workdir, clock, 10_000)
        add_agents(runner, 50)
        serial = 0
        from omniroute.contrib.service import Reply
        from omniroute.core import events

        for _ in range(hours):
            for _ in range(per_hour // 100):
                plans = []
                for _ in range(100):
                    serial += 1
                    task_id = f"m{serial}"
                    if rng.random() < 0.05:
                        plans.append(
                            lambda task_id=task_id: (
                                [events.CreateTask(task=task_id, channel="chat")],
                                lambda: Reply(201, None),
                            )
                        )
                        plans.append(
                            lambda task_id=task_id: (
                                [events.Cancel(task=task_id)],
                                lambda: Reply(200, None),
                            )
                        )
                    else:
                        plans += cycle_plans(runner, task_id)
                clock.now += timedelta(seconds=3600 / (per_hour // 100))
                drive(runner, plans)
            gc.collect()
            rss.append(_rss_mib())
        open_tasks = len(runner.engine.state.tasks)
        first = runner.store.task("d", "m1")
        runner.store.close()
    return {
        "hours": hours,
        "tasks": serial,
        "rss_mib_each_hour": [round(value, 1) for value in rss],
        "growth_after_hour_1_mib": round(rss[-1] - rss[0], 1),
        "open_tasks_at_end": open_tasks,
        "first_task_from_store": json.loads(first)["state"] if first else None,
    }


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("throughput")
    one.add_argument("--clients", type=int, nargs="+", default=[32])
    one.add_argument("--seconds", type=float, default=10)
    one.add_argument("--agents", type=int, default=50)
    one.add_argument("--no-decisions", action="store_true", help="serve with --no-decisions")
    two = sub.add_parser("latency")
    two.add_argument("--rate", type=float, default=500)
    two.add_argument("--seconds", type=float, default=10)
    three = sub.add_parser("restart")
    three.add_argument("--events", type=int, default=1_000_000)
    three.add_argument("--snapshot-every", type=int, default=10_000)
    four = sub.add_parser("memory")
    four.add_argument("--hours", type=int, default=24)
    four.add_argument("--tasks-per-hour", type=int, default=20_000)
    args = parser.parse_args()
    command = "python -m bench.service " + " ".join(sys.argv[1:])
    if args.what == "throughput":
        for clients in args.clients:
            result = throughput(clients, args.seconds, args.agents, not args.no_decisions)
            print(command, json.dumps(result), flush=True)
    elif args.what == "latency":
        print(command, json.dumps(latency(args.rate, args.seconds)))
    elif args.what == "restart":
        print(command, json.dumps(restart(args.events, args.snapshot_every)))
    else:
        print(command, json.dumps(memory(args.hours, args.tasks_per_hour)))


if __name__ == "__main__":
    main()
