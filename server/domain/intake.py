"""Intake rules: what a new order must say, normalised and checked before anything is saved.

Pure: the caller resolves the room and catalog against the database afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.messages import N_, ValidationErrors
from server.domain.vocab import (
    MATTER_CATEGORIES,
    REPAIR_CATEGORIES,
    Category,
    Channel,
    Department,
    Kind,
    Urgency,
)

MAX_SUMMARY = 100
MAX_CONTENT = 2000
MAX_NAME = 40
ROOM_RE = re.compile(r"^\s*([0-9A-Za-z]{1,20})\s*-\s*([0-9A-Za-z]{1,20})\s*-\s*([0-9A-Za-z]{1,20})\s*$")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^(0\d{9,11}|\d{7,8})$")

# 报事 routed by nature (DOMAIN.md §2).
DEPARTMENT_OF_CATEGORY: dict[Category, Department] = {
    Category.ENQUIRY: Department.CUSTOMER_SERVICE,
    Category.COMPLAINT: Department.CUSTOMER_SERVICE,
    Category.SUGGESTION: Department.CUSTOMER_SERVICE,
    Category.HELP: Department.CUSTOMER_SERVICE,
    Category.ADMIN_AFFAIR: Department.CUSTOMER_SERVICE,
    Category.LOSS: Department.ORDER,
    Category.SECURITY_CHECK: Department.ORDER,
    Category.CLEANING: Department.CLEANING,
    Category.GREENING: Department.GREENING,
}


def department_for(kind: Kind, category: Category) -> Department:
    if kind is Kind.MATTER:
        return DEPARTMENT_OF_CATEGORY.get(category, Department.ENGINEERING)
    return Department.ENGINEERING


def normalize_phone(raw: str) -> str | None:
    """Return digits only, without +86 / 0086; None when it is no Chinese phone number."""
    digits = re.sub(r"[\s\-()（）.]", "", raw or "")
    if digits.startswith("+"):
        if not digits.startswith("+86"):
            return None  # another country's number
        digits = digits[1:]
    if digits.startswith("00") and not digits.startswith("0086"):
        return None
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isdigit():
        return None
    if MOBILE_RE.match(digits) or LANDLINE_RE.match(digits):
        return digits
    return None


def parse_room(raw: str) -> tuple[str, str, str] | None:
    m = ROOM_RE.match(raw or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


@dataclass(frozen=True)
class Intake:
    project: str
    kind: Kind
    category: Category
    urgency: Urgency
    area: str  # "private" | "public"
    room: tuple[str, str, str] | None
    public_area: str | None
    reporter_name: str
    reporter_phone: str
    summary: str
    content: str
    channel: Channel
    appointment_at: datetime | None
    catalog_item: str | None
    designated_engineer_id: int | None
    department: Department


def _text(raw: Mapping[str, object], key: str) -> str:
    value = raw.get(key)
    return str(value).replace("\x00", "").strip() if value is not None else ""


def _enum(errors: dict, raw: Mapping[str, object], key: str, enum: type, default: object = None) -> object:
    value = _text(raw, key)
    if not value:
        if default is not None:
            return default
        errors[key] = (N_("This field is required"), {})
        return None
    try:
        return enum(value)
    except ValueError:
        errors[key] = (N_("Unknown value %(value)s"), {"value": value[:40]})
        return None


def parse_datetime(value: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt


def validate_intake(raw: Mapping[str, object], *, now: datetime, tz_name: str = "Asia/Shanghai") -> Intake:
    """Check and normalise every field; raise ValidationErrors naming each field at fault."""
    from zoneinfo import ZoneInfo

    errors: dict[str, tuple[str, dict[str, object]]] = {}
    project = _text(raw, "project")
    if not project:
        errors["project"] = (N_("This field is required"), {})
    kind = _enum(errors, raw, "kind", Kind)
    category = _enum(
        errors, raw, "category", Category, default=Category.ELEVATOR if kind is Kind.ENTRAPMENT else None
    )
    urgency = _enum(
        errors,
        raw,
        "urgency",
        Urgency,
        default=Urgency.EMERGENCY if kind is Kind.ENTRAPMENT else Urgency.NORMAL,
    )
    channel = _enum(errors, raw, "channel", Channel, default=Channel.PHONE)
    if kind is Kind.ENTRAPMENT:
        urgency = Urgency.EMERGENCY
        category = Category.ELEVATOR
    if isinstance(kind, Kind) and isinstance(category, Category):
        if kind is Kind.REPAIR and category not in REPAIR_CATEGORIES:
            errors["category"] = (N_("%(category)s is not a repair category"), {"category": category.value})
        if kind is Kind.MATTER and category not in MATTER_CATEGORIES and category not in REPAIR_CATEGORIES:
            errors["category"] = (N_("Unknown value %(value)s"), {"value": category.value})

    room_raw, area_raw = _text(raw, "room"), _text(raw, "public_area")
    area = _text(raw, "area") or ("private" if room_raw else "public")
    room = None
    public_area = None
    if area not in ("private", "public"):
        errors["area"] = (N_("Unknown value %(value)s"), {"value": area[:20]})
    elif area == "private":
        room = parse_room(room_raw)
        if room is None:
            errors["room"] = (N_("Give the room as building-unit-room, e.g. 1-1-101"), {})
    else:
        public_area = area_raw[:100] or None
        if public_area is None and kind is not Kind.ENTRAPMENT and room_raw == "":
            errors["public_area"] = (N_("Choose the public area"), {})
        if room_raw and public_area is None:
            room = parse_room(room_raw)

    name = _text(raw, "reporter_name")
    if not name:
        errors["reporter_name"] = (N_("This field is required"), {})
    elif len(name) > MAX_NAME:
        errors["reporter_name"] = (N_("At most %(max)s characters"), {"max": MAX_NAME})
    phone = normalize_phone(_text(raw, "reporter_phone"))
    if phone is None:
        errors["reporter_phone"] = (N_("Not a valid phone number"), {})
    summary = _text(raw, "summary")
    if not summary:
        errors["summary"] = (N_("This field is required"), {})
    elif len(summary) > MAX_SUMMARY:
        errors["summary"] = (N_("At most %(max)s characters"), {"max": MAX_SUMMARY})
    content = _text(raw, "content")
    if len(content) > MAX_CONTENT:
        errors["content"] = (N_("At most %(max)s characters"), {"max": MAX_CONTENT})

    appointment_at = None
    appt = _text(raw, "appointment_at")
    if appt:
        parsed = parse_datetime(appt)
        if parsed is None:
            errors["appointment_at"] = (N_("Not a valid date and time"), {})
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=ZoneInfo(tz_name))
            if parsed < now - timedelta(minutes=5):
                errors["appointment_at"] = (N_("The appointment is in the past"), {})
            elif parsed > now + timedelta(days=90):
                errors["appointment_at"] = (N_("The appointment is more than 90 days ahead"), {})
            appointment_at = parsed

    designated = None
    d_raw = _text(raw, "designated_engineer_id")
    if d_raw:
        if d_raw.isdigit():
            designated = int(d_raw)
        else:
            errors["designated_engineer_id"] = (N_("Unknown value %(value)s"), {"value": d_raw[:20]})

    if errors:
        raise ValidationErrors(errors)
    assert isinstance(kind, Kind) and isinstance(category, Category)
    assert isinstance(urgency, Urgency) and isinstance(channel, Channel) and phone is not None
    return Intake(
        project=project,
        kind=kind,
        category=category,
        urgency=urgency,
        area=area,
        room=room,
        public_area=public_area,
        reporter_name=name,
        reporter_phone=phone,
        summary=summary,
        content=content,
        channel=channel,
        appointment_at=appointment_at,
        catalog_item=_text(raw, "catalog_item") or None,
        designated_engineer_id=designated,
        department=department_for(kind, category),
    )
