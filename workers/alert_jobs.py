"""arq jobs of alerts: the step job, the escalation sweep, the auditor (stuck, reminders, delivery log).

- `escalate_alert(alert_id, step_index, token)`: deferred to the step's time, enqueued after
  the commit that made it due. It runs only while the alert still carries its token.
- `escalation_sweep`: every 5 s, runs overdue steps whose job Redis lost (same claim).
  It also writes finished deliveries (sent / failed) into the order timeline.
- `alert_auditor`: every 15 s, flags alerts whose next step is overdue by over a minute and
  sends the "acknowledged but not resolved" reminders.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from server import clock
from server.persistence import alerts
from workers import jobs

log = logging.getLogger("baoxiu.worker.alerts")
STEP_JOB = "escalate_alert"


def step_job_id(s: alerts.Scheduled) -> str:
    return f"escalate:{s.alert_id}:{s.step_index}:{s.token}"


async def schedule(redis: Any, steps: list[alerts.Scheduled]) -> None:
    """Enqueue step jobs (call after commit). Redis failing is logged: the sweep runs the step anyway."""
    for s in steps:
        try:
            # With the test clock, "now" runs ahead of Redis' wall clock by the offset.
            await redis.enqueue_job(
                STEP_JOB,
                s.alert_id,
                s.step_index,
                s.token,
                _job_id=step_job_id(s),
                _defer_until=s.at - clock.offset(),
            )
        except Exception as e:
            log.warning("could not schedule step %s of alert %s: %s", s.step_index, s.alert_id, e)


async def escalate_alert(ctx: dict[str, Any], alert_id: int, step_index: int, token: str) -> bool:
    nxt = await alerts.run_step(ctx["engine"], alert_id, step_index, token, clock.now(), via="job")
    if nxt is not None:
        await schedule(ctx["redis"], [nxt])
    return nxt is not None


async def escalation_sweep(ctx: dict[str, Any]) -> int:
    now = clock.now()
    scheduled = await alerts.sweep(ctx["engine"], now)
    await schedule(ctx["redis"], scheduled)
    await alerts.log_deliveries(ctx["engine"], now)  # outcomes reach the order timeline within seconds
    return len(scheduled)


async def alert_auditor(ctx: dict[str, Any]) -> dict[str, int]:
    now = clock.now()
    stuck = await alerts.audit(ctx["engine"], now)
    reminded = await alerts.remind(ctx["engine"], now)
    return {"stuck": len(stuck), "reminded": len(reminded)}


def _register() -> None:
    if escalate_alert in jobs.EXTRA_FUNCTIONS:
        return
    jobs.EXTRA_FUNCTIONS.extend([escalate_alert, escalation_sweep, alert_auditor])
    jobs.EXTRA_CRON.extend(
        [
            cron(escalation_sweep, second=set(range(0, 60, 5)), run_at_startup=True, unique=True, timeout=30),
            cron(alert_auditor, second={0, 15, 30, 45}, unique=True, timeout=30),
        ]
    )


_register()
