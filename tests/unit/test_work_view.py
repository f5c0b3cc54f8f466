"""What the tablet and triage show of an order, and how triage reads its forms (server/web/work_view.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from server.web import work_view

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def clock_row(minutes_total: int, minutes_left: float, state: str = "running") -> dict[str, object]:
    deadline = NOW + timedelta(minutes=minutes_left)
    return {
        "clock_kind": "arrival",
        "deadline": deadline,
        "started_at": deadline - timedelta(minutes=minutes_total),
        "clock_state": state,
        "paused_at": NOW if state == "paused" else None,
        "paused_seconds": 0,
        "minutes": minutes_total,
        "clock_business_hours": False,
        "urgency": "normal",
    }


def cd(row: dict[str, object]) -> work_view.Countdown:
    return work_view.countdown_of(row, NOW, tz=SH, hours=None, translate=lambda m, **p: m % p if p else m)


def test_bands_follow_the_share_of_time_left_as_on_the_wall():
    assert cd(clock_row(100, 60)).band == "green"
    assert cd(clock_row(100, 40)).band == "amber"
    assert cd(clock_row(100, 10)).band == "red"
    late = cd(clock_row(100, -5))
    assert late.band == "breached" and late.countdown == "05:00"  # how long overdue
    assert cd(clock_row(100, 30, "paused")).band == "paused"


def test_a_running_calendar_clock_counts_down_in_the_browser():
    c = cd(clock_row(15, 12))
    assert c.deadline_ms == int((NOW + timedelta(minutes=12)).timestamp() * 1000)
    assert c.countdown == "12:00" and c.clock_kind == "arrival"


def test_an_order_without_a_running_clock_has_no_countdown():
    assert cd({"clock_kind": None, "deadline": None}).band == "none"


def test_the_deadline_shows_its_date_only_when_not_today():
    assert work_view.due_text(NOW + timedelta(hours=3), NOW, SH) == "13:00"
    assert work_view.due_text(NOW + timedelta(days=2), NOW, SH) == "11-26 10:00"


def test_filters_are_checked_against_what_the_caller_sees():
    f, errors = work_view.parse_filters(
        {"project": "DEMO", "team": "7", "category": "plumbing", "status": "pooled", "breached": "1"},
        ["DEMO"],
        [7],
    )
    assert (f.project, f.team, f.category, f.status, f.breached) == ("DEMO", 7, "plumbing", "pooled", True)
    assert errors == {}
    f, errors = work_view.parse_filters(
        {"project": "OTHER", "team": "8", "status": "closed", "kind": "x"}, ["DEMO"], [7]
    )
    assert set(errors) == {"project", "team", "status", "kind"}
    assert f == work_view.Filters()


def test_the_filter_form_that_comes_with_an_action_is_not_a_lifecycle_input():
    filters, inputs = work_view.split_form(
        {
            "_csrf": "t",
            "number": "BX-1",
            "version": "3",
            "category": "plumbing",
            "status": "",
            "breached": "1",
            "assignee_id": "5",
            "reason": "",
        }
    )
    assert filters == {"category": "plumbing", "status": "", "breached": "1"}
    assert inputs == {"assignee_id": "5"}


def test_targets_are_one_order_or_a_selection_without_repeats():
    assert work_view.parse_targets({"number": "BX-1", "version": "2"}) == [("BX-1", 2)]
    assert work_view.parse_targets({"selected": "BX-1@2,BX-2@5,BX-1@2,junk,BX-3@x"}) == [
        ("BX-1", 2),
        ("BX-2", 5),
    ]
    assert work_view.parse_targets({"number": "BX-1"}) == [("BX-1", None)]
