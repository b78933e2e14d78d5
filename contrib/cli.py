"""The `omniroute` console script.

Errors a user can fix (a bad expression, file or event) are printed to stderr with a
non-zero exit and no traceback; `--debug` shows the traceback too.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from omniroute.core import DeploymentError, OmnirouteError, load_deployment
from omniroute.core import plugins as plugin_registry
from omniroute.grammar import KNOWN_ROOTS, ExpressionError, compile_expression

from . import scenario as scenarios

EXIT_USAGE = 2


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
        except DeploymentError as error:
            _maybe_traceback(ctx)
            raise UserError(str(error), exit_code=1) from error
        except (ExpressionError, OmnirouteError) as error:
            _maybe_traceback(ctx)
            raise UserError(str(error)) from error
        except Exception as error:
            _maybe_traceback(ctx)
            raise UserError(
                f"internal error: {type(error).__name__}: {error}"
                + ("" if _debug(ctx) else " (run with --debug for the traceback)"),
                exit_code=1,
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="omniroute")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """omniroute: omni-channel contact-center routing as a plugin framework.

    Evaluate routing expressions, validate deployments, test routing policies with
    scenario files and try what-if workloads.
    """
    if debug:
        ctx.ensure_object(dict)["debug"] = True


def _load_json(value: str | None, option: str) -> Any:
    """A JSON value given inline, or `@path` to read it from a file."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(f"{option}: cannot read {path}: {error.strerror}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = value if value.startswith("@") else "the value"
        raise UserError(
            f"{option}: {where} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from error


@cli.command("eval")
@click.argument("expression")
@click.option(
    "--task", "task_json", metavar="JSON", help="The task's attributes (JSON or @file.json)."
)
@click.option(
    "--worker", "worker_json", metavar="JSON", help="The agent's attributes (JSON or @file.json)."
)
@click.option(
    "--context",
    "context_json",
    metavar="JSON",
    help="The whole context, with roots such as task, worker, workers, taskrouter (JSON or @file.json).",
)
@click.option(
    "--default-root",
    type=click.Choice(sorted(KNOWN_ROOTS)),
    help="Root for bare references, as in queue target_workers (worker) or workflow filters (task).",
)
@_debug_option
def eval_command(
    expression: str,
    task_json: str | None,
    worker_json: str | None,
    context_json: str | None,
    default_root: str | None,
) -> None:
    """Evaluate EXPRESSION and print true or false.

    EXPRESSION is the text of the expression, or @file to read it from a file.

    \b
    Examples:
      omniroute eval 'task.language IN worker.languages' \\
          --task '{"language": "es"}' --worker '{"languages": ["es", "en"]}'
      omniroute eval 'skills HAS "sales"' --default-root worker --worker @agent.json

    Exit status: 0 when evaluated (whatever the result), 2 for a bad expression or input.
    """
    if expression.startswith("@"):
        path = Path(expression[1:])
        try:
            expression = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UserError(f"EXPRESSION: cannot read {path}: {error.strerror}") from error
    compiled = compile_expression(expression, default_root=default_root)
    context = _load_json(context_json, "--context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise UserError('--context: must be a JSON object, such as {"task": {...}}')
    for root, value, option in (("task", task_json, "--task"), ("worker", worker_json, "--worker")):
        loaded = _load_json(value, option)
        if loaded is not None:
            context[root] = loaded
    click.echo("true" if compiled.evaluate(context) else "false")


@cli.command("check")
@click.argument("deployment", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--agents",
    "agents_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A roster (a list of agents, or a scenario or workload with `agents`) to check the queues and groups against.",
)
@_debug_option
def check_command(deployment: Path, agents_file: Path | None) -> None:
    """Validate a DEPLOYMENT file (TOML, YAML or JSON) and list every problem.

    Errors fail the check; policy warnings (unreachable filters and targets, channels
    the deployment does not declare, calendars never open, queues or groups no agent of
    the roster can serve, ...) are shown with a fix but do not.

    Exit status: 0 when it is valid (warnings or not), 1 otherwise.
    """
    loaded = load_deployment(deployment)
    warnings = list(loaded.warnings)
    if agents_file is not None:
        warnings += _roster_warnings(loaded, agents_file)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    filters = len(loaded.workflow.filters) if loaded.workflow else 0
    click.echo(
        f"{deployment}: ok — {len(loaded.channels)} channel(s), {len(loaded.queues)} queue(s), "
        f"{filters} workflow filter(s), plugins: {', '.join(loaded.plugins) or 'none'}"
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per scenario, one per line.")
@_debug_option
def test_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Run scenario files, or every scenario under a folder.

    Prints a line per scenario and, for a failing one, what differs (expected and actual
    offers side by side). Exit status: 0 when all pass, 1 when any fails.
    """
    files = list(scenarios.find_scenarios(paths))
    if not files:
        raise UserError(f"no scenario files found in {', '.join(map(str, paths))}")
    failed = 0
    for path in files:
        result = scenarios.run_file(path)
        failed += not result.passed
        if as_json:
            click.echo(json.dumps(result.to_json()))
        else:
            for line in scenarios.report_lines(result):
                click.echo(line)
    if not as_json:
        click.echo(f"\n{len(files) - failed} passed, {failed} failed")
    if failed:
        raise click.exceptions.Exit(1)


@cli.command("explain")
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--task", "task_id", required=True, help="The task to explain.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@_debug_option
def explain_command(scenario: Path, task_id: str, as_json: bool) -> None:
    """Why a task of a SCENARIO went where it went.

    Runs the scenario, then shows for each offer of the task every agent considered: the
    filter that excluded it (and why), or its ranking keys, and why the winner won; for a
    task never offered, why nobody could take it.
    """
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
        click.echo(json.dumps(explain_json(engine, task)))
    else:
        for line in explain_lines(engine, task):
            click.echo(line)


@cli.command("simulate")
@click.argument("workload", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write PNG charts to this folder.",
)
@click.option("--seed", type=int, help="Override the workload's seed.")
@_debug_option
def simulate_command(
    workload: Path, as_json: bool, plot_dir: Path | None, seed: int | None
) -> None:
    """Run a what-if WORKLOAD (YAML, TOML or JSON) through its deployment.

    Shows a progress bar on a terminal and a report at the end; `--json` prints the
    figures instead, `--plot DIR` writes charts. The same seed gives the same figures.
    """
    import attrs
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .report import print_report, write_plots
    from .simulator import simulate
    from .workload import load_workload

    loaded = load_workload(workload)
    if seed is not None:
        loaded = attrs.evolve(loaded, seed=seed)
    # Piped output gets room for the whole table rather than rich's 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 140)
    if as_json or not sys.stdout.isatty():
        result = simulate(loaded)
    else:
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
    if as_json:
        click.echo(json.dumps(result.figures()))
    else:
        print_report(result, console)
    if plot_dir is not None:
        for path in write_plots(result, plot_dir):
            click.echo(f"wrote {path}", err=as_json)


@cli.command("plugins")
@_debug_option
def plugins_command() -> None:
    """List installed plugins, built-in and third-party, with their versions and hooks."""
    for info in plugin_registry.describe():
        hooks = ", ".join(hook.removeprefix("omniroute_") for hook in info.hooks)
        click.echo(f"{info.name:<18} {info.version:<10} {info.distribution:<14} {hooks}")


def _add_service_commands() -> None:
    from .serve import serve_command, token_command

    cli.add_command(_debug_option(serve_command))
    cli.add_command(_debug_option(token_command))


_add_service_commands()


def main(argv: list[str] | None = None) -> int:
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
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
