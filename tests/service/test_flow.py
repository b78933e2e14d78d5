"""Wrap-up, offer policy and callbacks over real HTTP: `end_wrap_up` on an agent,
`convert_to_callback` on a task, what the agent and task views show, the events out, and
bad input (404, 409, 422, nothing changed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniroute.client import Client, ProblemError

from .server import Server

D = "flow"
DEPLOYMENT = """
channels:
  voice: {wrap_up: 10m, offer: {timeout: 1h, on_timeout: not_ready}}
  callback: {offer: {auto_answer: true}}
queues:
  support: {}
  callbacks: {}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    path = tmp_path / "flow.yaml"
    path.write_text(DEPLOYMENT)
    server = Server(tmp_path, "--reservation-timeout", "none", deployments=(f"{D}={path}",))
    server.start()
    yield server.client()
    server.stop()


def types(client: Client, after: int) -> list[str]:
    return [event["type"] for event in client.events(D, after=after, limit=1000)]


def test_wrap_up_and_a_callback_that_keeps_its_place(client: Client) -> None:
    client.put_agent(D, "ana", channels={"voice": 1, "callback": 1})
    first = client.create_task(D, id="v1", channel="voice", queue="support")
    assert first["reservation"]["expires_at"] is not None  # channels.voice.offer.timeout
    client.accept(D, first["reservation"]["id"])
    client.complete(D, "v1")
    ana = client.agent(D, "ana")
    assert ana["channels"]["voice"] == {"capacity": 1, "held": 1, "wrap_up": 1}

    # While ana wraps up, a second caller waits, then asks to be called back.
    waiting = client.create_task(D, id="v2", channel="voice", queue="support")
    assert waiting["state"] == "queued"
    seen = client.events(D, limit=1000)[-1]["id"]
    converted = client.convert_to_callback(D, "v2", "callback", queue="callbacks")
    assert (converted["channel"], converted["queue"]) == ("callback", "callbacks")
    assert (converted["state"], converted["agent"]) == ("assigned", "ana")  # auto-answered
    assert "task.converted" in types(client, seen)

    # Ending the voice wrap-up early frees the voice capacity.
    seen = client.events(D, limit=1000)[-1]["id"]
    ended = client.end_wrap_up(D, "ana")
    assert ended["channels"]["voice"] == {"capacity": 1, "held": 0, "wrap_up": 0}
    assert "agent.updated" in types(client, seen)


def test_bad_flow_commands_change_nothing(client: Client) -> None:
    client.put_agent(D, "ana", channels={"voice": 1})
    client.create_task(D, id="v1", channel="voice", queue="support")
    before = client.events(D, limit=1000)
    cases = [
        (lambda: client.end_wrap_up(D, "ana"), 409, "not wrapping up"),
        (lambda: client.end_wrap_up(D, "ghost"), 404, "unknown agent"),
        (lambda: client.convert_to_callback(D, "v1", "callback", queue="nowhere"), 404, "queue"),
        (lambda: client.convert_to_callback(D, "v1", "fax"), 409, "unknown channel"),
        (lambda: client.convert_to_callback(D, "ghost", "callback"), 404, "unknown task"),
        (
            lambda: client.request(
                "POST", f"/v1/deployments/{D}/tasks/v1/convert_to_callback", {"queue": "x"}
            ),
            422,
            "channel",
        ),
    ]
    for call, status, words in cases:
        with pytest.raises(ProblemError) as raised:
            call()
        assert raised.value.status == status, raised.value.problem
        assert words in str(raised.value.problem), raised.value.problem
    client.accept(D, "r1")
    with pytest.raises(ProblemError) as raised:
        client.convert_to_callback(D, "v1", "callback")
    assert raised.value.status == 409
    assert "only a queued or reserved task" in raised.value.problem["detail"]
    assert len(client.events(D, limit=1000)) == len(before) + 1  # the accept alone


