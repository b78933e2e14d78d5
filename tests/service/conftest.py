from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres import Postgres, start_postgres
from .server import Server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (each test makes its own database)."""
    server = start_postgres(tmp_path_factory.mktemp("pgdata"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, on each back end in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'omniroute.db'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.new_database()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path, "--reservation-timeout", "none").start()
    yield running
    running.stop()


@pytest.fixture
def make_server(tmp_path: Path, store_url: str) -> Iterator[type[Server]]:
    """Servers on the store of `store_url` (so each test using it runs on both back ends)."""
    started: list[Server] = []

    class Tracked(Server):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("db_url", store_url)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

        def start(self, *, wait: bool = True) -> Server:
            started.append(self)
            return super().start(wait=wait)

    yield Tracked
    for each in started:
        each.stop()
