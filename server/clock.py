"""The one source of "now" for web and worker processes.

In production it is the wall clock. With BAOXIU_TEST_CLOCK=1 every process adds a shared
offset (table app_clock, broadcast by NOTIFY 'clock') so tests and demos can move time
forward across processes without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def offset() -> timedelta:
    return _offset


def set_offset(seconds: float) -> None:
    global _offset
    _offset = timedelta(seconds=seconds)


def on_notify(payload: str) -> None:
    try:
        set_offset(float(payload))
    except ValueError:
        pass