def test_a_transfer_to_an_agent_pending_then_accepted_is_answered_once(client: Client) -> None:
    """The task stays with its sender while the transfer rings (task view `transfer`); the
    recipient's acceptance moves it, and it is not a second answer of the queue: the
    queue's answered count and service level are the first answer's."""
    client.put_agent(D, "ana", channels={"voice": 1})
    first = client.create_task(D, id="v1", channel="voice", queue="support")
    client.accept(D, first["reservation"]["id"])
    client.put_agent(D, "bo", channels={"voice": 1})
    pending = client.transfer(D, "v1", agent="bo")
    assert (pending["state"], pending["agent"]) == ("assigned", "ana")
    assert (pending["transfer"]["agent"], pending["transfer"]["state"]) == ("bo", "pending")
    moved = client.accept(D, pending["transfer"]["id"])
    assert moved["state"] == "accepted"
    task = client.task(D, "v1")
    assert (task["agent"], task["transfer"]) == ("bo", None)
    support = next(queue for queue in client.queues(D) if queue["name"] == "support")
    assert (support["created"], support["answered"], support["service_level"]) == (1, 1, 1.0)
    client.complete(D, "v1")  # bo wraps up; ana wrapped up nothing
    assert client.agent(D, "bo")["channels"]["voice"]["wrap_up"] == 1
    assert client.agent(D, "ana")["channels"]["voice"]["wrap_up"] == 0


def test_an_auto_answered_transfer_to_an_agent_is_answered_once(client: Client) -> None:
    """A callback (auto-answered here) transferred to another agent moves at once; the
    queue still counts one answer."""
    client.put_agent(D, "ana", channels={"callback": 1})
    assert client.create_task(D, id="c1", channel="callback", queue="callbacks")["agent"] == "ana"
    client.put_agent(D, "bo", channels={"callback": 1})
    moved = client.transfer(D, "c1", agent="bo")
    assert (moved["state"], moved["agent"], moved["transfer"]) == ("assigned", "bo", None)
    callbacks = next(queue for queue in client.queues(D) if queue["name"] == "callbacks")
    assert (callbacks["created"], callbacks["answered"]) == (1, 1)


def test_a_missed_offer_that_makes_the_agent_not_ready_sends_agent_status(
    tmp_path: Path,
) -> None:
    """The offer's timer makes ana not ready (on_timeout): subscribers see `agent.status`
    with the agent not ready, as when a client sets the status."""
    path = tmp_path / "missed.yaml"
    path.write_text("channels: {voice: {offer: {timeout: 0.05, on_timeout: not_ready}}}\n")
    server = Server(tmp_path, deployments=(f"missed={path}",))
    server.start()
    try:
        client = server.client()
        client.put_agent("missed", "ana", channels={"voice": 1})
        client.create_task("missed", id="v1", channel="voice")
        time.sleep(0.3)
        assert client.agent("missed", "ana")["status"] == "not_ready"  # the command ticks
        statuses = [
            event["data"]["status"]
            for event in client.events("missed", limit=1000)
            if event["type"] == "agent.status"
        ]
        assert statuses == ["not_ready"]
    finally:
        server.stop()


def test_a_reserved_task_converted_revokes_its_reservation(client: Client) -> None:
    """The call rings ana when the caller asks for a callback: subscribers see the
    reservation revoked, then the task converted, and the callback is answered at once."""
    client.put_agent(D, "ana", channels={"voice": 1, "callback": 1})
    ringing = client.create_task(D, id="v1", channel="voice", queue="support")
    seen = client.events(D, limit=1000)[-1]["id"]
    converted = client.convert_to_callback(D, "v1", "callback")
    assert (converted["state"], converted["agent"]) == ("assigned", "ana")
    revoked = [
        event["data"]["id"]
        for event in client.events(D, after=seen, limit=1000)
        if event["type"] == "reservation.revoked"
    ]
    assert revoked == [ringing["reservation"]["id"]]
    after = types(client, seen)
    assert after.index("reservation.revoked") < after.index("task.converted")
