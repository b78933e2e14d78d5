"""Scenario files: a routing policy's unit tests, and the runner that checks them.

A scenario names a deployment, a roster, a timeline of events and what must happen. The
runner drives the same Engine as live routing on a simulated clock. A bad event is
reported with its index (and line, for YAML) and the run goes on; a bad file or
deployment fails that scenario alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import yaml

from omniroute.core import (
    DEFAULT_START,
    Deployment,
    DeploymentError,
    Engine,
    EngineOptions,
    OmnirouteError,
    Problem,
    events,
    read_mapping_file,
)
from omniroute.core.config import check_data
from omniroute.core.converter import (
    ConfigProblems,
    key_path,
    structure,
    structure_all,
    structure_each,
)
from omniroute.core.durations import parse_duration
from omniroute.core.limits import MAX_EVENTS
from omniroute.core.options import MIN_RESERVATION_TIMEOUT
from omniroute.core.spec import Duration, PositiveDuration

from .inputs import AgentSpec, RosterAgent, expand_roster, load_referenced_deployment, parse_start
from .tables import text_table

T = TypeVar("T")

SCENARIO_SUFFIXES = (".yaml", ".yml", ".toml", ".json")
ACTIONS = (
    "create",
    "complete",
    "accept",
    "decline",
    "timeout",
    "cancel",
    "transfer",
    "login",
    "logout",
    "ready",
    "not_ready",
    "set",
    "end_wrap_up",
    "convert_to_callback",
)
DEFAULT_RUN_ON = 24 * 3600.0


# --- the file's shape ---------------------------------------------------------------------


@attrs.frozen
class OptionsSpec:
    start: Any = None
    auto_accept: bool = True
    #: a timeout of 0 would expire every reservation the moment it is made, for ever
    reservation_timeout: PositiveDuration | None = None
    until: Duration | None = None


@attrs.frozen
class CreateSpec:
    id: str
    channel: str
    attributes: dict[str, Any] = attrs.Factory(dict)
    priority: int = 0
    queue: str | None = None
    profile: str | None = None


@attrs.frozen
class TransferSpec:
    task: str
    to_queue: str | None = None
    to_agent: str | None = None


@attrs.frozen
class SetSpec:
    agent: str
    attributes: dict[str, Any] | None = None
    channels: dict[str, int] | None = None


@attrs.frozen
class EndWrapUpSpec:
    agent: str
    task: str | None = None


@attrs.frozen
class ConvertSpec:
    task: str
    channel: str
    queue: str | None = None


@attrs.frozen
class OfferExpectation:
    task: str
    agent: str
    at: Duration | None = None


@attrs.frozen
class FinalExpectation:
    """What a task must end as; only the keys given (not null) are checked."""

    state: str | None = None
    reason: str | None = None
    message: str | None = None
    agent: str | None = None
    queue: str | None = None


def _fractions(instance: Any, attribute: Any, value: dict[str, float]) -> None:
    bad = [(group, share) for group, share in value.items() if not 0 <= share <= 1]
    if bad:
        raise ConfigProblems(
            (key_path([group]), f"must be a fraction from 0 to 1, got {share!r}")
            for group, share in bad
        )


def _fraction(instance: Any, attribute: Any, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"must be a fraction from 0 to 1, got {value!r}")


@attrs.frozen
class ShareExpectation:
    queue: str
    groups: dict[str, float] = attrs.field(validator=_fractions)
    tolerance: float = attrs.field(default=0.01, validator=_fraction)


@attrs.frozen
class ErrorExpectation:
    event: int
    contains: str = ""


@attrs.frozen
class ExpectSpec:
    offers: tuple[OfferExpectation, ...] | None = None
    final: dict[str, FinalExpectation] = attrs.Factory(dict)
    share: tuple[ShareExpectation, ...] = ()
    errors: tuple[ErrorExpectation, ...] = ()


@attrs.frozen
class ScenarioSpec:
    name: str
    deployment: Any
    events: tuple[dict[str, Any], ...] = ()
    agents: tuple[AgentSpec, ...] = ()
    options: OptionsSpec = OptionsSpec()
    expect: ExpectSpec = ExpectSpec()
    description: str | None = None


@attrs.frozen
class Event:
    """One event to apply, after `every`/`count` streams were expanded."""

    at: float
    index: int
    line: int | None
    action: str
    payload: Any
    n: int | None = None

    @property
    def where(self) -> str:
        where = f"event {self.index}"
        if self.n is not None:
            where += f" (n={self.n})"
        if self.line is not None:
            where += f", line {self.line}"
        return where


# --- results ------------------------------------------------------------------------------


@attrs.frozen
class ScenarioResult:
    name: str
    path: str
    passed: bool
    offers: tuple[tuple[str, str, float], ...]
    #: each task's end state: state, reason, message, agent, queue (`final_state`)
    final: dict[str, dict[str, Any]]
    errors: tuple[str, ...]
    failures: tuple[str, ...]
    expected_offers: tuple[tuple[str, str, float | None], ...] | None = None
    engine: Engine | None = attrs.field(default=None, repr=False, eq=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "passed": self.passed,
            "offers": [{"task": task, "agent": agent, "at": at} for task, agent, at in self.offers],
            "final": {task: dict(entry) for task, entry in self.final.items()},
            "errors": list(self.errors),
            "failures": list(self.failures),
        }


# --- loading --------------------------------------------------------------------------------


def _event_lines(path: Path) -> list[int | None]:
    """Line of each item of the top-level `events` list, for YAML files."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return []
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "events" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _substitute(value: Any, n: int) -> Any:
    """`{n}` in a stream's strings becomes the event's number, 1 to count."""
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, list):
        return [_substitute(item, n) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, n) for key, item in value.items()}
    return value


