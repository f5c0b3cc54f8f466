"""The web processes hand freed heap back to the system (server/memory.py)."""

from __future__ import annotations

import asyncio
import platform

import pytest

from server import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_heap_is_trimmed_on_glibc() -> None:
    assert memory.trim_now() is True


async def test_the_trimmer_runs_until_cancelled() -> None:
    task = asyncio.create_task(memory.trim_forever(every=0.01))
    await asyncio.sleep(0.05)
    assert not task.done()  # a trim neither raised nor ended the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
