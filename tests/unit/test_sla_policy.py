"""SLA rules: defaults of DOMAIN.md §5, resolution order, validation, business hours parsing."""

from __future__ import annotations

from datetime import time

import pytest

from server.domain.messages import DomainError
from server.domain.sla_policy import (
    DEFAULT_BUSINESS_HOURS,
    DEFAULT_RULES,
    BusinessHours,
    SlaRule,
    catalog_item_rule,
    parse_business_hours,
    resolve,
    validate_rules,
)
from server.domain.vocab import Category, ClockKind, Kind, Urgency


def rule(
    clock: ClockKind,
    minutes: int,
    *,
    project_id: int | None = None,
    kind: Kind | None = None,
    category: Category | None = None,
    urgency: Urgency | None = None,
    catalog_item_id: int | None = None,
    business_hours: bool = False,
    priority: int = 0,
) -> SlaRule:
    return SlaRule(
        None, project_id, kind, category, urgency, catalog_item_id, clock, minutes, business_hours, priority
    )


def minutes_for(
    rules: tuple[SlaRule, ...] | list[SlaRule],
    clock: ClockKind,
    *,
    kind: Kind = Kind.REPAIR,
    urgency: Urgency = Urgency.NORMAL,
    category: Category | None = Category.PLUMBING,
    project_id: int | None = 1,
    catalog_item_id: int | None = None,
) -> int | None:
    found = resolve(
        rules,
        project_id=project_id,
        kind=kind,
        category=category,
        urgency=urgency,
        catalog_item_id=catalog_item_id,
        clock=clock,
    )
    return None if found is None else found.minutes


# --- defaults -----------------------------------------------------------------------------------


def test_default_rules_pass_validation() -> None:
    validate_rules(DEFAULT_RULES)


def test_grab_pool_escalates_after_five_minutes() -> None:
    assert minutes_for(DEFAULT_RULES, ClockKind.DISPATCH) == 5


def test_arrival_is_fifteen_minutes_normally_and_ten_in_an_emergency() -> None:
    assert minutes_for(DEFAULT_RULES, ClockKind.ARRIVAL, urgency=Urgency.NORMAL) == 15
    assert minutes_for(DEFAULT_RULES, ClockKind.ARRIVAL, urgency=Urgency.LOW) == 15
    assert minutes_for(DEFAULT_RULES, ClockKind.ARRIVAL, urgency=Urgency.EMERGENCY) == 10


def test_entrapment_is_acknowledged_in_one_minute_and_reached_in_fifteen_even_as_an_emergency() -> None:
    for urgency in Urgency:
        got = dict(
            ack=minutes_for(
                DEFAULT_RULES,
                ClockKind.ACK,
                kind=Kind.ENTRAPMENT,
                urgency=urgency,
                category=Category.ELEVATOR,
            ),
            arrival=minutes_for(
                DEFAULT_RULES,
                ClockKind.ARRIVAL,
                kind=Kind.ENTRAPMENT,
                urgency=urgency,
                category=Category.ELEVATOR,
            ),
        )
        assert got == {"ack": 1, "arrival": 15}


def test_only_entrapment_needs_a_personal_acknowledgement_by_default() -> None:
    assert minutes_for(DEFAULT_RULES, ClockKind.ACK, urgency=Urgency.EMERGENCY) is None


def test_callback_progress_and_first_callback_defaults() -> None:
    assert minutes_for(DEFAULT_RULES, ClockKind.FIRST_CALLBACK) == 15
    assert minutes_for(DEFAULT_RULES, ClockKind.PROGRESS) == 120
    assert (
        minutes_for(DEFAULT_RULES, ClockKind.CALLBACK, kind=Kind.MATTER, category=Category.COMPLAINT)
        == 24 * 60
    )


def test_completion_depends_on_urgency() -> None:
    assert minutes_for(DEFAULT_RULES, ClockKind.COMPLETION, urgency=Urgency.EMERGENCY) == 8 * 60
    assert minutes_for(DEFAULT_RULES, ClockKind.COMPLETION, urgency=Urgency.NORMAL) == 24 * 60
    assert minutes_for(DEFAULT_RULES, ClockKind.COMPLETION, urgency=Urgency.LOW) == 72 * 60


def test_defaults_run_on_calendar_time() -> None:
    assert not any(r.business_hours for r in DEFAULT_RULES)