_EVENT_KEYS = {"at", "every", "count", *ACTIONS}


def parse_events(
    raw_events: Iterable[Any], lines: list[int | None]
) -> tuple[list[Event], list[Problem]]:
    events: list[Event] = []
    problems: list[Problem] = []
    for index, raw in enumerate(raw_events):
        line = lines[index] if index < len(lines) else None
        path = f"events[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(Problem(path, f"an event must be a mapping, not {type(raw).__name__}"))
            continue
        unknown = sorted(set(raw) - _EVENT_KEYS)
        actions = [key for key in ACTIONS if key in raw]
        if unknown:
            problems.append(
                Problem(
                    path,
                    f"unknown key(s) {', '.join(map(repr, unknown))} (an event has `at` and one of {', '.join(ACTIONS)})",
                )
            )
            continue
        if len(actions) != 1:
            problems.append(
                Problem(
                    path,
                    f"an event needs exactly one of {', '.join(ACTIONS)}; found {', '.join(actions) or 'none'}",
                )
            )
            continue
        try:
            at = parse_duration(raw.get("at", 0))
        except ValueError as error:
            problems.append(Problem(f"{path}.at", str(error)))
            continue
        action = actions[0]
        payload = raw[action]
        if "every" in raw or "count" in raw:
            count = raw.get("count")
            try:
                every = parse_duration(raw.get("every"))
            except ValueError as error:
                problems.append(Problem(f"{path}.every", str(error)))
                continue
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                problems.append(
                    Problem(f"{path}.count", f"expected a whole number >= 1, got {count!r}")
                )
                continue
            if len(events) + count > MAX_EVENTS:
                # Refused before expanding: a count of 10**9 must not fill memory.
                problems.append(
                    Problem(
                        f"{path}.count",
                        f"{count} events would make more than {MAX_EVENTS} in the scenario",
                    )
                )
                continue
            for n in range(1, count + 1):
                events.append(
                    Event(at + (n - 1) * every, index, line, action, _substitute(payload, n), n)
                )
        elif len(events) >= MAX_EVENTS:
            problems.append(Problem(path, f"more than {MAX_EVENTS} events in the scenario"))
            break
        else:
            events.append(Event(at, index, line, action, payload))
    events.sort(key=lambda event: (event.at, event.index, event.n or 0))
    return events, problems


@attrs.frozen
class Scenario:
    name: str
    path: str
    deployment: Deployment
    start: datetime
    options: OptionsSpec
    agents: tuple[RosterAgent, ...]
    events: tuple[Event, ...]
    expect: ExpectSpec


