"""What-if simulation: a workload's traffic through the real engine on a simulated clock.

The simulator owns arrivals, handle times and abandonment; everything else (workflow,
plugins, timers) is the same Engine as live routing, with auto-accept. Each traffic
stream draws from its own random generator seeded from the workload's seed, so the same
seed gives the same figures.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from omniroute.core import Engine, EngineOptions, Task, events

from .service_levels import Objective, Objectives, objectives
from .workload import Stream, Workload

#: how long after the traffic stops the simulator keeps going to let queues drain
DRAIN_LIMIT = 24 * 3600.0
SERIES_POINTS = 240
#: events between two `gc.freeze()` calls of a run (see `simulate`)
FREEZE_EVERY = 5000


@attrs.define
class Interaction:
    id: str
    stream: str
    channel: str
    arrival: float
    handle_time: float
    patience: float | None
    queue: str | None = None
    first_offer: float | None = None
    agent: str | None = None
    end: float | None = None
    state: str = "queued"
    reason: str | None = None
    #: the agent's own wrap-up time (None: the deployment's whole wrap_up)
    wrap_up: float | None = None
    #: when the agent's wrap-up after it ended (None: no wrap-up)
    wrap_end: float | None = None

    @property
    def wait(self) -> float | None:
        return None if self.first_offer is None else self.first_offer - self.arrival


@attrs.frozen
class SimulationResult:
    workload: str
    seed: int
    duration: float
    horizon: float
    threshold: float
    interactions: tuple[Interaction, ...]
    agents: dict[str, tuple[str, ...]]  # agent id -> groups
    series: dict[str, list[float]]
    events: int
    #: each queue's service-level target; None: `threshold` and 80% for every queue
    objectives: Objectives | None = None
    #: `figures()` once computed: the report, its charts and the CLI each ask for them
    _figures_made: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @property
    def service_levels(self) -> Objectives:
        if self.objectives is not None:
            return self.objectives
        return Objectives({}, Objective(self.threshold, 0.8, "workload"))

    def figures(self) -> dict[str, Any]:
        """The JSON the CLI prints: overall figures, then by queue, channel and group.

        Each interaction's wait is judged against its own queue's threshold; the overall
        figures and each queue's say the threshold and target they were measured against,
        and whether they met it (docs/service-levels.md). A copy each time: callers add to it.
        """
        if not self._figures_made:
            self._figures_made["figures"] = self._all_figures()
        return copy.deepcopy(self._figures_made["figures"])

    def _all_figures(self) -> dict[str, Any]:
        everything = list(self.interactions)
        objectives = self.service_levels
        # One pass sorts the interactions by queue and channel and each agent's spans by
        # queue and channel; a pass per queue, channel and group made the figures of a
        # 10,000-agent run cost a sixth of its routing.
        in_queue: dict[str, list[Interaction]] = {}
        on_channel: dict[str, list[Interaction]] = {}
        spans: dict[str, list[tuple[float, float]]] = {agent: [] for agent in self.agents}
        spans_in_queue: dict[str | None, dict[str, list[tuple[float, float]]]] = {}
        spans_on_channel: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for interaction in everything:
            queue, channel, agent = interaction.queue, interaction.channel, interaction.agent
            if queue is not None:
                in_queue.setdefault(queue, []).append(interaction)
            on_channel.setdefault(channel, []).append(interaction)
            if agent is not None and interaction.first_offer is not None:
                span = self._span(interaction)
                spans[agent].append(span)
                spans_in_queue.setdefault(queue, {}).setdefault(agent, []).append(span)
                spans_on_channel.setdefault(channel, {}).setdefault(agent, []).append(span)
        held = {agent: _union_length(own) for agent, own in spans.items() if own}
        roster = list(self.agents)
        queues = _queues(everything)
        thresholds = {queue: objectives.threshold_of(queue) for queue in queues}

        result = self._figures(everything, roster, held, thresholds)
        result.update(objectives.overall(queues, result["service_level"]))
        result.update(
            workload=self.workload,
            seed=self.seed,
            duration=self.duration,
            horizon=self.horizon,
            events=self.events,
        )
        result["by_queue"] = {
            queue: self._figures(
                in_queue[queue], roster, _held(spans_in_queue.get(queue, {})), thresholds
            )
            for queue in sorted(in_queue)
        }
        for queue, values in result["by_queue"].items():
            objective = objectives.of(queue)
            values.update(
                service_level_threshold=objective.threshold,
                service_level_target=objective.target,
                service_level_met=objective.met(values["service_level"]),
                service_level_from=objective.source,
            )
        result["by_channel"] = {
            channel: self._figures(
                on_channel[channel], roster, _held(spans_on_channel.get(channel, {})), thresholds
            )
            for channel in sorted(on_channel)
        }

        groups = sorted({group for groups in self.agents.values() for group in groups})
        result["by_group"] = {
            group: self._figures(
                [i for i in everything if i.agent is not None and group in self.agents[i.agent]],
                [agent for agent in roster if group in self.agents[agent]],
                held,
                thresholds,
            )
            for group in groups
        }
        result["service_levels"] = objectives.to_json()
        result["occupancy_by_agent"] = {
            agent: held.get(agent, 0.0) / self.horizon if self.horizon > 0 else 0.0
            for agent in roster
        }
        return result

    def _span(self, interaction: Interaction) -> tuple[float, float]:
        """From the offer to the end of the task, or of the wrap-up after it."""
        assert interaction.first_offer is not None
        end = interaction.wrap_end if interaction.wrap_end is not None else interaction.end
        return (interaction.first_offer, end if end is not None else self.horizon)

    def _figures(
        self,
        interactions: list[Interaction],
        agents: list[str],
        held: dict[str, float],
        thresholds: dict[str | None, float],
    ) -> dict[str, Any]:
        """The figures of some interactions; the occupancy is that of `agents` (in roster
        order), from `held`: how long each agent held at least one of the interactions;
        `thresholds`: the service-level threshold of each queue."""
        # One loop, not one per figure: this runs for every queue, channel and group.
        answered = abandoned = within = unfinished = 0
        waits: list[float] = []
        rejected: dict[str, int] = {}
        canceled: dict[str, int] = {}
        for interaction in interactions:
            state, reason = interaction.state, interaction.reason
            if interaction.first_offer is not None:
                answered += 1
                wait = interaction.first_offer - interaction.arrival
                waits.append(wait)
                within += wait <= thresholds[interaction.queue]
            if reason == "abandoned":
                abandoned += 1
            if state == "rejected":
                rejected[reason or "?"] = rejected.get(reason or "?", 0) + 1
            elif state == "canceled" and reason != "abandoned":
                canceled[reason or "?"] = canceled.get(reason or "?", 0) + 1
            elif state in ("queued", "reserved", "assigned"):
                unfinished += 1
        waits.sort()
        # what the service level is a share of: the answered and the abandoned
        offered_to = answered + abandoned
        return {
            "interactions": len(interactions),
            "answered": answered,
            "abandoned": abandoned,
            "rejected": rejected,
            "canceled": canceled,
            "unfinished": unfinished,
            # Nothing answered: no wait and no service level to speak of (null in JSON).
            "mean_wait": sum(waits) / len(waits) if waits else None,
            "p90_wait": _percentile(waits, 0.9) if waits else None,
            "service_level": within / offered_to if offered_to else None,
            "occupancy": self._occupancy(agents, held),
        }

    def _occupancy(self, agents: list[str], held: dict[str, float]) -> float:
        """Mean over the agents of the fraction of the horizon they held at least one task."""
        if not agents or self.horizon <= 0:
            return 0.0
        # in roster order, as the figures have always been summed
        return sum(held[agent] for agent in agents if agent in held) / (len(agents) * self.horizon)

    def waits(self) -> list[float]:
        return [i.wait for i in self.interactions if i.wait is not None]

    def first_offer_shares(self) -> dict[str, dict[str, float]]:
        """Per queue, the fraction of answered interactions whose agent belongs to each group."""
        shares: dict[str, dict[str, float]] = {}
        for queue in sorted({i.queue for i in self.interactions if i.queue and i.agent}):
            answered = [i for i in self.interactions if i.queue == queue and i.agent]
            counts: dict[str, int] = {}
            for interaction in answered:
                for group in self.agents[interaction.agent or ""] or ("(no group)",):
                    counts[group] = counts.get(group, 0) + 1
            shares[queue] = {
                group: count / len(answered) for group, count in sorted(counts.items())
            }
        return shares


def _queues(interactions: Iterable[Interaction]) -> set[str | None]:
    return {interaction.queue for interaction in interactions}


def _held(spans: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Per agent, how long its spans cover (overlapping spans counted once)."""
    return {agent: _union_length(own) for agent, own in spans.items()}


