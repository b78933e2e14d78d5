"""Charts and reports a workforce planner would use: clock-time axes, interval figures,
the service-level target as a line, and one self-contained HTML page to mail.

matplotlib is imported inside the functions that draw, so that the commands that draw
nothing never load it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .intervals import clock, interval_figures
from .service_levels import target_lines, threshold_lines
from .simulator import SimulationResult
from .workload import Workload

if TYPE_CHECKING:
    from .staffing import StaffResult
    from .sweep import SweepResult

GROUP_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _clock_axis(axis: Any, start: datetime) -> None:
    dates: Any = import_module("matplotlib.dates")
    axis.xaxis.set_major_formatter(dates.DateFormatter("%H:%M", tz=start.tzinfo))
    axis.set_xlabel(f"clock time ({start.strftime('%a %d %b %Y, UTC%z')})")


def _times(start: datetime, offsets: Iterable[float]) -> list[datetime]:
    return [start + timedelta(seconds=offset) for offset in offsets]


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return buffer.getvalue()


# --- one simulation ------------------------------------------------------------------------


def service_level_chart(result: SimulationResult, start: datetime, interval: float) -> Any:
    """Service level per interval, overall and per queue, with each target as a line.

    Queues that share a target share its line. Each target line carries an SVG id
    (`service-level-target-N`, N from 0 in increasing target order) so that the HTML report,
    which inlines this chart as SVG, can be checked in a browser to draw it.
    """
    plt = _pyplot()
    figures = interval_figures(result, start, interval, 0)
    objectives = result.service_levels
    figure, axis = plt.subplots(figsize=(10, 4.5))
    axis.patch.set_gid("service-level-plot-area")  # the 0-105% box, to place the lines by
    centres = _times(start, [(n + 0.5) * interval for n in range(len(figures))])
    width = timedelta(seconds=interval * 0.9)
    levels = [f["service_level"] for f in figures]
    axis.bar(
        centres,
        [100 * level if level is not None else 0 for level in levels],
        width=width,
        color="lightsteelblue",
        label="all queues",
    )
    queues = sorted({queue for f in figures for queue in f["by_queue"]})
    colour = {q: GROUP_COLOURS[(n + 1) % len(GROUP_COLOURS)] for n, q in enumerate(queues)}
    for queue in queues:
        values = [f["by_queue"].get(queue, {}).get("service_level") for f in figures]
        objective = objectives.of(queue)
        axis.plot(
            centres,
            [100 * v if v is not None else float("nan") for v in values],
            marker="o",
            color=colour[queue],
            label=f"queue {queue} (within {objective.threshold:g} s)",
        )
    for n, (target, names) in enumerate(target_lines(objectives, queues)):
        line = axis.axhline(
            100 * target,
            color="red" if len(names) != 1 else colour.get(names[0], "red"),
            linestyle="--",
            label=f"target {target:.0%}" + (f": {', '.join(names)}" if names else ""),
        )
        line.set_gid(f"service-level-target-{n}")
    axis.set_ylim(0, 105)
    axis.set_ylabel("answered within the queue's threshold (%)")
    axis.set_title(f"service level per {interval / 60:g}-minute interval")
    _clock_axis(axis, start)
    axis.legend(fontsize=8, loc="lower left")
    axis.grid(alpha=0.3)
    return figure


def queue_chart(result: SimulationResult, start: datetime, staffed: int) -> Any:
    """Waiting tasks and busy agents, apart, with the agents staffed drawn as a line."""
    plt = _pyplot()
    times = _times(start, result.series["time"])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    top.fill_between(times, result.series["waiting"], step="post", color="tab:red", alpha=0.5)
    top.set_ylabel("tasks waiting")
    top.set_title("queue: tasks waiting for an agent")
    top.grid(alpha=0.3)
    bottom.fill_between(
        times,
        result.series["busy_agents"],
        step="post",
        color="tab:blue",
        alpha=0.5,
        label="busy agents (holding a task)",
    )
    bottom.axhline(staffed, color="black", linestyle="--", label=f"staffed agents ({staffed})")
    bottom.set_ylabel("agents")
    bottom.set_ylim(0, staffed * 1.1 + 1)
    bottom.legend(fontsize=8, loc="lower right")
    bottom.grid(alpha=0.3)
    _clock_axis(bottom, start)
    return figure


def occupancy_chart(result: SimulationResult) -> Any:
    """Occupancy of each agent coloured by its group, with each group's mean as a line."""
    plt = _pyplot()
    occupancy = result.figures()["occupancy_by_agent"]
    names = list(occupancy)
    groups = sorted({(result.agents[n] or ("(no group)",))[0] for n in names})
    colour = {g: GROUP_COLOURS[k % len(GROUP_COLOURS)] for k, g in enumerate(groups)}
    figure, axis = plt.subplots(figsize=(max(7, len(names) * 0.22), 4.5))
    group_of = [(result.agents[n] or ("(no group)",))[0] for n in names]
    axis.bar(
        range(len(names)),
        [occupancy[n] * 100 for n in names],
        color=[colour[g] for g in group_of],
    )
    for group in groups:
        members = [k for k, g in enumerate(group_of) if g == group]
        mean = sum(occupancy[names[k]] for k in members) / len(members) * 100
        axis.hlines(
            mean,
            min(members) - 0.4,
            max(members) + 0.4,
            colors=colour[group],
            linestyles="--",
            label=f"{group}: mean {mean:.0f}%",
        )
    overall = sum(occupancy.values()) / len(occupancy) * 100 if occupancy else 0.0
    axis.axhline(overall, color="black", linewidth=0.8, label=f"all agents: mean {overall:.0f}%")
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    axis.set_ylabel("occupancy (%)")
    axis.set_ylim(0, 105)
    axis.set_title("occupancy by agent, coloured by group (time holding at least one task)")
    axis.legend(fontsize=8, loc="upper right")
    return figure


