"""Shift windows (DOMAIN.md §6): the desk 09:00–17:30, the monitoring center 17:30–09:00."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def shift_windows(now: datetime, tz: str, desk_opens: time, desk_closes: time) -> dict[str, datetime]:
    """Today's local midnight, the night shift's start and the next (or this) morning's desk opening.

    Before the desk closes, "the night" is last night (yesterday's close → this morning);
    after it closes, it is the night now running (today's close → tomorrow morning).
    """
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    day = local.date()
    midnight = datetime.combine(day, time(0), zone)
    if local >= datetime.combine(day, desk_closes, zone):
        return {
            "midnight": midnight,
            "night_start": datetime.combine(day, desk_closes, zone),
            "morning": datetime.combine(day + timedelta(days=1), desk_opens, zone),
        }
    return {
        "midnight": midnight,
        "night_start": datetime.combine(day - timedelta(days=1), desk_closes, zone),
        "morning": datetime.combine(day, desk_opens, zone),
    }
