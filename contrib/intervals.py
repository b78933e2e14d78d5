"""A simulation's figures by interval of the clock (15 or 30 minutes), as planners read them.

An interaction counts in the interval in which it arrived; queue length and busy agents
are the means of the simulator's samples taken in the interval.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from omniroute.core.durations import parse_duration

from .service_levels import Objectives
from .simulator import Interaction, SimulationResult


def parse_interval(text: str) -> float:
    """Seconds from "30m", "15m", "1h" or a number of seconds; at least a minute."""
    try:
        seconds = parse_duration(int(text) if text.isdigit() else text)
    except (ValueError, TypeError) as error:
        raise ValueError(f"expected an interval such as 15m or 30m, got {text!r}") from error
    if seconds < 60:
        raise ValueError(f"an interval must be at least a minute, got {text!r}")
    return seconds


def clock(start: datetime, offset: float) -> str:
    return (start + timedelta(seconds=offset)).strftime("%H:%M")


def _level(interactions: list[Interaction], objectives: Objectives) -> dict[str, Any]:
    """Each interaction's wait against its own queue's threshold."""
    answered = [i for i in interactions if i.wait is not None]
    abandoned = sum(1 for i in interactions if i.reason == "abandoned")
    within = sum(
        1 for i in answered if i.wait is not None and i.wait <= objectives.threshold_of(i.queue)
    )
    waits = [i.wait for i in answered if i.wait is not None]
    offered = len(answered) + abandoned
    return {
        "interactions": len(interactions),
        "answered": len(answered),
        "abandoned": abandoned,
        "answered_in_threshold": within,
        "service_level": within / offered if offered else None,
        "mean_wait": sum(waits) / len(waits) if waits else None,
    }


def interval_figures(
    result: SimulationResult, start: datetime, interval: float, staffed: int
) -> list[dict[str, Any]]:
    """One entry per interval of the traffic's duration, with clock times."""
    count = max(math.ceil(result.duration / interval - 1e-9), 1)
    buckets: list[list[Interaction]] = [[] for _ in range(count)]
    for interaction in result.interactions:
        buckets[min(int(interaction.arrival // interval), count - 1)].append(interaction)
    series = result.series
    objectives = result.service_levels
    figures = []
    for index, bucket in enumerate(buckets):
        low, high = index * interval, min((index + 1) * interval, result.duration)
        samples = [n for n, t in enumerate(series["time"]) if low <= t < high]
        entry: dict[str, Any] = {
            "start": (start + timedelta(seconds=low)).isoformat(),
            "clock": f"{clock(start, low)}–{clock(start, high)}",
            **_level(bucket, objectives),
            "mean_waiting": (
                sum(series["waiting"][n] for n in samples) / len(samples) if samples else None
            ),
            "mean_busy_agents": (
                sum(series["busy_agents"][n] for n in samples) / len(samples) if samples else None
            ),
            "staffed_agents": staffed,
        }
        entry.update(objectives.overall({i.queue for i in bucket}, entry["service_level"]))
        queues = sorted({i.queue for i in bucket if i.queue is not None})
        entry["by_queue"] = {}
        for queue in queues:
            level = _level([i for i in bucket if i.queue == queue], objectives)
            objective = objectives.of(queue)
            level.update(
                service_level_threshold=objective.threshold,
                service_level_target=objective.target,
                service_level_met=objective.met(level["service_level"]),
            )
            entry["by_queue"][queue] = level
        figures.append(entry)
    return figures
