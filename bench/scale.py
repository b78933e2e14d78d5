"""Routing cost per interaction as the roster grows (the performance issue's workload).

    python -m bench.scale [--agents 1000 10000 50000] [--minutes 20] [--plugins least_occupancy capacity_share]

20 skills, each agent holding 3; a queue per skill chosen by a workflow filter; chat
capacity 2; 85% load; 5-minute handle time; exponential patience. Each size and plugin
runs in its own process, so that peak memory is its own. Prints interactions per second,
the cost per interaction relative to the smallest roster, and peak memory; then the
same workload at the smallest size through the reference path (a scan of the roster
for every task) as the baseline, the targets met or not, and the M/M/c comparison with
Ciw, SimPy and a hand-written loop (bench.simulator).
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


def measure(agents: int, minutes: float, plugin: str, indexed: bool = True) -> dict[str, Any]:
    from omniroute.contrib.simulator import simulate
    from omniroute.contrib.workload import load_workload

    loaded = load_workload(workload(agents, minutes, plugin))
    start = time.perf_counter()
    result = simulate(loaded, indexed=indexed)
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
    parser.add_argument(
        "--scan-minutes",
        type=float,
        default=5,
        help="simulated minutes of the reference scan at the smallest size (0: skip it)",
    )
    parser.add_argument("--no-mmc", action="store_true", help="skip the M/M/c comparison")
    parser.add_argument(
        "--end-to-end",
        type=int,
        nargs="*",
        default=[10000],
        metavar="AGENTS",
        help="also time `omniroute simulate --json` from process start, 30 simulated minutes "
        "(setup included: add_agent, membership, ladders, figures); none to skip",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each size and plugin; the fastest counts (this machine is noisy)",
    )
    args = parser.parse_args(argv)
    if args.one:
        agents, plugin, path = args.one.split(":")
        print(json.dumps(measure(int(agents), args.minutes, plugin, indexed=path == "index")))
        return 0
    print(
        f"{args.minutes:g} simulated minutes per run, best of {args.repeat}; chat capacity 2, "
        "85% load, 5-minute handle time\n"
    )
    print(
        f"{'plugin':<17}{'agents':>8}{'interactions':>14}{'per second':>12}{'cost ratio':>12}{'peak MB':>10}{'SL':>8}"
    )
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for plugin in args.plugins:
        base_cost = None
        for agents in args.agents:
            row = _best(agents, plugin, "index", args.minutes, args.timeout, args.repeat)
            if row is None:
                print(f"{plugin:<17}{agents:>8}{'(over ' + str(int(args.timeout)) + ' s)':>14}")
                continue
            rows[plugin, agents] = row
            cost = 1 / row["per_second"]
            base_cost = base_cost or cost
            row["ratio"] = cost / base_cost
            print(
                f"{plugin:<17}{agents:>8}{row['interactions']:>14}{row['per_second']:>12.0f}"
                f"{row['ratio']:>11.2f}x{row['peak_mb']:>10.0f}{row['service_level']:>8.1%}"
            )
    smallest = min(args.agents)
    if args.scan_minutes > 0:
        print(
            f"\nbaseline: the reference scan, {smallest} agents, {args.scan_minutes:g} simulated minutes"
        )
        for plugin in args.plugins:
            scan = _best(smallest, plugin, "scan", args.scan_minutes, args.timeout, args.repeat)
            index = _best(smallest, plugin, "index", args.scan_minutes, args.timeout, args.repeat)
            if scan is None or index is None:
                print(f"{plugin:<17}(over {int(args.timeout)} s)")
                continue
            print(
                f"{plugin:<17}scan {scan['per_second']:>8.0f}/s   index {index['per_second']:>8.0f}/s"
                f"   index / scan {index['per_second'] / scan['per_second']:6.1f}x"
            )
    print("\ntargets")
    for plugin in args.plugins:
        for agents, limit in ((10000, 1.5), (50000, 2.0)):
            if (plugin, agents) in rows:
                ratio = rows[plugin, agents]["ratio"]
                print(
                    f"  {plugin} cost {smallest} -> {agents} agents: {ratio:.2f}x (at most {limit}x): {_verdict(ratio <= limit)}"
                )
        if (plugin, 10000) in rows:
            speed = rows[plugin, 10000]["per_second"]
            print(
                f"  {plugin} at 10000 agents: {speed:.0f}/s (at least 10000/s): {_verdict(speed >= 10000)}"
            )
        if (plugin, 50000) in rows:
            peak = rows[plugin, 50000]["peak_mb"]
            print(
                f"  {plugin} peak memory at 50000 agents: {peak:.0f} MB (under 1024 MB): {_verdict(peak < 1024)}"
            )
    for agents in args.end_to_end:
        for plugin in args.plugins:
            seconds, count, steps = end_to_end(agents, plugin, 30)
            print(
                f"  end to end: omniroute simulate, {plugin}, {agents} agents, 30 min: "
                f"{seconds:.1f} s from process start, {count / seconds:.0f} interactions/s"
                f"\n    another run, in steps (s): {steps}"
            )
    if not args.no_mmc:
        print()
        from bench import simulator

        simulator.main([])
    return 0


def end_to_end(agents: int, plugin: str, minutes: float) -> tuple[float, int, str]:
    """Seconds from process start to report of `omniroute simulate --json`, the
    interactions it simulated, and where the time of another run went (bench.end_to_end)."""
    import shutil
    import tempfile
    from pathlib import Path

    from bench.end_to_end import split, split_line

    command = shutil.which("omniroute") or str(Path(sys.executable).parent / "omniroute")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "workload.json"
        path.write_text(json.dumps(workload(agents, minutes, plugin)))
        start = time.perf_counter()
        done = subprocess.run(
            [command, "simulate", str(path), "--json"], capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - start
        steps = split_line(split(command, [str(path), "--json"], Path(folder)))
    return seconds, int(json.loads(done.stdout)["interactions"]), steps


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _best(
    agents: int, plugin: str, path: str, minutes: float, timeout: float, repeat: int
) -> dict[str, Any] | None:
    """The fastest of `repeat` runs, with the largest peak memory seen."""
    rows = [_run(agents, plugin, path, minutes, timeout) for _ in range(max(repeat, 1))]
    done = [row for row in rows if row is not None]
    if not done:
        return None
    best = max(done, key=lambda row: row["per_second"])
    return {**best, "peak_mb": max(row["peak_mb"] for row in done)}


def _run(
    agents: int, plugin: str, path: str, minutes: float, timeout: float
) -> dict[str, Any] | None:
    command = [
        sys.executable,
        "-m",
        "bench.scale",
        "--one",
        f"{agents}:{plugin}:{path}",
        "--minutes",
        str(minutes),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True
        )
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
