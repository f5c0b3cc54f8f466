"""Marker for user-facing messages raised by the pure domain modules.

Domain code has no idea of the user's language: it raises English msgids marked with
``N_`` (so Babel extracts them) plus named parameters; the web layer translates them
through the gettext catalogs (zh-CN first) when it answers.
"""

from __future__ import annotations


def N_(msgid: str) -> str:
    """Return the msgid unchanged; marks it for extraction into the catalogs."""
    return msgid


class DomainError(Exception):
    """A refusal with a translatable message.

    ``kind`` maps to the HTTP answer: ``forbidden`` → 403, ``invalid`` → 422 (``field``
    names the input at fault), ``conflict`` → 409, ``not_found`` → 404.
    """

    def __init__(self, kind: str, msgid: str, *, field: str | None = None, **params: object) -> None:
        super().__init__(msgid % params if params else msgid)
        self.kind = kind
        self.msgid = msgid
        self.field = field
        self.params = params


class ValidationErrors(DomainError):
    """Several fields at fault at once (a form): {field: (msgid, params)}."""

    def __init__(self, errors: dict[str, tuple[str, dict[str, object]]]) -> None:
        first_field, (first_msgid, first_params) = next(iter(errors.items()))
        super().__init__("invalid", first_msgid, field=first_field, **first_params)
        self.errors = errors
