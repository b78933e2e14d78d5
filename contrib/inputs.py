"""What scenario files, workload files and rosters have in common: agents, a start time, a
deployment given by path or inline. One reader each, so the three files agree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import attrs

from omniroute.core import DEFAULT_START, Deployment, DeploymentError, Problem, load_deployment
from omniroute.core.converter import structure_each
from omniroute.core.limits import MAX_AGENTS


@attrs.frozen
class AgentSpec:
    """An agent, or `count` of them with `{n}` in the id numbering them from 1."""

    channels: dict[str, int]
    id: str = "a{n}"
    count: int = 1
    attributes: dict[str, Any] = attrs.Factory(dict)
    groups: tuple[str, ...] = ()
    status: str = "ready"


@attrs.frozen
class RosterAgent:
    id: str
    channels: dict[str, int]
    attributes: dict[str, Any]
    groups: tuple[str, ...]
    status: str


def expand_roster(
    specs: Iterable[AgentSpec | None], problems: list[Problem], prefix: str = "agents"
) -> list[RosterAgent]:
    """One RosterAgent per agent, `count` expanded; duplicates and bad counts are problems.

    An entry that could not be read (None, its problems already reported) is skipped, and
    the others keep their index in the key paths."""
    agents: list[RosterAgent] = []
    seen: set[str] = set()
    specs = list(specs)
    total = sum(max(spec.count, 0) for spec in specs if spec is not None)
    if total > MAX_AGENTS:
        # Refused before anything is expanded: a count of 10**9 must not fill memory.
        problems.append(Problem(prefix, f"{total} agents in all; the limit is {MAX_AGENTS}"))
        return []
    for index, spec in enumerate(specs):
        path = f"{prefix}[{index}]"
        if spec is None:
            continue
        if spec.count < 1:
            problems.append(Problem(f"{path}.count", "must be at least 1"))
            continue
        if spec.count > 1 and "{n}" not in spec.id:
            problems.append(
                Problem(f"{path}.id", 'with a count above 1 the id needs {n}, such as "a{n}"')
            )
            continue
        for n in range(1, spec.count + 1):
            agent_id = spec.id.replace("{n}", str(n))
            if agent_id in seen:
                problems.append(Problem(f"{path}.id", f"agent {agent_id!r} is defined twice"))
                break
            seen.add(agent_id)
            agents.append(
                RosterAgent(
                    agent_id, dict(spec.channels), dict(spec.attributes), spec.groups, spec.status
                )
            )
    return agents


def read_roster(entries: Any, label: str) -> list[RosterAgent]:
    """A roster from raw data (a list of agents); DeploymentError lists every problem."""
    specs, problems = structure_each(entries, AgentSpec, prefix="agents")
    agents = expand_roster(specs or (), problems)
    if problems:
        raise DeploymentError(label, problems)
    return agents


def parse_start(value: Any) -> datetime:
    """`start:` as YAML and TOML give it (a datetime or date) or as text; naive means UTC."""
    if value is None:
        return DEFAULT_START
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as error:
            raise ValueError(
                f"expected an ISO date-time such as 2026-01-05T09:00:00+01:00, got {value!r}"
            ) from error
    else:
        raise ValueError(
            f"expected an ISO date-time such as 2026-01-05T09:00:00+01:00, got {value!r}"
        )
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=DEFAULT_START.tzinfo)


def load_referenced_deployment(
    source: Any, base: Path, label: str, problems: list[Problem]
) -> Deployment | None:
    """A file's `deployment:`, a path relative to the file or an inline mapping; its problems
    join the file's, each under `deployment`."""
    try:
        if isinstance(source, str):
            return load_deployment(base / source)
        if isinstance(source, Mapping):
            return load_deployment(source, name=f"{label} (inline deployment)")
        if source is not None:
            problems.append(Problem("deployment", "expected a path or an inline mapping"))
    except DeploymentError as error:
        where = "deployment" if isinstance(source, Mapping) else f"deployment ({error.source})"
        problems.extend(
            Problem(f"{where}: {problem.path}", problem.message) for problem in error.problems
        )
    return None
