"""Workload files for the simulator: a deployment, agents, and traffic to send at it.

```yaml
deployment: ../deployments/contact-center.yaml
seed: 7
duration: 8h
agents:
  - {count: 40, id: "a{n}", channels: {voice: 1, chat: 2}, groups: [in_house]}
traffic:
  - channel: chat
    rate: 300/h                       # Poisson arrivals; or a list of rates, one per equal interval
    handle_time: {exponential: 6m}    # or lognormal, constant, empirical
    patience: {exponential: 3m}       # abandonment; absent: never
    attributes: {language: {es: 0.3, en: 0.7}}   # a mapping of weights is drawn from
```
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from omniroute.core import (
    DEFAULT_START,
    Deployment,
    DeploymentError,
    Problem,
    read_mapping_file,
)
from omniroute.core.config import check_data
from omniroute.core.converter import key_path, structure_all, structure_each
from omniroute.core.durations import parse_duration
from omniroute.core.limits import MAX_ARRIVALS, MAX_RATE
from omniroute.core.spec import Duration, PositiveDuration, fraction_of_tasks

from .inputs import AgentSpec, RosterAgent, expand_roster, load_referenced_deployment, parse_start

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|d)\s*$")
_PER_SECOND = {"s": 1.0, "m": 1 / 60, "h": 1 / 3600, "d": 1 / 86_400}


def parse_rate(value: Any) -> float:
    """Arrivals per second from "300/h", "5/m", "0.2/s" or a number (per hour)."""
    if isinstance(value, bool):
        raise ValueError(f'expected a rate such as "300/h", got {value!r}')
    if isinstance(value, (int, float)):
        return _checked_rate(float(value) / 3600 if abs(value) < 1e300 else math.inf, value)
    if isinstance(value, str) and len(value) <= 100:
        match = _RATE.match(value)
        if match:
            return _checked_rate(float(match.group(1)) * _PER_SECOND[match.group(2)], value)
    shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
    raise ValueError(f'expected a rate such as "300/h", "5/m" or a number per hour, got {shown}')


def _checked_rate(per_second: float, value: Any) -> float:
    shown = repr(value) if len(repr(value)) <= 40 else "a huge number"
    if math.isnan(per_second):
        raise ValueError(f"a rate must be a number, got {shown}")
    if per_second < 0:
        raise ValueError(f"a rate cannot be negative, got {shown}")
    if per_second > MAX_RATE:
        raise ValueError(f"a rate may be at most {MAX_RATE:g}/s, got {shown}")
    return per_second


Sampler = Callable[[random.Random], float]


class DistributionError(ValueError):
    """A distribution's problem, with the key path below it (`.lognormal.sd`)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def _seconds(value: Any, where: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise DistributionError(str(error), where) from None


def parse_distribution(value: Any, what: str) -> Sampler:
    """A sampler of seconds from {exponential: MEAN}, {lognormal: {mean, sd}}, {constant: X},
    {empirical: [X, ...]} or a plain duration (constant).

    Raises DistributionError, whose `where` is the key path below `value` at fault."""
    if not isinstance(value, Mapping):
        constant = _seconds(value, "")
        return lambda _rng: constant
    if len(value) != 1:
        raise ValueError(f"{what}: give one of exponential, lognormal, constant, empirical")
    ((kind, argument),) = value.items()
    if kind == "exponential":
        mean = _seconds(argument, ".exponential")
        if mean <= 0:
            raise DistributionError(f"{what}: the mean must be positive", ".exponential")
        return lambda rng: rng.expovariate(1 / mean)
    if kind == "constant":
        constant = _seconds(argument, ".constant")
        return lambda _rng: constant
    if kind == "lognormal":
        if not isinstance(argument, Mapping) or set(argument) != {"mean", "sd"}:
            raise DistributionError(f"{what}: lognormal takes {{mean: ..., sd: ...}}", ".lognormal")
        mean = _seconds(argument["mean"], ".lognormal.mean")
        sd = _seconds(argument["sd"], ".lognormal.sd")
        if mean <= 0:
            raise DistributionError(f"{what}: the mean must be positive", ".lognormal.mean")
        if sd > 1000 * mean:
            raise DistributionError(
                f"{what}: the sd may be at most 1000 times the mean", ".lognormal.sd"
            )
        sigma = math.sqrt(math.log(1 + (sd / mean) ** 2))
        mu = math.log(mean) - sigma**2 / 2
        return lambda rng: rng.lognormvariate(mu, sigma)
    if kind == "empirical":
        if not isinstance(argument, list) or not argument:
            raise DistributionError(
                f"{what}: empirical takes a non-empty list of durations", ".empirical"
            )
        if len(argument) > 100_000:
            raise DistributionError(f"{what}: empirical takes at most 100000 values", ".empirical")
        values = [_seconds(item, f".empirical[{n}]") for n, item in enumerate(argument)]
        return lambda rng: rng.choice(values)
    raise ValueError(
        f"{what}: unknown distribution {kind!r} (exponential, lognormal, constant, empirical)"
    )


