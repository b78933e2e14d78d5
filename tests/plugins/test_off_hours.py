"""off_hours: calendars, messages, the wake-up at opening, and config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from omniroute.core import DeploymentError, Engine, EngineOptions, load_deployment
from omniroute.plugins.off_hours import Calendar, PublicHolidays

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "off_hours" / "deployment.yaml"
MADRID = ZoneInfo("Europe/Madrid")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)  # type: ignore[misc]


def test_weekly_hours_ranges_and_holidays() -> None:
    calendar = Calendar(
        "Europe/Madrid", {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"}, ("2026-12-25",)
    )
    assert calendar.is_open(at(2026, 1, 5, 9, 0))  # Monday
    assert not calendar.is_open(at(2026, 1, 5, 8, 59))
    assert not calendar.is_open(at(2026, 1, 5, 18, 0))
    assert calendar.is_open(at(2026, 1, 10, 13, 59))  # Saturday
    assert not calendar.is_open(at(2026, 1, 11, 12, 0))  # Sunday
    assert not calendar.is_open(at(2026, 12, 25, 12, 0))  # a holiday (Friday)
    assert calendar.next_opening(at(2026, 1, 9, 19, 0)) == at(2026, 1, 10, 10, 0)
    assert calendar.next_opening(at(2026, 1, 10, 15, 0)) == at(2026, 1, 12, 9, 0)
    assert calendar.next_opening(at(2026, 12, 24, 19, 0)) == at(2026, 12, 26, 10, 0)


def test_wrapping_days_overnight_hours_and_split_shifts() -> None:
    calendar = Calendar("UTC", {"fri-mon": "22:00-06:00", "wed": "08:00-12:00, 13:00-17:00"})
    utc = UTC
    assert calendar.is_open(datetime(2026, 1, 9, 23, 0, tzinfo=utc))  # Friday night
    assert calendar.is_open(datetime(2026, 1, 10, 5, 0, tzinfo=utc))  # into Saturday
    assert calendar.is_open(
        datetime(2026, 1, 13, 5, 59, tzinfo=utc)
    )  # Monday's night ends Tuesday 06:00
    assert not calendar.is_open(datetime(2026, 1, 13, 22, 30, tzinfo=utc))  # Tuesday night: closed
    assert not calendar.is_open(datetime(2026, 1, 7, 12, 30, tzinfo=utc))  # Wednesday lunch
    assert calendar.next_opening(datetime(2026, 1, 7, 12, 30, tzinfo=utc)) == datetime(
        2026, 1, 7, 13, 0, tzinfo=utc
    )


def test_opening_across_a_daylight_saving_change() -> None:
    calendar = Calendar("Europe/Madrid", {"mon-sun": "09:00-18:00"})
    # The clocks go forward on 2026-03-29: 09:00 is 07:00 UTC that day, 08:00 UTC the day before.
    assert calendar.next_opening(datetime(2026, 3, 28, 20, 0, tzinfo=UTC)) == at(2026, 3, 29, 9, 0)
    assert calendar.next_opening(datetime(2026, 3, 28, 20, 0, tzinfo=UTC)).astimezone(UTC).hour == 7  # type: ignore[union-attr]


def test_closings_follow_back_to_back_intervals() -> None:
    calendar = Calendar("UTC", {"mon": "20:00-24:00", "tue": "00:00-06:00, 09:00-17:00"})
    utc = UTC
    assert calendar.next_closing(datetime(2026, 1, 5, 21, 0, tzinfo=utc)) == datetime(
        2026, 1, 6, 6, 0, tzinfo=utc
    )
    assert calendar.next_closing(datetime(2026, 1, 6, 10, 0, tzinfo=utc)) == datetime(
        2026, 1, 6, 17, 0, tzinfo=utc
    )
    assert calendar.next_closing(datetime(2026, 1, 6, 7, 0, tzinfo=utc)) == datetime(
        2026, 1, 6, 7, 0, tzinfo=utc
    )
    always = Calendar("UTC", {"mon-sun": "00:00-24:00"})
    assert always.next_closing(datetime(2026, 1, 6, 7, 0, tzinfo=utc)) is None


def test_a_never_open_calendar_has_no_opening_and_warns() -> None:
    assert Calendar("UTC", {}).next_opening(datetime(2026, 1, 1, tzinfo=UTC)) is None
    deployment = load_deployment(
        {
            "plugins": ["off_hours"],
            "queues": {"q": {}},
            "off_hours": {"calendars": {"never": {"weekly": {"mon": "closed"}}}},
        }
    )
    assert [str(w) for w in deployment.warnings] == [
        "off_hours.calendars.never: this calendar is never open: every live task of its queues will be rejected"
    ]


def test_rejections_carry_the_queue_message() -> None:
    engine = Engine(load_deployment(EXAMPLE), start=datetime(2026, 1, 5, 20, 0, tzinfo=MADRID))
    engine.create_task("c1", "chat", queue="support")
    task = engine.task("c1")
    assert (task.state, task.reason) == ("rejected", "off_hours")
    assert task.message == "We are open 9:00-18:00, Monday to Friday, and 10:00-14:00 on Saturday."


def test_messages_waiting_at_closing_time_wait_for_the_next_opening() -> None:
    engine = Engine(
        load_deployment(EXAMPLE),
        start=datetime(2026, 1, 5, 17, 0, tzinfo=MADRID),
        options=EngineOptions(auto_accept=True),
    )
    engine.add_agent("ana", {"messaging": 1}, {"queues": ["support"]})
    engine.create_task("m1", "messaging", queue="support")  # ana takes it
    engine.create_task("m2", "messaging", queue="support")  # waits for ana
    engine.advance_to(2 * 3600)  # 19:00: closed
    engine.complete("m1")
    assert engine.task("m2").state == "queued"
    assert engine.task("m2").hold_reason == "off_hours"  # held at 18:00 by the closing timer
    # Tuesday 6 January is Epiphany, one of Madrid's public holidays in the example's
    # calendar: still held on Tuesday, released at Wednesday 09:00.
    engine.run_timers(until=30 * 3600)
    assert engine.task("m2").state == "queued"
    engine.run_timers(until=40 * 3600)
    assert engine.task("m2").state == "assigned"
    assert engine.offers[-1].at == 40 * 3600


BASE: dict[str, Any] = {
    "plugins": ["off_hours"],
    "channels": {"chat": {}},
    "queues": {"support": {}},
}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"calendars": {"c": {"timezone": "Mars/Olympus"}}}, "unknown time zone 'Mars/Olympus'"),
        (
            {"calendars": {"c": {"weekly": {"mon-fry": "09:00-18:00"}}}},
            "'mon-fry' is not a day or a range of days",
        ),
        (
            {"calendars": {"c": {"weekly": {"mon": "9-18"}}}},
            "weekly.mon: '9-18' is not opening hours",
        ),
        ({"calendars": {"c": {"weekly": {"mon": "25:00-26:00"}}}}, "is not opening hours"),
        (
            {"calendars": {"c": {"weekly": {"mon": "09:00-09:00"}}}},
            "opens and closes at the same time",
        ),
        (
            {"calendars": {"c": {"holidays": ["Christmas"]}}},
            "off_hours.calendars.c.holidays[0]: 'Christmas' is not a date",
        ),
        (
            {"queues": {"support": {"calendar": "missing"}}},
            "off_hours.queues.support.calendar: unknown calendar 'missing'",
        ),
        ({"queues": {"billing": {}}}, "off_hours.queues.billing: unknown queue 'billing'"),
        ({"hold_channels": ["fax"]}, "off_hours.hold_channels[0]: unknown channel 'fax'"),
        (
            {"queues": {"support": {"messages": {"closed": "x"}}}},
            "off_hours.queues.support.messages.closed: unknown key",
        ),
    ],
)
def test_config_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment({**BASE, "off_hours": section})
    assert message in str(caught.value)


# --- public holidays of a region, through the holidays package -------------------------------

WEEKDAYS = {"mon-fri": "09:00-18:00"}


def test_a_regions_public_holidays_beside_explicit_dates() -> None:
    madrid = Calendar(
        "Europe/Madrid", WEEKDAYS, ["2026-12-24", {"country": "ES", "subdivision": "MD"}]
    )
    spain = Calendar("Europe/Madrid", WEEKDAYS, {"country": "ES"})  # one region, no list
    assert madrid.regions == (PublicHolidays("ES", "MD"),)
    # Epiphany (Tuesday 6 January) is a national holiday; Maundy Thursday (2 April 2026) is
    # Madrid's, not Spain's; 24 December is closed only because the file says so.
    assert not madrid.is_open(at(2026, 1, 6, 12, 0))
    assert not spain.is_open(at(2026, 1, 6, 12, 0))
    assert not madrid.is_open(at(2026, 4, 2, 12, 0))
    assert spain.is_open(at(2026, 4, 2, 12, 0))
    assert not madrid.is_open(at(2026, 12, 24, 12, 0))
    assert spain.is_open(at(2026, 12, 24, 12, 0))
    # Any year, not only the one the calendar was made in.
    assert not madrid.is_open(at(2031, 1, 6, 12, 0))
    # Thursday 2 and Friday 3 April (Good Friday) closed: the next opening is Monday the 6th.
    assert madrid.next_opening(at(2026, 4, 1, 19, 0)) == at(2026, 4, 6, 9, 0)
    assert spain.next_opening(at(2026, 4, 1, 19, 0)) == at(2026, 4, 2, 9, 0)


def test_a_region_in_a_deployment_closes_the_queue_on_its_holidays() -> None:
    deployment = load_deployment(
        {
            **BASE,
            "off_hours": {
                "calendars": {
                    "c": {
                        "timezone": "Europe/Madrid",
                        "weekly": WEEKDAYS,
                        "holidays": [{"country": "ES", "subdivision": "MD"}],
                    }
                },
                "queues": {"support": {"calendar": "c"}},
            },
        }
    )
    engine = Engine(
        deployment,
        start=datetime(2026, 4, 2, 10, 0, tzinfo=MADRID),
        options=EngineOptions(auto_accept=True),
    )
    engine.add_agent("ana", channels={"chat": 1})
    engine.create_task("c1", channel="chat", queue="support")
    task = engine.state.tasks["c1"]
    assert (task.state, task.reason) == ("rejected", "off_hours")


@pytest.mark.parametrize(
    ("holidays", "message"),
    [
        (
            [{"country": "XX"}],
            "off_hours.calendars.c.holidays[0].country: 'XX' is not a country the holidays package knows",
        ),
        ([{"country": "es"}], "did you mean 'ES'?"),
        (
            ["2026-01-01", {"country": "ES", "subdivision": "ZZ"}],
            "off_hours.calendars.c.holidays[1].subdivision: 'ZZ' is not a subdivision of ES (known: AN, AR",
        ),
        (
            {"country": "ES", "subdivison": "MD"},
            "off_hours.calendars.c.holidays.subdivison: unknown key; did you mean 'subdivision'?",
        ),
        (
            [{"subdivision": "MD"}],
            "off_hours.calendars.c.holidays[0].country: required key is missing",
        ),
        ([{"country": 34}], "off_hours.calendars.c.holidays[0].country: expected text, got int 34"),
        ("2026-12-25", "off_hours.calendars.c.holidays: expected a list of dates and regions"),
    ],
)
def test_region_errors_name_their_key_path(holidays: Any, message: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        load_deployment(
            {**BASE, "off_hours": {"calendars": {"c": {"weekly": WEEKDAYS, "holidays": holidays}}}}
        )
    assert message in str(caught.value)
