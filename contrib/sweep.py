"""What-if sweeps: one workload, many variants, each simulated R times on its own seeds.

`--vary KEY=VALUES` names what changes, and the sweep runs every combination:

- `agents=10:14` the count of the workload's only agent entry; `agents.GROUP=...` the count
  of the entry whose groups include GROUP;
- `scale=0.8:1.2:0.1` every traffic rate multiplied;
- `deployment=a.yaml,b.yaml` the policy (paths from where the command runs);
- any other key of the workload by its path: `service_level_threshold=10,20`,
  `traffic[0].rate=300/h,360/h`, `traffic[1].handle_time.exponential=5m,6m`.

VALUES is a comma-separated list, or for a number `FROM:TO[:STEP]`, TO included.
Replication r of a point uses seed `seed + r`: the one `omniroute simulate --seed` uses,
so any replication can be looked at alone; every point uses the same seeds, so policies
are compared on the same traffic. Each figure is given as its mean over the replications
and a confidence interval from Student's t.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from omniroute.core import DeploymentError, OmnirouteError, read_mapping_file

from .fanout import Failure, Job, Runner
from .simulator import simulate
from .workload import load_workload, parse_rate

CONFIDENCE = 0.95

# Student's t, 0.975 quantile, by degrees of freedom; beyond 30 interpolated in 1/df.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_T975_FAR = ((40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960))


class SweepError(OmnirouteError, ValueError):
    """A sweep specification that cannot run: nothing has been simulated."""


def t_quantile(degrees: int) -> float:
    """Student's t 0.975 quantile: the multiplier of a 95% two-sided interval."""
    if degrees < 1:
        raise ValueError("a confidence interval needs at least two values")
    if degrees <= len(_T975):
        return _T975[degrees - 1]
    lower_df: float = len(_T975)
    lower_t = _T975[-1]
    for upper_df, upper_t in _T975_FAR:
        if degrees <= upper_df:
            position = (1 / lower_df - 1 / degrees) / (1 / lower_df - 1 / upper_df)
            return lower_t + (upper_t - lower_t) * position
        lower_df, lower_t = upper_df, upper_t
    return 1.96  # pragma: no cover - the last bound is infinite


