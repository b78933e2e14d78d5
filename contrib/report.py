"""Reports of a simulation: a table for people, PNG charts for slides."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .service_levels import target_lines, threshold_lines
from .simulator import SimulationResult

#: The files `write_plots` writes, in its folder.
PLOT_FILES = (
    "service-level-and-queue.png",
    "wait-distribution.png",
    "occupancy-by-agent.png",
    "share-by-group.png",
)


def check_plot_folder(folder: Path, *, overwrite: bool = False) -> None:
    """FileExistsError when a chart would replace a file (or link) and `overwrite` is off."""
    if overwrite:
        return
    existing = [name for name in PLOT_FILES if os.path.lexists(folder / name)]
    if existing:
        raise FileExistsError(
            f"{folder}: {', '.join(existing)} already exist(s); remove them,"
            " choose another folder or pass --overwrite"
        )


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _row(name: str, figures: dict[str, Any]) -> list[str]:
    rejected = sum(figures["rejected"].values())
    return [
        name,
        str(figures["interactions"]),
        str(figures["answered"]),
        str(figures["abandoned"]),
        str(rejected),
        _seconds(figures["mean_wait"]),
        _seconds(figures["p90_wait"]),
        "—" if figures["service_level"] is None else f"{figures['service_level']:.1%}",
        target_text(figures)
        + {True: " ✓", False: " ✗", None: ""}[figures.get("service_level_met")],
        f"{figures['occupancy']:.1%}",
    ]


def target_text(figures: dict[str, Any]) -> str:
    """ "80% in 20 s"; the threshold is left out where the queues of a row differ in it."""
    target, threshold = figures.get("service_level_target"), figures.get("service_level_threshold")
    if target is None:
        return "—"
    return f"{target:.0%}" + (f" in {threshold:g} s" if threshold is not None else "")


def print_report(result: SimulationResult, console: Console) -> None:
    figures = result.figures()
    hours = result.duration / 3600
    console.print(
        f"[bold]{result.workload}[/bold]: {hours:g} h simulated, seed {result.seed}; service"
        " level: answered within the queue's threshold (target ✓ met, ✗ missed)"
    )
    table = Table(show_lines=False)
    for column in (
        "",
        "interactions",
        "answered",
        "abandoned",
        "rejected",
        "mean wait",
        "p90 wait",
        "service level",
        "target",
        "occupancy",
    ):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row(*_row("all", figures), style="bold")
    for section, label in (("by_queue", "queue"), ("by_channel", "channel"), ("by_group", "group")):
        if figures[section]:
            table.add_section()
            for name, values in figures[section].items():
                table.add_row(*_row(f"{label} {name}", values))
    console.print(table)
    reasons = {
        **figures["rejected"],
        **{f"canceled: {k}": v for k, v in figures["canceled"].items()},
    }
    if reasons:
        console.print(
            "not routed: "
            + ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        )
    if figures["answered"] == 0 and figures["abandoned"] == 0:
        console.print("no answered interactions: no wait and no service level to report")
    if figures["unfinished"]:
        console.print(f"still waiting or in progress when the run stopped: {figures['unfinished']}")


PLOT_EXTRA_MISSING = (
    "{option} needs matplotlib, which the light install leaves out; "
    "install it with: pip install 'omniroute[plot]'"
)


class PlotsUnavailable(Exception):
    """`--plot` or `--report` was asked for where matplotlib is not installed."""


def import_matplotlib(option: str = "--plot") -> Any:
    """matplotlib, or PlotsUnavailable saying what to install (it is the `plot` extra)
    for `option`, the command-line option that draws."""
    try:
        import matplotlib
    except ImportError as error:
        raise PlotsUnavailable(PLOT_EXTRA_MISSING.format(option=option)) from error
    return matplotlib


def require_charts(plot_dir: Any, report_file: Any) -> None:
    """Before a run, not after minutes of it: PlotsUnavailable when `--plot` or
    `--report` (given when not None) cannot draw."""
    if plot_dir is not None:
        import_matplotlib("--plot")
    if report_file is not None:
        import_matplotlib("--report")


def write_plots(result: SimulationResult, folder: Path, *, overwrite: bool = False) -> list[Path]:
    """Service level and queue length over time, wait distribution, occupancy by agent, share by group.

    An existing file of the same name is an error unless `overwrite`; even then a symbolic
    link is replaced, never written through, so a planted link cannot redirect a chart.
    """
    matplotlib = import_matplotlib()

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    check_plot_folder(folder, overwrite=overwrite)
    written = []
    series = result.series
    hours = [t / 3600 for t in series["time"]]

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    # Over a rolling window of samples: one sampling interval alone holds too few answers.
    window = 8
    levels = []
    for index in range(len(series["time"])):
        start = max(0, index - window + 1)
        within = sum(series["answered_in_threshold"][start : index + 1])
        answered = sum(series["answered"][start : index + 1]) + sum(
            series["abandoned"][start : index + 1]
        )
        levels.append(within / answered if answered else float("nan"))
    top.plot(hours, [level * 100 for level in levels], color="tab:green", label="all queues")
    used = sorted({i.queue for i in result.interactions if i.queue is not None})
    for target, queues in target_lines(result.service_levels, used):
        top.axhline(
            target * 100,
            color="red",
            linestyle="--",
            linewidth=1,
            label=f"target {target:.0%}" + (f": {', '.join(queues)}" if queues else ""),
        )
    top.legend(fontsize=8, loc="lower left")
    top.set_ylabel("service level (%)\nwithin the queue's threshold, rolling")
    top.set_ylim(-5, 105)
    top.grid(alpha=0.3)
    bottom.plot(hours, series["waiting"], color="tab:blue", label="waiting")
    bottom.plot(hours, series["busy_agents"], color="tab:orange", label="busy agents")
    bottom.set_ylabel("count")
    bottom.set_xlabel("hours")
    bottom.legend()
    bottom.grid(alpha=0.3)
    figure.suptitle(f"{result.workload}: service level and queue over time")
    written.append(_save(figure, folder / "service-level-and-queue.png"))

    figure, axis = plt.subplots(figsize=(8, 4.5))
    waits = result.waits()
    axis.hist(waits or [0], bins=50, color="tab:purple")
    used = sorted({i.queue for i in result.interactions if i.queue is not None})
    for threshold, queues in threshold_lines(result.service_levels, used):
        axis.axvline(
            threshold,
            color="black",
            linestyle="--",
            label=f"{threshold:g} s" + (f": {', '.join(queues)}" if queues else ""),
        )
    axis.set_xlabel("wait from arrival to offer (s)")
    axis.set_ylabel("answered interactions")
    axis.set_title("wait distribution")
    axis.legend()
    written.append(_save(figure, folder / "wait-distribution.png"))

    occupancy = result.figures()["occupancy_by_agent"]
    figure, axis = plt.subplots(figsize=(max(6, len(occupancy) * 0.25), 4.5))
    names = list(occupancy)
    axis.bar(range(len(names)), [occupancy[name] * 100 for name in names], color="tab:orange")
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    axis.set_ylabel("occupancy (%)")
    axis.set_ylim(0, 100)
    axis.set_title("occupancy by agent (time holding at least one task)")
    written.append(_save(figure, folder / "occupancy-by-agent.png"))

    shares = result.first_offer_shares()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    queues = list(shares)
    groups = sorted({group for values in shares.values() for group in values})
    bottoms = [0.0] * len(queues)
    for group in groups:
        heights = [shares[queue].get(group, 0.0) * 100 for queue in queues]
        axis.bar(queues, heights, bottom=bottoms, label=group)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axis.set_ylabel("share of answered interactions (%)")
    axis.set_title("share by agent group, per queue")
    if groups:
        axis.legend()
    written.append(_save(figure, folder / "share-by-group.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    """Write to a new file beside `path`, then rename it over `path`: never through a link."""
    figure.tight_layout()
    handle, temporary = tempfile.mkstemp(prefix=".omniroute-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, dpi=110, format="png")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path