# --- resolution order -----------------------------------------------------------------------------


def test_more_specific_rule_wins_over_higher_priority_general_rule() -> None:
    rules = [
        rule(ClockKind.COMPLETION, 100, urgency=Urgency.NORMAL, priority=50),
        rule(ClockKind.COMPLETION, 200, urgency=Urgency.NORMAL, category=Category.PLUMBING),
    ]
    assert minutes_for(rules, ClockKind.COMPLETION) == 200
    assert minutes_for(rules, ClockKind.COMPLETION, category=Category.ELECTRICAL) == 100


def test_higher_priority_wins_among_equally_specific_rules() -> None:
    rules = [
        rule(ClockKind.COMPLETION, 100, kind=Kind.REPAIR, priority=1),
        rule(ClockKind.COMPLETION, 200, urgency=Urgency.NORMAL, priority=2),
    ]
    assert minutes_for(rules, ClockKind.COMPLETION) == 200
    assert minutes_for(list(reversed(rules)), ClockKind.COMPLETION) == 200


def test_project_rule_beats_equally_specific_global_rule() -> None:
    rules = [
        rule(ClockKind.ARRIVAL, 10, urgency=Urgency.NORMAL),
        rule(ClockKind.ARRIVAL, 30, project_id=1),
    ]
    assert minutes_for(rules, ClockKind.ARRIVAL, project_id=1) == 30
    assert minutes_for(rules, ClockKind.ARRIVAL, project_id=2) == 10


def test_project_overrides_a_default_by_adding_its_own_scope() -> None:
    rules = [*DEFAULT_RULES, rule(ClockKind.ARRIVAL, 30, project_id=7, urgency=Urgency.EMERGENCY)]
    validate_rules(rules)
    assert minutes_for(rules, ClockKind.ARRIVAL, project_id=7, urgency=Urgency.EMERGENCY) == 30
    assert minutes_for(rules, ClockKind.ARRIVAL, project_id=8, urgency=Urgency.EMERGENCY) == 10


def test_catalog_item_limit_overrides_the_urgency_default() -> None:
    tap = catalog_item_rule(42, 15)
    rules = [*DEFAULT_RULES, tap]
    validate_rules(rules)
    assert tap.clock == ClockKind.COMPLETION
    assert minutes_for(rules, ClockKind.COMPLETION, catalog_item_id=42) == 15
    assert minutes_for(rules, ClockKind.COMPLETION, catalog_item_id=43) == 24 * 60
    assert minutes_for(rules, ClockKind.COMPLETION) == 24 * 60


def test_rule_scoped_to_a_category_does_not_match_an_order_without_one() -> None:
    rules = [rule(ClockKind.COMPLETION, 60, category=Category.ELEVATOR)]
    assert minutes_for(rules, ClockKind.COMPLETION, category=None) is None
    assert minutes_for(rules, ClockKind.COMPLETION, category=Category.ELEVATOR) == 60


def test_no_matching_rule_resolves_to_none() -> None:
    assert minutes_for([], ClockKind.COMPLETION) is None
    assert minutes_for([rule(ClockKind.ARRIVAL, 5)], ClockKind.COMPLETION) is None


def test_codes_loaded_as_text_become_vocabulary_members() -> None:
    r = SlaRule(1, None, "repair", "plumbing", "low", None, "completion", 60)  # type: ignore[arg-type]
    assert (r.kind, r.category, r.urgency, r.clock) == (
        Kind.REPAIR,
        Category.PLUMBING,
        Urgency.LOW,
        ClockKind.COMPLETION,
    )


def test_unknown_code_is_refused_with_the_field_named() -> None:
    with pytest.raises(DomainError) as err:
        SlaRule(1, None, "burglary", None, None, None, ClockKind.COMPLETION, 60)  # type: ignore[arg-type]
    assert (err.value.kind, err.value.field, err.value.params) == ("invalid", "kind", {"value": "burglary"})


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [0, -5])
def test_non_positive_minutes_are_invalid(minutes: int) -> None:
    with pytest.raises(DomainError) as err:
        validate_rules([rule(ClockKind.ARRIVAL, minutes)])
    assert (err.value.kind, err.value.field) == ("invalid", "minutes")
    assert err.value.msgid == "The time limit must be a positive number of minutes."


