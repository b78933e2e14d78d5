"""Many `omniroute serve` instances on one PostgreSQL, on loopback: failover time and
durable throughput, side by side with SQLite in the same run.

    python -m bench.cluster failover [--times 5] [--lease 3s]
    python -m bench.cluster throughput [--clients 16] [--seconds 10]

- failover: three instances, one deployment, the default lease unless --lease says
  otherwise. The owner is SIGKILLed; a client then creates tasks at the surviving
  instances (following the 307 to the owner, retrying a 503 or a refused connection every
  20 ms) until one is answered 201 with a reservation: the first routed task on the new
  owner. The time from the kill to that answer, each time (the killed instance is
  started again before the next).
- throughput: K clients looping create task → accept → complete, every command durable
  before its answer, on: SQLite (one instance, one deployment), PostgreSQL with one owner
  (one instance, one deployment), and PostgreSQL with three deployments spread over three
  instances (each client talks to its deployment's owner). Commands per second, and the
  ratios.

The PostgreSQL server is the tests' own (pgserver's wheel, else Debian's binaries) in a
temporary directory, unless --db names one. Every process shares this machine's cores:
the server, the database and the clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.service import DEPLOYMENT, Connection, free_port


class Instance:
    def __init__(self, workdir: Path, db: str, deployments: list[str], *args: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "bench.yaml").write_text(DEPLOYMENT)
        self.db = db
        self.deployments = deployments
        self.args = args
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omniroute.contrib.cli",
                "serve",
                *(f"{name}={self.workdir / 'bench.yaml'}" for name in self.deployments),
                "--db",
                self.db,
                "--port",
                str(self.port),
                "--reservation-timeout",
                "none",
                "--log-level",
                "warning",
                *self.args,
            ],
            cwd=self.workdir,
            stderr=(self.workdir / "server.log").open("ab"),
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "server.log").read_text())
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise RuntimeError("not ready in 60 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=120)
        self.process = None


def owners(instances: list[Instance]) -> dict[str, Instance]:
    """Deployment -> the instance that owns it (asking each live one about itself)."""
    found: dict[str, Instance] = {}
    for instance in instances:
        if instance.process is None:
            continue
        for entry in httpx.get(instance.url + "/v1/deployments", timeout=5).json():
            if entry.get("here", True):
                found[entry["name"]] = instance
    return found


def wait_spread(instances: list[Instance], names: list[str]) -> dict[str, Instance]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = owners(instances)
        if set(found) == set(names) and len({id(i) for i in found.values()}) == min(
            len(names), len(instances)
        ):
            return found
        time.sleep(0.1)
    raise RuntimeError("the deployments did not spread over the instances")


# --- failover ------------------------------------------------------------------------------


def failover(db: str, times: int, lease: str | None) -> dict[str, Any]:
    extra = ("--lease", lease) if lease else ()
    measured: list[float] = []
    with tempfile.TemporaryDirectory() as workdir:
        instances = [Instance(Path(workdir) / f"i{n}", db, ["d"], *extra) for n in range(3)]
        for instance in instances:
            instance.start(wait=False)
        for instance in instances:
            instance.wait_ready()
        try:
            owner = wait_spread(instances, ["d"])["d"]
            httpx.put(
                owner.url + "/v1/deployments/d/agents/a0",
                json={"channels": {"chat": 1_000_000}},
                timeout=5,
            ).raise_for_status()
            for number in range(times):
                owner = owners(instances)["d"]
                survivors = [i for i in instances if i is not owner]
                owner.kill()
                killed = time.perf_counter()
                measured.append(first_routed(survivors, f"f{number}") - killed)
                owner.start()
                time.sleep(1.0)  # the restarted instance follows before the next kill
        finally:
            for instance in instances:
                if instance.process is not None:
                    instance.kill(signal.SIGTERM)
    return {
        "lease": lease or "3s (default)",
        "times": times,
        "failover_seconds": [round(s, 3) for s in measured],
        "median_seconds": round(statistics.median(measured), 3),
        "max_seconds": round(max(measured), 3),
    }


def first_routed(survivors: list[Instance], prefix: str) -> float:
    """Create tasks at the survivors until one is routed; the moment of that answer."""
    serial = 0
    with httpx.Client(timeout=2, follow_redirects=True) as http:
        while True:
            instance = survivors[serial % len(survivors)]
            serial += 1
            try:
                response = http.post(
                    instance.url + "/v1/deployments/d/tasks",
                    json={"id": f"{prefix}-{serial}", "channel": "chat"},
                )
                if response.status_code == 201 and response.json()["reservation"]:
                    return time.perf_counter()
            except httpx.HTTPError:
                pass
            time.sleep(0.02)


# --- throughput ----------------------------------------------------------------------------


async def _drive(targets: list[tuple[int, str]], clients: int, seconds: float) -> int:
    """`clients` loops spread over (port, deployment) targets; durable commands done."""
    for port, name in targets:
        connection = Connection(port)
        await connection.open()
        for number in range(50):
            status, _ = await connection.request(
                "PUT", f"/v1/deployments/{name}/agents/a{number}", {"channels": {"chat": 1000}}
            )
            assert status in (200, 201), status
        connection.close()
    done = 0
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal done
        port, name = targets[number % len(targets)]
        base = f"/v1/deployments/{name}"
        connection = Connection(port)
        await connection.open()
        serial = 0
        while time.perf_counter() < stop:
            serial += 1
            status, task = await connection.request(
                "POST", f"{base}/tasks", {"id": f"c{number}-{serial}", "channel": "chat"}
            )
            assert status == 201, task
            done += 1
            if task["reservation"] is None:
                continue
            status, _ = await connection.request(
                "POST", f"{base}/reservations/{task['reservation']['id']}/accept"
            )
            assert status == 200
            status, _ = await connection.request("POST", f"{base}/tasks/{task['id']}/complete")
            assert status == 200
            done += 2
        connection.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return done


def _run(
    workdir: Path, db: str, instances: int, deployments: int, clients: int, seconds: float
) -> dict[str, Any]:
    names = [f"d{n}" for n in range(deployments)]
    started = [Instance(workdir / f"i{n}", db, names) for n in range(instances)]
    for instance in started:
        instance.start(wait=False)
    try:
        for instance in started:
            instance.wait_ready()
        placed = wait_spread(started, names) if db.startswith("postgresql") else {}
        targets = [(placed[name].port if placed else started[0].port, name) for name in names]
        began = time.perf_counter()
        done = asyncio.run(_drive(targets, clients, seconds))
        elapsed = time.perf_counter() - began
    finally:
        for instance in started:
            if instance.process is not None:
                instance.kill(signal.SIGTERM)
    return {"commands": done, "commands_per_second": round(done / elapsed)}


def throughput(db: str, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        sqlite = _run(root / "sqlite", f"sqlite:///{root / 'bench.db'}", 1, 1, clients, seconds)
        one = _run(root / "pg1", fresh_database(db), 1, 1, clients, seconds)
        spread = _run(root / "pg3", fresh_database(db), 3, 3, clients, seconds)
    return {
        "clients": clients,
        "seconds": seconds,
        "sqlite_one_instance": sqlite,
        "postgresql_one_owner": one,
        "postgresql_three_instances_three_deployments": spread,
        "ratio_postgresql_one_owner_to_sqlite": round(
            one["commands_per_second"] / sqlite["commands_per_second"], 2
        ),
        "ratio_postgresql_spread_to_sqlite": round(
            spread["commands_per_second"] / sqlite["commands_per_second"], 2
        ),
        "ratio_postgresql_spread_to_one_owner": round(
            spread["commands_per_second"] / one["commands_per_second"], 2
        ),
    }


def fresh_database(base: str) -> str:
    import uuid

    import psycopg

    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return (
        base.replace("/postgres?", f"/{name}?", 1)
        if "/postgres?" in base
        else (base.rsplit("/", 1)[0] + "/" + name)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help="a PostgreSQL URL (its `postgres` database); default: start one"
    )
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("failover")
    one.add_argument("--times", type=int, default=5)
    one.add_argument("--lease", default=None, help="default: the server's (3s)")
    two = sub.add_parser("throughput")
    two.add_argument("--clients", type=int, default=16)
    two.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    command = "python -m bench.cluster " + " ".join(sys.argv[1:])
    server = None
    base = args.db
    if base is None:
        from tests.service.postgres import launch

        server = launch(Path(tempfile.mkdtemp(prefix="omniroute-bench-")))
        base = server.uri
    try:
        if args.what == "failover":
            result = failover(fresh_database(base), args.times, args.lease)
        else:
            result = throughput(base, args.clients, args.seconds)
        print(command, json.dumps(result), flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
