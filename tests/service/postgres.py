"""A real PostgreSQL for the tests, started once per test session in a temporary
directory, with a fresh database for each test: the server the `pgserver` wheel ships,
or, where that wheel is not installed (Python 3.13), Debian's `postgresql` binaries,
run as the `postgres` user when the tests run as root.

Tests that need it skip only when neither can start here; with the environment variable
CI set, they fail instead (CI must run them)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest


class Postgres:
    """A server on a Unix socket in its own directory (no TCP port to collide on)."""

    uri: str

    def url(self, database: str) -> str:
        return self.uri.replace("/postgres?", f"/{database}?", 1)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.uri, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server the fast way (SIGINT to the postmaster: every connection is
        cut), wait until it is gone, then `down_for` seconds, and start it again."""
        pid = int((self.pgdata() / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (self.pgdata() / "postmaster.pid").exists():
            time.sleep(0.05)
        time.sleep(down_for)
        self.start()

    def pgdata(self) -> Path:
        raise NotImplementedError

    def pg_ctl(self, *args: str) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.pg_ctl("-w", "-m", "immediate", "stop")


class WheelPostgres(Postgres):
    def __init__(self, directory: Path) -> None:
        import pgserver

        # Not under pytest's temporary directory, which other pytest sessions on this
        # machine may clean up (and whose permissions pgserver has to change).
        self.directory = Path(tempfile.mkdtemp(prefix="omniroute-pg-"))
        self.server: Any = pgserver.get_server(self.directory, cleanup_mode="stop")
        self.uri = self.server.get_uri()

    def pgdata(self) -> Path:
        return Path(self.server.pgdata)

    def pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)


class DebianPostgres(Postgres):
    def __init__(self, directory: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        # Not under pytest's temporary directory: that one is private to root (the server
        # runs as `postgres`), and other pytest sessions may clean it up.
        directory = Path(tempfile.mkdtemp(prefix="omniroute-pg-"))
        self.directory = directory
        self.data = directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        self.run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "utf8",
        )
        self.socket_dir = directory
        self.uri = f"postgresql://postgres@/postgres?host={directory}"
        self.start()

    def run(self, *command: str) -> None:
        if self.user is not None:
            command = ("runuser", "-u", self.user, "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def pgdata(self) -> Path:
        return self.data

    def pg_ctl(self, *args: str) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)

    def start(self) -> None:
        options = f"-h '' -k {self.socket_dir} -c fsync=on"
        self.pg_ctl("-w", "-l", str(self.socket_dir / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def launch(directory: Path) -> Postgres:
    """A running server: pgserver's, else Debian's (RuntimeError naming why neither)."""
    problems = []
    for kind in (WheelPostgres, DebianPostgres):
        place = directory / kind.__name__
        place.mkdir()
        try:
            return kind(place)
        except Exception as error:
            problems.append(f"{kind.__name__}: {error!r}")
            shutil.rmtree(place, ignore_errors=True)
    raise RuntimeError("; ".join(problems))


def start_postgres(directory: Path) -> Postgres:
    try:
        return launch(directory)
    except RuntimeError as error:
        message = str(error)
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL did not start, and CI needs it: {message}")
    pytest.skip(f"PostgreSQL cannot start here: {message}")
