"""`omniroute serve` and `omniroute token`: command-line glue, logging, the server."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click

from omniroute.core.config import read_mapping_file
from omniroute.core.durations import parse_duration

# The server (Starlette, uvicorn, the store) is imported when `serve` runs, so that every
# other command starts without it.
from .roles import ROLES

log = logging.getLogger("omniroute.serve")


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and any `extra` fields."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "schema": "omniroute.serve/1",
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JSONFormatter()
        formatter.converter = __import__("time").gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def parse_deployments(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`path` (named by its stem) or `name=path`, each read and validated."""
    documents: dict[str, dict[str, Any]] = {}
    for value in values:
        name, _, path_text = value.rpartition("=") if "=" in value else ("", "", value)
        path = Path(path_text)
        name = name or path.stem
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise click.UsageError(f"deployment name {name!r}: letters, digits, '.', '_', '-'")
        if name in documents:
            raise click.UsageError(f"deployment {name!r} is given twice")
        document = read_mapping_file(path)
        validate_or_exit(document, str(path))
        documents[name] = document
    return documents


def validate_or_exit(document: Any, label: str) -> None:
    from .service import ServiceError, validate_document

    try:
        validate_document(document, label)
    except ServiceError as error:
        lines = [f"{label}: {len(error.errors or [])} problem(s)"]
        lines += [f"  {e['path']}: {e['message']}" for e in error.errors or []]
        raise click.ClickException("\n".join(lines)) from error


@click.command("serve")
@click.argument("deployments", nargs=-1, required=True)
@click.option("--db", default="sqlite:///omniroute.db", show_default=True, help="the store")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--tokens", "tokens_file", default=None, help="bearer tokens (YAML, TOML or JSON)")
@click.option("--webhook", "webhooks", multiple=True, help="POST every event here (repeatable)")
@click.option("--reservation-timeout", default="30s", show_default=True, help="e.g. 30s, 2m, none")
@click.option(
    "--snapshot-every",
    default=10_000,
    show_default=True,
    type=int,
    help="journal records between snapshots",
)
@click.option(
    "--decisions/--no-decisions",
    default=True,
    show_default=True,
    help="keep decision records for explain (a large roster routes faster without)",
)
@click.option(
    "--lease",
    default="3s",
    show_default=True,
    help="PostgreSQL: how long a deployment's owner holds it without renewing",
)
@click.option(
    "--advertise",
    default=None,
    help="PostgreSQL: the URL other instances redirect commands to (default http://HOST:PORT)",
)
@click.option(
    "--instance",
    "instance_name",
    default=None,
    help="PostgreSQL: this instance's name in leases (default host:port:random)",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Log JSON objects (with a "schema" key), the same as --log-format json.',
)
def serve_command(
    deployments: tuple[str, ...],
    db: str,
    host: str,
    port: int,
    tokens_file: str | None,
    webhooks: tuple[str, ...],
    reservation_timeout: str,
    snapshot_every: int,
    decisions: bool,
    lease: str,
    advertise: str | None,
    instance_name: str | None,
    log_format: str,
    log_level: str,
    as_json: bool,
) -> None:
    """Serve DEPLOYMENT... over HTTP, with durable state (see docs/service.md)."""
    import uvicorn

    from .http import Service, build_app, is_loopback, load_tokens
    from .service import Runner
    from .storage import is_postgresql, open_store

    setup_logging("json" if as_json else log_format, log_level)
    documents = parse_deployments(deployments)
    timeout = None if reservation_timeout.lower() == "none" else parse_duration(reservation_timeout)
    tokens = load_tokens(tokens_file) if tokens_file else None
    if tokens is None:
        if not is_loopback(host):
            raise click.UsageError(
                f"without --tokens the server listens on loopback only; refusing --host {host}"
            )
        log.warning("no --tokens: listening on loopback only, without authentication")
    if snapshot_every < 1:
        raise click.UsageError("--snapshot-every must be at least 1")
    secret = os.environ.get("OMNIROUTE_WEBHOOK_SECRET", "")
    if webhooks and not secret:
        raise click.UsageError("--webhook needs OMNIROUTE_WEBHOOK_SECRET to sign the events")
    lease_seconds = parse_duration(lease)
    if not 0.3 <= lease_seconds <= 600:
        raise click.UsageError("--lease: from 0.3s to 10m")
    try:
        store = open_store(db)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    except Exception as error:  # the database is unreachable, refuses us, ...
        raise click.ClickException(f"--db: cannot open the store: {error}") from error

    def make_runner(name: str) -> Runner:
        return Runner(
            name,
            documents[name],
            store,
            reservation_timeout=timeout,
            snapshot_every=snapshot_every,
            record_decisions=decisions,
        )

    runners = {name: make_runner(name) for name in documents}
    cluster = None
    if is_postgresql(db):
        from .cluster import Cluster
        from .storage_pg import PostgresStore

        assert isinstance(store, PostgresStore)
        address = advertise or f"http://{host}:{port}"
        cluster = Cluster(
            runners,
            make_runner,
            store,
            instance=instance_name or f"{socket.gethostname()}:{port}:{secrets.token_hex(3)}",
            address=address,
            lease=lease_seconds,
        )
        for runner in runners.values():
            runner.owner = False
    from importlib.metadata import version

    service = Service(
        runners,
        store,
        tokens=tokens,
        webhooks=list(webhooks),
        webhook_secret=secret,
        version=version("omniroute"),
        cluster=cluster,
    )
    app = build_app(service)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        timeout_graceful_shutdown=30,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                log.info("stopping on %s", signal.Signals(sig).name)
            service.close_streams()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn raises the signal again once stopped; a graceful stop exits 0.
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    # The journal commits in a thread while the event loop keeps working; the loop rarely
    # gives the GIL up by itself, so let the committing thread in every 0.5 ms instead of
    # every 5 ms (otherwise each commit queues for the GIL at each of its steps).
    sys.setswitchinterval(0.0005)
    # A full collection walks every object the engine keeps (open tasks, their decision
    # records): rarer generations keep those pauses out of the routing latency's tail.
    gc.set_threshold(50_000, 20, 100)
    where = f"instance {cluster.instance}, " if cluster is not None else ""
    log.info(
        "serving %s on http://%s:%d (%sstore %s)",
        ", ".join(runners),
        host,
        port,
        where,
        _without_password(db),
    )
    Server(config).run()


@click.command("token")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="", help="who the token is for")
@click.option("--json", "as_json", is_flag=True, help='Print JSON (an object with a "schema" key).')
def token_command(role: str, name: str, as_json: bool) -> None:
    """Print a new random token, and the line for the --tokens file (only its hash)."""
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    entry = {"sha256": digest, "role": role}
    if name:
        entry["name"] = name
    if as_json:
        click.echo(json.dumps({"schema": "omniroute.token/1", "token": token, "line": entry}))
        return
    click.echo(f"token: {token}")
    click.echo("line:  - " + json.dumps(entry))


def _without_password(url: str) -> str:
    """A store URL fit for a log line."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
