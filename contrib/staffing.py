"""`omniroute staff`: the fewest agents per interval that meet the service-level targets.

For each interval of the clock (15 or 30 minutes) the traffic is taken at that interval's
rates and simulated as a steady state through the real policy: a warm-up, then a window
whose start is the interval's clock time (so calendars see the right hour), R times on
seeds seed, seed+1, ... A staffing meets the targets when, for every queue, the mean over
the replications of the share answered within the queue's threshold (over answered plus
abandoned) reaches its level.

The search starts from Erlang C's answer for the interval, walks down (or up) with doubling
steps until it brackets the answer, and bisects between the bracket's ends, the roster's mix
of groups kept. Then, entry by entry in roster order, it steps each group down (1, 2, 4,
... agents) and bisects while the targets are still met, the others held. Every staffing of a round, for every interval, is
simulated at once, so the cluster stays busy.

Erlang C's answer is for comparison: per queue and channel, the servers M/M/c needs for
the target at the interval's offered load, divided by the roster's usual capacity on the
channel (three chats at once make a third of the agents), summed.
"""

from __future__ import annotations

import copy
import math
import random
import re
import statistics
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from omniroute.core import OmnirouteError, read_mapping_file

from .fanout import Failure, Job, Runner
from .intervals import clock
from .queueing import erlang_c
from .service_levels import objectives
from .simulator import simulate
from .sweep import CONFIDENCE, interval, read_workload_mapping
from .workload import Workload, load_workload

WARMUP = 1800.0
_TARGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*(?:/\s*(\d+(?:\.\d+)?)\s*s?)?\s*$")


class StaffingError(OmnirouteError, ValueError):
    """A staffing question that cannot be asked as put: nothing has been simulated."""


@attrs.frozen
class Target:
    level: float  # a fraction
    threshold: float | None  # seconds; None: the workload's

    def text(self, default_threshold: float) -> str:
        threshold = self.threshold if self.threshold is not None else default_threshold
        return f"{self.level:.0%} within {threshold:g} s"


def parse_target(text: str) -> Target:
    """ "80/20" (80% answered within 20 s), "80%/20s" or "80" (the workload's threshold)."""
    match = _TARGET.match(text)
    if not match:
        raise ValueError(f"expected a target such as 80/20 (80% within 20 s), got {text!r}")
    level = float(match.group(1))
    if not 0 < level <= 100:
        raise ValueError(f"a service level is a percentage above 0 and at most 100, got {text!r}")
    threshold = float(match.group(2)) if match.group(2) is not None else None
    return Target(level / 100, threshold)


def parse_targets(
    texts: list[str], default: Target | None = None
) -> tuple[Target, dict[str, Target]]:
    """`--target 80/20` for every queue and `--target QUEUE=90/30` for one."""
    default = default if default is not None else Target(0.8, None)
    by_queue: dict[str, Target] = {}
    for text in texts:
        queue, equals, value = text.rpartition("=")
        try:
            target = parse_target(value)
        except ValueError as error:
            raise StaffingError(f"--target {text}: {error}") from error
        if equals:
            by_queue[queue.strip()] = target
        else:
            default = target
    return default, by_queue


@attrs.frozen
class IntervalStaff:
    index: int
    start: datetime
    clock: str
    rates: dict[str, float]  # per hour, by stream
    erlang_c_agents: int
    erlang_c_by_queue: dict[str, dict[str, Any]]
    policy: dict[str, int] | None  # agents by group; None: not found
    service_levels: dict[str, dict[str, Any]]  # queue -> mean and 95% interval
    evaluations: int
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "clock": self.clock,
            "rates_per_hour": self.rates,
            "erlang_c": {"agents": self.erlang_c_agents, "by_queue": self.erlang_c_by_queue},
            "policy": None
            if self.policy is None
            else {"agents": sum(self.policy.values()), "by_group": self.policy},
            "service_level": self.service_levels,
            "evaluations": self.evaluations,
            "note": self.note,
        }