def load_scenario(
    source: str | Path | Mapping[str, Any], *, base: Path | None = None, label: str | None = None
) -> Scenario:
    """A scenario from a file or mapping; DeploymentError lists every problem in it."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw = read_mapping_file(path)
        lines = _event_lines(path)
        base = path.parent
        label = label or str(path)
    else:
        raw, lines = source, []
        base = base or Path.cwd()
        label = label or "<scenario>"
        found = check_data(raw)
        if found:
            raise DeploymentError(label, found)
    if not isinstance(raw, Mapping):
        raise DeploymentError(label, [Problem("", "a scenario must be a mapping of keys")])
    # The roster is read agent by agent, apart from the rest: one bad agent must hide
    # neither the problems of the others (a duplicate id) nor those of the other keys.
    body = dict(raw)
    roster: list[AgentSpec | None] = []
    problems_of_agents: list[Problem] = []
    if isinstance(raw.get("agents"), list):
        entries, problems_of_agents = structure_each(raw["agents"], AgentSpec, "agents")
        roster, body["agents"] = entries or [], []
    spec, problems = structure_all(body, ScenarioSpec)
    problems += problems_of_agents
    events, event_problems = (
        parse_events(raw.get("events") or [], lines)
        if isinstance(raw.get("events"), list)
        else ([], [])
    )
    problems += event_problems
    start = DEFAULT_START
    if spec is not None:
        try:
            start = parse_start(spec.options.start)
        except ValueError as error:
            problems.append(Problem("options.start", str(error)))
        timeout = spec.options.reservation_timeout
        if timeout is not None and timeout < MIN_RESERVATION_TIMEOUT:
            problems.append(
                Problem(
                    "options.reservation_timeout",
                    f"must be at least {MIN_RESERVATION_TIMEOUT:g} s, not {timeout!r}",
                )
            )
    agents = expand_roster(roster, problems)
    deployment = load_referenced_deployment(raw.get("deployment"), base, label, problems)
    if problems or spec is None or deployment is None:
        raise DeploymentError(label, problems)
    return Scenario(
        spec.name, label, deployment, start, spec.options, tuple(agents), tuple(events), spec.expect
    )


# --- running ------------------------------------------------------------------------------------


@attrs.frozen
class AnswerSpec:
    """`accept: {task: t1, agent: ana}` (or `{reservation: r3}`); `accept: t1` is short for
    `{task: t1}`."""

    task: str | None = None
    agent: str | None = None
    reservation: str | None = None


_ANSWERS: dict[str, type[events.Accept | events.Decline | events.Timeout]] = {
    "accept": events.Accept,
    "decline": events.Decline,
    "timeout": events.Timeout,
}


def _structured(payload: Any, kind: type[T], action: str) -> T:
    value, problems = structure(payload, kind, prefix=action)
    if value is None:
        raise OmnirouteError("; ".join(str(problem) for problem in problems))
    return value


def to_event(action: str, payload: Any) -> events.Event:
    """The engine event a scenario file's event stands for."""
    if action == "create":
        create = _structured(payload, CreateSpec, action)
        return events.CreateTask(
            task=create.id,
            channel=create.channel,
            attributes=create.attributes,
            priority=create.priority,
            queue=create.queue,
            profile=create.profile,
        )
    if action == "transfer":
        transfer = _structured(payload, TransferSpec, action)
        return events.Transfer(
            task=transfer.task, to_queue=transfer.to_queue, to_agent=transfer.to_agent
        )
    if action == "set":
        change = _structured(payload, SetSpec, action)
        return events.SetAgent(
            agent=change.agent, attributes=change.attributes, channels=change.channels
        )
    if action == "end_wrap_up" and isinstance(payload, Mapping):
        ending = _structured(payload, EndWrapUpSpec, action)
        return events.EndWrapUp(agent=ending.agent, task=ending.task)
    if action == "convert_to_callback":
        convert = _structured(payload, ConvertSpec, action)
        return events.ConvertToCallback(
            task=convert.task, channel=convert.channel, queue=convert.queue
        )
    if action in _ANSWERS and isinstance(payload, Mapping):
        answer = _structured(payload, AnswerSpec, action)
        if answer.task is None and answer.reservation is None:
            raise OmnirouteError(f"{action}: name the task or the reservation")
        return _ANSWERS[action](
            task=answer.task, agent=answer.agent, reservation=answer.reservation
        )
    if not isinstance(payload, str):
        raise OmnirouteError(f"{action}: expected an id, got {payload!r}")
    if action in _ANSWERS:
        return _ANSWERS[action](task=payload)
    if action == "complete":
        return events.Complete(task=payload)
    if action == "cancel":
        return events.Cancel(task=payload)
    if action == "login":
        return events.Login(agent=payload)
    if action == "logout":
        return events.Logout(agent=payload)
    if action == "end_wrap_up":
        return events.EndWrapUp(agent=payload)
    return events.SetStatus(agent=payload, status=action)


def run(scenario: Scenario) -> ScenarioResult:
    engine, errors = execute(scenario)
    return _judge(scenario, engine, errors)


