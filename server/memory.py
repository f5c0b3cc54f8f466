"""Give freed heap back to the operating system now and then (glibc keeps it otherwise).

A burst of board renders or a report leaves the C heap with free pages that glibc's malloc keeps
for reuse; on a wall-board server that idles between bursts, returning them keeps each web
process near its working set instead of its high-water mark. Elsewhere (musl, macOS) a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_SECONDS = 10.0  # a walk of the free lists: well under a millisecond on a web process's heap


def _malloc_trim() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> None:
        trim(0)

    return run


def trim_now() -> bool:
    """Return the free heap pages at once; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim()
    return True


async def trim_forever(every: float = TRIM_SECONDS) -> None:
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(every)
        try:
            trim()
        except Exception:  # never let housekeeping end the process
            log.exception("malloc_trim failed")
