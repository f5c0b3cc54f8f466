"""Who hears of a missed deadline (DOMAIN.md §5–7, the seeds' 升级 rules), by clock.

Pure: audiences are named here; the persistence layer resolves them to staff of the project.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.messages import N_
from server.domain.vocab import ClockKind

# "Completion missed → supervisor, then manager": the manager hears an hour after the supervisor.
MANAGER_AFTER_MINUTES = 60


@dataclass(frozen=True)
class BreachRoute:
    audiences: tuple[str, ...]  # "supervisors" | "team_lead" | "dispatchers" | "managers"
    #: the work list the order lands on (shown on the desk and supervisor pages)
    work_list: str | None
    message: str  # msgid with %(number)s and %(location)s
    opens_alert: bool = False
    #: audiences told later, (audience, minutes after the breach)
    then: tuple[tuple[str, int], ...] = ()

    def steps(self) -> tuple[tuple[str, int], ...]:
        """Return every audience with its delay in minutes (0: at once), in order."""
        return tuple((a, 0) for a in self.audiences) + self.then


ROUTES: dict[ClockKind, BreachRoute] = {
    ClockKind.DISPATCH: BreachRoute(
        ("supervisors",), None, N_("%(number)s has waited unclaimed past its dispatch time")
    ),
    ClockKind.PROGRESS: BreachRoute(("team_lead",), None, N_("%(number)s has had no progress for 2 hours")),
    ClockKind.ARRIVAL: BreachRoute(
        ("dispatchers", "supervisors"),
        "apology_calls",
        N_("%(number)s: the engineer has not arrived in time; call the customer"),
    ),
    ClockKind.FIRST_CALLBACK: BreachRoute(
        ("dispatchers",), "callback_checks", N_("%(number)s: call the customer to check the engineer arrived")
    ),
    ClockKind.COMPLETION: BreachRoute(
        ("supervisors",),
        None,
        N_("%(number)s has not been completed in time"),
        then=(("managers", MANAGER_AFTER_MINUTES),),
    ),
    ClockKind.CALLBACK: BreachRoute(
        ("dispatchers", "managers"), "callbacks", N_("%(number)s is waiting for its callback past 24 hours")
    ),
    ClockKind.ACK: BreachRoute(
        ("supervisors",), None, N_("%(number)s: nobody has acknowledged the alert"), opens_alert=True
    ),
}


def route_for(kind: ClockKind) -> BreachRoute:
    return ROUTES[kind]
