"""The `omniroute` console script.

Conventions shared by every command (the reference is docs/cli.md):

- exit status: 0 ok, 1 failures found (a scenario failed, `check` found errors), 2 bad
  input or usage, 3 internal error;
- `--json` prints JSON objects that carry `"schema": "omniroute.<command>/<version>"`;
- an argument that takes `@file` takes `@-` for standard input;
- errors go to stderr without a traceback unless `--debug`;
- a reader that closes the pipe (`| head`) ends the command quietly.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from omniroute.core import DeploymentError, OmnirouteError, load_deployment
from omniroute.core import plugins as plugin_registry
from omniroute.grammar import KNOWN_ROOTS, ExpressionError, compile_expression

from . import jsonout

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

#: The version of each command's JSON output; bumped when a key changes meaning or goes.
SCHEMA_VERSION = 1

#: True when `main` runs as the whole process (the console script), not called by a test
#: or a program: then what a command leaves behind can be left to the process's exit.
_whole_process = False


def schema(command: str) -> str:
    """The `schema` value of a command's JSON objects, such as "omniroute.test/1"."""
    return f"omniroute.{command}/{SCHEMA_VERSION}"


def echo_json(command: str, value: dict[str, Any]) -> None:
    click.echo(jsonout.dumps({"schema": schema(command), **value}))


class UserError(click.ClickException):
    """A problem in what the user gave us: printed plainly, exit 2 unless told otherwise."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a class variable

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """Turns our own errors into UserError, and anything else into a one-line report."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): end quietly, not with click's exit status 1.
            _silence_stdout()
            raise click.exceptions.Exit(EXIT_OK) from None
        except (ExpressionError, OmnirouteError) as error:
            # A deployment, scenario, workload, expression or event that cannot be used.
            _maybe_traceback(ctx)
            raise UserError(str(error)) from error
        except Exception as error:
            _maybe_traceback(ctx)
            raise UserError(
                f"internal error: {type(error).__name__}: {error}"
                + ("" if _debug(ctx) else " (run with --debug for the traceback)"),
                exit_code=EXIT_INTERNAL,
            ) from error


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or bool((root.obj or {}).get("debug"))


def _maybe_traceback(ctx: click.Context) -> None:
    if _debug(ctx):
        traceback.print_exc(file=sys.stderr)


