"""Translations: gettext catalogs compiled by Babel, zh-CN first, English second.

Source strings (msgids) are English; the zh_CN catalog translates every one of them (a test
checks that), the en catalog is the identity. The current locale lives in a context variable
set once per request, so templates and domain messages translate without passing it around.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)


def _ensure_mo(locale: str) -> Path:
    """Compile the .po when its .mo is missing or older (the install step normally did it)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
        with po.open("rb") as f:
            catalog = read_po(f, locale=locale)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)
    return mo


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    mo = _ensure_mo(locale)
    if not mo.exists():
        return _gettext.NullTranslations()
    with mo.open("rb") as f:
        return _gettext.GNUTranslations(f)


def normalize_locale(value: str | None) -> str:
    if not value:
        return DEFAULT_LOCALE
    v = value.replace("-", "_").lower()
    if v.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def get_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(normalize_locale(locale))


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(normalize_locale(locale))
    try:
        yield
    finally:
        _current.reset(token)


def gettext(msgid: str, **params: object) -> str:
    text = translations(_current.get()).gettext(msgid)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


_ = gettext
