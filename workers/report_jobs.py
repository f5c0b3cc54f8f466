"""Reports (issue 7): keep order_facts current between reports.

Every report and wall-board panel flushes the orders changed since the last flush before it reads
(server/persistence/reports.py); this job flushes once a minute as well, so the first report after
a quiet night (no board open) never pays for a whole day's changes.
"""

from __future__ import annotations

from typing import Any

from arq import cron

from server.persistence import reports


async def flush_report_facts(ctx: dict[str, Any]) -> int:
    async with ctx["engine"].begin() as conn:
        return await reports.flush_facts(conn)


FUNCTIONS = [flush_report_facts]
CRON = [cron(flush_report_facts, second={20}, unique=True, timeout=60)]
