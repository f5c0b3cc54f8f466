"""Intake validation: every field checked, normalised, all errors named at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.intake import normalize_phone, parse_room, validate_intake
from server.domain.messages import ValidationErrors
from server.domain.vocab import Category, Department, Kind, Urgency

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
GOOD = {
    "project": "DEMO",
    "kind": "repair",
    "category": "plumbing",
    "room": "1-1-101",
    "reporter_name": "张三",
    "reporter_phone": "138 1234 5678",
    "summary": "厨房水龙头漏水",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("(0755) 8765-4321", "075587654321"),
        ("12345", None),
        ("abc", None),
        ("", None),
        ("23812345678", None),
        ("+1 415 555 0100", None),  # another country's number is not a Chinese mobile
        ("001 415 555 0100", None),
        ("+44 20 7946 0958", None),
    ],
)
def test_phone_numbers_are_normalised(raw, expected):
    assert normalize_phone(raw) == expected


def test_room_is_building_unit_room():
    assert parse_room(" 1 - 2 - 301 ") == ("1", "2", "301")
    assert parse_room("1-301") is None


def test_a_good_repair_passes_normalised():
    intake = validate_intake(GOOD, now=NOW)
    assert intake.reporter_phone == "13812345678"
    assert intake.kind is Kind.REPAIR and intake.urgency is Urgency.NORMAL
    assert intake.area == "private" and intake.room == ("1", "1", "101")
    assert intake.department is Department.ENGINEERING


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValidationErrors) as e:
        validate_intake(
            {
                "project": "DEMO",
                "kind": "repair",
                "category": "nope",
                "room": "x",
                "reporter_phone": "1",
                "summary": "s" * 101,
            },
            now=NOW,
        )
    assert set(e.value.errors) >= {"category", "room", "reporter_name", "reporter_phone", "summary"}


def test_matter_is_routed_by_nature():
    intake = validate_intake({**GOOD, "kind": "matter", "category": "loss"}, now=NOW)
    assert intake.department is Department.ORDER
    assert (
        validate_intake({**GOOD, "kind": "matter", "category": "greening"}, now=NOW).department
        is Department.GREENING
    )


def test_a_repair_needs_a_repair_category():
    with pytest.raises(ValidationErrors) as e:
        validate_intake({**GOOD, "category": "complaint"}, now=NOW)
    assert "category" in e.value.errors


def test_entrapment_is_always_an_emergency_of_the_elevator():
    intake = validate_intake({**GOOD, "kind": "entrapment", "category": "", "urgency": "low"}, now=NOW)
    assert intake.urgency is Urgency.EMERGENCY and intake.category is Category.ELEVATOR


def test_appointments_in_the_past_are_refused():
    with pytest.raises(ValidationErrors) as e:
        validate_intake({**GOOD, "appointment_at": (NOW - timedelta(hours=1)).isoformat()}, now=NOW)
    assert "appointment_at" in e.value.errors


def test_a_naive_appointment_is_read_in_the_project_zone():
    intake = validate_intake({**GOOD, "appointment_at": "2026-11-24T18:00"}, now=NOW)
    assert intake.appointment_at is not None
    assert intake.appointment_at.astimezone(UTC) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_public_area_orders_need_the_area():
    with pytest.raises(ValidationErrors) as e:
        validate_intake({**GOOD, "room": "", "area": "public"}, now=NOW)
    assert "public_area" in e.value.errors
