"""Importing this module registers every feature's hooks (web and worker processes alike)."""

from __future__ import annotations


def _register_shift_jobs() -> None:
    from workers import jobs, shift_jobs

    if shift_notices_registered(jobs):
        return
    jobs.EXTRA_FUNCTIONS.extend(shift_jobs.FUNCTIONS)
    jobs.EXTRA_CRON.extend(shift_jobs.CRON)


def shift_notices_registered(jobs: object) -> bool:
    return any(getattr(f, "__name__", "") == "shift_notices" for f in jobs.EXTRA_FUNCTIONS)  # type: ignore[attr-defined]


_register_shift_jobs()


def _register_alerts() -> None:
    # Hooks (registration, transition, breach) and the escalation jobs of issue 6.
    import server.persistence.alerts  # noqa: F401
    import workers.alert_jobs  # noqa: F401


_register_alerts()


def _register_report_jobs() -> None:
    from workers import jobs, report_jobs

    if report_jobs.flush_report_facts not in jobs.EXTRA_FUNCTIONS:
        jobs.EXTRA_FUNCTIONS.extend(report_jobs.FUNCTIONS)
        jobs.EXTRA_CRON.extend(report_jobs.CRON)


_register_report_jobs()
