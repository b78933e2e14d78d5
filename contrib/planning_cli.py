"""`omniroute sweep` and `omniroute staff`: many simulations, on Dask or in process.

Registered on the `omniroute` group by contrib/cli.py; kept apart so that the commands of
the single-run tools and these can change without touching each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .cli import UserError, _debug_option, _require_charts, cli
from .fanout import Failure, Runner, Store

DEFAULT_STORE = Path(".omniroute-runs")


def _runner_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--workers",
                type=click.IntRange(min=0),
                help="Dask workers of the local cluster (default: one per core); 0 runs in this process.",
            ),
            click.option(
                "--scheduler",
                metavar="ADDRESS",
                help="Use the Dask cluster at ADDRESS (such as tcp://10.0.0.5:8786) instead of a local one.",
            ),
            click.option(
                "--replications",
                "-r",
                type=click.IntRange(min=1),
                default=5,
                show_default=True,
                help="Simulations of each point, on seeds seed, seed+1, ...",
            ),
            click.option("--seed", type=int, help="Override the workload's seed."),
            click.option(
                "--store",
                type=click.Path(file_okay=False, path_type=Path),
                default=DEFAULT_STORE,
                show_default=True,
                help="Folder that keeps finished simulations, so that a run started again resumes.",
            ),
            click.option(
                "--no-store", is_flag=True, help="Keep nothing on disk (and resume nothing)."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the results as JSON."),
            click.option(
                "--plot",
                "plot_dir",
                type=click.Path(file_okay=False, path_type=Path),
                help="Write PNG charts to this folder.",
            ),
            click.option(
                "--report",
                "report_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write one self-contained HTML page with the tables and charts.",
            ),
        ]
    ):
        command = option(command)
    return command


def _runner(workers: int | None, scheduler: str | None, store: Path, no_store: bool) -> Runner:
    if scheduler is not None and workers is not None:
        raise UserError("give --workers or --scheduler, not both")
    return Runner(workers=workers, scheduler=scheduler, store=Store(None if no_store else store))


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A bar over simulations on a terminal's stderr; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        job = bar.add_task(label, total=total)
        yield lambda n: bar.advance(job, n)


def _report_failures(failures: list[Failure] | tuple[Failure, ...]) -> None:
    for failure in failures:
        where = ", ".join(f"{key}={value}" for key, value in failure.job.label.items())
        click.echo(f"error: the point {where} failed: {failure.error}", err=True)


def _interrupted(runner: Runner) -> UserError:
    kept = runner.store.folder
    where = (
        f"finished simulations are kept in {kept}; run the same command again to resume"
        if kept is not None
        else "nothing was kept (--no-store)"
    )
    return UserError(f"interrupted: {where}", exit_code=130)


@cli.command("sweep")
@click.argument("workload", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--vary",
    "varies",
    multiple=True,
    metavar="KEY=VALUES",
    help="What changes: agents=10:14, agents.GROUP=4,6, scale=0.9:1.1:0.1, deployment=a.yaml,b.yaml, "
    "or a workload path such as traffic[0].rate=300/h,360/h. Repeat for a grid.",
)
@_runner_options
@_debug_option
def sweep_command(
    workload: Path,
    varies: tuple[str, ...],
    workers: int | None,
    scheduler: str | None,
    replications: int,
    seed: int | None,
    store: Path,
    no_store: bool,
    as_json: bool,
    plot_dir: Path | None,
    report_file: Path | None,
) -> None:
    """Simulate every combination of the --vary values, each R times, with 95% intervals.

    Every point is checked before anything runs. Points run on a local Dask cluster (one
    worker per core), an existing one (--scheduler) or in this process (--workers 0);
    the same seeds give the same figures on any of them. A failed point is reported with
    its parameters and the others are kept; finished simulations are kept in --store, so
    an interrupted sweep resumes where it stopped.

    Exit status: 0 when every point ran, 1 when any failed, 2 for a bad specification.
    """
    from rich.console import Console

    from . import sweep as sweeps
    from .charts import sweep_table, write_sweep_plots, write_sweep_report

    _require_charts(plot_dir, report_file)

    planned = sweeps.plan(workload, list(varies), replications, seed)
    runner = _runner(workers, scheduler, store, no_store)
    total = len(planned.points) * planned.replications
    click.echo(
        f"{len(planned.points)} point(s) × {planned.replications} replication(s) on {runner.description}",
        err=True,
    )
    try:
        with runner, _progress("simulating", total) as done:
            result = sweeps.run(planned, runner, done)
    except KeyboardInterrupt:
        raise _interrupted(runner) from None
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        sweep_table(result, Console(width=None if sys.stdout.isatty() else 160))
    if plot_dir is not None:
        for path in write_sweep_plots(result, plot_dir):
            click.echo(f"wrote {path}", err=as_json)
    if report_file is not None:
        write_sweep_report(result, report_file)
        click.echo(f"wrote {report_file}", err=as_json)
    _report_failures(result.failures)
    if result.failures:
        raise click.exceptions.Exit(1)


@cli.command("staff")
@click.argument("workload", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="[QUEUE=]LEVEL/SECONDS",
    help="Service-level target: 80/20 is 80% answered within 20 s (the default is 80% within the "
    "workload's threshold); QUEUE=90/30 for one queue. Repeat for several.",
)
@click.option(
    "--interval",
    default="30m",
    show_default=True,
    metavar="DURATION",
    help="Length of the planning interval: 15m or 30m.",
)
@click.option(
    "--warmup",
    default="30m",
    show_default=True,
    metavar="DURATION",
    help="Simulated time before each interval's window, so it does not start from an empty center.",
)
@click.option(
    "--window",
    metavar="DURATION",
    help="Simulated time measured per interval, at its rates (default: the interval). Longer is "
    "more precise and slower.",
)
@_runner_options
@_debug_option
def staff_command(
    workload: Path,
    targets: tuple[str, ...],
    interval: str,
    warmup: str,
    window: str | None,
    workers: int | None,
    scheduler: str | None,
    replications: int,
    seed: int | None,
    store: Path,
    no_store: bool,
    as_json: bool,
    plot_dir: Path | None,
    report_file: Path | None,
) -> None:
    """The fewest agents of each group per interval for which every queue meets its target.

    Each interval is simulated through the real policy at that interval's rates; the
    search starts from Erlang C's answer, brackets it, then bisects on simulations.
    Erlang C's answer is shown beside the policy's, so the difference the policy makes is
    visible. Runs on Dask like `sweep` (--workers, --scheduler, --store).
    """
    from rich.console import Console

    from .charts import staff_table, write_staff_plots, write_staff_report
    from .intervals import parse_interval
    from .staffing import staff

    _require_charts(plot_dir, report_file)

    try:
        interval_seconds = parse_interval(interval)
        warmup_seconds = parse_interval(warmup) if warmup not in ("0", "0s", "0m") else 0.0
        window_seconds = parse_interval(window) if window is not None else None
    except ValueError as error:
        raise UserError(f"--interval/--warmup/--window: {error}") from error
    runner = _runner(workers, scheduler, store, no_store)
    click.echo(f"searching on {runner.description}", err=True)
    try:
        with runner, _progress("simulating", None) as done:
            result = staff(
                workload,
                runner,
                targets=list(targets),
                interval_seconds=interval_seconds,
                replications=replications,
                seed=seed,
                warmup=warmup_seconds,
                window=window_seconds,
                done=done,
            )
    except KeyboardInterrupt:
        raise _interrupted(runner) from None
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        staff_table(result, Console(width=None if sys.stdout.isatty() else 160))
    if plot_dir is not None:
        for path in write_staff_plots(result, plot_dir):
            click.echo(f"wrote {path}", err=as_json)
    if report_file is not None:
        write_staff_report(result, report_file)
        click.echo(f"wrote {report_file}", err=as_json)
    _report_failures(result.failures)
    if result.failures:
        raise click.exceptions.Exit(1)
