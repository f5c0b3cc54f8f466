"""Schema migrations (Alembic, SQL files under sql/migrations) and the "is it current?" check.

Alembic is imported only to migrate: the web processes ask "is it current?" at start and on
/readyz, and reading the revision chain from the version files keeps ~10 MB of Alembic and Mako
out of every web process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from server.config import ROOT

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = ROOT / "sql" / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*"([^"]*)"', re.M)


def run_sql_file(name: str) -> None:
    """Run one migration's SQL file as a single simple-protocol script (many statements)."""
    from alembic import op

    sql = (MIGRATIONS / name).read_text()
    raw = op.get_bind().connection.driver_connection  # the asyncpg connection
    await_only(raw.execute(sql))


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
    """The newest revision: the one no other version file names as its down_revision."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            parents.add(found.get("down_revision", ""))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must form one chain, found heads {sorted(heads)}")
    return heads.pop()


def alembic_head_revision() -> str:
    """Alembic's own reading of the head (the tests hold head_revision to it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://x/y")).get_current_head() or ""


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))
