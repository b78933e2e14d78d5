"""Why a task went where it went: the decision records of a scenario run, for people and tools."""

from __future__ import annotations

from typing import Any

from omniroute.core import Decision, Engine, Task

from .tables import text_table


def _at(engine: Engine, seconds: float) -> str:
    return f"{seconds:g} s ({engine.wall_time(seconds).strftime('%Y-%m-%d %H:%M:%S %Z')})"


def _keys(candidate_keys: tuple[tuple[str, Any], ...]) -> str:
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value + 0.0:g}"  # -0.0 reads as 0
        if isinstance(value, tuple):
            return "(" + ", ".join(show(item) for item in value) + ")"
        return str(value)

    return "  ".join(f"{name}={show(value)}" for name, value in candidate_keys)


def explain_lines(engine: Engine, task: Task) -> list[str]:
    lines = [
        f"Task {task.id}: {task.channel}, priority {task.priority}, created at {_at(engine, task.created_at)}",
        f"  now {task.state}"
        + (f" ({task.reason})" if task.reason else "")
        + (f": {task.message}" if task.message else ""),
        "  history:",
    ]
    lines += [f"    {at:>8g} s  {what}" for at, what in task.history]
    decisions = engine.decisions_for(task.id)
    offers = [d for d in decisions if d.winner is not None]
    for number, decision in enumerate(offers, start=1):
        lines.append("")
        lines.append(f"Offer {number} at {_at(engine, decision.at)}: to {decision.winner}")
        if number == 1 and (answered := _service_level(engine, task)) is not None:
            # what the simulator counts: the wait for the first offer
            verdict = "within" if answered["in_time"] else "over"
            lines.append(
                f"  first offered after {answered['waited']:g} s: {verdict} queue"
                f" {answered['queue']}'s service-level threshold of {answered['threshold']:g} s"
                f" (target {answered['target']:.0%})"
            )
        lines += _decision_lines(decision)
    failed = [d for d in decisions if d.winner is None]
    if failed:
        decision = failed[-1]
        lines.append("")
        lines.append(f"Last attempt, at {_at(engine, decision.at)}: nobody could take it")
        lines += _decision_lines(decision)
    if not decisions:
        lines.append("")
        if task.state == "rejected":
            lines.append(f"It was never routed: rejected on arrival ({task.reason}).")
        elif task.hold_reason is not None:
            lines.append(f"It was never routed: held ({task.hold_reason}) until {task.held_until}.")
        else:
            lines.append(
                "It was never routed: no routing attempt found an agent with room on its channel."
            )
    return lines


def _decision_lines(decision: Decision) -> list[str]:
    # Outside a workflow the target is named after the queue: say it once.
    where = f"queue {decision.queue}"
    if decision.target is not None and decision.target != where:
        where += f", {decision.target}"
    lines = [
        f"  {where}",
        f"  why: {decision.why}",
        *(f"  {note}" for note in decision.notes),
        "  agents considered (ranking keys: smaller comes first):",
    ]
    rows = []
    for candidate in decision.candidates:
        if candidate.eligible:
            mark = "winner" if candidate.agent == decision.winner else "eligible"
            rows.append((candidate.agent, mark, _keys(candidate.keys)))
        else:
            rows.append(
                (candidate.agent, "excluded", f"{candidate.excluded_by}: {candidate.reason}")
            )
    lines += text_table(("agent", "", "ranking keys, or why excluded"), rows, indent=4)
    return lines


def _service_level(engine: Engine, task: Task) -> dict[str, Any] | None:
    """How long the task waited for its first offer, against the service level of the queue
    it was offered from (docs/service-levels.md); None when not offered or none declared."""
    first = next((d for d in engine.decisions_for(task.id) if d.winner is not None), None)
    if first is None:
        return None
    declared = engine.deployment.service_level_of(first.queue)
    if declared is None:
        return None
    waited = first.at - task.created_at
    return {
        "queue": first.queue,
        "threshold": declared.threshold,
        "target": declared.target,
        "waited": waited,
        "in_time": waited <= declared.threshold,
    }


def explain_json(engine: Engine, task: Task) -> dict[str, Any]:
    return {
        "task": task.id,
        "channel": task.channel,
        "state": task.state,
        "reason": task.reason,
        "message": task.message,
        "history": [{"at": at, "event": what} for at, what in task.history],
        "decisions": [decision.to_json() for decision in engine.decisions_for(task.id)],
        "service_level": _service_level(engine, task),
    }
