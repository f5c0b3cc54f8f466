"""The signed-in person's own page: who am I, language, personal API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.auth import current, staff_guard
from server.i18n import normalize_locale
from server.persistence import staff as staff_db
from server.runtime import Runtime
from server.security import new_token, token_hash
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _page(request: Request[Any, Any, Any], new_token_value: str | None = None) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None and p.staff_id is not None
    async with rt.engine.connect() as conn:
        tokens = (
            (
                await conn.execute(
                    text(
                        "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE staff_id = :s ORDER BY id"
                    ),
                    {"s": p.staff_id},
                )
            )
            .mappings()
            .all()
        )
        projects = (
            (
                await conn.execute(
                    text("SELECT code, name FROM projects WHERE id = ANY(:ids) ORDER BY code"),
                    {"ids": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        )
    html = render(
        "account.html",
        user=p,
        tokens=tokens,
        projects=projects,
        new_token=new_token_value,
        request_path="/account",
    )
    return Response(html, media_type="text/html")


@get("/account", guards=[staff_guard])
async def account(request: Request[Any, Any, Any]) -> Response[str]:
    return await _page(request)


@post("/account/tokens", guards=[staff_guard], status_code=200)
async def create_token(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None and p.staff_id is not None
    token = new_token("bx")
    async with rt.engine.begin() as conn:
        await staff_db.create_api_token(conn, p.staff_id, token_hash(token), (data.get("name") or "")[:60])
    return await _page(request, token)


@post("/account/tokens/{token_id:int}/revoke", guards=[staff_guard], status_code=200)
async def revoke_token(request: Request[Any, Any, Any], token_id: int) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.begin() as conn:
        owner = (
            await conn.execute(text("SELECT staff_id FROM api_tokens WHERE id = :i"), {"i": token_id})
        ).scalar()
        if owner == p.staff_id:
            await staff_db.revoke_api_token(conn, token_id, clock.now())
    return await _page(request)


@post("/account/locale", guards=[staff_guard], status_code=303)
async def set_locale_pref(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.begin() as conn:
        await conn.execute(
            text("UPDATE staff SET locale = :l WHERE id = :i"),
            {"l": normalize_locale(data.get("locale")), "i": p.staff_id},
        )
        await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"staff:{p.staff_id}"})
    resp: Response[Any] = Response("", status_code=303, headers={"Location": "/account"})
    resp.delete_cookie("bx_lang", path="/")
    return resp


ROUTES = [account, create_token, revoke_token, set_locale_pref]
