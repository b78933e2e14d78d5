"""capacity_share: Bright Pattern's percentage capacity model.

Each interaction takes a share of an agent's capacity (its media type's, or its routing
profile's). An agent is occupied by the sum of the shares of what it holds (it can pass
100); it may take a task when its spare capacity (100 − occupied) is at least the task's
required spare, and when it holds fewer than `max_per_agent` tasks under the same
profile (0 or empty: no limit). Limits of different profiles are counted apart.

The profile of a task is, first found: the task's own `profile` (the caller's choice, the
"Find Agent block"); the profile of the workflow target, else of the workflow filter,
that routed it (the "scenario entry"); the profile of its queue (the "service"); else the
media type's global settings. A profile named by a queue, filter or target applies only to
tasks of the profile's channel.

Ranking: highest skill level (service skill level × 100 + sum of auxiliary skill levels /
100 + number of auxiliary skills), then least busy (occupied share), then longest idle,
then least occupied (share-weighted busy time over ready time). With `strategy:
ready_time`, the agent ready the longest comes right after the skill level. Task order:
lowest precedence first; within one, voice and chat (and any channel but email) by highest
priority × waiting time, email by highest priority then closest SLA deadline, preview
records in the order the campaign created them; then oldest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from omniroute.core import (
    ArrivalCheck,
    EventHandler,
    Filter,
    Indexing,
    PluginContext,
    Problem,
    RankingKey,
    TaskOrdering,
    hookimpl,
)
from omniroute.core.converter import key_path
from omniroute.core.spec import Deployment
from omniroute.core.state import Agent, Task

NAME = "capacity_share"

#: Bright Pattern's defaults: share taken, required spare, precedence
DEFAULTS: dict[str, tuple[float | None, float | None, int | None]] = {
    "voice": (100, 50, 1),
    "preview": (100, 50, 4),
    "chat": (25, 25, 2),
    "email": (25, 100, 3),
    "task": (25, 25, 5),
}


def _percentage(instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise ValueError(f"{attribute.name} must be a percentage from 0 to 100, got {value:g}")


def _not_negative(instance: Any, attribute: Any, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be 0 (no limit) or more, got {value}")


@attrs.frozen
class ChannelShare:
    share: float | None = attrs.field(default=None, validator=_percentage)
    required_spare: float | None = attrs.field(default=None, validator=_percentage)
    precedence: int | None = None
    #: 0 or empty (null): no limit, as in Bright Pattern's screen
    max_per_agent: int | None = attrs.field(default=None, validator=_not_negative)


@attrs.frozen
class Profile:
    channel: str
    share: float | None = attrs.field(default=None, validator=_percentage)
    required_spare: float | None = attrs.field(default=None, validator=_percentage)
    max_per_agent: int | None = attrs.field(default=None, validator=_not_negative)


@attrs.frozen
class CapacityShareSection:
    channels: dict[str, ChannelShare] = attrs.Factory(dict)
    profiles: dict[str, Profile] = attrs.Factory(dict)
    strategy: Literal["total_idle_time", "ready_time"] = "total_idle_time"


@attrs.frozen
class Settings:
    """The resolved settings a task is routed with: a channel's global ones or a profile's."""

    name: str
    channel: str
    share: float
    required_spare: float
    precedence: int
    max_per_agent: int


@hookimpl
def omniroute_config_section() -> type:
    return CapacityShareSection


def _global_settings(section: CapacityShareSection, channel: str) -> Settings | None:
    given = section.channels.get(channel, ChannelShare())
    default_share, default_spare, default_precedence = DEFAULTS.get(channel, (None, None, None))
    share = given.share if given.share is not None else default_share
    spare = given.required_spare if given.required_spare is not None else default_spare
    precedence = given.precedence if given.precedence is not None else default_precedence
    if share is None or spare is None or precedence is None:
        return None
    return Settings(
        f"{channel} (global)",
        channel,
        float(share),
        float(spare),
        int(precedence),
        given.max_per_agent or 0,
    )


def _profile_settings(
    section: CapacityShareSection, name: str, globals_: dict[str, Settings]
) -> Settings | None:
    profile = section.profiles[name]
    base = globals_.get(profile.channel)
    if base is None:
        return None
    return Settings(
        name,
        profile.channel,
        profile.share if profile.share is not None else base.share,
        profile.required_spare if profile.required_spare is not None else base.required_spare,
        base.precedence,
        profile.max_per_agent or 0,
    )


@hookimpl
def omniroute_validate(deployment: Deployment, section: CapacityShareSection) -> Iterable[Problem]:
    channels = list(deployment.channels) or list(section.channels)
    for channel in deployment.channels:
        if _global_settings(section, channel) is None:
            yield Problem(
                key_path([channel], f"{NAME}.channels"),
                f"channel {channel!r} has no Bright Pattern default; give its share, required_spare and precedence",
            )
    for channel in section.channels:
        if deployment.channels and channel not in deployment.channels:
            yield Problem(
                key_path([channel], f"{NAME}.channels"),
                f"unknown channel {channel!r} (channels: {', '.join(deployment.channels)})",
            )
    for name, profile in section.profiles.items():
        if channels and profile.channel not in channels:
            yield Problem(
                key_path([name, "channel"], f"{NAME}.profiles"),
                f"unknown channel {profile.channel!r} (channels: {', '.join(channels)})",
            )
    named: list[tuple[str, str | None]] = [
        (key_path([q, "profile"], "queues"), queue.profile)
        for q, queue in deployment.queues.items()
    ]
    if deployment.workflow is not None:
        for item in deployment.workflow.filters:
            named.append((f"workflow.filters[{item.index}].profile", item.profile))
            named += [(f"{target.label}.profile", target.profile) for target in item.targets]
    for path, profile_name in named:
        if profile_name is not None and profile_name not in section.profiles:
            yield Problem(
                path,
                f"unknown capacity_share profile {profile_name!r} (profiles: {', '.join(section.profiles) or 'none'})",
            )
    precedences: dict[int, list[str]] = {}
    for channel in channels:
        settings = _global_settings(section, channel)
        if settings is not None:
            precedences.setdefault(settings.precedence, []).append(channel)
    for precedence, sharing in precedences.items():
        if len(sharing) > 1 and set(sharing) != {"voice", "chat"}:
            yield Problem(
                f"{NAME}.channels",
                f"{' and '.join(sharing)} share precedence {precedence}; Bright Pattern allows this only for voice and chat",
                "warning",
            )


class _Model:
    """The resolved settings of a deployment, and the per-agent figures the components read."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        section: CapacityShareSection = context.section
        channels = list(context.deployment.channels) or sorted(
            set(DEFAULTS) | set(section.channels)
        )
        self.globals = {
            ch: s for ch in channels if (s := _global_settings(section, ch)) is not None
        }
        # Caches, keyed so that they cannot go stale: a task's position, an agent's version,
        # the stamp of an agent's attributes (skill levels read nothing else of it).
        self._settings: dict[
            str, tuple[str, str | None, int | None, int | None, str | None, Settings]
        ] = {}
        self._occupied: dict[str, tuple[int, float]] = {}
        self._levels: dict[str, tuple[int, dict[Any, float]]] = {}
        self.profiles = {
            name: settings
            for name in section.profiles
            if (settings := _profile_settings(section, name, self.globals)) is not None
        }

    def settings_for(self, task: Task) -> Settings:
        """The profile a task is routed with, first found: task, target, filter, queue, global."""
        cached = self._settings.get(task.id)
        if (  # what the profile is read from, field by field: no key built on every call
            cached is not None
            and cached[0] == task.channel
            and cached[1] == task.queue
            and cached[2] == task.filter_index
            and cached[3] == task.target_index
            # a failed event can leave a task's entry behind, and its id be used again
            and cached[4] == task.profile
        ):
            return cached[5]
        settings = self._resolve(task)
        self._settings[task.id] = (
            task.channel,
            task.queue,
            task.filter_index,
            task.target_index,
            task.profile,
            settings,
        )
        return settings

    def forget(self, task: Task) -> None:
        """Drop what is cached for a closed task, so a long run keeps nothing per task."""
        self._settings.pop(task.id, None)

    def _resolve(self, task: Task) -> Settings:
        if task.profile is not None and task.profile in self.profiles:
            return self.profiles[task.profile]
        target = self.context.target_of(task)
        workflow = self.context.deployment.workflow
        queue = self.context.queue_of(task)
        candidates = [
            target.profile if target is not None else None,
            workflow.filters[task.filter_index].profile
            if workflow is not None and task.filter_index is not None
            else None,
            queue.profile if queue is not None else None,
        ]
        for name in candidates:
            settings = self.profiles.get(name) if name is not None else None
            if settings is not None and settings.channel == task.channel:
                return settings
        return self.globals.get(task.channel) or Settings(
            f"{task.channel} (global)", task.channel, 0, 0, 99, 0
        )

    def held(self, agent: Agent) -> Iterable[dict[str, Any]]:
        for ids in agent.held.values():
            for task_id in ids:
                task = self.context.task(task_id)
                assert task is not None  # a held task is open
                yield self.context.task_state(task)

    def occupied(self, agent: Agent, state: dict[str, Any] | None = None) -> float:
        """The share the agent holds (`state`: its plugin state, when the caller has it)."""
        cached = self._occupied.get(agent.id)
        if cached is not None and cached[0] == agent.version:
            return cached[1]
        context = self.context
        task_state = context.task_state
        task = context.task
        shares = []
        for ids in agent.held.values():
            for task_id in ids:
                held = task(task_id)
                assert held is not None  # a held task is open
                shares.append(task_state(held).get("share", 0.0))
        # Held tasks are a set, whose order changes from one process to the next (string
        # hashing is seeded per process): fsum's sum is exact, so it is the same in any
        # order, and the same decisions follow from the same inputs. Up to two shares, it
        # is what plain addition gives.
        value = math.fsum(shares)
        # a task's share stays taken while its agent wraps up after it (docs/wrap-up.md)
        if state is None:
            state = context.agent_state(agent)
        wrapping = state.get("wrap_up")  # (no empty dict built as the default)
        value += float(sum(wrapping.values())) if wrapping else 0.0
        self._occupied[agent.id] = (agent.version, value)
        return value

    def held_under(self, agent: Agent, profile: str) -> int:
        return sum(1 for held in self.held(agent) if held.get("profile") == profile)

    def negative_skill_level(self, task: Task, agent: Agent) -> float:
        """The ranking key (highest level first), computed once per skill partition of
        the task and stamp of the agent's attributes: taking and releasing tasks leaves
        it as it is."""
        stamp = agent.attributes_stamp
        cached = self._levels.get(agent.id)
        if cached is None or cached[0] != stamp:
            cached = self._levels[agent.id] = (stamp, {})
        # the queue alone when the task lists no auxiliary skills (the common case)
        partition = (
            self.skill_partition(task)
            if isinstance(task.attributes.get("skills"), list)
            else task.queue
        )
        level = cached[1].get(partition)
        if level is None:
            level = cached[1][partition] = -self.skill_level(task, agent)
        return level

    def skill_level(self, task: Task, agent: Agent) -> float:
        skills = agent.attributes.get("skills")
        if isinstance(skills, list):  # TaskRouter-style lists: level 1 for each skill listed
            skills = {name: 1 for name in skills if isinstance(name, str)}
        if not isinstance(skills, dict):
            skills = {}

        def level(name: Any) -> float:
            value = skills.get(name, 0) if isinstance(name, str) else 0
            return (
                float(value)
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                else 0.0
            )

        queue = self.context.queue_of(task)
        service = level(queue.skill) if queue is not None and queue.skill else 0.0
        auxiliary = self.auxiliary_skills(task)
        held_auxiliary = [name for name in auxiliary if level(name) > 0]
        return service * 100 + sum(level(name) for name in auxiliary) / 100 + len(held_auxiliary)

    # Idle and ready time are ranked by when they began (earlier is longer), not by how
    # long they have lasted: the order is the same at every moment, so the engine can keep
    # agents sorted by it. Agents holding tasks have neither and come after the others.

    @staticmethod
    def auxiliary_skills(task: Task) -> tuple[str, ...]:
        wanted = task.attributes.get("skills")
        return (
            tuple(name for name in wanted if isinstance(name, str))
            if isinstance(wanted, list)
            else ()
        )

    def skill_partition(self, task: Task) -> tuple[str | None, tuple[str, ...]]:
        """What of a task its skill level reads: the queue (its skill) and auxiliary skills."""
        return (task.queue, self.auxiliary_skills(task))

    # ranking keys: (task, agent), the task unread

    def idle_since(self, _task: Task | None, agent: Agent) -> float:
        if agent.held_count() or agent.free_since is None:
            return math.inf
        return agent.free_since

    def ready_since(self, _task: Task | None, agent: Agent) -> float:
        if agent.held_count() or agent.status != "ready":
            return math.inf
        return max(
            agent.status_since, agent.free_since if agent.free_since is not None else -math.inf
        )

    # occupancy since login: share-weighted busy time over time spent ready

    def record(self, agent: Agent) -> None:
        """Close the running interval with the figures that held during it (one write of
        the agent's state: an engine without an undo log stores it as given)."""
        context = self.context
        state = context.agent_state(agent)
        get = state.get
        now = context.now
        occupied = self.occupied(agent, state)
        ready = agent.status == "ready"
        # each figure read once (None: never written)
        was_ready = get("ready", False)
        since, held_before = get("since"), get("occupied", 0.0)
        busy, ready_time = get("busy"), get("ready_time")
        if (
            since == now
            and since.__class__ is now.__class__  # 5 and 5.0: a save writes what is kept
            and held_before == occupied
            and was_ready == ready
            and busy is not None
            and (ready_time is not None or not was_ready)
        ):
            # The interval was closed at this instant already (an offer accepted at
            # once): busy and ready time would grow by nothing and be written back
            # as they are, and most_not_ready was checked with these same figures.
            return
        last = now if since is None else since
        busy = (0.0 if busy is None else busy) + held_before / 100 * (now - last)
        ready_time = 0.0 if ready_time is None else ready_time
        if was_ready:
            ready_time = ready_time + (now - last)
            state.update(
                busy=busy, ready_time=ready_time, since=now, occupied=occupied, ready=ready
            )
        else:
            state.update(busy=busy, since=now, occupied=occupied, ready=ready)
        if ready_time > 0:
            mine = context.state()
            if now - ready_time > mine.get("most_not_ready", 0.0):
                mine["most_not_ready"] = now - ready_time

    # Occupancy moves with the clock, but while a ready agent's state holds it is
    #     o + excess / T,   excess = busy - o * ready
    # (o: the share held now; busy and ready: the totals when the state began; T: the
    # ready time so far). T is at most `now` (ready time began at the clock's start or
    # later) and at least `now - most_not_ready` (the most time any agent has spent not
    # ready, which only grows). So the key never drops below
    #     o + excess / now                    when excess > 0,
    #     o + excess / (now - most_not_ready) when excess <= 0,
    # which, for agents holding the same share (as tied agents do), rises with excess at
    # every moment. An agent not ready, or with no ready time yet, has floor 0. Floors
    # are lowered by a hair so that rounding cannot lift one above the key.

    def occupancy_floor_order(self, _task: Task | None, agent: Agent) -> tuple[Any, ...]:
        """(kind, excess), then every figure the key reads: equal orders, equal keys."""
        get = self.context.agent_state(agent).get
        busy, ready = get("busy", 0.0), get("ready_time", 0.0)
        occupied, since = get("occupied", 0.0), get("since", -math.inf)
        is_ready = get("ready", False)
        if not is_ready or ready <= 0:
            return (0, 0.0, busy, ready, occupied, since, is_ready)
        return (1, busy - occupied / 100 * ready, busy, ready, occupied, since, is_ready)

    def occupancy_floor(self, task: Task | None, agent: Agent, now: float) -> float:
        order = self.occupancy_floor_order(task, agent)  # (kind, excess, busy, ready, occupied...)
        excess = order[1]
        value = 0.0
        if order[0] == 1:
            held = order[4] / 100
            most_not_ready = self.context.state().get("most_not_ready", 0.0)
            # never below 0 (occupancy is not), which keeps floors rising in floor order
            value = max(0.0, held + excess / (now if excess > 0 else now - most_not_ready))
        return value - 1e-9 * (1 + abs(value))  # rising in value: the order holds

    def occupancy(self, _task: Task | None, agent: Agent) -> float:
        get = self.context.agent_state(agent).get
        now = self.context.now
        elapsed = now - get("since", now)
        busy = get("busy", 0.0) + get("occupied", 0.0) / 100 * elapsed
        ready = get("ready_time", 0.0) + (elapsed if get("ready", False) else 0.0)
        return busy / ready if ready > 0 else 0.0