def test_time_limit_over_a_year_is_invalid() -> None:
    with pytest.raises(DomainError) as err:
        validate_rules([rule(ClockKind.COMPLETION, 366 * 24 * 60)])
    assert err.value.field == "minutes"
    assert err.value.params == {"max_days": 365}


def test_identical_scope_and_priority_is_a_duplicate() -> None:
    rules = [
        rule(ClockKind.ARRIVAL, 10, urgency=Urgency.NORMAL),
        rule(ClockKind.ARRIVAL, 20, urgency=Urgency.NORMAL),
    ]
    with pytest.raises(DomainError) as err:
        validate_rules(rules)
    assert (err.value.kind, err.value.field) == ("invalid", "priority")
    assert "same scope" in err.value.msgid


def test_identical_scope_with_different_priorities_is_allowed() -> None:
    validate_rules(
        [
            rule(ClockKind.ARRIVAL, 10, urgency=Urgency.NORMAL),
            rule(ClockKind.ARRIVAL, 20, urgency=Urgency.NORMAL, priority=1),
        ]
    )


def test_same_scope_for_different_clocks_is_allowed() -> None:
    validate_rules([rule(ClockKind.ARRIVAL, 10), rule(ClockKind.COMPLETION, 10)])


def test_overlapping_rules_without_a_priority_are_ambiguous() -> None:
    # A normal repair would match both with nothing to choose between them.
    rules = [
        rule(ClockKind.COMPLETION, 60, kind=Kind.REPAIR),
        rule(ClockKind.COMPLETION, 90, urgency=Urgency.NORMAL),
    ]
    with pytest.raises(DomainError) as err:
        validate_rules(rules)
    assert err.value.field == "priority"
    assert "overlaps" in err.value.msgid


def test_overlap_resolved_by_priority_or_disjoint_scopes_is_valid() -> None:
    validate_rules(
        [
            rule(ClockKind.COMPLETION, 60, kind=Kind.REPAIR, priority=1),
            rule(ClockKind.COMPLETION, 90, urgency=Urgency.NORMAL),
        ]
    )
    validate_rules(
        [
            rule(ClockKind.COMPLETION, 60, urgency=Urgency.LOW),
            rule(ClockKind.COMPLETION, 90, urgency=Urgency.NORMAL),
        ]
    )


def test_urgent_clocks_cannot_run_on_business_hours() -> None:
    for bad in (
        rule(ClockKind.ARRIVAL, 10, urgency=Urgency.EMERGENCY, business_hours=True),
        rule(ClockKind.ARRIVAL, 15, kind=Kind.ENTRAPMENT, business_hours=True),
        rule(ClockKind.ACK, 1, business_hours=True),
    ):
        with pytest.raises(DomainError) as err:
            validate_rules([bad])
        assert err.value.field == "business_hours"
    validate_rules([rule(ClockKind.COMPLETION, 72 * 60, urgency=Urgency.LOW, business_hours=True)])


# --- business hours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["09:00-17:30", "9:00-17:30", " 09:00 – 17:30 ", "09:00至17:30", "09:00~17:30"]
)
def test_business_hours_parse_common_spellings(text: str) -> None:
    hours = parse_business_hours(text)
    assert hours == BusinessHours(time(9, 0), time(17, 30), "workdays")
    assert hours.to_text() == "09:00-17:30"
    assert hours == DEFAULT_BUSINESS_HOURS


@pytest.mark.parametrize(
    "text", ["", "9-17", "09:00", "24:00-25:00", "09:60-17:00", "09:00-17:30-18:00", "nine-five"]
)
def test_malformed_business_hours_are_invalid(text: str) -> None:
    with pytest.raises(DomainError) as err:
        parse_business_hours(text)
    assert (err.value.kind, err.value.field) == ("invalid", "business_hours")
    assert err.value.msgid == "Business hours must look like 09:00-17:30."


@pytest.mark.parametrize("text", ["17:30-09:00", "09:00-09:00"])
def test_business_hours_must_end_after_they_start(text: str) -> None:
    with pytest.raises(DomainError) as err:
        parse_business_hours(text)
    assert err.value.msgid == "Business hours must end after they start."


def test_business_days_are_workdays_or_daily() -> None:
    assert parse_business_hours("08:00-20:00", "daily").days == "daily"
    with pytest.raises(DomainError) as err:
        BusinessHours(time(9), time(17), "weekends")  # type: ignore[arg-type]
    assert err.value.field == "business_hours"