def _is_weights(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w < math.inf
            for w in value.values()
        )
        and 0 < sum(value.values()) < math.inf
    )


def attribute_drawer(attributes: Mapping[str, Any]) -> Callable[[random.Random], dict[str, Any]]:
    """Attributes for one task: a mapping of value → weight is drawn from; anything else is fixed."""
    fixed = {key: value for key, value in attributes.items() if not _is_weights(value)}
    drawn = {
        key: (list(value), list(value.values()))
        for key, value in attributes.items()
        if _is_weights(value)
    }

    def draw(rng: random.Random) -> dict[str, Any]:
        result = dict(fixed)
        for key, (choices, weights) in drawn.items():
            result[key] = rng.choices(choices, weights)[0]
        return result

    return draw


@attrs.frozen
class TrafficSpec:
    channel: str
    rate: Any
    handle_time: Any
    patience: Any = None
    attributes: dict[str, Any] = attrs.Factory(dict)
    priority: int = 0
    queue: str | None = None
    profile: str | None = None
    name: str | None = None
    #: how long agents take to wrap up after each task, when they end it before the
    #: deployment's wrap_up does (docs/wrap-up.md)
    wrap_up: Any = None


@attrs.frozen
class WorkloadSpec:
    deployment: Any
    duration: PositiveDuration
    agents: tuple[AgentSpec, ...]
    traffic: tuple[TrafficSpec, ...]
    seed: int = 0
    start: Any = None
    #: seconds within which an answer counts towards the service level, and the share of
    #: tasks that should be: for the queues whose deployment declares no service level
    service_level_threshold: Duration = Duration(20.0)
    name: str | None = None
    service_level_target: float = attrs.field(default=0.8, validator=fraction_of_tasks)


@attrs.frozen
class Stream:
    """One traffic entry, ready to sample."""

    name: str
    channel: str
    rates: tuple[float, ...]  # arrivals per second, one per equal interval of the duration
    handle_time: Sampler
    patience: Sampler | None
    attributes: Callable[[random.Random], dict[str, Any]]
    priority: int
    queue: str | None
    profile: str | None
    #: every value each attribute can take (a weight of 0 is never drawn)
    attribute_values: dict[str, tuple[Any, ...]] = attrs.Factory(dict)
    #: the agent's own wrap-up time, drawn per task (None: the deployment's whole wrap_up)
    wrap_up: Sampler | None = None


@attrs.frozen
class Workload:
    name: str
    deployment: Deployment
    duration: float
    seed: int
    start: datetime
    agents: tuple[RosterAgent, ...]
    streams: tuple[Stream, ...]
    service_level_threshold: float
    service_level_target: float = 0.8


