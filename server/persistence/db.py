"""The async engine; one per process."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # statement cache on (asyncpg default) keeps the hot board query prepared per connection.
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=False)
