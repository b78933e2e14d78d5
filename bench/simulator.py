"""The simulator against Ciw, SimPy and a hand-written baseline on one M/M/c workload.

    python -m bench.simulator [--hours 500] [--servers 10] [--load 0.85] [--repeat 1]

Each tool simulates the same queue (Poisson arrivals, exponential 5-minute handle time,
c agents, FIFO); omniroute runs its full routing pipeline (workflow, filters, ranking,
decisions made by the engine). Prints interactions per second, the ratios, and each
tool's mean wait next to Erlang C's as a check that they simulate the same system. With
`--repeat N` each tool runs N times and its fastest run counts.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import time
from collections.abc import Callable

from omniroute.contrib.queueing import erlang_c
from omniroute.contrib.simulator import simulate
from omniroute.contrib.workload import load_workload

HANDLE = 300.0  # seconds


def run_omniroute(rate: float, servers: int, horizon: float, seed: int) -> tuple[int, float]:
    workload = load_workload(
        {
            "deployment": {"channels": {"voice": {}}, "queues": {"q": {}}},
            "seed": seed,
            "duration": horizon,
            "agents": [{"count": servers, "id": "a{n}", "channels": {"voice": 1}}],
            "traffic": [
                {
                    "channel": "voice",
                    "rate": f"{rate * 3600}/h",
                    "handle_time": {"exponential": HANDLE},
                }
            ],
        }
    )
    result = simulate(workload)
    waits = result.waits()
    return len(result.interactions), statistics.fmean(waits)


def run_ciw(rate: float, servers: int, horizon: float, seed: int) -> tuple[int, float]:
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=rate)],
        service_distributions=[ciw.dists.Exponential(rate=1 / HANDLE)],
        number_of_servers=[servers],
    )
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(horizon)
    records = simulation.get_all_records()
    arrived = len(records) + len(simulation.nodes[1].all_individuals)
    return arrived, statistics.fmean(record.waiting_time for record in records)


def run_simpy(rate: float, servers: int, horizon: float, seed: int) -> tuple[int, float]:
    import simpy

    rng = random.Random(seed)
    environment = simpy.Environment()
    agents = simpy.Resource(environment, capacity=servers)
    waits: list[float] = []
    arrived = 0

    def customer(env: simpy.Environment) -> object:
        arrival = env.now
        with agents.request() as request:
            yield request
            waits.append(env.now - arrival)
            yield env.timeout(rng.expovariate(1 / HANDLE))

    def source(env: simpy.Environment) -> object:
        nonlocal arrived
        while True:
            yield env.timeout(rng.expovariate(rate))
            arrived += 1
            env.process(customer(env))

    environment.process(source(environment))
    environment.run(until=horizon)
    return arrived, statistics.fmean(waits)


def run_baseline(rate: float, servers: int, horizon: float, seed: int) -> tuple[int, float]:
    """What one would write by hand for M/M/c: a heap of completions and a FIFO queue."""
    rng = random.Random(seed)
    busy: list[float] = []  # completion times
    queue: list[float] = []
    waits: list[float] = []
    arrived = 0
    now = rng.expovariate(rate)
    head = 0
    while now < horizon:
        arrived += 1
        while busy and busy[0] <= now:
            done = heapq.heappop(busy)
            if head < len(queue):
                waits.append(done - queue[head])
                head += 1
                heapq.heappush(busy, done + rng.expovariate(1 / HANDLE))
        if len(busy) < servers and head == len(queue):
            waits.append(0.0)
            heapq.heappush(busy, now + rng.expovariate(1 / HANDLE))
        else:
            queue.append(now)
        now += rng.expovariate(rate)
    return arrived, statistics.fmean(waits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=500)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--load", type=float, default=0.85)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each tool; the fastest counts (noisy machine)",
    )
    args = parser.parse_args(argv)
    rate = args.load * args.servers / HANDLE
    horizon = args.hours * 3600
    theory = erlang_c(rate, 1 / HANDLE, args.servers, 20)
    print(
        f"M/M/{args.servers}, load {args.load:g} ({rate * 3600:g} arrivals/h, 5-minute handle time), "
        f"{args.hours:g} h simulated; Erlang C mean wait {theory.mean_wait:.1f} s\n"
    )
    tools: list[tuple[str, Callable[[float, int, float, int], tuple[int, float]]]] = [
        ("omniroute", run_omniroute),
        ("ciw", run_ciw),
        ("simpy", run_simpy),
        ("hand-written", run_baseline),
    ]
    speeds = {}
    print(f"{'tool':<14}{'interactions':>14}{'seconds':>10}{'per second':>13}{'mean wait':>12}")
    for name, run in tools:
        elapsed = math.inf
        try:
            for _ in range(args.repeat):
                start = time.perf_counter()
                count, mean_wait = run(rate, args.servers, horizon, args.seed)
                elapsed = min(elapsed, time.perf_counter() - start)
        except ImportError:
            print(f"{name:<14}{'(not installed)':>14}")
            continue
        speeds[name] = count / elapsed
        print(f"{name:<14}{count:>14}{elapsed:>10.2f}{speeds[name]:>13.0f}{mean_wait:>11.1f}s")
    print()
    for peer in ("ciw", "simpy", "hand-written"):
        if peer in speeds and "omniroute" in speeds:
            print(
                f"omniroute / {peer:<13} {speeds['omniroute'] / speeds[peer]:6.2f}x interactions per second"
            )
    print("target: omniroute at least 3x ciw")
    if "ciw" in speeds:
        # What the target asks per interaction, beside what the tools here spend: a
        # bare event loop (SimPy, no routing) sets a floor for pure Python.
        budget = 1e6 / (3 * speeds["ciw"])
        spent = ", ".join(
            f"{name} {1e6 / speeds[name]:.1f} µs"
            for name in ("omniroute", "simpy")
            if name in speeds
        )
        print(f"  3x ciw leaves {budget:.1f} µs per interaction; spent here: {spent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
