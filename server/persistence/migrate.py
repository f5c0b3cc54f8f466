"""Schema migrations (Alembic, SQL files under sql/migrations) and the "is it current?" check."""

from __future__ import annotations

from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from server.config import ROOT

MIGRATIONS = ROOT / "sql" / "migrations"


def run_sql_file(name: str) -> None:
    """Run one migration's SQL file as a single simple-protocol script (many statements)."""
    sql = (MIGRATIONS / name).read_text()
    raw = op.get_bind().connection.driver_connection  # the asyncpg connection
    await_only(raw.execute(sql))


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
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
