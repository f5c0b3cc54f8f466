"""Report arithmetic: safe division, rates from counts, periods, buckets, durations."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

import pytest

from server.domain import stats
from server.domain.messages import DomainError


def test_ratio_of_nothing_is_no_data_not_an_error():
    assert stats.ratio(0, 0) is None
    assert stats.ratio(5, 0) is None
    assert stats.ratio(1, 4) == 0.25


def test_percent_shows_a_dash_for_no_data():
    assert stats.percent(None) == "—"
    assert stats.percent(0.935) == "93.5%"
    assert stats.percent(1) == "100.0%"
    assert stats.percent(2 / 3, digits=0) == "67%"


def test_rates_follow_the_definitions():
    c = stats.Counts(
        received=10,
        done=8,
        timed=9,
        timely=6,
        called_back=6,
        rated=5,
        satisfied=3,
        fairly=1,
        unsatisfied=1,
        fairly_counted=1,
        reworked=2,
        first_fix=5,
    )
    r = stats.rates(c)
    assert r.completion == 0.8
    assert r.timeliness == 6 / 9
    assert r.callback == 6 / 8
    assert r.satisfaction == 4 / 5
    assert r.rework == 2 / 8
    assert r.first_fix == 5 / 8


def test_satisfaction_counts_fairly_only_where_the_project_does():
    with_fairly = stats.Counts(rated=4, satisfied=2, fairly=1, unsatisfied=1, fairly_counted=1)
    without = stats.Counts(rated=4, satisfied=2, fairly=1, unsatisfied=1, fairly_counted=0)
    assert stats.rates(with_fairly).satisfaction == 0.75
    assert stats.rates(without).satisfaction == 0.5
    assert stats.satisfied_count(2, 1, True) == 3
    assert stats.satisfied_count(2, 1, False) == 2


def test_an_empty_period_has_no_rates_at_all():
    r = stats.rates(stats.Counts())
    assert all(v is None for v in vars(r).values())


def test_counts_from_a_row_treat_null_as_zero_and_ignore_other_columns():
    c = stats.Counts.from_row({"received": 3, "done": None, "man_hours": "2.50", "breakdown": "team"})
    assert c.received == 3 and c.done == 0 and c.man_hours == 2.5


def test_default_period_is_last_month():
    assert stats.parse_period(None, None, None, date(2026, 1, 15)) == stats.Period(
        date(2025, 12, 1), date(2025, 12, 31)
    )
    assert stats.parse_period("", "", "", date(2024, 3, 1)) == stats.Period(
        date(2024, 2, 1), date(2024, 2, 29)
    )


def test_a_month_covers_its_calendar_days():
    p = stats.parse_period("2025-02", None, None, date(2026, 1, 1))
    assert (p.start, p.end, p.days, p.month) == (date(2025, 2, 1), date(2025, 2, 28), 28, "2025-02")
    assert p.end_exclusive == date(2025, 3, 1)


def test_a_range_is_inclusive_and_is_not_called_a_month():
    p = stats.parse_period("2025-01", "2025-03-10", "2025-04-09", date(2026, 1, 1))  # a range beats a month
    assert (p.start, p.end, p.days, p.month) == (date(2025, 3, 10), date(2025, 4, 9), 31, None)
    assert stats.parse_period(None, "2025-03-01", "2025-03-31", date(2026, 1, 1)).month == "2025-03"


@pytest.mark.parametrize(
    ("month", "start", "end", "field"),
    [
        (None, "2025-13-01", "2025-12-31", "start"),
        (None, "yesterday", "2025-12-31", "start"),
        (None, "2025-01-01", "2025-02-30", "end"),
        (None, "2025-01-01", None, "end"),
        (None, None, "2025-01-01", "start"),
        (None, "2025-03-02", "2025-03-01", "start"),
        (None, "2023-01-01", "2025-01-01", "end"),
        (None, "2025-05-01junk", "2025-05-02", "start"),
        (None, "2025-05-01", "2025-05-02\n1", "end"),
        (None, "２０２５-０１-０１", "2025-01-02", "start"),
        (None, "9999-12-01", "9999-12-31", "start"),
        (None, "0001-01-01", "0001-01-02", "start"),
        (None, "1999-12-31", "2000-01-01", "start"),
        (None, "2100-12-31", "2101-01-01", "end"),
        ("2025-13", None, None, "month"),
        ("March", None, None, "month"),
        ("2025-3", None, None, "month"),
        ("2025-05junk", None, None, "month"),
        ("9999-12", None, None, "month"),
        ("0001-01", None, None, "month"),
    ],
)
def test_bad_periods_are_refused_with_the_field_at_fault(month, start, end, field):
    with pytest.raises(DomainError) as e:
        stats.parse_period(month, start, end, date(2026, 1, 1))
    assert e.value.kind == "invalid" and e.value.field == field


def test_two_full_years_are_allowed_and_one_day_more_is_not():
    assert (
        stats.parse_period(None, "2023-01-01", "2024-12-31", date(2026, 1, 1)).days == stats.MAX_DAYS == 731
    )
    with pytest.raises(DomainError):
        stats.parse_period(None, "2023-01-01", "2025-01-01", date(2026, 1, 1))


def test_a_single_day_is_a_period():
    p = stats.parse_period(None, "2025-01-31", "2025-01-31", date(2026, 1, 1))
    assert (p.days, p.end_exclusive) == (1, date(2025, 2, 1))


def test_the_edges_of_the_years_allowed_are_usable():
    assert stats.parse_period(None, "2000-01-01", "2000-01-01", date(2026, 1, 1)).days == 1
    assert stats.parse_period("2100-12", None, None, date(2026, 1, 1)).end_exclusive == date(2101, 1, 1)


def test_blanks_around_a_value_are_forgiven():
    assert stats.parse_period(None, " 2025-01-01 ", "2025-01-02\t", date(2026, 1, 1)).days == 2


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("", None), (None, None), ("team:3", ("team", 3)), (" engineer:12 ", ("engineer", 12))],
)
def test_a_focus_names_a_team_or_an_engineer(raw, parsed):
    assert stats.parse_focus(raw) == parsed


@pytest.mark.parametrize("raw", ["team", "team:", "team:x", "boss:1", "team:1:2", "team:1234567890"])
def test_a_bad_focus_is_refused(raw):
    with pytest.raises(DomainError) as e:
        stats.parse_focus(raw)
    assert e.value.field == "focus"


def test_every_rate_has_a_definition_and_timeliness_leaves_pending_orders_out():
    assert [a for a, _n, _t in stats.DEFINITIONS] == [f.name for f in fields(stats.Rates)]
    timeliness = dict((a, t) for a, _n, t in stats.DEFINITIONS)["timeliness"]
    assert "pending" in timeliness and "left out of both numbers" in timeliness
    r = stats.rates(stats.Counts(timed=4, timely=3, timing_pending=5))
    assert r.timeliness == 3 / 4  # the five pending orders are in neither number


def test_histogram_lists_every_bucket_even_empty_ones():
    buckets = stats.histogram_buckets({0: 2, 5: 1})
    assert len(buckets) == len(stats.HISTOGRAM_EDGES_HOURS) + 1
    assert buckets[0] == (0.0, 1.0, 2)
    assert buckets[1] == (1.0, 4.0, 0)
    assert buckets[-1] == (72.0, None, 1)


def test_durations_pick_a_readable_unit():
    assert stats.split_duration(None) is None
    assert stats.split_duration(90) == ("min", 2)
    assert stats.split_duration(5400) == ("min", 90)
    assert stats.split_duration(3 * 3600) == ("h", 3.0)
    assert stats.split_duration(4 * 86400) == ("d", 4.0)
    assert stats.split_duration(-5) == ("min", 0)
