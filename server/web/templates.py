"""The Jinja2 environment: views/ folder, autoescape everywhere, gettext from server.i18n."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from server.config import ROOT
from server.i18n import get_locale, gettext, ngettext
from server.labels import action_label, label


def local_time(value: datetime | None, fmt: str = "%m-%d %H:%M", tz: str = "Asia/Shanghai") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def yuan(fen: int | None) -> str:
    fen = fen or 0
    return f"{fen // 100}.{fen % 100:02d}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ROOT / "views"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["get_locale"] = get_locale
    env.globals["label"] = label
    env.globals["action_label"] = action_label
    env.filters["local_time"] = local_time
    env.filters["yuan"] = yuan
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
