"""Hand-written SQL of the hot paths, kept as files under sql/queries and loaded by name."""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text

from server.config import ROOT

QUERIES = ROOT / "sql" / "queries"


@cache
def sql(name: str) -> TextClause:
    return text((QUERIES / f"{name}.sql").read_text())
