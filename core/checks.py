"""Policy checks: what makes a valid deployment silently wrong.

These are warnings (`omniroute check` shows them and exits 0): each names the key path and
says in one line how to fix it. Plugins add their own through `omniroute_validate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from omniroute.grammar import Expression
from omniroute.grammar.nodes import And, Compare, Condition, Literal, Not, Or, Reference, Truth
from omniroute.grammar.parser import parse_condition

from . import plugins as plugin_registry
from .converter import key_path
from .errors import Problem
from .spec import Deployment
from .state import Agent, worker_context

if TYPE_CHECKING:
    from .pipeline import Pipeline

MAX_USEFUL_WAIT = 24 * 3600.0


def _warning(path: str, message: str, fix: str) -> Problem:
    return Problem(path, f"{message}; fix: {fix}", "warning")


def _always_true(expression: Expression) -> bool:
    """An expression that reads nothing and is true, such as TaskRouter's `1 == 1`."""
    return not expression.references and expression.evaluate({}) is True


def workflow_warnings(deployment: Deployment) -> Iterator[Problem]:
    workflow = deployment.workflow
    if workflow is None:
        return
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for item in workflow.filters:
        path = f"workflow.filters[{item.index}]"
        if catch_all is not None:
            yield _warning(
                path,
                f"can never be reached: workflow.filters[{catch_all}] before it matches every task",
                f"move it before workflow.filters[{catch_all}], or narrow that filter's expression",
            )
        elif item.expression.source.strip() in seen:
            earlier = seen[item.expression.source.strip()]
            yield _warning(
                path,
                f"can never be reached: workflow.filters[{earlier}] has the same expression",
                "remove it, or change one of the two expressions",
            )
        seen.setdefault(item.expression.source.strip(), item.index)
        if catch_all is None and _always_true(item.expression):
            catch_all = item.index
        stuck: int | None = None
        total = 0.0
        for target in item.targets:
            if stuck is not None:
                yield _warning(
                    target.label,
                    f"can never be reached: {path}.targets[{stuck}] has no timeout and no skip_if, so tasks stay there",
                    f"give {path}.targets[{stuck}] a timeout",
                )
            if target.timeout is None and target.skip_if is None and stuck is None:
                stuck = target.index
            total += target.timeout or 0.0
        if total > MAX_USEFUL_WAIT:
            yield _warning(
                f"{path}.targets",
                f"tasks may wait {total / 3600:g} h in this filter's targets before they time out",
                "shorten the timeouts, or end with a target without timeout",
            )
    if catch_all is not None and workflow.default_queue is not None:
        yield _warning(
            "workflow.default_queue",
            f"is never used: workflow.filters[{catch_all}] matches every task",
            "remove default_queue, or narrow that filter",
        )


def deployment_expressions(deployment: Deployment) -> Iterator[tuple[str, Expression]]:
    """Every boolean expression of a deployment with its key path."""
    for name, queue in deployment.queues.items():
        yield key_path([name, "target_workers"], "queues"), queue.target_workers
        for step in queue.steps:
            yield f"{step.label}.expression", step.expression
    if deployment.workflow is not None:
        for item in deployment.workflow.filters:
            yield f"workflow.filters[{item.index}].expression", item.expression
            for target in item.targets:
                if target.expression is not None:
                    yield f"{target.label}.expression", target.expression


def _channel_literals(node: Condition) -> Iterator[str]:
    """String literals compared with `task.channel` (==, !=, IN, NOT IN)."""
    if isinstance(node, (And, Or)):
        for part in node.operands:
            yield from _channel_literals(part)
    elif isinstance(node, (Not, Truth)):
        if isinstance(node, Not):
            yield from _channel_literals(node.operand)
    elif isinstance(node, Compare):
        sides = (node.left, node.right)
        if any(
            (isinstance(side, Reference) and side.path[-1] == "channel" and side.path[0] == "task")
            or (isinstance(side, Reference) and side.path == ("channel",))
            for side in sides
        ):
            for side in sides:
                if isinstance(side, Literal):
                    values = side.value if isinstance(side.value, list) else [side.value]
                    yield from (value for value in values if isinstance(value, str))


def channel_warnings(deployment: Deployment) -> Iterator[Problem]:
    channels = set(deployment.channels)
    if not channels:
        return
    for path, expression in deployment_expressions(deployment):
        named = {
            ref.split(".")[2]
            for ref in expression.references
            if ref.startswith("worker.channel.") and ref.count(".") >= 2
        }
        named |= set(_channel_literals(parse_condition(expression.source)))
        for channel in sorted(named - channels):
            yield _warning(
                path,
                f"names channel {channel!r}, which the deployment does not declare",
                f"add {channel!r} to channels, or correct the name (channels: {', '.join(sorted(channels))})",
            )


def serving_agents(deployment: Deployment, queue: str, roster: Iterable[Agent]) -> list[Agent]:
    """The agents of a roster whose attributes make them members of a queue."""
    target_workers = deployment.queues[queue].target_workers
    return [agent for agent in roster if target_workers.evaluate({"worker": worker_context(agent)})]


