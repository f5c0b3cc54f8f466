"""Test session: real PostgreSQL and Redis, a fresh schema migrated from empty, demo data.

Never touches the database named by DATABASE_URL itself: with DATABASE_URL set, tests use
`<name>_test` on the same server and Redis database 15; without it, embedded servers under
.run/test (started here, stopped at the end).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
_services: Any = None


def _derive_test_urls() -> tuple[str, str]:
    global _services
    db = os.environ.get("DATABASE_URL", "")
    redis = os.environ.get("REDIS_URL", "")
    if db and redis:
        parts = urlsplit(db)
        name = parts.path.lstrip("/") or "baoxiu"
        if not name.endswith("_test"):
            name += "_test"
        db = urlunsplit(parts._replace(path="/" + name))
        rparts = urlsplit(redis)
        redis = urlunsplit(rparts._replace(path="/15"))
        return db, redis
    from server.devservices import EmbeddedServices

    # Concurrent sessions (several developers' pytest runs) share one cluster: each names
    # its own BAOXIU_TEST_DB and BAOXIU_TEST_REDIS_DB; a cluster found running is left running.
    _services = EmbeddedServices(
        ROOT / ".run" / "test", os.environ.get("BAOXIU_TEST_DB", "baoxiu_test"), stop_adopted=False
    )
    env = _services.start()
    redis = urlunsplit(
        urlsplit(env["REDIS_URL"])._replace(path="/" + os.environ.get("BAOXIU_TEST_REDIS_DB", "0"))
    )
    return env["DATABASE_URL"], redis


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("BAOXIU_TEST_WORKER_URLS"):
        return
    db, redis = _derive_test_urls()
    os.environ["DATABASE_URL"] = db
    os.environ["REDIS_URL"] = redis
    os.environ["BAOXIU_TEST_CLOCK"] = "1"
    os.environ.setdefault("BAOXIU_RUN_DIR", str(ROOT / ".run" / "test"))
    os.environ["LOGIN_MAX_FAILURES"] = "5"
    os.environ["BAOXIU_TEST_WORKER_URLS"] = "1"
    from server.config import get_settings

    get_settings.cache_clear()
    _reset_database(db, redis)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _services is not None:
        _services.stop()


def _reset_database(db: str, redis_url: str) -> None:
    """Drop everything, migrate from empty (that is the migration test), seed the demo."""
    from sqlalchemy import text

    from server.demo import seed_demo
    from server.persistence.db import make_engine
    from server.persistence.migrate import upgrade

    async def drop() -> None:
        engine = make_engine(db)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
        from redis.asyncio import Redis

        r = Redis.from_url(redis_url)
        await r.flushdb()
        await r.aclose()

    asyncio.run(drop())
    upgrade(db)
    asyncio.run(seed_demo(db, reset=False))
    asyncio.run(_seed_outsider(db))


async def _seed_outsider(db: str) -> None:
    """A second project with its own staff: the outsider of every access test."""
    from sqlalchemy import text

    from server.persistence import staff as staff_db
    from server.persistence.db import make_engine
    from server.security import hash_password

    engine = make_engine(db)
    async with engine.begin() as conn:
        pid = (
            await conn.execute(
                text("INSERT INTO projects (code, name) VALUES ('OTHER', '别的小区') RETURNING id")
            )
        ).scalar_one()
        await conn.execute(
            text("INSERT INTO buildings (project_id, code, name) VALUES (:p, '1', '1栋')"), {"p": pid}
        )
        pw = hash_password("demo1234")
        for username, role in (
            ("other_kefu", "dispatcher"),
            ("other_shifu", "engineer"),
            ("other_zhuguan", "supervisor"),
        ):
            await staff_db.create_staff(
                conn,
                username=username,
                display_name=username,
                role=role,
                password_hash=pw,
                project_ids=[pid],
                pin_hash=hash_password("1357"),
            )
    await engine.dispose()


@pytest.fixture(scope="session")
def settings() -> Any:
    from server.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
async def app(settings: Any) -> AsyncIterator[Any]:
    """One application for the session; its lifespan (startup checks, listener) runs once."""
    from server.app import create_app

    application = create_app(settings)
    # The hooks are run by hand: the lifespan context manager's cancel scope would be
    # entered and exited in different tasks by a session fixture.
    for hook in application.on_startup:
        await hook(application)
    yield application
    for hook in application.on_shutdown:
        await hook(application)


@pytest.fixture(scope="session")
async def engine(settings: Any) -> AsyncIterator[Any]:
    from server.persistence.db import make_engine

    eng = make_engine(settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def redis(settings: Any) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    r = Redis.from_url(settings.redis_url)
    yield r
    await r.aclose()


def make_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


@pytest.fixture
async def client(app: Any, redis: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh browser-like client (own cookies); login throttles cleared."""
    keys = await redis.keys("login:*")
    if keys:
        await redis.delete(*keys)
    async with make_client(app) as c:
        yield c


@pytest.fixture
def new_client(app: Any) -> Any:
    """Factory of further independent clients (a second browser) for the same app."""
    return lambda: make_client(app)


@pytest.fixture
def login(client: httpx.AsyncClient) -> Any:
    """Log `client` in as a demo user; return the CSRF token of the new session."""

    async def do(username: str, password: str = "demo1234") -> str:
        r = await post_login(client, {"username": username, "password": password})
        assert r.status_code == 303, r.text
        return await csrf_of(client)

    return do


async def post_login(c: httpx.AsyncClient, data: dict[str, str], path: str = "/login") -> httpx.Response:
    """Submit a login form the way a browser does: open the form (its CSRF cookie and field), post."""
    import re

    page = await c.get("/login?pin=1" if path == "/login/pin" else "/login")
    m = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert m, page.text[:500]
    return await c.post(path, data={**data, "_csrf": m.group(1)}, follow_redirects=False)


async def csrf_of(client: httpx.AsyncClient) -> str:
    """Read the CSRF token the way a page does: from the meta tag of a rendered page."""
    r = await client.get("/account")
    import re

    m = re.search(r'name="csrf-token" content="([^"]+)"', r.text)
    assert m, r.text[:500]
    return m.group(1)


@pytest.fixture(scope="session")
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