@attrs.frozen
class StaffResult:
    name: str
    start: datetime
    interval: float
    replications: int
    seed: int
    warmup: float
    window: float
    groups: tuple[str, ...]
    default_target: Target
    targets_by_queue: dict[str, Target]
    threshold: float
    intervals: tuple[IntervalStaff, ...]
    failures: tuple[Failure, ...]
    #: where each queue's target came from: command line, queue, deployment or workload
    target_sources: dict[str, str] = attrs.Factory(dict)

    @property
    def target_text(self) -> str:
        text = self.default_target.text(self.threshold)
        specific = [
            f"{queue}: {target.text(self.threshold)}"
            for queue, target in sorted(self.targets_by_queue.items())
            if target != self.default_target
        ]
        if specific and len(specific) == len(self.targets_by_queue):
            return "; ".join(specific)  # the default is no queue's target
        return text + (f" ({'; '.join(specific)})" if specific else "")

    @property
    def confidence_text(self) -> str:
        return (
            f"a staffing meets a target when the mean service level of {self.replications} "
            f"replications reaches it; the service levels shown are that mean ± the half-width "
            f"of its {CONFIDENCE:.0%} confidence interval"
        )

    @property
    def method_text(self) -> str:
        return (
            f"Target {self.target_text}. Each {self.interval / 60:g}-minute interval is simulated "
            f"at its own rates through the real policy: {self.warmup / 60:g} minutes of warm-up, "
            f"then {self.window / 60:g} minutes measured, {self.replications} times on seeds "
            f"{self.seed}–{self.seed + self.replications - 1}. The search starts at Erlang C's "
            "answer, brackets, then bisects; then trims each group in roster order. "
            f"Confidence: {self.confidence_text}."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.name,
            "interval": self.interval,
            "targets": {
                "default": attrs.asdict(self.default_target),
                "by_queue": {q: attrs.asdict(t) for q, t in self.targets_by_queue.items()},
                "threshold": self.threshold,
                "from": self.target_sources,
            },
            "replications": self.replications,
            "seed": self.seed,
            "warmup": self.warmup,
            "window": self.window,
            "confidence": CONFIDENCE,
            "rule": "met when the mean service level over the replications reaches the target",
            "groups": list(self.groups),
            "intervals": [entry.to_json() for entry in self.intervals],
            "failed": [{"parameters": f.job.label, "error": f.error} for f in self.failures],
        }


# --- what runs on a worker -----------------------------------------------------------------


def replication(
    workload: dict[str, Any], seed: int, window_start: float, thresholds: dict[str, float]
) -> dict[str, list[int]]:
    """Per queue, [answered within its threshold, answered + abandoned] after the warm-up."""
    loaded = attrs.evolve(load_workload(workload), seed=seed)
    result = simulate(loaded)
    counts: dict[str, list[int]] = {}
    for interaction in result.interactions:
        if interaction.arrival < window_start or interaction.queue is None:
            continue
        entry = counts.setdefault(interaction.queue, [0, 0])
        wait = interaction.wait
        if wait is not None:
            entry[1] += 1
            entry[0] += wait <= thresholds.get(interaction.queue, result.threshold)
        elif interaction.reason == "abandoned":
            entry[1] += 1
    return counts


# --- the search ----------------------------------------------------------------------------


@attrs.frozen
class Evaluation:
    met: bool
    levels: dict[str, dict[str, Any]]


Search = Generator[tuple[int, ...], Evaluation, tuple[tuple[int, ...] | None, str | None]]


def _allocate(total: int, shares: list[float]) -> tuple[int, ...]:
    """`total` agents split by `shares` (largest remainder), summing to total exactly."""
    exact = [total * share for share in shares]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda k: (counts[k] - exact[k], k))
    for k in order[: total - sum(counts)]:
        counts[k] += 1
    return tuple(counts)


