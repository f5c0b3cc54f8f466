"""Mask a customer's name and phone for the wall display (严守业主秘密: DOMAIN.md §1)."""

from __future__ import annotations


def mask_name(name: str | None) -> str:
    """Return the first character and two stars: 张** (the length of the name is not revealed)."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "**"


def mask_phone(phone: str | None) -> str:
    """Return the phone with its middle hidden: 138****1234; short numbers keep only the last two digits."""
    digits = (phone or "").strip()
    n = len(digits)
    if n == 0:
        return ""
    if n >= 8:
        return digits[:3] + "*" * (n - 7) + digits[-4:]
    if n >= 3:
        return "*" * (n - 2) + digits[-2:]
    return "*" * n


def mask_customer(name: str | None, phone: str | None) -> str:
    return " · ".join(x for x in (mask_name(name), mask_phone(phone)) if x)
