"""Tokens and roles, loopback only without tokens, and signed webhooks delivered in order
at least once, across failures and a restart."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from omniroute.client import ProblemError

from .server import DEPLOYMENT, Server

D = "d"


def new_token(role: str) -> tuple[str, dict[str, str]]:
    output = subprocess.run(
        [sys.executable, "-m", "omniroute.contrib.cli", "token", "--role", role, "--name", role],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token = output.split("token: ")[1].split()[0]
    line = json.loads(output.split("line:  - ")[1])
    assert line["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    as_json = json.loads(
        subprocess.run(
            [sys.executable, "-m", "omniroute.contrib.cli", "token", "--role", role, "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert as_json["schema"] == "omniroute.token/1"
    assert as_json["line"]["sha256"] == hashlib.sha256(as_json["token"].encode()).hexdigest()
    return token, line


def test_tokens_and_roles(tmp_path: Path, make_server: type[Server]) -> None:
    tokens = {role: new_token(role) for role in ("admin", "platform", "supervisor")}
    (tmp_path / "tokens.json").write_text(
        json.dumps({"tokens": [line for _, line in tokens.values()]})
    )
    server = make_server(
        tmp_path, "--tokens", str(tmp_path / "tokens.json"), "--log-format", "json"
    ).start()
    admin, platform, supervisor = (
        server.client(tokens[r][0]) for r in ("admin", "platform", "supervisor")
    )
    base = f"{server.url}/v1/deployments/{D}"

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(base + "/agents", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert httpx.post(base + "/tasks", json={"channel": "chat"}).status_code == 401

    platform.put_agent(D, "ana", channels={"chat": 1})
    task = platform.create_task(D, id="t1", channel="chat")
    assert supervisor.task(D, "t1")["state"] == "reserved"
    assert supervisor.explain(D, "t1")["task"] == "t1"
    assert supervisor.events(D)
    before = supervisor.events(D)
    for call in (
        lambda: supervisor.create_task(D, channel="chat"),
        lambda: supervisor.accept(D, task["reservation"]["id"]),
        lambda: supervisor.put_agent(D, "bo", channels={"chat": 1}),
        lambda: platform.replace_deployment(D, {"queues": {"q": {}}}),
    ):
        with pytest.raises(ProblemError) as problem:
            call()
        assert problem.value.status == 403
    assert supervisor.events(D) == before
    # The admin may replace the deployment; an invalid one is refused with every problem.
    with pytest.raises(ProblemError) as problem:
        admin.replace_deployment(D, {"queues": {"q": {"target_workers": "x =="}}})
    assert problem.value.status == 422
    assert problem.value.errors
    # Structured logs: one JSON object a line, never a token.
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"schema", "time", "level", "logger", "message"} <= set(entry)
        assert all(token not in line for token, _ in tokens.values())
    # Health needs no token; metrics need one.
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert (
        httpx.get(
            server.url + "/metrics", headers={"Authorization": f"Bearer {tokens['supervisor'][0]}"}
        ).status_code
        == 200
    )


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniroute.contrib.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_refusals_at_start(tmp_path: Path) -> None:
    refused = run_cli("serve", str(DEPLOYMENT), "--host", "0.0.0.0", cwd=tmp_path)
    assert refused.returncode == 2
    assert "loopback only" in refused.stderr
    (tmp_path / "tokens.yaml").write_text("tokens: [{sha256: abc, role: platform}]\n")
    bad = run_cli("serve", str(DEPLOYMENT), "--tokens", "tokens.yaml", cwd=tmp_path)
    assert bad.returncode != 0
    assert "64 hex digits" in bad.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("queues: {q: {target_workers: 'x =='}}\n")
    invalid = run_cli("serve", str(broken), cwd=tmp_path)
    assert invalid.returncode != 0
    assert "problem" in invalid.stderr
    assert "Traceback" not in invalid.stderr + bad.stderr + refused.stderr
    # Nothing listens on port 1: a clear error naming the store, no traceback.
    unreachable = "postgresql://omniroute:secret@127.0.0.1:1/x"
    postgres = run_cli("serve", str(DEPLOYMENT), "--db", unreachable, cwd=tmp_path)
    assert postgres.returncode == 1
    assert "--db: cannot open the store" in postgres.stderr
    assert "Traceback" not in postgres.stderr
    lease = run_cli("serve", str(DEPLOYMENT), "--lease", "0s", cwd=tmp_path)
    assert lease.returncode == 2
    assert "--lease" in lease.stderr


class Receiver:
    """A webhook endpoint on loopback that fails its first answers."""

    def __init__(self, failures: int) -> None:
        self.received: list[tuple[dict[str, Any], str, bytes]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    (json.loads(body), self.headers["Omniroute-Signature"], body)
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_webhooks_signed_in_order_at_least_once(tmp_path: Path, make_server: type[Server]) -> None:
    receiver = Receiver(failures=2)
    secret = "s3cret"
    try:
        server = make_server(
            tmp_path,
            "--webhook",
            receiver.url,
            env={"OMNIROUTE_WEBHOOK_SECRET": secret},
        ).start()
        client = server.client()
        client.put_agent(D, "ana", channels={"chat": 2})
        client.create_task(D, id="t1", channel="chat")
        total = len(client.events(D))
        wait_for(lambda: len(receiver.received) >= total)
        server.kill()  # progress is in the store
        client_after = server.restart().client()
        client_after.create_task(D, id="t2", channel="chat")
        total = len(client_after.events(D))
        wait_for(lambda: receiver.received and receiver.received[-1][0]["id"] == total)
    finally:
        receiver.close()
    ids = [event["id"] for event, _, _ in receiver.received]
    # Complete, and in order: after the kill, delivery starts again from the last page
    # whose progress was kept (at least once), and never goes back further than that.
    assert sorted(set(ids)) == list(range(1, total + 1))
    restarts = [n for n, (a, b) in enumerate(itertools.pairwise(ids)) if b <= a]
    assert len(restarts) <= 1
    for n in restarts:
        assert ids[n + 1 :] == list(range(ids[n + 1], total + 1))
    for _, header, body in receiver.received:
        stamp, signature = header.split(",")
        assert stamp.startswith("t=")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert signature == f"v1={expected}"