def _search(start: int, shares: list[float], limit: int) -> Search:
    """Bracket from Erlang C's answer, bisect the total with the mix kept, then trim groups."""
    total = max(start, 1)
    if (yield _allocate(total, shares)).met:
        high, step = total, 1
        low = high - step
        while low >= 1 and (yield _allocate(low, shares)).met:
            high, step = low, step * 2
            low = high - step
        low = max(low, 0)
    else:
        low, step = total, 1
        while True:
            high = min(low + step, limit)
            if (yield _allocate(high, shares)).met:
                break
            if high >= limit:
                return None, f"targets not met even with {limit} agents"
            low, step = high, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if (yield _allocate(middle, shares)).met:
            high = middle
        else:
            low = middle
    counts = list(_allocate(high, shares))
    if len(shares) > 1:
        # Most groups cannot lose an agent, or only a few: step down 1, 2, 4, ... from the
        # count, then bisect, rather than bisecting from zero.
        for entry in range(len(counts)):
            high_e, step = counts[entry], 1
            low_e = high_e - step
            while low_e >= 0:
                trial = counts.copy()
                trial[entry] = low_e
                if not (sum(trial) > 0 and (yield tuple(trial)).met):
                    break
                high_e, step = low_e, step * 2
                low_e = high_e - step
            low_e = max(low_e, -1)
            while high_e - low_e > 1:
                middle = (low_e + high_e) // 2
                trial = counts.copy()
                trial[entry] = middle
                if sum(trial) > 0 and (yield tuple(trial)).met:
                    high_e = middle
                else:
                    low_e = middle
            counts[entry] = high_e
    return tuple(counts), None


@attrs.define
class _Interval:
    index: int
    offset: float
    rates: list[float]  # per second, by stream
    erlang_c_agents: int
    erlang_c_by_queue: dict[str, dict[str, Any]]
    search: Search | None
    pending: tuple[int, ...] | None = None
    seen: dict[tuple[int, ...], Evaluation] = attrs.Factory(dict)
    answer: tuple[int, ...] | None = None
    note: str | None = None
    done: bool = False

    def advance(self, evaluation: Evaluation | None) -> None:
        """Feed the search until it asks for a staffing not yet evaluated, or ends."""
        assert self.search is not None
        try:
            wanted = self.search.send(evaluation) if evaluation is not None else next(self.search)
            while wanted in self.seen:
                wanted = self.search.send(self.seen[wanted])
            self.pending = wanted
        except StopIteration as stop:
            self.answer, self.note = stop.value
            self.pending, self.done = None, True


def _mean_handle_time(stream: Any, index: int) -> float:
    rng = random.Random(f"handle-time/{index}")
    return statistics.fmean(stream.handle_time(rng) for _ in range(20_000))