def roster_warnings(deployment: Deployment, agents: Iterable[Agent]) -> Iterator[Problem]:
    """Queues that no agent of the roster can serve, then what each active plugin sees
    wrong with the roster (`omniroute_roster_warnings`)."""
    roster = list(agents)
    for name in deployment.queues:
        serving = serving_agents(deployment, name, roster)
        if not serving:
            yield _warning(
                key_path([name, "target_workers"], "queues"),
                f"no agent of the roster ({len(roster)} agents) can serve queue {name!r}",
                "give some agents the attributes it asks for, or loosen target_workers",
            )
        else:
            yield from step_warnings(deployment, name, serving)
    for plugin in deployment.plugins:
        found = plugin_registry.call_for(
            plugin,
            "omniroute_roster_warnings",
            deployment=deployment,
            section=deployment.section(plugin),
            roster=roster,
        )
        yield from found or ()


def step_warnings(deployment: Deployment, queue: str, serving: list[Agent]) -> Iterator[Problem]:
    """Proficiency steps (docs/proficiency-steps.md) that do nothing for this roster: a
    first step that admits none of the queue's agents (every task waits for the next), a
    later step that admits no one an earlier one did not (steps accumulate, so a step
    narrower than one before it widens nothing), or, alone, that the steps together admit
    no one. The steps of a queue where one reads the task depend on each task: left out."""
    steps = deployment.queues[queue].steps
    if not steps or not serving:
        return
    if any(ref.startswith("task.") for step in steps for ref in step.expression.references):
        return
    contexts = {agent.id: {"worker": worker_context(agent)} for agent in serving}
    agents = f"{len(serving)} agent{'s' if len(serving) != 1 else ''}"
    admitted: set[str] = set()
    found: list[Problem] = []
    for step in steps:
        now = {agent for agent, context in contexts.items() if step.expression.evaluate(context)}
        following = steps[step.index + 1] if step.index + 1 < len(steps) else None
        if step.index == 0 and not now and following is not None:
            found.append(
                _warning(
                    f"{step.label}.expression",
                    f"admits none of the {agents} of the roster that serve queue "
                    f"{queue!r}: every task waits {following.after:g} s for {following.label}",
                    "loosen the expression, or drop the step",
                )
            )
        elif step.index > 0 and not now - admitted:
            found.append(
                _warning(
                    f"{step.label}.expression",
                    f"widens nothing for this roster: every agent of queue {queue!r} it admits "
                    "was admitted by an earlier step already (steps accumulate, a step narrower "
                    "than one before it adds no one)",
                    "make each step wider than the one before it, or drop this one",
                )
            )
        admitted |= now
    if admitted:
        yield from found
    else:  # one warning says it all
        yield _warning(
            key_path([queue, "steps"], "queues"),
            f"no step admits any of the {agents} of the roster that serve queue "
            f"{queue!r}: its tasks are never offered",
            "loosen the last step's expression",
        )


def _by_plugin(components: Iterable[tuple[str | None, Any]]) -> dict[str, list[str]]:
    """The names of the components each plugin contributes, plugins in pipeline order
    (the core's left out: its place never moves)."""
    found: dict[str, list[str]] = {}
    for owner, component in components:
        if owner is not None:
            found.setdefault(owner, []).append(component.name)
    return found


def _listed(by_plugin: dict[str, list[str]]) -> str:
    return "; then ".join(f"{plugin} ({', '.join(names)})" for plugin, names in by_plugin.items())


def plugin_order_notes(pipeline: Pipeline) -> Iterator[Problem]:
    """Where the order of `plugins` changes routing in this deployment (severity "note").

    Order changes which plugin's ranking keys and task orderings come first (the later
    ones only break ties), the order preferences narrow in, and which arrival check's
    reason a task rejected by two gets. It changes nothing when only one active plugin
    contributes each of these; filters (all must pass), event handlers of different
    events, and orderings that lead (`TaskOrdering.leads`) do not depend on it.
    """

    def note(what: str, by_plugin: dict[str, list[str]], effect: str) -> Problem:
        return Problem(
            "plugins",
            f"the order of plugins decides {what}: {_listed(by_plugin)}; {effect}",
            "note",
        )

    ranking = _by_plugin(pipeline.ranking_keys)
    if len(ranking) > 1:
        yield note(
            "how agents are ranked",
            ranking,
            "a later plugin's keys only break ties of the earlier ones'",
        )
    leading = {
        owner: [item.name]
        for owner, item in pipeline.task_orderings
        if owner is not None and item.leads
    }
    orderings = _by_plugin(
        (owner, item) for owner, item in pipeline.task_orderings if not item.leads
    )
    if len(orderings) > 1:
        first = f" ({_listed(leading)} lead whatever the order)" if leading else ""
        yield note(
            "which waiting task goes first",
            orderings,
            f"a later plugin's orderings only break ties of the earlier ones'{first}",
        )
    preferences = _by_plugin(pipeline.preferences)
    if len(preferences) > 1:
        yield note(
            "the order preferences set agents aside in",
            preferences,
            "each narrows what the one before it kept",
        )
    arrivals = _by_plugin(pipeline.arrival_checks)
    if len(arrivals) > 1:
        yield note(
            "which reason a task rejected on arrival gets",
            arrivals,
            "the first check that rejects it gives the reason and message",
        )