def interval(values: list[float]) -> dict[str, Any]:
    """Mean and 95% confidence interval of independent replications (none from one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "half_width": None, "low": None, "high": None, "n": len(values)}
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {
        "mean": mean,
        "half_width": half,
        "low": mean - half,
        "high": mean + half,
        "n": len(values),
    }


# --- the specification -------------------------------------------------------------------


@attrs.frozen
class Variation:
    key: str
    values: tuple[Any, ...]


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(key):
        if match.start() != position and key[position : match.start()] != ".":
            raise SweepError(f"--vary {key}: cannot read this key's path")
        name, index = match.groups()
        parts.append(int(index) if index is not None else int(name) if name.isdigit() else name)
        position = match.end()
    if not parts or position != len(key):
        raise SweepError(f"--vary {key}: cannot read this key's path")
    return parts


def _number(text: str, key: str, whole: bool) -> int | float:
    if not _NUMBER.match(text):
        raise SweepError(f"--vary {key}: {text!r} is not a number")
    value = float(text)
    if whole:
        if value != int(value):
            raise SweepError(f"--vary {key}: {text!r} is not a whole number")
        return int(value)
    return (
        int(value) if value == int(value) and "." not in text and "e" not in text.lower() else value
    )


def _numbers(text: str, key: str, whole: bool) -> list[int | float]:
    values: list[int | float] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise SweepError(f"--vary {key}={text}: an empty value in the list")
        if ":" in item:
            parts = item.split(":")
            if len(parts) not in (2, 3):
                raise SweepError(f"--vary {key}: a range is FROM:TO or FROM:TO:STEP, got {item!r}")
            start, stop = _number(parts[0], key, whole), _number(parts[1], key, whole)
            step: int | float = _number(parts[2], key, whole) if len(parts) == 3 else 1
            if step <= 0:
                raise SweepError(f"--vary {key}: the step of {item!r} must be positive")
            if stop < start:
                raise SweepError(f"--vary {key}: the range {item!r} is empty (TO is below FROM)")
            count = math.floor((stop - start) / step + 1e-9) + 1
            for n in range(count):
                value = start + n * step
                values.append(round(value, 10) if isinstance(value, float) else value)
        else:
            values.append(_number(item, key, whole))
    return values


def _agent_entry(raw: Mapping[str, Any], key: str) -> int:
    """The index of the agent entry whose count `agents` or `agents.GROUP` sets."""
    entries = raw.get("agents")
    if not isinstance(entries, list) or not entries:
        raise SweepError(f"--vary {key}: the workload has no agents to vary")
    if key == "agents":
        if len(entries) != 1:
            groups = sorted(
                {g for e in entries if isinstance(e, Mapping) for g in e.get("groups", ())}
            )
            raise SweepError(
                f"--vary agents: the workload has {len(entries)} agent entries; name one with "
                f"agents.GROUP ({', '.join(groups) or 'no groups'}) or agents[N].count"
            )
        return 0
    group = key.removeprefix("agents.")
    found = [
        index
        for index, entry in enumerate(entries)
        if isinstance(entry, Mapping) and group in (entry.get("groups") or ())
    ]
    if len(found) != 1:
        groups = sorted({g for e in entries if isinstance(e, Mapping) for g in e.get("groups", ())})
        problem = "no agent entry is" if not found else f"{len(found)} agent entries are"
        raise SweepError(
            f"--vary {key}: {problem} in group {group!r} (groups: {', '.join(groups) or 'none'})"
        )
    return found[0]


def _lookup(raw: Any, key: str) -> Any:
    node = raw
    for part in _path(key):
        found = (isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)) or (
            isinstance(part, str) and isinstance(node, Mapping) and part in node
        )
        if found:
            node = node[part]
        else:
            raise SweepError(
                f"--vary {key}: unknown key: the workload has no {key!r} "
                "(known: agents, agents.GROUP, scale, deployment, or a path in the workload such as traffic[0].rate)"
            )
    return node


def parse_variation(text: str, raw: Mapping[str, Any]) -> Variation:
    """`KEY=VALUES` checked against the workload: SweepError names what is wrong."""
    key, equals, values = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise SweepError(
            f"--vary {text}: expected KEY=VALUES, such as agents=10:14 or scale=0.9,1.1"
        )
    if not values.strip():
        raise SweepError(f"--vary {key}: no values given")
    if key == "deployment":
        paths = [item.strip() for item in values.split(",")]
        if any(not path for path in paths):
            raise SweepError(f"--vary {text}: an empty value in the list")
        for path in paths:
            if not Path(path).is_file():
                raise SweepError(f"--vary deployment: no such file: {path}")
        return Variation(key, tuple(paths))
    if key == "scale":
        scales = _numbers(values, key, whole=False)
        if any(scale <= 0 for scale in scales):
            raise SweepError("--vary scale: a traffic scale must be positive")
        return Variation(key, tuple(scales))
    if key == "agents" or key.startswith("agents."):
        _agent_entry(raw, key)
        counts = _numbers(values, key, whole=True)
        if any(count < 1 for count in counts):
            raise SweepError(f"--vary {key}: an agent count must be at least 1")
        return Variation(key, tuple(counts))
    current = _lookup(raw, key)
    if isinstance(current, (Mapping, list)):
        raise SweepError(f"--vary {key}: this key holds a {type(current).__name__}, not a value")
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        return Variation(key, tuple(_numbers(values, key, whole=isinstance(current, int))))
    return Variation(key, tuple(item.strip() for item in values.split(",")))


def apply(raw: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the workload mapping with KEY set to VALUE."""
    changed: dict[str, Any] = copy.deepcopy(dict(raw))
    if key == "deployment":
        changed["deployment"] = str(Path(value).resolve())
    elif key == "scale":
        for traffic in changed.get("traffic") or ():
            rate = traffic.get("rate")
            rates = rate if isinstance(rate, list) else [rate]
            scaled = [f"{parse_rate(r) * 3600 * value:.10g}/h" for r in rates]
            traffic["rate"] = scaled if isinstance(rate, list) else scaled[0]
    elif key == "agents" or key.startswith("agents."):
        changed["agents"][_agent_entry(changed, key)]["count"] = value
    else:
        *parents, last = _path(key)
        node: Any = changed
        for part in parents:
            node = node[part]
        node[last] = value
    return changed


# --- planning and running ----------------------------------------------------------------


@attrs.frozen
class Point:
    parameters: dict[str, Any]
    workload: dict[str, Any]  # the mapping, deployment inline: self-contained for any worker


@attrs.frozen
class Sweep:
    name: str
    seed: int
    replications: int
    variations: tuple[Variation, ...]
    points: tuple[Point, ...]

    def jobs(self, point: Point) -> list[Job]:
        return [
            Job(
                "omniroute.contrib.sweep:replication",
                (point.workload, self.seed + r),
                {**point.parameters, "seed": self.seed + r},
            )
            for r in range(self.replications)
        ]


def read_workload_mapping(path: Path) -> dict[str, Any]:
    raw = read_mapping_file(path)
    if not isinstance(raw, dict):
        raise DeploymentError(str(path), [])
    return raw


