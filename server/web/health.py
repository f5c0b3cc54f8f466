"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Request, Response, get
from sqlalchemy import text

from server.persistence.migrate import is_current
from server.runtime import Runtime


@get("/healthz", media_type=MediaType.TEXT, sync_to_thread=False)
def healthz() -> str:
    return "ok"


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    rt: Runtime = request.app.state.runtime
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(2):
            async with rt.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            checks["migrations"] = "ok" if await is_current(rt.engine) else "behind: run `baoxiu migrate`"
    except Exception as e:
        checks["database"] = f"unreachable: {type(e).__name__}"
    try:
        async with asyncio.timeout(2):
            await rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as e:
        checks["redis"] = f"unreachable: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response({"ready": ok, **checks}, status_code=200 if ok else 503)


ROUTES = [healthz, readyz]
