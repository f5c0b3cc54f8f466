"""Shift windows and which shift notices are due, in the project's local time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from server.domain.shifts import shift_windows
from workers.shift_jobs import due_notices

SH = ZoneInfo("Asia/Shanghai")


def test_before_the_desk_closes_the_night_is_last_night():
    w = shift_windows(
        datetime(2026, 11, 24, 3, 0, tzinfo=UTC), "Asia/Shanghai", time(9), time(17, 30)
    )  # 11:00 local
    assert w["night_start"] == datetime(2026, 11, 23, 17, 30, tzinfo=SH)
    assert w["morning"] == datetime(2026, 11, 24, 9, 0, tzinfo=SH)


def test_after_the_desk_closes_the_night_is_tonight():
    w = shift_windows(
        datetime(2026, 11, 24, 12, 0, tzinfo=UTC), "Asia/Shanghai", time(9), time(17, 30)
    )  # 20:00 local
    assert w["night_start"] == datetime(2026, 11, 24, 17, 30, tzinfo=SH)
    assert w["morning"] == datetime(2026, 11, 25, 9, 0, tzinfo=SH)


def test_notices_fall_due_at_their_local_times():
    def at(h: int, m: int) -> list[str]:
        return due_notices(datetime(2026, 11, 24, h, m, tzinfo=SH), time(9), time(17, 30))

    assert at(17, 5) == ["slips"]
    assert at(17, 20) == ["slips", "end_of_shift"]
    assert at(9, 10) == ["handover"]
    assert at(8, 0) == ["over_24h"]
    assert at(12, 0) == []


def test_the_shift_counts_are_one_public_select_list_over_the_bounds_given():
    from server.persistence.worklists import SHIFT_SUMMARY_KEYS, shift_count_columns

    cols = shift_count_columns({"midnight": "w.m", "night_start": "w.n", "morning": "w.o", "now": ":now"})
    assert re.findall(r"\) AS (\w+)", cols) == list(SHIFT_SUMMARY_KEYS)
    assert "w.m" in cols and "w.n" in cols and "w.o" in cols and ":now" in cols
    assert "{" not in cols  # every bound filled in