def execute(
    scenario: Scenario, *, record_decisions: bool = True
) -> tuple[Engine, list[tuple[int, str]]]:
    """Play the scenario's roster and events; the engine as they left it, and the errors.

    Without decision records the engine routes through its roster index; the tests play
    every scenario both ways and require the same offers.
    """
    options = EngineOptions(
        auto_accept=scenario.options.auto_accept,
        reservation_timeout=scenario.options.reservation_timeout,
        record_decisions=record_decisions,
        transactional=True,
    )
    engine = Engine(scenario.deployment, start=scenario.start, options=options)
    errors: list[tuple[int, str]] = []
    for agent in scenario.agents:
        try:
            engine.add_agent(agent.id, agent.channels, agent.attributes, agent.groups, agent.status)
        except OmnirouteError as error:
            errors.append((-1, f"agent {agent.id!r}: {error}"))
    for event in scenario.events:
        try:
            engine.apply(events.AdvanceClock(to=event.at))
            engine.apply(to_event(event.action, event.payload))
        except OmnirouteError as error:
            errors.append((event.index, f"{event.where}: {error}"))
    last = scenario.events[-1].at if scenario.events else 0.0
    until = scenario.options.until if scenario.options.until is not None else last + DEFAULT_RUN_ON
    try:
        engine.run_timers(until=until)
    except OmnirouteError as error:
        errors.append((-1, f"after the last event: {error}"))
    return engine, errors


def _judge(scenario: Scenario, engine: Engine, errors: list[tuple[int, str]]) -> ScenarioResult:
    failures: list[str] = []
    expect = scenario.expect
    offers = tuple((offer.task, offer.agent, offer.at) for offer in engine.offers)

    unexpected = []
    for index, message in errors:
        matched = [e for e in expect.errors if e.event == index and e.contains in message]
        if not matched:
            unexpected.append(message)
    for wanted in expect.errors:
        if not any(
            index == wanted.event and wanted.contains in message for index, message in errors
        ):
            failures.append(
                f"expected an error at event {wanted.event}"
                + (f" containing {wanted.contains!r}" if wanted.contains else "")
                + ", got none"
            )
    failures += [f"unexpected error: {message}" for message in unexpected]

    expected_offers = None
    if expect.offers is not None:
        expected_offers = tuple((o.task, o.agent, o.at) for o in expect.offers)
        if not _offers_match(expected_offers, offers):
            failures.append("offers differ")

    final = final_states(engine)
    for task_id, expectation in expect.final.items():
        actual = final.get(task_id)
        if actual is None:
            failures.append(f"final: task {task_id!r} was never created")
            continue
        if (expectation.state is not None and actual["state"] != expectation.state) or (
            expectation.reason is not None and actual["reason"] != expectation.reason
        ):
            expected_state = (expectation.state or actual["state"]) + (
                f" ({expectation.reason})" if expectation.reason else ""
            )
            got = actual["state"] + (f" ({actual['reason']})" if actual["reason"] else "")
            failures.append(f"final: task {task_id!r} is {got}, expected {expected_state}")
        for key in ("message", "agent", "queue"):
            wanted = getattr(expectation, key)
            if wanted is not None and actual[key] != wanted:
                failures.append(
                    f"final: task {task_id!r} has {key} {actual[key]!r}, expected {wanted!r}"
                )

    for share in expect.share:
        failures += _check_share(engine, share)

    return ScenarioResult(
        name=scenario.name,
        path=scenario.path,
        passed=not failures,
        offers=offers,
        final=final,
        errors=tuple(message for _, message in errors),
        failures=tuple(failures),
        expected_offers=expected_offers,
        engine=engine,
    )


