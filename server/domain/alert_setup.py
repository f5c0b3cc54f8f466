"""What an administrator configures for alerts, validated: channels, contractors, elevators;
and who among the elevator contractors hears of an entrapment.

Each `parse_*` takes the submitted fields (form or JSON) and returns clean values or raises
ValidationErrors naming every field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.domain.intake import normalize_phone
from server.domain.messages import N_, ValidationErrors

CHANNEL_KINDS = ("wecom", "webhook", "sms")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
ELEVATOR_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

Errors = dict[str, tuple[str, dict[str, object]]]


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return str(value).strip() if value is not None else ""


def _url(errors: Errors, raw: Mapping[str, Any], key: str, required: bool) -> str:
    value = _text(raw, key)
    if not value:
        if required:
            errors[key] = (N_("This field is required"), {})
        return ""
    if len(value) > 500 or not URL_RE.match(value):
        errors[key] = (N_("Give a web address starting with http:// or https://"), {})
    return value


def _bounded(errors: Errors, raw: Mapping[str, Any], key: str, most: int, required: bool = True) -> str:
    value = _text(raw, key)
    if required and not value:
        errors[key] = (N_("This field is required"), {})
    elif len(value) > most:
        errors[key] = (N_("At most %(max)s characters"), {"max": most})
    return value


def _flag(raw: Mapping[str, Any], key: str, default: bool = True) -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "on", "yes")


def parse_channel(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A group channel (WeCom robot, webhook) or the project's SMS gateway adapter."""
    errors: Errors = {}
    channel = _text(raw, "channel")
    if channel not in CHANNEL_KINDS:
        errors["channel"] = (N_("Unknown value %(value)s"), {"value": channel[:20]})
    url = _url(errors, raw, "url", required=True)
    name = _bounded(errors, raw, "name", 40, required=False)
    token = _bounded(errors, raw, "token", 200, required=False)
    if channel == "wecom" and url and "key=" not in url:
        errors["url"] = (N_("A WeCom robot address ends in ?key=…"), {})
    if errors:
        raise ValidationErrors(errors)
    return {"channel": channel, "url": url, "name": name, "token": token, "active": _flag(raw, "active")}


def parse_contractor(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An elevator maintenance contractor: reached by its webhook, else by SMS to its phone."""
    errors: Errors = {}
    name = _bounded(errors, raw, "name", 60)
    phone_raw = _text(raw, "phone")
    phone = ""
    if phone_raw:
        phone = normalize_phone(phone_raw) or ""
        if not phone:
            errors["phone"] = (N_("Not a valid phone number"), {})
    webhook = _url(errors, raw, "webhook", required=False)
    if not phone_raw and not webhook and "phone" not in errors:
        errors["phone"] = (N_("Give a phone or a webhook: the contractor must be reachable"), {})
    if errors:
        raise ValidationErrors(errors)
    return {"name": name, "phone": phone, "webhook": webhook, "active": _flag(raw, "active")}


def parse_elevator(
    raw: Mapping[str, Any], buildings: Sequence[int], contractors: Sequence[int]
) -> dict[str, Any]:
    """An elevator: its code (the monitoring box's id), name, building and contractor."""
    errors: Errors = {}
    code = _text(raw, "code")
    if not code:
        errors["code"] = (N_("This field is required"), {})
    elif not ELEVATOR_CODE_RE.match(code):
        errors["code"] = (N_("Letters, digits, '-', '_' or '.', at most 40"), {})
    name = _bounded(errors, raw, "name", 40)
    building_id = _choice(errors, raw, "building_id", buildings)
    contractor_id = _choice(errors, raw, "contractor_id", contractors)
    if errors:
        raise ValidationErrors(errors)
    return {
        "code": code,
        "name": name,
        "building_id": building_id,
        "contractor_id": contractor_id,
        "active": _flag(raw, "active"),
    }


def _choice(errors: Errors, raw: Mapping[str, Any], key: str, allowed: Sequence[int]) -> int | None:
    value = _text(raw, key)
    if not value:
        return None
    if not value.isdigit() or int(value) not in allowed:
        errors[key] = (N_("Unknown value %(value)s"), {"value": value[:20]})
        return None
    return int(value)


def parse_elevator_choice(raw: Any) -> str | None:
    """The elevator named at the desk for an entrapment (its code), or None; raise on a bad code."""
    value = str(raw).strip() if raw is not None else ""
    if not value:
        return None
    if not ELEVATOR_CODE_RE.match(value):
        raise ValidationErrors({"elevator": (N_("Unknown elevator %(code)s"), {"code": value[:40]})})
    return value


# ---- who hears of an entrapment ------------------------------------------------------------


@dataclass(frozen=True)
class Contractor:
    id: int
    name: str
    phone: str
    webhook: str

    @property
    def channel(self) -> str | None:
        """Its webhook when it has one (a machine answers at once), else SMS, else nothing."""
        if self.webhook:
            return "webhook"
        if self.phone:
            return "sms"
        return None


def contractors_to_notify(
    elevator_contractor_id: int | None, elevator_known: bool, project_contractors: Sequence[Contractor]
) -> list[Contractor]:
    """The elevator's contractor; with no elevator known, every contractor of the project.

    An empty answer (no contractor, or none reachable) must be recorded and flagged, never silent.
    """
    reachable = [c for c in project_contractors if c.channel]
    if elevator_known:
        return [c for c in reachable if c.id == elevator_contractor_id]
    return reachable