def configured_split(workload: Workload) -> dict[str, dict[str, float]]:
    """Per queue, the share of each group that weighted_cascade is configured with (in %)."""
    section = workload.deployment.section("weighted_cascade")
    if section is None:
        return {}
    return {queue: dict(distribution.primary) for queue, distribution in section.queues.items()}


def share_chart(result: SimulationResult, workload: Workload) -> Any:
    """Per queue, the share of answered tasks by group, with counts, against the split."""
    plt = _pyplot()
    counts: dict[str, dict[str, int]] = {}
    for interaction in result.interactions:
        if interaction.queue and interaction.agent:
            for group in result.agents[interaction.agent] or ("(no group)",):
                per_queue = counts.setdefault(interaction.queue, {})
                per_queue[group] = per_queue.get(group, 0) + 1
    split = configured_split(workload)
    queues = sorted(counts)
    groups = sorted(
        {g for c in counts.values() for g in c} | {g for s in split.values() for g in s}
    )
    figure, axis = plt.subplots(figsize=(max(7, 2.5 * len(queues)), 4.5))
    width = 0.8 / max(len(groups), 1)
    for k, group in enumerate(groups):
        xs = [q + (k - (len(groups) - 1) / 2) * width for q in range(len(queues))]
        totals = [sum(counts[queue].values()) for queue in queues]
        shares = [
            100 * counts[queue].get(group, 0) / total if total else 0.0
            for queue, total in zip(queues, totals, strict=True)
        ]
        bars = axis.bar(
            xs, shares, width=width, color=GROUP_COLOURS[k % len(GROUP_COLOURS)], label=group
        )
        for bar, queue in zip(bars, queues, strict=True):
            axis.annotate(
                str(counts[queue].get(group, 0)),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        configured = [split.get(queue, {}).get(group) for queue in queues]
        marks = [(x, c) for x, c in zip(xs, configured, strict=True) if c is not None]
        if marks:
            axis.scatter(
                [x for x, _ in marks],
                [c for _, c in marks],
                marker="_",
                s=600,
                color="black",
                zorder=3,
                label="configured split" if k == 0 else None,
            )
    axis.set_xticks(range(len(queues)), [f"queue {q}" for q in queues])
    axis.set_ylabel("share of answered tasks (%)")
    axis.set_ylim(0, 110)
    axis.set_title("share by group (bars, with counts) against the configured split (black marks)")
    axis.legend(fontsize=8)
    return figure


def wait_chart(result: SimulationResult) -> Any:
    """Per channel, the share of answered tasks that waited longer than t, on a log axis."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 4.5))
    channels = sorted({i.channel for i in result.interactions})
    longest = 1.0
    for k, channel in enumerate(channels):
        waits = sorted(
            i.wait for i in result.interactions if i.channel == channel and i.wait is not None
        )
        if not waits:
            continue
        longest = max(longest, waits[-1])
        survival = [1 - n / len(waits) for n in range(len(waits))]
        axis.step(
            waits,
            [100 * s for s in survival],
            where="post",
            color=GROUP_COLOURS[k % len(GROUP_COLOURS)],
            label=f"{channel} ({len(waits)} answered, longest {waits[-1]:.0f} s)",
        )
    for threshold, queues in threshold_lines(result.service_levels, _used_queues(result)):
        axis.axvline(
            threshold,
            color="red",
            linestyle="--",
            label=f"threshold {threshold:g} s" + (f": {', '.join(queues)}" if queues else ""),
        )
    axis.set_yscale("log")
    axis.set_ylim(0.05, 110)
    axis.set_xlim(0, longest * 1.05)
    axis.set_xlabel("wait from arrival to offer (s)")
    axis.set_ylabel("answered tasks that waited longer (%, log)")
    axis.set_title("wait distribution per channel: the tail")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    return figure


def _used_queues(result: SimulationResult) -> list[str]:
    return sorted({i.queue for i in result.interactions if i.queue is not None})


def simulation_charts(
    result: SimulationResult, workload: Workload, interval: float
) -> dict[str, Any]:
    staffed = sum(1 for agent in workload.agents if agent.status == "ready")
    return {
        "service-level": service_level_chart(result, workload.start, interval),
        "queue": queue_chart(result, workload.start, staffed),
        "occupancy": occupancy_chart(result),
        "share-vs-split": share_chart(result, workload),
        "waits": wait_chart(result),
    }


def write_simulation_plots(
    result: SimulationResult, workload: Workload, folder: Path, interval: float
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in simulation_charts(result, workload, interval).items():
        path = folder / f"{name}.png"
        path.write_bytes(_png(figure))
        written.append(path)
    return written


# --- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f8; } td.miss { color: #b00; font-weight: bold; } td.met { color: #070; }
img, svg { max-width: 100%; height: auto; } .note { color: #555; font-size: 0.9em; }
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):  # (text, css class)
                cells.append(f'<td class="{cell[1]}">{html.escape(str(cell[0]))}</td>')
            else:
                cells.append(f"<td>{html.escape(str(cell))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(figure: Any, alt: str) -> str:
    data = base64.b64encode(_png(figure)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _svg(figure: Any, label: str) -> str:
    """The figure as inline SVG, so that its parts (the target lines) are elements of the
    page. Text is drawn as paths: nothing the user wrote reaches the markup but the ids we set."""
    buffer = io.StringIO()
    figure.tight_layout()
    with _pyplot().rc_context({"svg.fonttype": "path", "svg.hashsalt": "omniroute"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    _pyplot().close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML declaration and doctype have no place in HTML
    return (
        f'<figure role="img" aria-label="{html.escape(label)}">{text}'
        f"<figcaption class='note'>{html.escape(label)}</figcaption></figure>"
    )


def _page(title: str, sections: list[tuple[str, str, str]]) -> str:
    """sections: (id, heading, body html)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for ident, heading, body in sections:
        parts.append(f'<section id="{ident}"><h2>{html.escape(heading)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _level_cell(values: Mapping[str, Any]) -> tuple[str, str]:
    """A service level, marked `met` or `miss` against its target."""
    met = values.get("service_level_met")
    return _pct(values["service_level"]), {True: "met", False: "miss", None: ""}[met]


def _target_cell(values: Mapping[str, Any]) -> str:
    target, threshold = values.get("service_level_target"), values.get("service_level_threshold")
    if target is None:
        return "–"
    return f"{target:.0%}" + (f" in {threshold:g} s" if threshold is not None else "")


def _met_cell(values: Mapping[str, Any]) -> tuple[str, str]:
    met = values.get("service_level_met")
    return {True: ("met", "met"), False: ("missed", "miss"), None: ("–", "")}[met]


def simulation_report(result: SimulationResult, workload: Workload, interval: float) -> str:
    figures = result.figures()
    rows = []
    for label, values, judged in [
        ("all", figures, True),
        *((f"queue {q}", v, True) for q, v in figures["by_queue"].items()),
        *((f"channel {c}", v, False) for c, v in figures["by_channel"].items()),
        *((f"group {g}", v, False) for g, v in figures["by_group"].items()),
    ]:
        rows.append(
            [
                label,
                values["interactions"],
                values["answered"],
                values["abandoned"],
                _secs(values["mean_wait"]),
                _secs(values["p90_wait"]),
                _level_cell(values) if judged else _pct(values["service_level"]),
                _target_cell(values) if judged else "–",
                _met_cell(values) if judged else "–",
                _pct(values["occupancy"]),
            ]
        )
    staffed = sum(1 for agent in workload.agents if agent.status == "ready")
    by_interval = interval_figures(result, workload.start, interval, staffed)
    queues = sorted({queue for f in by_interval for queue in f["by_queue"]})
    interval_rows = [
        [
            f["clock"],
            f["interactions"],
            f["answered"],
            f["abandoned"],
            _level_cell(f),
            *(_level_cell(f["by_queue"][q]) if q in f["by_queue"] else "–" for q in queues),
            _secs(f["mean_wait"]),
            "–" if f["mean_waiting"] is None else f"{f['mean_waiting']:.1f}",
            "–" if f["mean_busy_agents"] is None else f"{f['mean_busy_agents']:.1f}",
            f["staffed_agents"],
        ]
        for f in by_interval
    ]
    charts = simulation_charts(result, workload, interval)
    start = workload.start
    objectives = result.service_levels
    targets = "; ".join(
        f"{html.escape(queue)} {objectives.of(queue).text()} (from the {objectives.of(queue).source})"
        for queue in sorted(figures["by_queue"])
    )
    overall = _target_cell(figures)
    intro = (
        f"<p>{html.escape(workload.name)}: {clock(start, 0)}–{clock(start, result.duration)} on "
        f"{start.strftime('%a %d %b %Y')}, seed {result.seed}, {staffed} agents staffed. "
        "Service level: answered within the queue's threshold over answered plus abandoned. "
        f"Targets: {targets or html.escape(objectives.default.text())}"
        + (f"; overall {html.escape(overall)}" if overall != "–" else "")
        + ".</p>"
    )
    sections = [
        (
            "summary",
            "Summary",
            intro
            + _table(
                [
                    "",
                    "interactions",
                    "answered",
                    "abandoned",
                    "mean wait",
                    "p90 wait",
                    "service level",
                    "target",
                    "met",
                    "occupancy",
                ],
                rows,
            ),
        ),
        (
            "intervals",
            f"By {interval / 60:g}-minute interval",
            _table(
                [
                    "interval",
                    "interactions",
                    "answered",
                    "abandoned",
                    "service level",
                    *(f"SL {q}" for q in queues),
                    "mean wait",
                    "mean waiting",
                    "mean busy agents",
                    "staffed",
                ],
                interval_rows,
            )
            + _svg(charts["service-level"], "service level per interval, with the targets"),
        ),
        ("queue", "Queue and agents", _image(charts["queue"], "waiting tasks and busy agents")),
        ("occupancy", "Occupancy by group", _image(charts["occupancy"], "occupancy by agent")),
        ("share", "Share by group", _image(charts["share-vs-split"], "share by group")),
        ("waits", "Wait distributions", _image(charts["waits"], "wait distribution per channel")),
    ]
    return _page(f"omniroute simulation: {workload.name}", sections)


def write_simulation_report(
    result: SimulationResult, workload: Workload, path: Path, interval: float
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(simulation_report(result, workload, interval), encoding="utf-8")


# --- sweeps --------------------------------------------------------------------------------


def _ci(figure: Mapping[str, Any] | None, percent: bool) -> str:
    if figure is None:
        return "–"
    scale, unit = (100, "%") if percent else (1, " s")
    text = f"{figure['mean'] * scale:.1f}{unit}"
    if figure["half_width"] is not None:
        text += f" ± {figure['half_width'] * scale:.1f}"
    return text


_SWEEP_COLUMNS = (
    ("service level", "service_level", True),
    ("mean wait", "mean_wait", False),
    ("p90 wait", "p90_wait", False),
    ("abandoned", "abandoned_share", True),
    ("occupancy", "occupancy", True),
)


def _met_count(figure: Mapping[str, Any] | None) -> str:
    """How many replications met the target: the mean of 1s and 0s times their count."""
    if figure is None:
        return "–"
    return f"{round(figure['mean'] * figure['n'])}/{figure['n']}"


def _sweep_rows(result: SweepResult) -> tuple[list[str], list[list[str]]]:
    keys = [v.key for v in result.sweep.variations]
    headers = [*keys, *(label for label, _, _ in _SWEEP_COLUMNS), "target met"]
    rows = [
        [
            *(str(p.point.parameters[k]) for k in keys),
            *(_ci(p.figures.get(metric), percent) for _, metric, percent in _SWEEP_COLUMNS),
            _met_count(p.figures.get("service_level_met")),
        ]
        for p in result.points
    ]
    return headers, rows


def sweep_table(result: SweepResult, console: Console) -> None:
    sweep = result.sweep
    console.print(
        f"[bold]{sweep.name}[/bold]: {len(sweep.points)} point(s), {sweep.replications} "
        f"replication(s) each on seeds {sweep.seed}…{sweep.seed + sweep.replications - 1}; "
        "mean ± half-width of the 95% confidence interval"
    )
    headers, rows = _sweep_rows(result)
    table = Table()
    for n, header in enumerate(headers):
        table.add_column(header, justify="left" if n == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def sweep_chart(result: SweepResult, metric: str = "service_level") -> Any:
    """`metric` against the first numeric key varied, one line per value of the other keys,
    with the 95% confidence band."""
    plt = _pyplot()
    keys = [v.key for v in result.sweep.variations]
    numeric = [
        v.key
        for v in result.sweep.variations
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values)
    ]
    figure, axis = plt.subplots(figsize=(9, 5))
    percent = metric in ("service_level", "abandoned_share", "occupancy") or metric.endswith(
        (".service_level", ".abandoned_share", ".occupancy")
    )
    scale = 100 if percent else 1
    x_key = numeric[0] if numeric else None
    others = [k for k in keys if k != x_key]
    lines: dict[tuple[Any, ...], list[Any]] = {}
    for point in result.points:
        lines.setdefault(tuple(point.point.parameters[k] for k in others), []).append(point)
    for k, (label, points) in enumerate(lines.items()):
        if x_key is not None:
            points = sorted(points, key=lambda p: p.point.parameters[x_key])
            xs: list[Any] = [p.point.parameters[x_key] for p in points]
        else:
            xs = list(range(len(points)))
        figures = [p.figures.get(metric) for p in points]
        means = [scale * f["mean"] if f else float("nan") for f in figures]
        colour = GROUP_COLOURS[k % len(GROUP_COLOURS)]
        name = ", ".join(f"{key}={value}" for key, value in zip(others, label, strict=True))
        axis.plot(xs, means, marker="o", color=colour, label=name or metric)
        if all(f and f["half_width"] is not None for f in figures):
            # a share cannot leave 0-100%, even where a t interval on few replications does
            bound = (0.0, 100.0) if percent else (float("-inf"), float("inf"))
            axis.fill_between(
                xs,
                [max(scale * f["low"], bound[0]) for f in figures if f],
                [min(scale * f["high"], bound[1]) for f in figures if f],
                color=colour,
                alpha=0.2,
            )
    if x_key is not None and all(isinstance(p.point.parameters[x_key], int) for p in result.points):
        axis.xaxis.set_major_locator(import_module("matplotlib.ticker").MaxNLocator(integer=True))
    if metric == "service_level" or metric.endswith(".service_level"):
        targets = sorted(
            {
                p.figures[f"{metric}_target"]["mean"]
                for p in result.points
                if f"{metric}_target" in p.figures
            }
        )
        for n, target in enumerate(targets):
            line = axis.axhline(
                100 * target, color="red", linestyle="--", linewidth=1, label=f"target {target:.0%}"
            )
            line.set_gid(f"service-level-target-{n}")
    axis.set_xlabel(x_key or "point")
    axis.set_ylabel(metric.replace("_", " ") + (" (%)" if percent else " (s)"))
    axis.set_title(
        f"{metric.replace('_', ' ')} with 95% confidence bands "
        f"({result.sweep.replications} replications a point)"
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def write_sweep_plots(result: SweepResult, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in ("service_level", "mean_wait", "occupancy"):
        path = folder / f"sweep-{metric.replace('_', '-')}.png"
        path.write_bytes(_png(sweep_chart(result, metric)))
        written.append(path)
    return written


def write_sweep_report(result: SweepResult, path: Path) -> None:
    headers, rows = _sweep_rows(result)
    sweep = result.sweep
    failed = ""
    if result.failures:
        failed = "<p class='note'>Failed points:</p>" + _table(
            ["parameters", "error"],
            [
                [", ".join(f"{k}={v}" for k, v in f.job.label.items()), f.error]
                for f in result.failures
            ],
        )
    sections = [
        (
            "summary",
            "Points",
            f"<p>{len(sweep.points)} point(s), {sweep.replications} replication(s) each on seeds "
            f"{sweep.seed}–{sweep.seed + sweep.replications - 1}. Each figure is the mean of the "
            "replications ± the half-width of its 95% confidence interval (Student's t).</p>"
            + _table(headers, rows)
            + failed,
        ),
        (
            "service-level",
            "Service level",
            _image(sweep_chart(result, "service_level"), "service level against the sweep"),
        ),
        ("waits", "Mean wait", _image(sweep_chart(result, "mean_wait"), "mean wait")),
        ("occupancy", "Occupancy", _image(sweep_chart(result, "occupancy"), "occupancy")),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(f"omniroute sweep: {sweep.name}", sections), encoding="utf-8")


# --- staffing ------------------------------------------------------------------------------


def staff_rows(result: StaffResult) -> tuple[list[str], list[list[Any]]]:
    groups = result.groups
    queues = sorted(result.targets_by_queue)
    headers = [
        "interval",
        "Erlang C agents",
        "policy agents",
        *groups,
        *(f"SL {q}" for q in queues),
    ]
    rows = []
    for entry in result.intervals:
        policy = entry.policy
        rows.append(
            [
                entry.clock,
                entry.erlang_c_agents,
                "–" if policy is None else sum(policy.values()),
                *("–" if policy is None else policy.get(g, 0) for g in groups),
                *(_ci(entry.service_levels.get(q), True) for q in queues),
            ]
        )
    return headers, rows


def staff_table(result: StaffResult, console: Console) -> None:
    console.print(
        f"[bold]{result.name}[/bold]: fewest agents per {result.interval / 60:g}-minute interval "
        f"for {result.target_text}; {result.confidence_text}"
    )
    headers, rows = staff_rows(result)
    table = Table()
    for n, header in enumerate(headers):
        table.add_column(header, justify="left" if n == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def staff_chart(result: StaffResult) -> Any:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 4.5))
    starts = _times(result.start, [n * result.interval for n in range(len(result.intervals))])
    ends = [*starts[1:], result.start + timedelta(seconds=len(result.intervals) * result.interval)]
    bottoms = [0.0] * len(starts)
    width = timedelta(seconds=result.interval * 0.9)
    for k, group in enumerate(result.groups):
        heights = [float((e.policy or {}).get(group, 0)) for e in result.intervals]
        axis.bar(
            starts,
            heights,
            bottom=bottoms,
            width=width,
            align="edge",
            color=GROUP_COLOURS[k % len(GROUP_COLOURS)],
            label=f"policy: {group}",
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    xs: list[datetime] = []
    ys: list[float] = []
    for entry, start, end in zip(result.intervals, starts, ends, strict=True):
        xs += [start, end]
        ys += [entry.erlang_c_agents, entry.erlang_c_agents]
    axis.plot(xs, ys, color="black", linestyle="--", label="Erlang C")
    axis.set_ylabel("agents")
    axis.set_title(f"agents needed for {result.target_text}: the policy against Erlang C")
    _clock_axis(axis, result.start)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    return figure


def write_staff_report(result: StaffResult, path: Path) -> None:
    headers, rows = staff_rows(result)
    sections = [
        (
            "summary",
            "Staffing by interval",
            f"<p>{html.escape(result.method_text)}</p>"
            + _table(headers, [[str(c) for c in row] for row in rows]),
        ),
        ("chart", "Policy against Erlang C", _image(staff_chart(result), "staffing per interval")),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(f"omniroute staffing: {result.name}", sections), encoding="utf-8")


def write_staff_plots(result: StaffResult, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "staffing.png"
    path.write_bytes(_png(staff_chart(result)))
    return [path]