def load_workload(source: str | Path | Mapping[str, Any], *, base: Path | None = None) -> Workload:
    """A workload from a file or mapping; DeploymentError lists every problem in it."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw, base, label = read_mapping_file(path), path.parent, str(path)
    else:
        raw, base, label = source, base or Path.cwd(), "<workload>"
        found = check_data(raw)
        if found:
            raise DeploymentError(label, found)
    if not isinstance(raw, Mapping):
        raise DeploymentError(label, [Problem("", "a workload must be a mapping of keys")])
    # The lists are read entry by entry and the rest of the file apart from them, so that
    # a bad entry hides neither another entry's problems nor those of the other keys.
    body = dict(raw)
    problems: list[Problem] = []
    traffic: list[TrafficSpec | None] = []
    roster: list[AgentSpec | None] = []
    if isinstance(raw.get("traffic"), list):
        entries, problems_of_traffic = structure_each(raw["traffic"], TrafficSpec, "traffic")
        traffic, body["traffic"] = entries or [], []
        problems += problems_of_traffic
    if isinstance(raw.get("agents"), list):
        agent_entries, problems_of_agents = structure_each(raw["agents"], AgentSpec, "agents")
        roster, body["agents"] = agent_entries or [], []
        problems += problems_of_agents
    spec, problems_of_rest = structure_all(body, WorkloadSpec)
    problems = problems_of_rest + problems
    streams: list[Stream] = []
    for index, entry in enumerate(traffic):
        stream = _stream(index, entry, problems) if entry is not None else None
        if stream is not None:
            streams.append(stream)
    agents = expand_roster(roster, problems)
    start = DEFAULT_START
    try:
        start = parse_start(raw.get("start"))
    except ValueError as error:
        problems.append(Problem("start", str(error)))
    if spec is not None:
        expected = sum(sum(stream.rates) * spec.duration / len(stream.rates) for stream in streams)
        if expected > MAX_ARRIVALS:
            problems.append(
                Problem(
                    "traffic",
                    f"the rates imply about {expected:.3g} arrivals over the duration;"
                    f" the limit is {MAX_ARRIVALS}",
                )
            )
    deployment = load_referenced_deployment(raw.get("deployment"), base, label, problems)
    if deployment is not None:
        problems += _wrap_up_problems(traffic, deployment)
    if problems or spec is None or deployment is None:
        raise DeploymentError(label, problems)
    return Workload(
        name=spec.name or Path(label).stem,
        deployment=deployment,
        duration=spec.duration,
        seed=spec.seed,
        start=start,
        agents=tuple(agents),
        streams=tuple(streams),
        service_level_threshold=spec.service_level_threshold,
        service_level_target=spec.service_level_target,
    )


def _wrap_up_problems(traffic: list[TrafficSpec | None], deployment: Deployment) -> list[Problem]:
    """A stream's wrap_up ends the deployment's wrap-up early; where the deployment sets
    none for the stream's channel nor any queue, it would have no effect."""
    queues = any(queue.wrap_up for queue in deployment.queues.values())
    problems = []
    for index, stream in enumerate(traffic):
        if stream is None:
            continue
        channel = deployment.channel_settings.get(stream.channel)
        if stream.wrap_up is not None and not queues and not (channel and channel.wrap_up):
            problems.append(
                Problem(
                    f"traffic[{index}].wrap_up",
                    f"the deployment sets no wrap_up for channel {stream.channel!r} "
                    f"(channels.{stream.channel}.wrap_up) nor for any queue: agents never "
                    "wrap up, so this would have no effect",
                )
            )
    return problems


def _stream(index: int, traffic: TrafficSpec, problems: list[Problem]) -> Stream | None:
    path = f"traffic[{index}]"
    found_problem = False
    rates: list[float] = []
    for position, value in enumerate(
        traffic.rate if isinstance(traffic.rate, list) else [traffic.rate]
    ):
        try:
            rates.append(parse_rate(value))
        except ValueError as error:
            where = f"{path}.rate[{position}]" if isinstance(traffic.rate, list) else f"{path}.rate"
            problems.append(Problem(where, str(error)))
            found_problem = True
    if not rates and not found_problem:
        problems.append(Problem(f"{path}.rate", "give at least one rate"))
        found_problem = True
    for key, value in traffic.attributes.items():
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in value.values())
        ):
            bad = [choice for choice, w in value.items() if not 0 <= w < math.inf]
            if not bad and not sum(value.values()) < math.inf:
                problems.append(
                    Problem(key_path(["attributes", key], path), "the weights add up to infinity")
                )
                found_problem = True
            for choice in bad:
                problems.append(
                    Problem(
                        key_path(["attributes", key, str(choice)], path),
                        f"a weight must be a finite number of 0 or more, got {value[choice]!r}",
                    )
                )
                found_problem = True
    samplers: dict[str, Sampler | None] = {}
    for key in ("handle_time", "patience", "wrap_up"):
        value = getattr(traffic, key)
        if value is None:
            samplers[key] = None
            continue
        try:
            samplers[key] = parse_distribution(value, key)
        except ValueError as error:
            below = error.where if isinstance(error, DistributionError) else ""
            problems.append(Problem(f"{path}.{key}{below}", str(error)))
            found_problem = True
    if found_problem:
        return None
    handle_time = samplers["handle_time"]
    assert handle_time is not None
    return Stream(
        name=traffic.name or f"{traffic.channel} #{index}",
        channel=traffic.channel,
        rates=tuple(rates),
        handle_time=handle_time,
        patience=samplers["patience"],
        attributes=attribute_drawer(traffic.attributes),
        priority=traffic.priority,
        queue=traffic.queue,
        profile=traffic.profile,
        attribute_values={
            key: tuple(choice for choice, weight in value.items() if weight > 0)
            if _is_weights(value)
            else (value,)
            for key, value in traffic.attributes.items()
        },
        wrap_up=samplers["wrap_up"],
    )
