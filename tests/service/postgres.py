"""A real PostgreSQL for the tests: the server the `pgserver` wheel ships, started once
per test session in a temporary directory, and a fresh database for each test.

Tests that need it skip only when it truly cannot start here; with the environment
variable CI set, they fail instead (CI must run them)."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest


class Postgres:
    def __init__(self, directory: Path) -> None:
        import pgserver

        self.directory = directory
        self.server: Any = pgserver.get_server(directory, cleanup_mode="stop")
        self.uri: str = self.server.get_uri()

    def url(self, database: str) -> str:
        return re.sub(r"/postgres\?", f"/{database}?", self.uri, count=1)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.uri, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (fast: connections are cut), wait, start it again."""
        import time

        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)
        time.sleep(down_for)
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(directory: Path) -> Postgres:
    try:
        return Postgres(directory)
    except Exception as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL (pgserver) did not start, and CI needs it: {error!r}")
        pytest.skip(f"PostgreSQL (pgserver) cannot start here: {error!r}")