def _erlang_c_agents(
    rates: list[float],
    workload: Workload,
    queue_of: list[str | None],
    handle_times: list[float],
    target_of: Callable[[str], tuple[float, float]],
) -> tuple[int, dict[str, dict[str, Any]]]:
    by_pair: dict[tuple[str, str], list[int]] = {}
    for n, stream in enumerate(workload.streams):
        queue = queue_of[n]
        if queue is not None and rates[n] > 0:
            by_pair.setdefault((queue, stream.channel), []).append(n)
    total = 0
    by_queue: dict[str, dict[str, Any]] = {}
    for (queue, channel), members in sorted(by_pair.items()):
        arrival = sum(rates[n] for n in members)
        handle = sum(rates[n] * handle_times[n] for n in members) / arrival
        level, threshold = target_of(queue)
        servers = max(math.floor(arrival * handle) + 1, 1)
        while erlang_c(arrival, 1 / handle, servers, threshold).service_level < level:
            servers += 1
        capacities = sorted(
            agent.channels.get(channel, 0)
            for agent in workload.agents
            if agent.status == "ready" and agent.channels.get(channel, 0) > 0
        )
        concurrency = capacities[len(capacities) // 2] if capacities else 1
        agents = math.ceil(servers / concurrency)
        total += agents
        entry = by_queue.setdefault(queue, {"agents": 0, "channels": {}})
        entry["agents"] += agents
        entry["channels"][channel] = {
            "offered_erlangs": arrival * handle,
            "servers": servers,
            "tasks_per_agent": concurrency,
            "agents": agents,
        }
    return total, by_queue


def staff(
    path: Path,
    runner: Runner,
    *,
    targets: list[str] | None = None,
    interval_seconds: float = 1800.0,
    replications: int = 5,
    seed: int | None = None,
    warmup: float = WARMUP,
    window: float | None = None,
    done: Callable[[int], None] | None = None,
) -> StaffResult:
    raw = read_workload_mapping(path)
    workload = load_workload(path)
    everywhere = [text for text in targets or [] if "=" not in text]
    default_target, by_queue = parse_targets(
        targets or [], Target(workload.service_level_target, None)
    )
    base = path.resolve().parent
    if isinstance(raw.get("deployment"), str):
        raw["deployment"] = read_mapping_file(base / raw["deployment"])
    seed = workload.seed if seed is None else seed
    window = interval_seconds if window is None else window
    if interval_seconds <= 0 or window <= 0 or warmup < 0:
        raise StaffingError(
            "the interval and the window must be positive, the warm-up not negative"
        )
    queues = set(workload.deployment.queues)
    unknown = sorted(set(by_queue) - queues)
    if unknown:
        raise StaffingError(
            f"--target: no queue {', '.join(map(repr, unknown))} in the deployment "
            f"(queues: {', '.join(sorted(queues))})"
        )
    entries = [
        n for n, entry in enumerate(raw["agents"]) if entry.get("status", "ready") == "ready"
    ]
    if not entries:
        raise StaffingError("the workload has no ready agents to staff")
    first_groups = [(raw["agents"][n].get("groups") or [None])[0] for n in entries]
    labels = tuple(
        group if group is not None and first_groups.count(group) == 1 else f"agents[{n}]"
        for n, group in zip(entries, first_groups, strict=True)
    )
    base_counts = [int(raw["agents"][n].get("count", 1)) for n in entries]
    shares = [count / sum(base_counts) for count in base_counts]

    # A queue's own --target first, then the deployment's service level for it, then a
    # --target for every queue, then the workload's (docs/service-levels.md).
    declared = objectives(
        workload.deployment, workload.service_level_threshold, workload.service_level_target
    )
    chosen: dict[str, Target] = {}
    sources: dict[str, str] = {}
    for queue in sorted(queues):
        objective = declared.of(queue)
        if queue in by_queue:
            chosen[queue], sources[queue] = by_queue[queue], "command line"
        elif objective.source != "workload":
            chosen[queue] = Target(objective.target, objective.threshold)
            sources[queue] = objective.source
        else:
            chosen[queue] = default_target
            sources[queue] = "command line" if everywhere else "workload"

    def target_of(queue: str) -> tuple[float, float]:
        target = chosen.get(queue, default_target)
        threshold = (
            target.threshold if target.threshold is not None else workload.service_level_threshold
        )
        return target.level, threshold

    thresholds = {queue: target_of(queue)[1] for queue in queues}

    # Which queue each stream's tasks end in, from one run of the whole workload.
    pilot = simulate(workload)
    landed: dict[str, Counter[str]] = {}
    for interaction in pilot.interactions:
        if interaction.queue is not None:
            landed.setdefault(interaction.stream, Counter())[interaction.queue] += 1
    queue_of = [
        landed[s.name].most_common(1)[0][0] if s.name in landed else s.queue
        for s in workload.streams
    ]
    handle_times = [_mean_handle_time(s, n) for n, s in enumerate(workload.streams)]

    count = max(math.ceil(workload.duration / interval_seconds - 1e-9), 1)
    intervals: list[_Interval] = []
    for index in range(count):
        offset = index * interval_seconds
        middle = min(offset + interval_seconds / 2, workload.duration - 1e-9)
        rates = [
            s.rates[min(int(middle // (workload.duration / len(s.rates))), len(s.rates) - 1)]
            for s in workload.streams
        ]
        agents, by_q = _erlang_c_agents(rates, workload, queue_of, handle_times, target_of)
        busy = any(rate > 0 for rate in rates)
        limit = max(4 * agents, agents + 50, 2 * sum(base_counts))
        item = _Interval(
            index, offset, rates, agents, by_q, _search(agents, shares, limit) if busy else None
        )
        if busy:
            item.advance(None)
        else:
            item.done, item.answer = True, tuple(0 for _ in entries)
        intervals.append(item)

    def mapping(item: _Interval, counts: tuple[int, ...]) -> dict[str, Any]:
        changed = copy.deepcopy(raw)
        for n, entry in enumerate(changed["traffic"]):
            entry["rate"] = f"{item.rates[n] * 3600:.10g}/h"
        roster = []
        for n, entry in enumerate(changed["agents"]):
            if n in entries:
                staffed = counts[entries.index(n)]
                if staffed == 0:
                    continue
                entry["count"] = staffed
            roster.append(entry)
        changed["agents"] = roster
        changed["duration"] = warmup + window
        changed["start"] = (workload.start + timedelta(seconds=item.offset - warmup)).isoformat()
        return changed

    failures: list[Failure] = []
    while any(not item.done for item in intervals):
        asked = [item for item in intervals if not item.done and item.pending is not None]
        jobs: dict[int, list[Job]] = {}
        for item in asked:
            assert item.pending is not None
            changed = mapping(item, item.pending)
            jobs[item.index] = [
                Job(
                    "omniroute.contrib.staffing:replication",
                    (changed, seed + r, warmup, thresholds),
                    {
                        "interval": clock(workload.start, item.offset),
                        **dict(zip(labels, item.pending, strict=True)),
                        "seed": seed + r,
                    },
                )
                for r in range(replications)
            ]
        results, failed = runner.run([job for batch in jobs.values() for job in batch], done)
        failures += failed
        broken = {failure.job for failure in failed}
        for item in asked:
            batch = jobs[item.index]
            assert item.pending is not None
            if any(job in broken for job in batch):
                item.done, item.note = True, "a simulation failed (see failed)"
                continue
            evaluation = _evaluate([results[job] for job in batch], target_of)
            item.seen[item.pending] = evaluation
            item.advance(evaluation)

    return StaffResult(
        name=workload.name,
        start=workload.start,
        interval=interval_seconds,
        replications=replications,
        seed=seed,
        warmup=warmup,
        window=window,
        groups=labels,
        default_target=default_target,
        targets_by_queue=chosen,
        target_sources=sources,
        threshold=workload.service_level_threshold,
        intervals=tuple(
            IntervalStaff(
                index=item.index,
                start=workload.start + timedelta(seconds=item.offset),
                clock=f"{clock(workload.start, item.offset)}–{clock(workload.start, item.offset + interval_seconds)}",
                rates={s.name: item.rates[n] * 3600 for n, s in enumerate(workload.streams)},
                erlang_c_agents=item.erlang_c_agents,
                erlang_c_by_queue=item.erlang_c_by_queue,
                policy=None if item.answer is None else dict(zip(labels, item.answer, strict=True)),
                service_levels=item.seen[item.answer].levels if item.answer in item.seen else {},
                evaluations=len(item.seen),
                note=item.note,
            )
            for item in intervals
        ),
        failures=tuple(failures),
    )


def _evaluate(
    replications: list[Mapping[str, list[int]]], target_of: Callable[[str], tuple[float, float]]
) -> Evaluation:
    queues = sorted({queue for counts in replications for queue in counts})
    levels: dict[str, dict[str, Any]] = {}
    met = True
    for queue in queues:
        values = [
            counts[queue][0] / counts[queue][1]
            for counts in replications
            if queue in counts and counts[queue][1] > 0
        ]
        if not values:
            continue
        levels[queue] = interval(values)
        met = met and levels[queue]["mean"] >= target_of(queue)[0] - 1e-12
    return Evaluation(met, levels)
