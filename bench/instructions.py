"""Instructions per interaction, counted by valgrind: the engine's cost without the noise.

    python -m bench.instructions [--agents 1000 10000] [--plugins least_occupancy capacity_share]
                                 [--no-live] [--jobs 2]

Seconds on a shared machine move by 15% between two runs of the same build, and by 30%
on short runs; the instructions a run executes do not (`valgrind --tool=cachegrind`,
with the collector off). Each figure is the difference of a long and a short run of the
same configuration, divided by the interactions (or rounds) between them, so that the
interpreter's start, the imports and the roster's build cancel out.

- bench.scale's workload at each roster size: instructions per interaction, and their
  ratio to the smallest roster. Seconds per interaction grow with the roster where
  instructions do not: that growth is the memory hierarchy (more agents, larger heaps
  and dictionaries, fewer cache hits), not more work.
- bench.live's rounds at the smallest size: the undo log on against off.

Needs valgrind (Debian: `apt-get install valgrind`); a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: simulated minutes of the long and the short run of bench.scale's workload, per size
SCALE_MINUTES = {1000: (20.0, 2.0), 10000: (5.0, 0.5), 50000: (2.0, 0.2)}
#: rounds of the long and the short run of bench.live
LIVE_ROUNDS = (3000, 1000)

_SCALE = """
import gc, json
gc.disable()
from bench.scale import workload
from omniroute.contrib.simulator import simulate
from omniroute.contrib.workload import load_workload
result = simulate(load_workload(workload({agents}, {minutes}, {plugin!r})))
print(json.dumps(len(result.interactions)))
"""

_LIVE = """
import gc, json
gc.disable()
from bench.live import run
print(json.dumps(run({agents}, {rounds}, {transactional}, None, False)["rounds"]))
"""


def counted(script: str) -> tuple[int, int]:
    """(instructions, the count the script printed) of `python -c script` under valgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", "")), int(json.loads(done.stdout.splitlines()[-1]))


def per_unit(long: tuple[int, int], short: tuple[int, int]) -> float:
    """Instructions per interaction (or round) between a short and a long run."""
    return (long[0] - short[0]) / (long[1] - short[1])


def minutes_for(agents: int) -> tuple[float, float]:
    if agents in SCALE_MINUTES:
        return SCALE_MINUTES[agents]
    long = max(20.0 * 1000 / agents, 0.5)
    return long, long / 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--plugins", nargs="+", default=["least_occupancy", "capacity_share"])
    parser.add_argument("--no-live", action="store_true", help="skip bench.live's undo log")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2

    scripts: dict[tuple[str, ...], str] = {}
    for plugin in args.plugins:
        for agents in args.agents:
            for length, minutes in zip(("long", "short"), minutes_for(agents), strict=True):
                scripts[plugin, str(agents), length] = _SCALE.format(
                    agents=agents, minutes=minutes, plugin=plugin
                )
    smallest = min(args.agents)
    if not args.no_live:
        for transactional in (False, True):
            for length, rounds in zip(("long", "short"), LIVE_ROUNDS, strict=True):
                scripts["live", str(transactional), length] = _LIVE.format(
                    agents=smallest, rounds=rounds, transactional=transactional
                )
    print(
        f"{len(scripts)} runs under valgrind, {args.jobs} at a time; "
        "instructions per interaction (long run minus short run)\n",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        counts = dict(zip(scripts, pool.map(counted, scripts.values()), strict=True))

    print(f"{'plugin':<17}{'agents':>8}{'instructions':>15}{'ratio':>8}")
    for plugin in args.plugins:
        base = None
        for agents in args.agents:
            cost = per_unit(
                counts[plugin, str(agents), "long"], counts[plugin, str(agents), "short"]
            )
            base = base or cost
            print(f"{plugin:<17}{agents:>8}{cost:>15,.0f}{cost / base:>7.2f}x")
    if not args.no_live:
        off = per_unit(counts["live", "False", "long"], counts["live", "False", "short"])
        on = per_unit(counts["live", "True", "long"], counts["live", "True", "short"])
        print(
            f"\nbench.live, {smallest} agents, instructions per round: undo log off {off:,.0f}, "
            f"on {on:,.0f}: {on / off:.3f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