def _model(context: PluginContext) -> _Model:
    """The model of this engine's settings, built by the first hook that asks and shared
    by the others through the context's per-engine store."""
    model: _Model | None = context.shared.get("model")
    if model is None:
        model = context.shared["model"] = _Model(context)
    return model


@hookimpl
def omniroute_arrival_checks(context: PluginContext) -> Iterable[ArrivalCheck]:
    model = _model(context)

    def known_profile(task: Task) -> tuple[str, str | None] | None:
        if task.profile is None:
            return None
        settings = model.profiles.get(task.profile)
        if settings is None:
            return "unknown_profile", f"no capacity_share profile {task.profile!r}"
        if settings.channel != task.channel:
            return (
                "unknown_profile",
                f"profile {task.profile!r} is for {settings.channel}, not {task.channel}",
            )
        return None

    return [ArrivalCheck("profile", known_profile)]


@hookimpl
def omniroute_filters(context: PluginContext) -> Iterable[Filter]:
    model = _model(context)

    def enough_spare(task: Task, agent: Agent) -> bool:
        return 100 - model.occupied(agent) >= model.settings_for(task).required_spare

    def spare_reason(task: Task, agent: Agent) -> str:
        settings = model.settings_for(task)
        return f"spare {100 - model.occupied(agent):g}% below the {settings.required_spare:g}% required ({settings.name})"

    def under_max(task: Task, agent: Agent) -> bool:
        settings = model.settings_for(task)
        return (
            settings.max_per_agent <= 0
            or model.held_under(agent, settings.name) < settings.max_per_agent
        )

    def max_reason(task: Task, agent: Agent) -> str:
        settings = model.settings_for(task)
        return f"holds {model.held_under(agent, settings.name)} under {settings.name} (max_per_agent {settings.max_per_agent})"

    filters = [Filter("spare", enough_spare, spare_reason)]
    # A deployment that sets no limit anywhere has no agent for this filter to exclude:
    # it is left out, rather than tested (twice reading the task's profile) per agent.
    settings = [*model.globals.values(), *model.profiles.values()]
    if any(found.max_per_agent > 0 for found in settings):
        filters.append(Filter("max_per_agent", under_max, max_reason))
    return filters


