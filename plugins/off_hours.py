"""off_hours: Pega's conditions for not routing live interactions.

A task of a live channel (one not in `hold_channels`) is checked on arrival, in this
order: when its queue's calendar is closed it is rejected with reason `off_hours`; when
no agent who may serve the queue is logged in, with reason `no_agents`; when the
estimated wait exceeds `max_wait`, with reason `max_wait`. Each rejection carries the
queue's message for that reason. A queue with no calendar is always open.

A task of a hold channel (messaging, say) is never rejected: it waits, and while the
queue is closed it is held until the calendar opens, by timers at the closing and
opening times.

The estimated wait of a queue is the larger of two figures: the mean wait (arrival to
first offer) of the tasks answered from it over the last `evaluation_window` seconds, and
the age of the oldest task still waiting in it, which a new arrival cannot beat. Only
live-channel tasks count: a held message's wait for the opening says nothing about how
fast agents answer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from omniroute.core import ArrivalCheck, EventHandler, PluginContext, Problem, hookimpl
from omniroute.core.converter import ConfigProblems, key_path, structure
from omniroute.core.spec import Deployment, Duration, PositiveDuration
from omniroute.core.state import Agent, Task

NAME = "off_hours"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
MINUTES_PER_DAY = 24 * 60


def _days(key: str) -> list[int]:
    """`mon-fri`, `sat`, `mon,wed,fri`, `fri-mon` (wrapping) as weekday numbers."""
    found: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(
                    f"weekly: {key!r} is not a day or a range of days (mon … sun, such as mon-fri)"
                )
            start, end = DAYS.index(first), DAYS.index(last)
            found += [(start + step) % 7 for step in range((end - start) % 7 + 1)]
        elif part in DAYS:
            found.append(DAYS.index(part))
        else:
            raise ValueError(
                f"weekly: {key!r} is not a day or a range of days (mon … sun, such as mon-fri)"
            )
    return found


def _intervals(key: str, hours: str) -> list[tuple[int, int, int]]:
    """(weekday, start minute, end minute) for one `weekly` entry; overnight hours split at midnight."""
    result = []
    for span in hours.replace(" ", "").split(","):
        if span.lower() == "closed":
            continue
        match = _HOURS.match(span)
        if match is None:
            raise ValueError(
                f'weekly.{key}: {span!r} is not opening hours such as "09:00-18:00" (or several, comma-separated)'
            )
        start = int(match.group(1)) * 60 + int(match.group(2))
        end = int(match.group(3)) * 60 + int(match.group(4))
        if end > MINUTES_PER_DAY:
            raise ValueError(f"weekly.{key}: {span!r} ends after 24:00")
        for day in _days(key):
            if end > start:
                result.append((day, start, end))
            elif end < start:  # overnight: the rest of this day and the start of the next
                result += [(day, start, MINUTES_PER_DAY), ((day + 1) % 7, 0, end)]
            else:
                raise ValueError(f"weekly.{key}: {span!r} opens and closes at the same time")
    return result


def _parse_holiday(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(
        f"{value!r} is not a date such as 2026-12-25, nor a region such as {{country: ES, subdivision: MD}}"
    )


@attrs.frozen
class PublicHolidays:
    """`{country: ES, subdivision: MD}`: the region's public holidays, from the `holidays`
    package (https://pypi.org/project/holidays/), for every year the calendar is asked about."""

    country: str
    subdivision: str | None = None


def _public_holidays(region: PublicHolidays) -> Any:
    """The `holidays` package's calendar of a region; ValueError naming the key at fault."""
    # Imported here, where a calendar is built: every command compiles the plugins, and
    # the package's import is a tenth of the CLI's start.
    import holidays

    supported = holidays.list_supported_countries()
    if region.country not in supported:
        close = difflib.get_close_matches(region.country.upper(), supported, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"country: {region.country!r} is not a country the holidays package knows "
            f"(an ISO 3166 code such as ES, US, DE){hint}"
        )
    subdivisions = supported[region.country]
    if region.subdivision is not None and region.subdivision not in subdivisions:
        raise ValueError(
            f"subdivision: {region.subdivision!r} is not a subdivision of {region.country} "
            f"(known: {', '.join(subdivisions) or 'none'})"
        )
    return holidays.country_holidays(region.country, subdiv=region.subdivision)


def _read_holidays(
    raw: Any,
) -> tuple[frozenset[date], tuple[PublicHolidays, ...], tuple[Any, ...], tuple[Problem, ...]]:
    """Explicit dates, regions and their calendars from `holidays:`, with every problem
    under its key path below the calendar (`holidays[2].country`)."""
    entries = [(f"holidays[{n}]", item) for n, item in enumerate(raw)]
    if isinstance(raw, Mapping):  # a single region: `holidays: {country: ES}`
        entries = [("holidays", raw)]
    elif isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        return frozenset(), (), (), (Problem("holidays", "expected a list of dates and regions"),)
    dates: set[date] = set()
    regions: list[PublicHolidays] = []
    lookups: list[Any] = []
    problems: list[Problem] = []
    for path, item in entries:
        if isinstance(item, Mapping):
            region, found = structure(item, PublicHolidays, prefix=path)
            problems += found
            if region is None:
                continue
            try:
                lookups.append(_public_holidays(region))
            except ValueError as error:
                key, _, message = str(error).partition(": ")
                problems.append(Problem(f"{path}.{key}", message))
                continue
            regions.append(region)
            continue
        try:
            dates.add(_parse_holiday(item))
        except ValueError as error:
            problems.append(Problem(path, str(error)))
    return frozenset(dates), tuple(regions), tuple(lookups), tuple(problems)


@attrs.frozen
class Calendar:
    timezone: str = "UTC"
    weekly: dict[str, str] = attrs.Factory(dict)
    #: dates (2026-12-25) and regions ({country: ES, subdivision: MD}), closed all day
    holidays: Any = ()
    intervals: tuple[tuple[int, int, int], ...] = attrs.field(init=False)
    holiday_dates: frozenset[date] = attrs.field(init=False)
    regions: tuple[PublicHolidays, ...] = attrs.field(init=False)
    #: Problems of `holidays`, reported with their key paths by omniroute_validate.
    problems: tuple[Problem, ...] = attrs.field(init=False, repr=False)
    _public: tuple[Any, ...] = attrs.field(init=False, repr=False, eq=False)
    zone: ZoneInfo = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        zone = ZoneInfo("UTC")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                (
                    "timezone",
                    f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Madrid)",
                )
            )
        intervals = []
        for key, hours in self.weekly.items():
            try:
                intervals += _intervals(key, hours)
            except ValueError as error:
                problems.append((key_path(["weekly", key]), str(error).split(": ", 1)[-1]))
        dates, regions, public, holiday_problems = _read_holidays(self.holidays)
        if problems:  # the holidays' problems too: every problem at once
            raise ConfigProblems(problems + [(p.path, p.message) for p in holiday_problems])
        object.__setattr__(self, "zone", zone)
        object.__setattr__(self, "intervals", tuple(sorted(intervals)))
        object.__setattr__(self, "holiday_dates", dates)
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "_public", public)
        object.__setattr__(self, "problems", holiday_problems)

    def is_holiday(self, day: date) -> bool:
        """A date given explicitly, or a public holiday of one of the regions."""
        return day in self.holiday_dates or any(day in region for region in self._public)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        if self.is_holiday(local.date()):
            return False
        minute = local.hour * 60 + local.minute + local.second / 60
        day = local.weekday()
        return any(d == day and start <= minute < end for d, start, end in self.intervals)

    def next_closing(self, moment: datetime) -> datetime | None:
        """When the calendar, open at `moment`, next closes (following back-to-back intervals)."""
        local = moment.astimezone(self.zone)
        if not self.is_open(local):
            return local
        for _ in range(16):  # a week of back-to-back intervals, overnight splits included
            minute = local.hour * 60 + local.minute + local.second / 60
            ends = [
                end
                for day, start, end in self.intervals
                if day == local.weekday() and start <= minute < end
            ]
            if not ends:
                return local
            midnight = datetime.combine(local.date(), time(), tzinfo=self.zone)
            local = midnight + timedelta(minutes=max(ends))
            if not self.is_open(local):
                return local
        return None

    def next_opening(self, moment: datetime) -> datetime | None:
        """The first moment after `moment` when the calendar is open (None: never within a year)."""
        local = moment.astimezone(self.zone)
        for offset in range(400):
            day = local.date() + timedelta(days=offset)
            if self.is_holiday(day):
                continue
            for weekday, start, _ in self.intervals:
                if weekday != day.weekday():
                    continue
                # Asked while closed, the first start after now is the opening (intervals
                # are sorted by day, then start).
                opening = datetime.combine(day, time(start // 60, start % 60), tzinfo=self.zone)
                if opening > local:
                    return opening
        return None


@attrs.frozen
class Messages:
    off_hours: str | None = None
    no_agents: str | None = None
    max_wait: str | None = None


@attrs.frozen
class QueueRules:
    calendar: str | None = None
    #: estimated wait (seconds) above which a live task is not routed
    max_wait: Duration | None = None
    #: seconds of history used to estimate the wait
    #: a window of 0 would hold no answered task: it must be positive
    evaluation_window: PositiveDuration = PositiveDuration(900.0)
    messages: Messages = Messages()


@attrs.frozen
class OffHoursSection:
    calendars: dict[str, Calendar] = attrs.Factory(dict)
    queues: dict[str, QueueRules] = attrs.Factory(dict)
    hold_channels: tuple[str, ...] = ()


@hookimpl
def omniroute_config_section() -> type:
    return OffHoursSection


@hookimpl
def omniroute_validate(deployment: Deployment, section: OffHoursSection) -> Iterable[Problem]:
    for name, rules in section.queues.items():
        path = key_path([name], f"{NAME}.queues")
        if name not in deployment.queues:
            yield Problem(
                path, f"unknown queue {name!r} (queues: {', '.join(deployment.queues) or 'none'})"
            )
        if rules.calendar is not None and rules.calendar not in section.calendars:
            yield Problem(
                f"{path}.calendar",
                f"unknown calendar {rules.calendar!r} (calendars: {', '.join(section.calendars) or 'none'})",
            )
    for index, channel in enumerate(section.hold_channels):
        if deployment.channels and channel not in deployment.channels:
            yield Problem(
                f"{NAME}.hold_channels[{index}]",
                f"unknown channel {channel!r} (channels: {', '.join(deployment.channels)})",
            )
    yield from _timeout_warnings(
        deployment,
        {
            name: rules.max_wait
            for name, rules in section.queues.items()
            if rules.max_wait is not None
        },
    )
    for name, calendar in section.calendars.items():
        for problem in calendar.problems:
            yield attrs.evolve(
                problem, path=f"{key_path([name], f'{NAME}.calendars')}.{problem.path}"
            )
        if not calendar.intervals:
            yield Problem(
                key_path([name], f"{NAME}.calendars"),
                "this calendar is never open: every live task of its queues will be rejected",
                "warning",
            )


def _timeout_warnings(deployment: Deployment, max_waits: dict[str, float]) -> Iterator[Problem]:
    """Workflow targets that keep tasks longer than their queue's max_wait."""
    if deployment.workflow is None:
        return
    for item in deployment.workflow.filters:
        for target in item.targets:
            limit = max_waits.get(target.queue)
            if target.timeout is not None and limit is not None and target.timeout > limit:
                yield Problem(
                    f"{target.label}.timeout",
                    f"{target.timeout:g} s is longer than the {limit:g} s max_wait of queue {target.queue!r}: "
                    "live customers are turned away before this target would move them on; "
                    f"fix: make the timeout at most {limit:g} s",
                    "warning",
                )


def estimated_wait(context: PluginContext, queue: str, window: float) -> float:
    """The larger of the mean wait of the live tasks answered from the queue in the window
    and the age of the oldest live task still waiting in it."""
    now = context.now
    horizon = now - window
    answered = [
        wait for at, wait in context.state().get("answered", {}).get(queue, []) if at > horizon
    ]
    mean_answered = sum(answered) / len(answered) if answered else 0.0
    hold_channels = context.section.hold_channels
    oldest = max(
        (
            now - task.queued_at
            for task in context.waiting(queue)
            if task.channel not in hold_channels
        ),
        default=0.0,
    )
    return max(mean_answered, oldest)


@hookimpl
def omniroute_arrival_checks(
    context: PluginContext, section: OffHoursSection
) -> Iterable[ArrivalCheck]:

    def check(task: Task) -> tuple[str, str | None] | None:
        rules = section.queues.get(task.queue or "")
        if rules is None or task.channel in section.hold_channels:
            return None  # hold channels are held, while closed, as they enter the queue
        calendar = section.calendars[rules.calendar] if rules.calendar else None
        if calendar is not None and not calendar.is_open(context.wall_time()):
            return "off_hours", rules.messages.off_hours
        if context.queue_counts(task.queue, task.channel)["total"] == 0:
            return "no_agents", rules.messages.no_agents
        if rules.max_wait is not None:
            wait = estimated_wait(context, task.queue or "", rules.evaluation_window)
            if wait > rules.max_wait:
                return "max_wait", rules.messages.max_wait
        return None

    return [ArrivalCheck("hours", check)]


def _seconds(context: PluginContext, moment: datetime) -> float:
    return (moment - context.start).total_seconds()


def _hold_until_opening(context: PluginContext, task: Task, calendar: Calendar) -> None:
    opening = calendar.next_opening(context.wall_time())
    context.hold_task(task, None if opening is None else _seconds(context, opening), "off_hours")


@hookimpl
def omniroute_event_handlers(
    context: PluginContext, section: OffHoursSection
) -> Iterable[EventHandler]:
    """Hold-channel tasks wait while their queue is closed: a task entering a closed queue
    is held until the opening, and at each closing the waiting ones are held too, by a
    timer at the closing time (nothing is checked per agent, nothing polls). Offers feed
    the history behind the estimated wait."""
    handlers: list[EventHandler] = []

    holding: dict[str, list[str]] = {}  # calendar -> queues whose hold-channel tasks it governs
    if section.hold_channels:
        for queue, rules in section.queues.items():
            if rules.calendar is not None:
                holding.setdefault(rules.calendar, []).append(queue)

    def schedule_closing(name: str, after: datetime) -> None:
        closing = section.calendars[name].next_closing(after)
        if closing is not None:
            context.set_timer(_seconds(context, closing), "closing", name)

    def close(name: str) -> None:
        calendar = section.calendars[name]
        closing = [
            task
            for queue in holding[name]
            for task in context.waiting(queue)
            if task.channel in section.hold_channels and task.hold_reason is None
        ]
        # in the order they started waiting, across the calendar's queues: the holds'
        # timers, hence the releases at the opening, keep that order
        closing.sort(key=lambda task: task.wait_seq)
        for task in closing:
            _hold_until_opening(context, task, calendar)
        opening = calendar.next_opening(context.wall_time())
        if opening is not None:
            schedule_closing(name, opening)

    def entered_queue(task: Task | None, _agent: Agent | None) -> None:
        if task is None or task.channel not in section.hold_channels:
            return
        rules = section.queues.get(task.queue or "")
        if rules is not None and rules.calendar is not None:
            calendar = section.calendars[rules.calendar]
            if not calendar.is_open(context.wall_time()):
                _hold_until_opening(context, task, calendar)

    context.on_timer("closing", close)
    for name, calendar in ((name, section.calendars[name]) for name in holding):
        now = context.wall_time()
        first_open = now if calendar.is_open(now) else calendar.next_opening(now)
        if first_open is not None:
            schedule_closing(name, first_open)
    if holding:
        handlers.append(EventHandler("entered_queue", entered_queue))

    windows = {
        name: rules.evaluation_window
        for name, rules in section.queues.items()
        if rules.max_wait is not None
    }

    def offered(task: Task | None, _agent: Agent | None) -> None:
        if task is None or task.queue not in windows or task.channel in section.hold_channels:
            return
        if context.task_state(task).get("answered"):
            return
        context.task_state(task)["answered"] = (
            True  # a re-offer after a decline is not a new answer
        )
        history = context.state().setdefault("answered", {}).setdefault(task.queue, [])
        history.append([context.now, context.now - task.queued_at])  # JSON-like: a list
        horizon = context.now - windows[task.queue]
        while history and history[0][0] <= horizon:
            history.pop(0)

    if windows:
        handlers.append(EventHandler("offered", offered))
    return handlers