def final_states(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each task's end state: `state`, `reason`, `message` (what the customer was told),
    `queue`, and `agent`: the agent holding it, or, once it ended, the agent who last
    accepted it (null when none did)."""
    accepted = {offer.task: offer.agent for offer in engine.offers if offer.state == "accepted"}
    return {
        task.id: {
            "state": task.state,
            "reason": task.reason,
            "message": task.message,
            "agent": task.agent if task.is_open else accepted.get(task.id),
            "queue": task.queue,
        }
        for task in engine.tasks
    }


def _offers_match(
    expected: tuple[tuple[str, str, float | None], ...], actual: tuple[tuple[str, str, float], ...]
) -> bool:
    if len(expected) != len(actual):
        return False
    for (task, agent, at), (real_task, real_agent, real_at) in zip(expected, actual, strict=True):
        if task != real_task or agent != real_agent:
            return False
        if at is not None and not math.isclose(at, real_at, abs_tol=1e-6):
            return False
    return True


def _check_share(engine: Engine, share: ShareExpectation) -> list[str]:
    first_offer: dict[str, str] = {}
    for offer in engine.offers:
        if offer.queue == share.queue and offer.task not in first_offer:
            first_offer[offer.task] = offer.agent
    total = len(first_offer)
    if total == 0:
        return [f"share: no task of queue {share.queue!r} was offered"]
    failures = []
    for group, fraction in share.groups.items():
        count = sum(1 for agent in first_offer.values() if group in engine.agent(agent).groups)
        actual = count / total
        if abs(actual - fraction) > share.tolerance:
            failures.append(
                f"share: queue {share.queue!r}, group {group!r}: {actual:.4f} of {total} first offers, "
                f"expected {fraction} ± {share.tolerance}"
            )
    return failures


def run_file(path: str | Path) -> ScenarioResult:
    """Load and run one scenario file; a file that cannot load gives a failed result."""
    try:
        scenario = load_scenario(path)
    except DeploymentError as error:
        problems = tuple(str(problem) for problem in error.problems)
        failures = ("the scenario could not be loaded:", *(f"  {problem}" for problem in problems))
        return ScenarioResult(name_of(Path(path)), str(path), False, (), {}, problems, failures)
    except Exception as error:  # one file must not take the others down
        return _crashed(path, "loading", error)
    try:
        return run(scenario)
    except Exception as error:
        return _crashed(path, "running", error)


def _crashed(path: str | Path, during: str, error: Exception) -> ScenarioResult:
    """A failed result for a file whose loading or run raised what it never should."""
    message = f"internal error while {during}: {type(error).__name__}: {error}"
    return ScenarioResult(name_of(Path(path)), str(path), False, (), {}, (message,), (message,))


def name_of(path: Path) -> str:
    """The scenario's `name:`, or the file's stem when it has none or cannot be read."""
    try:
        raw = read_mapping_file(path)
    except DeploymentError:
        return path.stem
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return name if isinstance(name, str) else path.stem


def looks_like_scenario(path: Path, *, strict: bool = False) -> bool:
    """In a folder, a scenario is a mapping with a `deployment` and `events` or `expect`.

    A file that cannot be read counts as one (so the runner says why) unless `strict`, as
    when pytest walks a whole project that holds other YAML, TOML and JSON files.
    """
    try:
        raw = read_mapping_file(path)
    except DeploymentError:
        return not strict
    return isinstance(raw, Mapping) and "deployment" in raw and ("events" in raw or "expect" in raw)


def find_scenarios(paths: Iterable[str | Path]) -> Iterator[Path]:
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if (
                    candidate.suffix.lower() in SCENARIO_SUFFIXES
                    and candidate.is_file()
                    and looks_like_scenario(candidate)
                ):
                    yield candidate
        else:
            yield path


# --- reports ------------------------------------------------------------------------------------

_TIME = re.compile(r"\.0+$")


def _fmt_at(at: float | None) -> str:
    if at is None:
        return "-"
    return _TIME.sub("", f"{at:.3f}")


def side_by_side(result: ScenarioResult) -> list[str]:
    """Expected and actual offers in two columns, with `!` where they differ."""
    expected = list(result.expected_offers or ())
    actual = list(result.offers)
    rows = []
    for position in range(max(len(expected), len(actual))):
        left = expected[position] if position < len(expected) else None
        right = actual[position] if position < len(actual) else None
        left_text = f"{left[0]} -> {left[1]} at {_fmt_at(left[2])}" if left else "(none)"
        right_text = f"{right[0]} -> {right[1]} at {_fmt_at(right[2])}" if right else "(none)"
        same = (
            left is not None
            and right is not None
            and left[0] == right[0]
            and left[1] == right[1]
            and (left[2] is None or math.isclose(left[2], right[2], abs_tol=1e-6))
        )
        rows.append(("" if same else "!", str(position + 1), left_text, right_text))
    return text_table(
        ("", "#", "expected", "actual"), rows, indent=2, justify=("left", "right", "left", "left")
    )


def report_lines(result: ScenarioResult) -> list[str]:
    lines = [f"{'PASS' if result.passed else 'FAIL'}  {result.name}  ({result.path})"]
    if result.passed:
        return lines
    for failure in result.failures:
        lines.append(f"  - {failure}")
    if any(failure == "offers differ" for failure in result.failures):
        lines += side_by_side(result)
    return lines
