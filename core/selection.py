"""Choosing an agent for a task: the reference scan of the roster.

Every agent on the roster is tested against every filter in the pipeline, the eligible
ones are narrowed by the preferences and ranked by the ranking keys; the first wins.
With `record`, the decision lists every agent considered and why it lost, which is what
`omniroute explain` shows. This is the oracle the fast path (`fast_path.py`) must agree
with, and the path for queues the roster index cannot hold.

A task that found nobody remembers when it last looked (a stamp of the agents' versions):
until something it reads changes, only agents changed since can pass the filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import guards, timed
from .clock import Clock
from .contexts import Contexts
from .decisions import Candidate, Decision, explain_winner
from .pipeline import Pipeline
from .plugin_calls import blame, call_named, keys_of
from .spec import Deployment, Target
from .state import Agent, EngineState, Task, latest_agent_version


def reads_the_clock(deployment: Deployment, pipeline: Pipeline) -> bool:
    """Whether eligibility can change with time alone in this deployment."""
    expressions = [queue.target_workers for queue in deployment.queues.values()]
    expressions += [step.expression for queue in deployment.queues.values() for step in queue.steps]
    if deployment.workflow is not None:
        expressions += [
            target.expression
            for item in deployment.workflow.filters
            for target in item.targets
            if target.expression is not None
        ]
    reads_time = any(
        ref == "task.age" or ref.startswith("taskrouter")
        for expression in expressions
        for ref in expression.references
    )
    return reads_time or any(item.time_dependent for _, item in pipeline.filters)


class AgentSelection:
    """The reference scan, and what both paths share: ranking and failed attempts."""

    def __init__(
        self,
        deployment: Deployment,
        state: EngineState,
        pipeline: Pipeline,
        contexts: Contexts,
        clock: Clock,
    ) -> None:
        self.deployment = deployment
        self._state = state
        self.pipeline = pipeline
        self._contexts = contexts
        self._clock = clock
        self.time_dependent = reads_the_clock(deployment, pipeline)
        #: per waiting task that found nobody: (agent version stamp, clock, task position)
        self._failed: dict[str, tuple[int, float, tuple[Any, ...]]] = {}

    # --- failed attempts ---------------------------------------------------------------

    def forget(self, task_id: str | None = None) -> None:
        """Forget a task's failed attempt (None: every task's)."""
        if task_id is None:
            self._failed.clear()
        else:
            self._failed.pop(task_id, None)

    @staticmethod
    def _position(task: Task) -> tuple[Any, ...]:
        return (
            task.queue,
            task.filter_index,
            task.target_index,
            len(task.declined_by),
            task.priority,
            timed.stage(task),
        )

    def unchanged_since(self, task: Task) -> int | None:
        """The stamp of the task's last attempt if it found nobody and nothing it reads has
        moved since: then only agents changed after that stamp can pass the filters."""
        last = self._failed.get(task.id)
        if (
            last is not None
            and last[2] == self._position(task)
            and (not self.time_dependent or last[1] == self._clock.now)
        ):
            return last[0]
        return None

    def noted(self, task: Task, found: bool, stamp: int) -> None:
        if found:
            self._failed.pop(task.id, None)
        else:
            self._failed[task.id] = (stamp, self._clock.now, self._position(task))

    # --- ranking -------------------------------------------------------------------------

    def ranking_key(self, task: Task, agent: Agent, target: Target | None) -> tuple[Any, ...]:
        keys: list[Any] = []
        if target is not None and target.order_by is not None:
            keys.append(target.order_by.key({"worker": self._contexts.worker_view(agent)}))
        keys += keys_of(self.pipeline.ranking_keys, task, agent)
        keys.append(agent.roster_index)
        return tuple(keys)

    def incomparable(
        self, target: Target | None, keys: list[tuple[Any, ...]], error: TypeError
    ) -> Exception:
        """The PluginError naming the plugin whose ranking keys cannot be compared (the
        error path only); the TypeError itself when the core's own keys are at fault."""
        named: list[tuple[str | None, str]] = []
        if target is not None and target.order_by is not None:
            named.append((None, "order_by"))
        named += [(plugin, ranking.name) for plugin, ranking in self.pipeline.ranking_keys]
        named.append((None, "roster_order"))
        return guards.find_incomparable(named, keys, "ranking key") or error

    def ranking_names(self, target: Target | None) -> list[str]:
        names = ["order_by"] if target is not None and target.order_by is not None else []
        names += [
            ranking.name if plugin is None else f"{plugin}.{ranking.name}"
            for plugin, ranking in self.pipeline.ranking_keys
        ]
        return [*names, "roster_order"]

    # --- the scan ------------------------------------------------------------------------

    def choose(self, task: Task, *, record: bool) -> Decision:
        """The best eligible agent for a task now, considering every agent on the roster,
        with the reasons when `record` is set."""
        now = self._clock.now
        filters = self.pipeline.filters
        eligible: list[Agent] = []
        excluded: list[Candidate] = []
        position = 0
        agents: Iterable[Agent] = self._state.agents.values()
        if not record:
            since = self.unchanged_since(task)
            if since is not None:
                agents = [agent for agent in agents if agent.version > since]
            stamp = latest_agent_version()
        # One try around the whole scan instead of one per call: the hot loop stays a
        # plain loop, and `position` still names the filter that raised.
        try:
            for agent in agents:
                for position, (_plugin, item) in enumerate(filters):  # noqa: B007
                    if not item.test(task, agent):
                        break
                else:
                    eligible.append(agent)
                    continue
                if record:
                    plugin, item = filters[position]
                    name = item.name if plugin is None else f"{plugin}.{item.name}"
                    excluded.append(Candidate(agent.id, name, item.reason(task, agent), ()))
        except Exception as error:
            blame(filters, position, "filter", error)
        for plugin, preference in self.pipeline.preferences:
            preferred = [
                agent
                for agent in eligible
                if call_named(
                    plugin, "the preference {!r}", preference.name, preference.prefer, task, agent
                )
            ]
            if preferred and len(preferred) < len(eligible):
                if record:
                    kept = {agent.id for agent in preferred}
                    excluded += [
                        Candidate(
                            agent.id,
                            f"{plugin}.{preference.name}",
                            preference.reason(task, agent),
                            (),
                        )
                        for agent in eligible
                        if agent.id not in kept
                    ]
                eligible = preferred
        target = self.deployment.target_of(task)
        if not record:
            self.noted(task, bool(eligible), stamp)
            if not eligible:
                # Unrecorded, a failed attempt is only counted, never shown: like the
                # indexed path's, it carries no target label and no notes to build.
                return Decision(task.id, now, task.queue, None, (), None, "no agent is eligible")
        if not eligible:
            label = self.deployment.target_label(task)
            return Decision(
                task.id,
                now,
                task.queue,
                label,
                tuple(excluded),
                None,
                "no agent is eligible",
                timed.decision_notes(self.deployment, task, now),
            )
        keyed = [(self.ranking_key(task, agent, target), agent) for agent in eligible]
        try:
            keyed.sort(key=lambda pair: pair[0])
        except TypeError as error:
            raise self.incomparable(target, [key for key, _ in keyed], error) from error
        winner = keyed[0][1]
        if not record:
            return Decision(task.id, now, task.queue, None, (), winner.id, "")
        names = self.ranking_names(target)
        ranked = tuple(
            Candidate(agent.id, None, None, tuple(zip(names, key, strict=True)))
            for key, agent in keyed
        )
        return Decision(
            task.id,
            now,
            task.queue,
            self.deployment.target_label(task),
            ranked + tuple(excluded),
            winner.id,
            explain_winner(ranked),
            timed.decision_notes(self.deployment, task, now),
        )
