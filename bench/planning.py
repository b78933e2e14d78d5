"""Sweeps and staffing at scale: what Dask buys, what a sweep costs over simulate.

    python -m bench.planning [--points 40] [--skip-staff]

1. A 40-point sweep of the contact-center example (agents.bpo × traffic scale, one
   replication a point) in process, then on a local Dask cluster of 2 workers: the
   speed-up, with and without the cluster's start-up (target: at least 1.7x).
2. The overhead per point of the sweep in process against bare `simulate` calls of the
   same workloads: planning, checking, reducing the figures, writing the store.
3. The wall time of `staff` for the example's day (30-minute intervals, defaults) on a
   local cluster of 2 workers.

Nothing is kept on disk between runs (each run uses a fresh store in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import attrs

from omniroute.contrib import sweep as sweeps
from omniroute.contrib.fanout import Runner, Store
from omniroute.contrib.simulator import simulate
from omniroute.contrib.staffing import staff
from omniroute.contrib.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "examples" / "contact-center" / "workload.yaml"


def grid(points: int) -> list[str]:
    scales = 4
    counts = max(points // scales, 1)
    return [f"agents.bpo=10:{10 + counts - 1}", "scale=0.9:1.2:0.1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--skip-staff", action="store_true")
    args = parser.parse_args(argv)
    planned = sweeps.plan(WORKLOAD, grid(args.points), replications=1)
    count = len(planned.points)
    print(f"sweep of {count} points of {WORKLOAD.relative_to(ROOT)}, 1 replication each")
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f} on {os.cpu_count()} cores\n")
    if load > 0.5:
        print("warning: the machine is busy; wall-clock ratios depend on the cores left free\n")

    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.perf_counter(), time.process_time()
        with Runner(workers=0, store=Store(Path(folder) / "a")) as runner:
            local = sweeps.run(planned, runner)
        in_process = time.perf_counter() - start
        in_process_cpu = time.process_time() - cpu

        start = time.perf_counter()
        with Runner(workers=2, store=Store(Path(folder) / "b")) as runner:
            runner._connect()  # start the cluster, timed apart
            started = time.perf_counter()
            clustered = sweeps.run(planned, runner)
            ran = time.perf_counter() - started
        on_cluster = time.perf_counter() - start
    same = json.dumps(local.to_json()) == json.dumps(clustered.to_json())

    start, cpu = time.perf_counter(), time.process_time()
    for point in planned.points:
        simulate(attrs.evolve(load_workload(point.workload), seed=planned.seed))
    bare = time.perf_counter() - start
    bare_cpu = time.process_time() - cpu

    print(f"{'':<34}{'wall':>8}  {'CPU of this process':>20}")
    print(f"{'in process':<34}{in_process:>8.1f} s{in_process_cpu:>18.1f} s")
    print(
        f"{'local cluster, 2 workers':<34}{on_cluster:>8.1f} s  (of which start-up {on_cluster - ran:.1f} s)"
    )
    print(f"{'bare simulate of the same points':<34}{bare:>8.1f} s{bare_cpu:>18.1f} s")
    print(f"same figures in process and on the cluster: {same}\n")
    print(
        f"speed-up, 2 workers over in process:      {in_process / on_cluster:5.2f}x  (target >= 1.7x)"
    )
    print(f"speed-up without the cluster's start-up:  {in_process / ran:5.2f}x")
    overhead = (in_process_cpu - bare_cpu) / count
    print(
        f"overhead per point over bare simulate:    {overhead * 1000:5.0f} ms of CPU "
        f"({overhead / (bare_cpu / count):.1%} of a {bare_cpu / count:.2f} s simulation)"
    )

    if not args.skip_staff:
        start = time.perf_counter()
        with Runner(workers=2) as runner:
            result = staff(WORKLOAD, runner)
        elapsed = time.perf_counter() - start
        evaluations = sum(entry.evaluations for entry in result.intervals)
        print(
            f"\nstaff, {len(result.intervals)} intervals of 30 minutes, {result.replications} "
            f"replications, 2 workers: {elapsed:.1f} s wall "
            f"({evaluations} staffings tried, {evaluations * result.replications} simulations)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
