"""A real `omniroute serve` in a subprocess, on a free loopback port, with a real SQLite
file (or a real PostgreSQL database, given its URL): what the service tests drive."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from omniroute.client import Client

DEPLOYMENT = Path(__file__).with_name("deployment.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self,
        workdir: Path,
        *args: str,
        deployments: tuple[str, ...] = (f"d={DEPLOYMENT}",),
        env: dict[str, str] | None = None,
        db_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.db = workdir / "omniroute.db"
        self.db_url = db_url or f"sqlite:///{self.db}"
        #: on PostgreSQL, a restart under the same name takes its leases back at once
        self.instance = f"i-{uuid.uuid4().hex[:8]}"
        self.args = args
        self.deployments = deployments
        self.env = env or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "omniroute.contrib.cli",
            "serve",
            *self.deployments,
            "--db",
            self.db_url,
            "--port",
            str(self.port),
            *(("--instance", self.instance) if self.db_url.startswith("postgresql:") else ()),
            *self.args,
        ]

    def start(self, *, wait: bool = True) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        began = time.perf_counter()
        deadline = began + timeout
        while time.perf_counter() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token=token)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def restart(self) -> Server:
        self.port = free_port()
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill(signal.SIGKILL)

    # --- reading the store behind the server's back ------------------------------------

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """A query in SQLite's dialect (`?` placeholders), on either back end."""
        if self.db_url.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(self.db_url) as pg:
                return pg.execute(query.replace("?", "%s"), args).fetchall()  # type: ignore[arg-type]
        connection = sqlite3.connect(self.db)
        try:
            return connection.execute(query, args).fetchall()
        finally:
            connection.close()

    def journal(self, deployment: str = "d") -> list[tuple[int, float, dict[str, Any], str | None]]:
        rows = self.sql(
            "SELECT seq, at, event, command FROM journal WHERE deployment = ? ORDER BY seq",
            deployment,
        )
        return [(seq, float(at), json.loads(event), command) for seq, at, event, command in rows]

    def meta(self, key: str, deployment: str = "d") -> str:
        rows = self.sql("SELECT value FROM meta WHERE deployment = ? AND key = ?", deployment, key)
        return str(rows[0][0])
