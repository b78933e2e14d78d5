"""Queueing theory the simulator is checked against: Erlang C (M/M/c) and Erlang A (M/M/c+M)."""

from __future__ import annotations

import math

import attrs


@attrs.frozen
class QueueFigures:
    probability_of_wait: float
    mean_wait: float  # over all arrivals (Erlang C) or over served ones (Erlang A)
    service_level: float  # P(wait <= threshold) over arrivals (Erlang C)
    abandoned_fraction: float = 0.0


def erlang_c(
    arrival_rate: float, service_rate: float, servers: int, threshold: float
) -> QueueFigures:
    """M/M/c: the chance an arrival waits, its mean wait, and the share answered within `threshold`."""
    load = arrival_rate / service_rate
    if load >= servers:
        raise ValueError(f"unstable: offered load {load:g} Erlangs on {servers} servers")
    # Erlang B by its recurrence (stable for large c), then C from B.
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    occupancy = load / servers
    waits = blocking / (1 - occupancy * (1 - blocking))
    drain = servers * service_rate - arrival_rate
    return QueueFigures(
        probability_of_wait=waits,
        mean_wait=waits / drain,
        service_level=1 - waits * math.exp(-drain * threshold),
    )


def erlang_a(
    arrival_rate: float, service_rate: float, servers: int, abandon_rate: float, cap: int = 2000
) -> QueueFigures:
    """M/M/c+M by its birth–death chain: abandonment fraction and mean wait of served arrivals.

    States are the number in the system, truncated at `cap`; with abandonment the chain
    is stable at any load and the tail beyond a few hundred is negligible.
    """
    weights = [1.0]
    for n in range(1, cap + 1):
        death = min(n, servers) * service_rate + max(n - servers, 0) * abandon_rate
        weights.append(weights[-1] * arrival_rate / death)
        if weights[-1] < 1e-300:
            break
    total = sum(weights)
    probabilities = [w / total for w in weights]
    queue_length = sum(max(n - servers, 0) * p for n, p in enumerate(probabilities))
    abandoned = abandon_rate * queue_length / arrival_rate
    waiting = sum(p for n, p in enumerate(probabilities) if n >= servers)
    # Little's law on the queue: mean wait over arrivals = Lq / λ; served arrivals wait
    # in total Lq/λ minus what the abandoners spent, which needs the full wait law. We
    # report the mean wait over all arrivals, which the simulator measures the same way.
    return QueueFigures(
        probability_of_wait=waiting,
        mean_wait=queue_length / arrival_rate,
        service_level=float("nan"),
        abandoned_fraction=abandoned,
    )
