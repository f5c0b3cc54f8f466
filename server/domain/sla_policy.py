"""SLA rules: which time limit applies to which clock of which order (DOMAIN.md §5).

Pure: no web, no database. Rules come from the defaults below (DOMAIN.md §5, the seeds),
the rules an admin edits (table sla_rules, global or per project; a stored rule outranks the
built-in default of the same scope) and the service catalog (an item's own time limit is a
rule with ``catalog_item_id`` set).

A rule's scope is project, kind, category, urgency and catalog item, each set or "any". For
one clock of one order, among the rules that match it:

1. the most specific wins: the one with the most scope fields set;
2. among equally specific rules, the higher ``priority``;
3. then a project's own rule over a global one, and then a catalog item's own limit over a
   generic rule.

Any tie left (say "kind = repair" against "urgency = normal", same priority) is refused by
``validate_rules`` when the rule is saved, so resolution never depends on the order of rows.
A rule changed later applies to clocks started afterwards; a running clock keeps its deadline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from typing import Literal, TypeVar

from server.domain.messages import N_, DomainError
from server.domain.vocab import Category, ClockKind, Kind, Urgency

# A time limit over a year is a typo (minutes entered as seconds, an extra zero), not a policy.
MAX_MINUTES = 365 * 24 * 60

BusinessDays = Literal["workdays", "daily"]

_E = TypeVar("_E", bound=StrEnum)


def _coerce(enum: type[_E], value: object, field: str) -> _E | None:
    """Accept the enum member or its stored code (rules are loaded from the database as text)."""
    if value is None or isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        raise DomainError("invalid", N_("Unknown value: %(value)s."), field=field, value=value) from None


@dataclass(frozen=True, slots=True)
class SlaRule:
    """One time limit; a None scope field means "any"."""

    id: int | None
    project_id: int | None
    kind: Kind | None
    category: Category | None
    urgency: Urgency | None
    catalog_item_id: int | None
    clock: ClockKind
    minutes: int
    business_hours: bool = False  # count only the site's business hours (non-urgent work)
    priority: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _coerce(Kind, self.kind, "kind"))
        object.__setattr__(self, "category", _coerce(Category, self.category, "category"))
        object.__setattr__(self, "urgency", _coerce(Urgency, self.urgency, "urgency"))
        clock = _coerce(ClockKind, self.clock, "clock")
        if clock is None:
            raise DomainError("invalid", N_("Choose which clock the rule sets."), field="clock")
        object.__setattr__(self, "clock", clock)

    @property
    def scope(self) -> tuple[int | None, Kind | None, Category | None, Urgency | None, int | None]:
        return (self.project_id, self.kind, self.category, self.urgency, self.catalog_item_id)

    @property
    def specificity(self) -> int:
        return sum(field is not None for field in self.scope)

    def matches(
        self,
        *,
        project_id: int | None,
        kind: Kind | None,
        category: Category | None,
        urgency: Urgency | None,
        catalog_item_id: int | None,
        clock: ClockKind,
    ) -> bool:
        wanted = (project_id, kind, category, urgency, catalog_item_id)
        return self.clock == clock and all(
            mine is None or mine == theirs for mine, theirs in zip(self.scope, wanted, strict=True)
        )


def _rank(rule: SlaRule) -> tuple[int, int, bool, bool]:
    # More specific first; then the explicit priority; then the project's own rule over a
    # global one, and a catalog item's own limit over a generic one of equal standing.
    return (rule.specificity, rule.priority, rule.project_id is not None, rule.catalog_item_id is not None)


def catalog_item_rule(catalog_item_id: int, minutes: int, *, project_id: int | None = None) -> SlaRule:
    """The completion limit of a service-catalog item (e.g. 更换普通水龙头 15 分钟)."""
    return SlaRule(None, project_id, None, None, None, catalog_item_id, ClockKind.COMPLETION, minutes)


def resolve(
    rules: Iterable[SlaRule],
    *,
    project_id: int | None,
    kind: Kind | None,
    category: Category | None,
    urgency: Urgency | None,
    catalog_item_id: int | None = None,
    clock: ClockKind,
) -> SlaRule | None:
    """The rule that sets ``clock`` for an order with this scope, or None when no rule applies."""
    candidates = [
        r
        for r in rules
        if r.matches(
            project_id=project_id,
            kind=kind,
            category=category,
            urgency=urgency,
            catalog_item_id=catalog_item_id,
            clock=clock,
        )
    ]
    # max() keeps the first of equal ranks, so a tie validate_rules would refuse stays deterministic.
    return max(candidates, key=_rank, default=None)


def _may_match_same_order(a: SlaRule, b: SlaRule) -> bool:
    return all(x is None or y is None or x == y for x, y in zip(a.scope, b.scope, strict=True))


def validate_rules(rules: Sequence[SlaRule]) -> None:
    """Refuse a policy that resolve() could not apply unambiguously."""
    for rule in rules:
        if not isinstance(rule.minutes, int) or isinstance(rule.minutes, bool) or rule.minutes <= 0:
            raise DomainError(
                "invalid", N_("The time limit must be a positive number of minutes."), field="minutes"
            )
        if rule.minutes > MAX_MINUTES:
            raise DomainError(
                "invalid",
                N_("The time limit is too long (at most %(max_days)s days)."),
                field="minutes",
                max_days=MAX_MINUTES // (24 * 60),
            )
        # Entrapment and emergencies run round the clock (DOMAIN.md §5: business hours are for non-urgent work).
        if rule.business_hours and (
            rule.urgency == Urgency.EMERGENCY or rule.kind == Kind.ENTRAPMENT or rule.clock == ClockKind.ACK
        ):
            raise DomainError(
                "invalid",
                N_("Urgent clocks run round the clock, not on business hours."),
                field="business_hours",
            )
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if a.clock != b.clock or a.priority != b.priority:
                continue
            if a.scope == b.scope:
                raise DomainError(
                    "invalid",
                    N_("Another rule already sets this clock for the same scope with the same priority."),
                    field="priority",
                )
            if _rank(a) == _rank(b) and _may_match_same_order(a, b):
                raise DomainError(
                    "invalid",
                    N_(
                        "This rule overlaps another rule for the same clock with the same priority; "
                        "give one of them a higher priority."
                    ),
                    field="priority",
                )


def _default(
    clock: ClockKind,
    minutes: int,
    *,
    kind: Kind | None = None,
    urgency: Urgency | None = None,
    priority: int = 0,
) -> SlaRule:
    return SlaRule(None, None, kind, None, urgency, None, clock, minutes, priority=priority)


# DOMAIN.md §5. Entrapment rules carry a priority so they beat the equally specific
# emergency rules (an entrapment is also registered as an emergency).
DEFAULT_RULES: tuple[SlaRule, ...] = (
    _default(ClockKind.DISPATCH, 5),
    _default(ClockKind.ARRIVAL, 15),
    _default(ClockKind.ARRIVAL, 10, urgency=Urgency.EMERGENCY),
    _default(ClockKind.ACK, 1, kind=Kind.ENTRAPMENT, priority=10),
    _default(ClockKind.ARRIVAL, 15, kind=Kind.ENTRAPMENT, priority=10),
    _default(ClockKind.FIRST_CALLBACK, 15),
    _default(ClockKind.PROGRESS, 120),
    _default(ClockKind.COMPLETION, 8 * 60, urgency=Urgency.EMERGENCY),
    _default(ClockKind.COMPLETION, 24 * 60, urgency=Urgency.NORMAL),
    _default(ClockKind.COMPLETION, 72 * 60, urgency=Urgency.LOW),
    _default(ClockKind.CALLBACK, 24 * 60),
)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A site's working window, in the project's local time, on Chinese working days or every day."""

    start: time
    end: time
    days: BusinessDays = "workdays"

    def __post_init__(self) -> None:
        if self.days not in ("workdays", "daily"):
            raise DomainError(
                "invalid", N_("Unknown business days: %(value)s."), field="business_hours", value=self.days
            )
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            # Local wall-clock times: the zone is the project's, given when computing.
            raise DomainError(
                "invalid", N_("Business hours must look like 09:00-17:30."), field="business_hours"
            )
        if not self.start < self.end:
            raise DomainError(
                "invalid", N_("Business hours must end after they start."), field="business_hours"
            )

    def to_text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


# The service center's desk shift (DOMAIN.md §6).
DEFAULT_BUSINESS_HOURS = BusinessHours(time(9, 0), time(17, 30))

_HOURS_RE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*[-–—~～至]\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


def parse_business_hours(text: str, days: BusinessDays = "workdays") -> BusinessHours:
    """Parse "09:00-17:30" (admins type en dashes and 至 too)."""
    match = _HOURS_RE.match(text or "")
    if match is None:
        raise DomainError("invalid", N_("Business hours must look like 09:00-17:30."), field="business_hours")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return BusinessHours(time(h1, m1), time(h2, m2), days)