@hookimpl
def omniroute_ranking_keys(context: PluginContext) -> Iterable[RankingKey]:
    model = _model(context)
    keys = [
        RankingKey(
            "skill_level",
            model.negative_skill_level,
            Indexing(partition=model.skill_partition),
        )
    ]
    if context.section.strategy == "ready_time":
        keys.append(RankingKey("ready_since", model.ready_since, Indexing()))
    keys += [
        RankingKey("least_busy", lambda _task, agent: model.occupied(agent), Indexing()),
        RankingKey("idle_since", model.idle_since, Indexing()),
        # Occupancy since login moves with the clock, differently for each agent: the
        # engine computes it among the agents tied on the keys above, in floor order.
        RankingKey(
            "least_occupied",
            model.occupancy,
            Indexing(
                time_dependent=True,
                floor=model.occupancy_floor,
                floor_order=model.occupancy_floor_order,
            ),
        ),
    ]
    return keys


@hookimpl
def omniroute_task_orderings(context: PluginContext) -> Iterable[TaskOrdering]:
    model = _model(context)

    def precedence(task: Task) -> tuple[float, float, float]:
        settings = model.settings_for(task)
        priority = context.effective_priority(task)
        if task.channel == "email":
            deadline = task.attributes.get("sla_deadline")
            sla = (
                float(deadline)
                if isinstance(deadline, (int, float)) and not isinstance(deadline, bool)
                else math.inf
            )
            return (settings.precedence, -priority, sla)
        if task.channel == "preview":
            # The campaign selected its records in an order: the order they were created.
            return (settings.precedence, 0.0, float(task.seq))
        return (settings.precedence, -priority * (context.now - task.queued_at), 0.0)

    return [
        TaskOrdering("precedence", precedence),
        TaskOrdering("oldest", lambda task: task.queued_at, fixed=True),
    ]