def _percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (0 when there are none).

    The same as numpy's `percentile(..., method="inverted_cdf")` (a test checks it), kept
    here because numpy is not part of the light install, and `statistics.quantiles`
    interpolates: a p90 wait should be a wait some interaction had.
    """
    if not values:
        return 0.0
    rank = max(math.ceil(fraction * len(values)), 1)
    return values[rank - 1]


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(spans):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


class _Arrivals:
    """Poisson arrivals of one stream, piecewise-constant rate over equal intervals."""

    def __init__(self, stream: Stream, duration: float, rng: random.Random) -> None:
        self.rates = stream.rates
        self.interval = duration / len(stream.rates)
        self.duration = duration
        self.rng = rng

    def after(self, now: float) -> float | None:
        while now < self.duration:
            index = min(int(now // self.interval), len(self.rates) - 1)
            boundary = min((index + 1) * self.interval, self.duration)
            rate = self.rates[index]
            if rate > 0:
                candidate = now + self.rng.expovariate(rate)
                if candidate < boundary:
                    return candidate
            now = boundary  # memoryless: start afresh in the next interval
        return None


def simulate(
    workload: Workload, progress: Callable[[float], None] | None = None, *, indexed: bool = True
) -> SimulationResult:
    """Run the workload; `progress(simulated_seconds)` is called as the clock moves.

    `indexed=False` routes by scanning the roster (the reference path), for comparison.
    """
    levels = objectives(
        workload.deployment, workload.service_level_threshold, workload.service_level_target
    )
    engine = Engine(
        workload.deployment,
        start=workload.start,
        options=EngineOptions(
            auto_accept=True,
            record_decisions=False,
            transactional=False,
            indexed=indexed,
            keep_closed_tasks=False,
        ),
    )
    # A run only adds to what it keeps (the roster, every interaction), and the collector's
    # full passes walked all of it again and again: about 15% of a 10,000-agent run. The
    # roster is built with the collector paused, and every FREEZE_EVERY events what is
    # alive leaves the collector's sight until the run ends. The routing makes no cyclic
    # garbage; a plugin's is still collected by the young passes between two freezes, or
    # after the run. Not when the caller froze objects itself: the unfreeze at the end
    # would undo theirs.
    freezing = gc.isenabled() and gc.get_freeze_count() == 0
    with collector_paused():
        for agent in workload.agents:
            engine.apply(
                events.AddAgent(
                    agent=agent.id,
                    channels=agent.channels,
                    attributes=agent.attributes,
                    groups=agent.groups,
                    status=agent.status,
                )
            )

    heap: list[tuple[float, int, str, Any]] = []
    sequence = 0

    def push(at: float, kind: str, payload: Any) -> None:
        nonlocal sequence
        heapq.heappush(heap, (at, sequence, kind, payload))
        sequence += 1

    arrivals = []
    task_rngs = []
    for index, stream in enumerate(workload.streams):
        arrivals.append(
            _Arrivals(stream, workload.duration, random.Random(f"{workload.seed}/{index}/arrivals"))
        )
        task_rngs.append(random.Random(f"{workload.seed}/{index}/tasks"))
        first = arrivals[index].after(0.0)
        if first is not None:
            push(first, "arrival", index)

    interactions: dict[str, Interaction] = {}
    #: tasks held per agent, so that a sample of busy agents does not scan the roster
    holding: dict[str, int] = {}

    def closed(task: Task) -> None:
        # The engine forgets a task once it closes: take what the figures need now.
        interaction = interactions.get(task.id)
        if interaction is None:
            return
        _settle(interaction, task)
        agent = engine.state.agents.get(interaction.agent or "")
        until = agent.wrap_up.get(task.channel, {}).get(task.id) if agent is not None else None
        if until is not None:
            # The agent wraps up: it stays busy until the wrap-up ends (`wrap_end` below).
            drawn = interaction.wrap_up
            interaction.wrap_end = until if drawn is None else min(until, engine.now + drawn)
            push(interaction.wrap_end, "wrap_end", task.id)
        elif interaction.agent is not None:
            release(interaction.agent)

    def release(agent: str) -> None:
        holding[agent] -= 1
        if not holding[agent]:
            del holding[agent]

    engine.on_close = closed
    series: dict[str, list[float]] = {
        "time": [],
        "waiting": [],
        "answered": [],
        "answered_in_threshold": [],
        "abandoned": [],
        "busy_agents": [],
    }
    step = max(workload.duration / SERIES_POINTS, 1.0)
    next_sample = 0.0
    bin_counts = {"answered": 0, "answered_in_threshold": 0, "abandoned": 0}
    handled = 0
    limit = workload.duration + DRAIN_LIMIT

    def harvest() -> None:
        # Offers are read once and dropped, so a long run keeps no list of them.
        if not engine.state.offers:
            return
        for offer in engine.forget_offers():
            interaction = interactions.get(offer.task)
            if interaction is None or interaction.first_offer is not None:
                continue
            interaction.first_offer, interaction.agent, interaction.queue = (
                offer.at,
                offer.agent,
                offer.queue,
            )
            holding[offer.agent] = holding.get(offer.agent, 0) + 1
            bin_counts["answered"] += 1
            bin_counts["answered_in_threshold"] += (
                offer.at - interaction.arrival <= levels.threshold_of(offer.queue)
            )
            push(offer.at + interaction.handle_time, "complete", offer.task)

    def sample(until: float) -> None:
        nonlocal next_sample
        while next_sample <= until and next_sample <= workload.duration:
            series["time"].append(next_sample)
            series["waiting"].append(float(len(engine.state.waiting)))
            series["busy_agents"].append(float(len(holding)))
            for key in bin_counts:
                series[key].append(float(bin_counts[key]))
                bin_counts[key] = 0
            next_sample += step

    try:
        if freezing:
            gc.freeze()  # the roster
        while True:
            # Engine timers (reroutes, cascades, openings) may make offers whose completions
            # come before the next event here, so they run one at a time, in time order.
            due = engine.next_timer_at()
            if due is not None and (not heap or due < heap[0][0]):
                if due > limit or (not heap and not engine.state.waiting):
                    break
                sample(due)
                engine.advance_to(due)
                harvest()
                continue
            if not heap:
                break
            at, _, kind, payload = heapq.heappop(heap)
            if at > limit:
                break
            if next_sample <= at:
                sample(at)
            # The clock's own method, not `apply(AdvanceClock)`: the same transaction per
            # timer, without an Outcome nobody reads (half the events here are these).
            engine.advance_to(at)
            harvest()
            handled += 1
            if freezing and not handled % FREEZE_EVERY:
                gc.freeze()
            if kind == "arrival":
                stream = workload.streams[payload]
                rng = task_rngs[payload]
                task_id = f"t{len(interactions) + 1}"
                interaction = Interaction(
                    task_id,
                    stream.name,
                    stream.channel,
                    at,
                    stream.handle_time(rng),
                    stream.patience(rng) if stream.patience is not None else None,
                    wrap_up=stream.wrap_up(rng) if stream.wrap_up is not None else None,
                )
                interactions[task_id] = interaction
                attributes = stream.attributes(rng)
                # The engine's methods, not `apply(event)`: the same transaction, without
                # an event and an Outcome built for every call (the loop reads neither).
                task = engine.create_task(
                    task_id,
                    stream.channel,
                    attributes,
                    stream.priority,
                    stream.queue,
                    stream.profile,
                )
                if interaction.queue is None:
                    interaction.queue = task.queue
                if interaction.patience is not None and task.state == "queued":
                    push(at + interaction.patience, "abandon", task_id)
                following = arrivals[payload].after(at)
                if following is not None:
                    push(following, "arrival", payload)
            elif kind == "complete":
                engine.complete(payload)
            elif kind == "wrap_end":
                # ended by the agent, unless the deployment's wrap_up ended it first
                ended = interactions[payload]
                assert ended.agent is not None
                wrapping = engine.state.agents[ended.agent].wrap_up.get(ended.channel, {})
                if payload in wrapping:
                    engine.apply(events.EndWrapUp(agent=ended.agent, task=payload))
                release(ended.agent)
            elif (
                kind == "abandon"
                and (waiting := engine.state.tasks.get(payload)) is not None
                and waiting.state == "queued"
            ):
                engine.cancel(payload, "abandoned")
                bin_counts["abandoned"] += 1
            harvest()
            if progress is not None:
                progress(min(at, workload.duration))

    finally:
        if freezing:
            gc.unfreeze()
    horizon = max(engine.now, workload.duration)
    sample(workload.duration)
    for task in engine.state.tasks.values():  # the ones still open
        if task.id in interactions:
            _settle(interactions[task.id], task)
    return SimulationResult(
        workload=workload.name,
        seed=workload.seed,
        duration=workload.duration,
        horizon=horizon,
        threshold=workload.service_level_threshold,
        interactions=tuple(interactions.values()),
        agents={agent.id: agent.groups for agent in engine.state.agents.values()},
        series=series,
        events=handled,
        objectives=levels,
    )


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while building what lives on (a workload, a roster):
    its passes would only walk what was just built, found alive, again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _settle(interaction: Interaction, task: Task) -> None:
    interaction.state, interaction.reason = task.state, task.reason
    if interaction.queue is None:
        interaction.queue = task.queue
    if task.state == "completed" and interaction.first_offer is not None:
        interaction.end = interaction.first_offer + interaction.handle_time
    elif task.state == "canceled" and interaction.first_offer is not None:
        interaction.end = _end_from_history(task.history)


def _end_from_history(history: Iterable[tuple[float, str]]) -> float | None:
    last = None
    for at, _ in history:
        last = at
    return last
