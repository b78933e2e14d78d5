"""`omniroute simulate` from process start to report, against another build, and where the
time goes.

    python -m bench.end_to_end [--baseline /path/to/other/venv/bin/omniroute]
        [--agents 10000] [--minutes 30] [--plugins least_occupancy capacity_share]
        [--repeat 3] [--no-demo] [--no-split]

Runs the contact-center demo (its text report) and the bench.scale workload of each
plugin (`--json`) through this checkout's `omniroute` and, with `--baseline`, through
another build's, alternately, so that both see the same machine; prints each run's wall
seconds with the load average before it, the best of each side and their ratio, and
whether the two outputs are byte-identical. Then, for each workload, the split of one
run of each build: interpreter start and exit, importing the CLI, loading the workload,
building the roster (`add_agent`), routing, figures, and writing the report. The split
runs the real console script's `main` in a fresh process, with timers wrapped around
those steps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "examples" / "contact-center" / "workload.yaml"
PHASES = ("import", "load", "roster", "routing", "figures", "report")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another build's omniroute command")
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--plugins", nargs="*", default=["least_occupancy", "capacity_share"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each build")
    parser.add_argument("--no-demo", action="store_true", help="skip the contact-center demo")
    parser.add_argument("--no-split", action="store_true", help="skip the split into steps")
    parser.add_argument("--phases", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phases:
        return _timed_cli(Path(args.phases[0]), args.phases[1:])
    from bench.scale import workload

    ours = shutil.which("omniroute") or str(Path(sys.executable).parent / "omniroute")
    builds = {"this build": ours}
    if args.baseline:
        builds["baseline"] = args.baseline
    with tempfile.TemporaryDirectory() as folder:
        inputs: dict[str, list[str]] = {}
        if not args.no_demo:
            inputs["contact-center demo"] = [str(DEMO)]
        for plugin in args.plugins:
            path = Path(folder) / f"{plugin}-{args.agents}.json"
            path.write_text(json.dumps(workload(args.agents, args.minutes, plugin)))
            label = f"{plugin}, {args.agents} agents, {args.minutes:g} min"
            inputs[label] = [str(path), "--json"]
        for label, arguments in inputs.items():
            print(f"\nomniroute simulate: {label}")
            _compare(builds, arguments, args.repeat, Path(folder))
            if not args.no_split:
                for name, command in builds.items():
                    steps = split(command, arguments, Path(folder))
                    print(f"  {name:<11} " + split_line(steps))
    return 0


def _compare(builds: dict[str, str], arguments: list[str], repeat: int, folder: Path) -> None:
    walls: dict[str, list[float]] = {name: [] for name in builds}
    cpus: dict[str, list[float]] = {name: [] for name in builds}
    outputs: dict[str, bytes] = {}
    for run in range(repeat):
        for name, command in builds.items():
            load = os.getloadavg()[0]
            wall, cpu, output = _wall([command, "simulate", *arguments], folder)
            walls[name].append(wall)
            cpus[name].append(cpu)
            outputs.setdefault(name, output)
            print(
                f"  run {run + 1}  {name:<11} {wall:7.2f} s wall  {cpu:7.2f} s CPU"
                f"   (load average {load:.2f})"
            )
    best = {name: min(times) for name, times in walls.items()}
    cpu = {name: min(times) for name, times in cpus.items()}
    print(
        "  best: "
        + ", ".join(f"{name} {best[name]:.2f} s wall, {cpu[name]:.2f} s CPU" for name in builds)
    )
    if "baseline" in best:
        same = len(set(outputs.values())) == 1
        print(
            f"  baseline / this build: {best['baseline'] / best['this build']:.2f}x wall,"
            f" {cpu['baseline'] / cpu['this build']:.2f}x CPU;"
            f" output {'identical' if same else 'DIFFERENT'}"
        )


def _wall(command: list[str], folder: Path) -> tuple[float, float, bytes]:
    """Seconds from process start to exit, the CPU seconds the process used (less
    sensitive to other work on the machine), and what the command printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True, cwd=folder)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.stdout


def split(command: str, arguments: list[str], folder: Path) -> dict[str, float]:
    """One run of a build's console script, its steps timed from inside."""
    python = Path(command).parent / "python"
    report = folder / "phases.json"
    start = time.perf_counter()
    # This file as a script, so that the build's own package and entry points are found
    # (a path to this checkout would bring in its entry points too).
    subprocess.run(
        [str(python), __file__, "--phases", str(report), json.dumps(arguments)],
        capture_output=True,
        check=True,
        cwd=folder,
    )
    wall = time.perf_counter() - start
    phases: dict[str, float] = json.loads(report.read_text())
    phases["start and exit"] = wall - sum(phases.values())
    phases["wall"] = wall
    return phases


def split_line(phases: dict[str, float]) -> str:
    return "  ".join(f"{name} {phases[name]:.2f}" for name in (*PHASES, "start and exit", "wall"))


def _timed_cli(report: Path, arguments: list[str]) -> int:
    """Run `omniroute simulate ARGUMENTS` as the console script does, with the time of
    each step added up in `report` (JSON)."""
    spent = dict.fromkeys(PHASES, 0.0)
    began = time.perf_counter()
    from omniroute.contrib import cli, simulator, workload
    from omniroute.core import Engine

    spent["import"] = time.perf_counter() - began

    under: list[str] = []  # the steps under way, innermost last

    def timed(step: str, function: Any) -> Any:
        """`function`, its time counted to `step`, and taken from the step it runs in."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            under.append(step)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                under.pop()
                spent[step] += took
                if under:
                    spent[under[-1]] -= took

        return wrapper

    from omniroute.contrib import report as reports

    # The CLI imports these inside its command, so the wrapped ones are what it calls.
    # Older builds lack some (the baseline before `--json` had a schema): those are left.
    for owner, name, step in (
        (workload, "load_workload", "load"),
        (simulator, "simulate", "routing"),
        (simulator.SimulationResult, "figures", "figures"),
        (Engine, "add_agent", "roster"),
        (cli, "echo_json", "report"),
        (cli, "print_report", "report"),
        (reports, "print_report", "report"),
    ):
        if hasattr(owner, name):
            setattr(owner, name, timed(step, getattr(owner, name)))
    sys.argv = ["omniroute", "simulate", *json.loads(arguments[0])]
    try:
        return cli.main()
    finally:
        report.write_text(json.dumps(spent))


if __name__ == "__main__":
    raise SystemExit(main())