@hookimpl
def omniroute_event_handlers(context: PluginContext) -> Iterable[EventHandler]:
    model = _model(context)

    def offered(task: Task | None, agent: Agent | None) -> None:
        if task is not None:
            settings = model.settings_for(task)
            context.task_state(task).update(profile=settings.name, share=settings.share)
        if agent is not None:
            # The engine touched the agent as it made the reservation, just before this
            # handler, so no occupancy was cached with the share missing.
            model.record(agent)

    def changed(task: Task | None, agent: Agent | None) -> None:
        if agent is not None:
            model.record(agent)
        if task is not None and not task.is_open:
            model.forget(task)

    def wrap_up_started(task: Task | None, agent: Agent | None) -> None:
        if task is not None and agent is not None:
            share = context.task_state(task).get("share", 0.0)
            context.agent_state(agent).setdefault("wrap_up", {})[task.id] = share
            context.agent_changed(agent)
            model.record(agent)

    def wrap_up_ended(_task: Task | None, agent: Agent | None) -> None:
        if agent is not None:
            state = context.agent_state(agent)
            wrapping = {task_id for ids in agent.wrap_up.values() for task_id in ids}
            state["wrap_up"] = {
                task_id: share
                for task_id, share in state.get("wrap_up", {}).items()
                if task_id in wrapping
            }
            context.agent_changed(agent)
            model.record(agent)

    events = (
        "accepted",
        "declined",
        "timed_out",
        "completed",
        "canceled",
        "transferred",
        "converted",  # a reserved task's reservation revoked as it became a callback
        "login",
        "logout",
        "status_changed",
    )
    return [
        EventHandler("offered", offered),
        *(EventHandler(event, changed) for event in events),
        EventHandler("rejected", changed),
        EventHandler("wrap_up_started", wrap_up_started),
        EventHandler("wrap_up_ended", wrap_up_ended),
    ]