def plan(path: Path, varies: list[str], replications: int = 5, seed: int | None = None) -> Sweep:
    """Every point of the sweep, each workload checked: an error here means nothing ran."""
    if replications < 1:
        raise SweepError("--replications must be at least 1")
    raw = read_workload_mapping(path)
    base = path.resolve().parent
    # The workload must load as it is, with its problems listed as `simulate` lists them.
    loaded = load_workload(path)
    variations = [parse_variation(text, raw) for text in varies]
    keys = [variation.key for variation in variations]
    for key in keys:
        if keys.count(key) > 1:
            raise SweepError(f"--vary {key}: given twice; list all its values in one --vary")
    points = []
    problems = []
    for values in itertools.product(*(variation.values for variation in variations)):
        parameters = dict(zip(keys, values, strict=True))
        changed: dict[str, Any] = dict(raw)
        for key, value in parameters.items():
            changed = apply(changed, key, value)
        label = ", ".join(f"{k}={v}" for k, v in parameters.items()) or "the workload as it is"
        try:
            load_workload(changed, base=base)
        except DeploymentError as error:
            problems.append(f"{label}: " + str(error).split("\n", 1)[-1].strip())
            continue
        changed.setdefault("name", loaded.name)
        deployment = changed.get("deployment")
        if isinstance(deployment, str):
            changed["deployment"] = read_mapping_file(base / deployment)
        points.append(Point(parameters, changed))
    if problems:
        raise SweepError(
            "these points of the sweep are not valid workloads:\n  " + "\n  ".join(problems)
        )
    return Sweep(
        name=loaded.name,
        seed=loaded.seed if seed is None else seed,
        replications=replications,
        variations=tuple(variations),
        points=tuple(points),
    )


def replication(workload: dict[str, Any], seed: int) -> dict[str, float]:
    """One simulation of one point, reduced to the figures a sweep reports (runs on a worker)."""
    loaded = attrs.evolve(load_workload(workload), seed=seed)
    return flatten(simulate(loaded).figures())


def flatten(figures: Mapping[str, Any]) -> dict[str, float]:
    """`service_level`, `queue.sales.mean_wait`, `group.bpo.occupancy`, ... as one level."""
    result: dict[str, float] = {}

    def take(prefix: str, values: Mapping[str, Any]) -> None:
        count = values["interactions"]
        result[f"{prefix}interactions"] = float(count)
        result[f"{prefix}service_level"] = values["service_level"]
        result[f"{prefix}mean_wait"] = values["mean_wait"]
        result[f"{prefix}p90_wait"] = values["p90_wait"]
        result[f"{prefix}abandoned_share"] = values["abandoned"] / count if count else 0.0
        result[f"{prefix}occupancy"] = values["occupancy"]
        # the target (the same in every replication) and whether it was met (1 or 0), so
        # that the mean of `service_level_met` is the share of replications that met it
        if values.get("service_level_target") is not None:
            result[f"{prefix}service_level_target"] = values["service_level_target"]
        if values.get("service_level_met") is not None:
            result[f"{prefix}service_level_met"] = float(values["service_level_met"])

    take("", figures)
    for queue, values in figures["by_queue"].items():
        take(f"queue.{queue}.", values)
    for channel, values in figures["by_channel"].items():
        take(f"channel.{channel}.", values)
    for group, values in figures["by_group"].items():
        result[f"group.{group}.occupancy"] = values["occupancy"]
        result[f"group.{group}.answered"] = float(values["answered"])
    return result


@attrs.frozen
class PointResult:
    point: Point
    seeds: tuple[int, ...]
    figures: dict[str, dict[str, Any]]  # metric -> mean, half_width, low, high, n


@attrs.frozen
class SweepResult:
    sweep: Sweep
    points: tuple[PointResult, ...]
    failures: tuple[Failure, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.sweep.name,
            "seed": self.sweep.seed,
            "replications": self.sweep.replications,
            "confidence": CONFIDENCE,
            "varied": {v.key: list(v.values) for v in self.sweep.variations},
            "points": [
                {
                    "parameters": result.point.parameters,
                    "seeds": list(result.seeds),
                    "figures": result.figures,
                }
                for result in self.points
            ],
            "failed": [{"parameters": f.job.label, "error": f.error} for f in self.failures],
        }


def run(sweep: Sweep, runner: Runner, done: Callable[[int], None] | None = None) -> SweepResult:
    """Run every replication of every point; a point with a failed replication has no figures."""
    jobs = {point.parameters.__repr__(): sweep.jobs(point) for point in sweep.points}
    results, failures = runner.run([job for batch in jobs.values() for job in batch], done)
    failed = {failure.job for failure in failures}
    points = []
    for point in sweep.points:
        batch = jobs[point.parameters.__repr__()]
        if any(job in failed for job in batch):
            continue
        points.append(
            PointResult(
                point,
                tuple(job.arguments[1] for job in batch),
                aggregate([results[job] for job in batch]),
            )
        )
    return SweepResult(sweep, tuple(points), tuple(failures))


def aggregate(replications: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    metrics = sorted({metric for figures in replications for metric in figures})
    return {
        metric: interval([figures[metric] for figures in replications if metric in figures])
        for metric in metrics
    }