def _debug_option(command: Any) -> Any:
    """`--debug` is accepted after the subcommand too, where users tend to type it."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_root().ensure_object(dict)["debug"] = True

    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="Show tracebacks for errors.",
    )(command)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`: omniroute's version, Python's, and every installed plugin's."""
    if not value or ctx.resilient_parsing:
        return
    import platform

    import omniroute

    click.echo(f"omniroute {omniroute.__version__} (Python {platform.python_version()})")
    click.echo("plugins:")
    for info in plugin_registry.describe():
        click.echo(f"  {info.name} {info.version} ({info.distribution})")
    ctx.exit(EXIT_OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version of omniroute and of every installed plugin, and exit.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """omniroute: omni-channel contact-center routing as a plugin framework.

    Evaluate routing expressions, validate deployments, test routing policies with
    scenario files and try what-if workloads.

    \b
    Every command takes --json (objects with a "schema" key) and --debug.
    Exit status: 0 ok, 1 failures found, 2 bad input or usage, 3 internal error.
    """
    if debug:
        ctx.ensure_object(dict)["debug"] = True


class _Stdin:
    """Standard input, read at most once per command (`@-` in two options is an error)."""

    def __init__(self) -> None:
        self.taken_by: str | None = None

    def read(self, option: str) -> str:
        if self.taken_by is not None:
            raise UserError(
                f"{option}: standard input (@-) was already read for {self.taken_by}; "
                "give one of them from a file"
            )
        self.taken_by = option
        return sys.stdin.read()


def _stdin(ctx: click.Context | None = None) -> _Stdin:
    root = (ctx or click.get_current_context()).find_root()
    stdin: _Stdin = root.ensure_object(dict).setdefault("stdin", _Stdin())
    return stdin


def _read_text(value: str, option: str) -> str:
    """The text of `@path`, or of standard input for `@-`."""
    if value == "@-":
        return _stdin().read(option)
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"{option}: cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise UserError(f"{option}: {path} is not UTF-8 text: {error.reason}") from error


def _load_json(value: str | None, option: str) -> Any:
    """A JSON value given inline, `@path` to read it from a file, or `@-` from stdin."""
    if value is None:
        return None
    text = _read_text(value, option) if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = (
            "standard input" if value == "@-" else value if value.startswith("@") else "the value"
        )
        raise UserError(
            f"{option}: {where} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from error


JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help='Print JSON (objects with a "schema" key).'
)


@cli.command("eval")
@click.argument("expression")
@click.option(
    "--task",
    "task_json",
    metavar="JSON",
    help="The task's attributes (JSON, @file.json, or @- for stdin).",
)
@click.option(
    "--worker",
    "worker_json",
    metavar="JSON",
    help="The agent's attributes (JSON, @file.json, or @- for stdin).",
)
@click.option(
    "--context",
    "context_json",
    metavar="JSON",
    help="The whole context, with roots such as task, worker, workers, taskrouter (JSON, @file.json, or @- for stdin).",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="NAME",
    help="A root of your own data, instead of TaskRouter's (repeat for several): --root customer.",
)
@click.option(
    "--default-root",
    metavar="NAME",
    help="Root for bare references, as in queue target_workers (worker) or workflow filters (task).",
)
@JSON_OPTION
@_debug_option
def eval_command(
    expression: str,
    task_json: str | None,
    worker_json: str | None,
    context_json: str | None,
    roots: tuple[str, ...],
    default_root: str | None,
    as_json: bool,
) -> None:
    """Evaluate EXPRESSION and print true or false.

    EXPRESSION is the text of the expression, @file to read it from a file, or @- to read
    it from standard input.

    \b
    Examples:
      omniroute eval 'task.language IN worker.languages' \\
          --task '{"language": "es"}' --worker '{"languages": ["es", "en"]}'
      omniroute eval 'customer.tier == "gold"' --root customer \\
          --context '{"customer": {"tier": "gold"}}'

    Exit status: 0 when evaluated (whatever the result), 2 for a bad expression or input.
    """
    if expression.startswith("@"):
        expression = _read_text(expression, "EXPRESSION").strip()
    known = frozenset(roots) if roots else KNOWN_ROOTS
    if default_root is not None and default_root not in known:
        raise UserError(
            f"--default-root: {default_root!r} is not a root; choose from {', '.join(sorted(known))}"
            + ("" if roots else ", or name your own with --root")
        )
    context = _load_json(context_json, "--context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise UserError('--context: must be a JSON object, such as {"task": {...}}')
    for root, value, option in (("task", task_json, "--task"), ("worker", worker_json, "--worker")):
        loaded = _load_json(value, option)
        if loaded is not None:
            context[root] = loaded
    try:
        compiled = compile_expression(
            expression, default_root=default_root, roots=roots if roots else None
        )
    except ExpressionError:
        raise
    except (TypeError, ValueError) as error:
        raise UserError(f"--root: {error}") from error
    result = compiled.evaluate(context)
    if as_json:
        echo_json(
            "eval",
            {
                "expression": compiled.source,
                "result": result,
                "references": sorted(compiled.references),
            },
        )
    else:
        click.echo("true" if result else "false")


@cli.command("check")
@click.argument("deployment", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--agents",
    "agents_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A roster (a list of agents, or a scenario or workload with `agents`) to check the queues and groups against.",
)
@click.option(
    "--workload",
    "workload_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A simulator workload whose traffic the deployment will take: warns about the queues it uses that declare no service level.",
)
@JSON_OPTION
@_debug_option
def check_command(
    deployment: Path, agents_file: Path | None, as_json: bool, workload_file: Path | None = None
) -> None:
    """Validate a DEPLOYMENT file (TOML, YAML or JSON) and list every problem.

    Errors fail the check; policy warnings (unreachable filters and targets, channels
    the deployment does not declare, calendars never open, queues or groups no agent of
    the roster can serve, queues a --workload uses without a service level, ...) are shown
    with a fix but do not. Notes say where the
    order of `plugins` changes routing in this deployment (ranking, task order,
    preferences, the reason of an arrival rejection), and nothing when it does not.

    Exit status: 0 when it is valid (warnings or not), 1 when it has errors (the check
    found failures, as `ruff check` does), 2 when the file or the roster cannot be read.
    """
    try:
        loaded = load_deployment(deployment)
    except DeploymentError as error:
        if as_json:
            echo_json(
                "check",
                {
                    "path": str(deployment),
                    "valid": False,
                    "problems": [_problem_json(problem) for problem in error.problems],
                },
            )
        else:
            click.echo(f"error: {error}", err=True)
        raise click.exceptions.Exit(EXIT_FAILURES) from error
    warnings = list(loaded.warnings)
    if agents_file is not None:
        warnings += _roster_warnings(loaded, agents_file)
    if workload_file is not None:
        from .workload import load_workload

        warnings += _service_level_warnings(loaded, load_workload(workload_file))
    warnings += _plugin_order_notes(loaded)
    filters = len(loaded.workflow.filters) if loaded.workflow else 0
    if as_json:
        echo_json(
            "check",
            {
                "path": str(deployment),
                "valid": True,
                "problems": [_problem_json(warning) for warning in warnings],
                "channels": len(loaded.channels),
                "queues": len(loaded.queues),
                "workflow_filters": filters,
                "plugins": list(loaded.plugins),
            },
        )
        return
    for warning in warnings:
        click.echo(f"{'note' if warning.severity == 'note' else 'warning'}: {warning}", err=True)
    click.echo(
        f"{deployment}: ok — {len(loaded.channels)} channel(s), {len(loaded.queues)} queue(s), "
        f"{filters} workflow filter(s), plugins: {', '.join(loaded.plugins) or 'none'}"
    )


def _plugin_order_notes(deployment: Any) -> list[Any]:
    """Where the order of `plugins` matters for this deployment (docs/concepts.md)."""
    from omniroute.core import Engine
    from omniroute.core.checks import plugin_order_notes

    return list(plugin_order_notes(Engine(deployment).pipeline))


def _problem_json(problem: Any) -> dict[str, str]:
    return {"path": problem.path, "message": problem.message, "severity": problem.severity}


def _service_level_warnings(deployment: Any, workload: Any) -> list[Any]:
    """The queues the workload's traffic may use that have no service level to meet."""
    from .service_levels import missing_service_levels, queues_used

    return missing_service_levels(
        deployment,
        queues_used(deployment, workload.streams),
        workload.service_level_threshold,
        workload.service_level_target,
    )


def _roster_warnings(deployment: Any, path: Path) -> list[Any]:
    from omniroute.core import Agent, checks, read_mapping_file

    from .inputs import read_roster

    raw = read_mapping_file(path)
    entries = raw.get("agents") if isinstance(raw, dict) else raw
    agents = [
        Agent(
            id=a.id,
            roster_index=n,
            attributes=a.attributes,
            groups=a.groups,
            capacity=a.channels,
            status="ready",
        )
        for n, a in enumerate(read_roster(entries, str(path)))
    ]
    return list(checks.roster_warnings(deployment, agents))


@cli.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-k",
    "keyword",
    metavar="TEXT",
    help="Only the scenarios whose name or file path contains TEXT (any letter case).",
)
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first failing scenario.")
@click.option("-q", "--quiet", is_flag=True, help="Show only failing scenarios and the summary.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per scenario, one per line.")
@_debug_option
def test_command(
    paths: tuple[Path, ...], keyword: str | None, exitfirst: bool, quiet: bool, as_json: bool
) -> None:
    """Run scenario files, or every scenario under a folder.

    Prints a line per scenario and, for a failing one, what differs (expected and actual
    offers side by side). In a pytest run, `pytest PATH` collects the same files.

    Exit status: 0 when all pass, 1 when any fails, 2 when none is found or selected.
    """
    from . import scenario as scenarios

    files = list(scenarios.find_scenarios(paths))
    if not files:
        raise UserError(f"no scenario files found in {', '.join(map(str, paths))}")
    if keyword is not None:
        wanted = keyword.casefold()
        files = [
            path
            for path in files
            if wanted in str(path).casefold() or wanted in scenarios.name_of(path).casefold()
        ]
        if not files:
            raise UserError(f"-k {keyword!r}: no scenario's name or path contains it")
    passed = failed = 0
    for path in files:
        result = scenarios.run_file(path)
        passed += result.passed
        failed += not result.passed
        if as_json:
            echo_json("test", result.to_json())
        elif not (quiet and result.passed):
            for line in scenarios.report_lines(result):
                click.echo(line)
        if exitfirst and not result.passed:
            break
    if not as_json:
        stopped = len(files) - passed - failed
        click.echo(
            f"\n{passed} passed, {failed} failed"
            + (f" (stopped at the first failure; {stopped} not run)" if stopped else "")
        )
    if failed:
        raise click.exceptions.Exit(EXIT_FAILURES)


@cli.command("explain")
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--task", "task_id", required=True, help="The task to explain.")
@JSON_OPTION
@_debug_option
def explain_command(scenario: Path, task_id: str, as_json: bool) -> None:
    """Why a task of a SCENARIO went where it went.

    Runs the scenario, then shows for each offer of the task every agent considered: the
    filter that excluded it (and why), or its ranking keys, and why the winner won; for a
    task never offered, why nobody could take it.
    """
    from . import scenario as scenarios
    from .explain import explain_json, explain_lines

    loaded = scenarios.load_scenario(scenario)
    result = scenarios.run(loaded)
    engine = result.engine
    assert engine is not None
    if task_id not in engine.state.tasks:
        known = ", ".join(sorted(engine.state.tasks)) or "none"
        raise UserError(f"{scenario}: no task {task_id!r} in this scenario (tasks: {known})")
    task = engine.state.tasks[task_id]
    if as_json:
        echo_json("explain", explain_json(engine, task))
    else:
        for line in explain_lines(engine, task):
            click.echo(line)


@cli.command("simulate")
@click.argument("workload", type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write PNG charts to this folder.",
)
@click.option("--seed", type=int, help="Override the workload's seed.")
@click.option(
    "--interval",
    metavar="DURATION",
    help="Add figures per interval of the clock (15m, 30m) to --json, and the planner's charts to --plot.",
)
@click.option(
    "--target",
    metavar="LEVEL/SECONDS",
    help="The service-level target of the queues whose deployment declares none, such as 80 or 80/20 (default: the workload's service_level_target, 80%, within its service_level_threshold).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one self-contained HTML page with the tables and charts.",
)
@click.option("--overwrite", is_flag=True, help="Replace charts already in the --plot folder.")
@_debug_option
def simulate_command(
    workload: Path,
    as_json: bool,
    plot_dir: Path | None,
    seed: int | None,
    interval: str | None = None,
    target: str | None = None,
    report_file: Path | None = None,
    overwrite: bool = False,
) -> None:
    """Run a what-if WORKLOAD (YAML, TOML or JSON) through its deployment.

    Shows a progress bar on a terminal and a report at the end; `--json` prints the
    figures instead, `--plot DIR` writes charts. The same seed gives the same figures.
    """
    import attrs

    from .simulator import collector_paused, simulate
    from .workload import load_workload

    _require_charts(plot_dir, report_file)
    with collector_paused():  # a 10,000-agent roster is 100,000 objects, all kept
        loaded = load_workload(workload)
    if plot_dir is not None:
        from .report import check_plot_folder

        try:  # before the run, not after it
            check_plot_folder(plot_dir, overwrite=overwrite)
        except OSError as error:
            raise UserError(str(error)) from error
    if seed is not None:
        loaded = attrs.evolve(loaded, seed=seed)
    seconds, level = _planner_options(loaded, interval, target)
    if level is not None:
        loaded = attrs.evolve(loaded, service_level_target=level)
    for warning in _service_level_warnings(loaded.deployment, loaded):
        click.echo(f"warning: {warning}", err=True)
    if as_json or not sys.stdout.isatty():
        result = simulate(loaded)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            job = bar.add_task("run", total=loaded.duration, clock="0 h")
            result = simulate(
                loaded,
                progress=lambda at: bar.update(job, completed=at, clock=f"{at / 3600:.1f} h"),
            )
    if _whole_process:
        # The run's engine is garbage in reference cycles now (200,000 objects at 10,000
        # agents): collecting it cost most of a second, and so did the collector's walk
        # over what the report still needs, at exit. The process ends after the report.
        gc.freeze()
    if as_json:
        figures = result.figures()
        if interval is not None:
            from .intervals import interval_figures

            staffed = sum(1 for agent in loaded.agents if agent.status == "ready")
            figures["intervals"] = interval_figures(result, loaded.start, seconds, staffed)
        echo_json("simulate", figures)
    else:
        from .report import print_report

        # Piped output gets room for the whole table rather than rich's 80 columns.
        print_report(result, _console(piped_width=140))
    if plot_dir is not None:
        from .charts import write_simulation_plots
        from .report import write_plots

        try:
            written = write_plots(result, plot_dir, overwrite=overwrite)
        except OSError as error:
            raise UserError(str(error)) from error
        # The planner's charts (clock time, intervals) join the four of old with --interval.
        planned = write_simulation_plots(result, loaded, plot_dir, seconds) if interval else []
        for path in [*written, *planned]:
            click.echo(f"wrote {path}", err=as_json)
    if report_file is not None:
        from .charts import write_simulation_report

        write_simulation_report(result, loaded, report_file, seconds)
        click.echo(f"wrote {report_file}", err=as_json)


def _require_charts(plot_dir: Path | None, report_file: Path | None) -> None:
    """Say what to install before the run when `--plot` or `--report` cannot draw."""
    if plot_dir is None and report_file is None:
        return
    from .report import PlotsUnavailable, require_charts

    try:
        require_charts(plot_dir, report_file)
    except PlotsUnavailable as error:
        raise UserError(str(error)) from error


def _planner_options(
    workload: Any, interval: str | None, target: str | None
) -> tuple[float, float | None]:
    """The interval (seconds) for charts and reports, and the service-level target (a
    fraction) of the queues whose deployment declares none (None: the workload's)."""
    from .intervals import parse_interval
    from .staffing import parse_target

    try:
        seconds = parse_interval(interval) if interval is not None else 1800.0
        parsed = parse_target(target) if target is not None else None
    except ValueError as error:
        raise UserError(f"--interval/--target: {error}") from error
    if parsed is not None and parsed.threshold not in (None, workload.service_level_threshold):
        raise UserError(
            f"--target {target}: this workload measures answers within "
            f"{workload.service_level_threshold:g} s where the deployment declares no service"
            " level; change its service_level_threshold, declare the queues' service_level,"
            " or give the level alone (--target 80)"
        )
    return seconds, parsed.level if parsed is not None else None


@cli.command("plugins")
@JSON_OPTION
@_debug_option
def plugins_command(as_json: bool) -> None:
    """List installed plugins, built-in and third-party, with their versions and hooks."""
    infos = list(plugin_registry.describe())
    if as_json:
        echo_json(
            "plugins",
            {
                "plugins": [
                    {
                        "name": info.name,
                        "version": info.version,
                        "distribution": info.distribution,
                        "module": info.module,
                        "hooks": [hook.removeprefix("omniroute_") for hook in info.hooks],
                        "broken": info.error or None,
                    }
                    for info in infos
                ]
            },
        )
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("plugin", "version", "distribution", "hooks"):
        table.add_column(column, overflow="fold")
    for info in infos:
        hooks = ", ".join(hook.removeprefix("omniroute_") for hook in info.hooks)
        if info.error:
            hooks = f"BROKEN: {info.error}"
        table.add_row(info.name, info.version, info.distribution, hooks)
    _console().print(table)


def _console(piped_width: int = 120) -> Any:
    """A rich console on stdout: plain text when piped, as wide as the terminal or
    `piped_width` columns so that pipes see the whole table; a closed pipe ends quietly."""
    from rich.console import Console

    class QuietOnClosedPipe(Console):
        def on_broken_pipe(self) -> None:
            # rich's own answer is to exit with status 1; ours is the quiet exit 0.
            raise BrokenPipeError

    terminal = sys.stdout.isatty()
    return QuietOnClosedPipe(
        file=sys.stdout,
        width=None if terminal else piped_width,
        color_system="auto" if terminal else None,
        highlight=False,
    )


def _add_service_commands() -> None:
    from .serve import serve_command, token_command

    for command in (serve_command, token_command):
        # `python -m omniroute.contrib.cli` imports this module twice (as __main__ and by
        # planning_cli): the command objects are shared, so give them --debug once.
        if not any("--debug" in param.opts for param in command.params):
            _debug_option(command)
        cli.add_command(command)


_add_service_commands()


# sweep and staff live in their own module and register themselves on `cli`.
from . import planning_cli as _planning_cli  # noqa: E402

del _planning_cli


def main(argv: list[str] | None = None) -> int:
    """The console script; `argv` None: the process's own arguments, and the process ends
    when this returns."""
    global _whole_process
    _whole_process = argv is None
    try:
        code = _main(argv)
        # Piped output is block-buffered: a reader that already went away shows up here.
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    return code


def _main(argv: list[str] | None) -> int:
    try:
        # Without standalone mode click returns the code of a click.exceptions.Exit.
        code = cli.main(args=argv, prog_name="omniroute", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILURES
    return code if isinstance(code, int) else EXIT_OK


def _closed_pipe() -> int:
    """The reader closed the pipe (`omniroute test . | head`): stop quietly, exit 0."""
    _silence_stdout()
    return EXIT_OK


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is left in its buffer cannot be written either, and
    the interpreter's own flush at exit would otherwise print an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
