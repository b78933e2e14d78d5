"""Routing cost per interaction as the roster grows (the performance issue's workload).

    python -m bench.scale [--agents 1000 10000 50000] [--minutes 20] [--plugins least_occupancy capacity_share]

20 skills, each agent holding 3; a queue per skill chosen by a workflow filter; chat
capacity 2; 85% load; 5-minute handle time; exponential patience. Each size and plugin
runs in its own process, so that peak memory is its own. Prints interactions per second,
the cost per interaction relative to the smallest roster, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from typing import Any

SKILLS = [f"skill{n:02d}" for n in range(20)]
HANDLE = 300.0


def workload(agents: int, minutes: float, plugin: str, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    rate_per_hour = 0.85 * 2 * agents / HANDLE * 3600
    roster = []
    for n in range(agents):
        skills = rng.sample(SKILLS, 3)
        attributes: dict[str, Any] = {"skills": {skill: rng.randint(1, 5) for skill in skills}}
        roster.append({"id": f"a{n}", "channels": {"chat": 2}, "attributes": attributes})
    deployment: dict[str, Any] = {
        "plugins": [plugin],
        "channels": {"chat": {}},
        "queues": {
            skill: {"target_workers": f"skills.{skill} > 0", "skill": skill} for skill in SKILLS
        },
        "workflow": {
            "filters": [
                {"name": skill, "expression": f'skill == "{skill}"', "targets": [{"queue": skill}]}
                for skill in SKILLS
            ]
        },
    }
    if plugin == "capacity_share":
        deployment["capacity_share"] = {"channels": {"chat": {"share": 50, "required_spare": 50}}}
    return {
        "deployment": deployment,
        "seed": seed,
        "duration": minutes * 60,
        "agents": roster,
        "traffic": [
            {
                "channel": "chat",
                "rate": f"{rate_per_hour}/h",
                "handle_time": {"exponential": HANDLE},
                "patience": {"exponential": 180},
                "attributes": {"skill": dict.fromkeys(SKILLS, 1)},
            }
        ],
    }


def measure(agents: int, minutes: float, plugin: str) -> dict[str, Any]:
    from omniroute.contrib.simulator import simulate
    from omniroute.contrib.workload import load_workload

    loaded = load_workload(workload(agents, minutes, plugin))
    start = time.perf_counter()
    result = simulate(loaded)
    elapsed = time.perf_counter() - start
    figures = result.figures()
    return {
        "agents": agents,
        "plugin": plugin,
        "interactions": figures["interactions"],
        "seconds": elapsed,
        "per_second": figures["interactions"] / elapsed,
        "service_level": figures["service_level"],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--plugins", nargs="+", default=["least_occupancy", "capacity_share"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed for each run")
    args = parser.parse_args(argv)
    if args.one:
        agents, plugin = args.one.split(":")
        print(json.dumps(measure(int(agents), args.minutes, plugin)))
        return 0
    print(
        f"{args.minutes:g} simulated minutes per run; chat capacity 2, 85% load, 5-minute handle time\n"
    )
    print(
        f"{'plugin':<17}{'agents':>8}{'interactions':>14}{'per second':>12}{'cost ratio':>12}{'peak MB':>10}{'SL':>8}"
    )
    for plugin in args.plugins:
        base_cost = None
        for agents in args.agents:
            command = [
                sys.executable,
                "-m",
                "bench.scale",
                "--one",
                f"{agents}:{plugin}",
                "--minutes",
                str(args.minutes),
            ]
            try:
                completed = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.timeout, check=True
                )
            except subprocess.TimeoutExpired:
                print(f"{plugin:<17}{agents:>8}{'(over ' + str(int(args.timeout)) + ' s)':>14}")
                continue
            row = json.loads(completed.stdout)
            cost = 1 / row["per_second"]
            base_cost = base_cost or cost
            print(
                f"{plugin:<17}{agents:>8}{row['interactions']:>14}{row['per_second']:>12.0f}"
                f"{cost / base_cost:>11.2f}x{row['peak_mb']:>10.0f}{row['service_level']:>8.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
