"""The residents' report form behind the QR poster: /report/{project}.

No login: checked like the desk form, rate-limited per IP and per phone in Redis, and
registered with channel 线上 by the system on the project's behalf.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.domain.intake import normalize_phone, validate_intake
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import REPAIR_CATEGORIES, Category
from server.persistence import orders as orders_db
from server.runtime import Runtime
from server.web.errors import translate
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PER_IP_PER_HOUR = 10
PER_PHONE_PER_HOUR = 3


async def _project(rt: Runtime, code: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT id, code, name FROM projects WHERE code = :c AND active"), {"c": code[:20]}
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise DomainError("not_found", N_("Unknown project %(value)s"), value=code[:20])
    return dict(row)


def _page(
    project: dict[str, Any], form: dict[str, str], errors: dict[str, str], done: Any = None, status: int = 200
) -> Response[str]:
    cats = [c for c in Category if c in REPAIR_CATEGORIES]
    return Response(
        render(
            "public_form.html",
            project=project,
            form=form,
            errors=errors,
            done=done,
            categories=cats,
            user=None,
        ),
        status_code=status,
        media_type="text/html",
    )


@get("/report/{code:str}")
async def public_form(request: Request[Any, Any, Any], code: str) -> Response[str]:
    project = await _project(request.app.state.runtime, code)
    return _page(project, {}, {})


async def _over_limit(rt: Runtime, key: str, limit: int) -> bool:
    pipe = rt.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 3600, nx=True)
    count, _ = await pipe.execute()
    return int(count) > limit


@post("/report/{code:str}", status_code=200)
async def public_submit(request: Request[Any, Any, Any], code: str, data: Form) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    project = await _project(rt, code)
    form = {
        k: v
        for k, v in data.items()
        if k in ("room", "reporter_name", "reporter_phone", "category", "summary", "content")
    }
    if data.get("website"):  # the honeypot field people never see
        return _page(project, {}, {}, done={"number": "—"})
    from server.web.auth_routes import _client_ip

    ip = _client_ip(request)  # behind the reverse proxy: the resident's address, not nginx's
    phone = normalize_phone(form.get("reporter_phone", "")) or ""
    try:
        limited = await _over_limit(rt, f"pub:ip:{ip}", PER_IP_PER_HOUR) or (
            bool(phone) and await _over_limit(rt, f"pub:phone:{phone}", PER_PHONE_PER_HOUR)
        )
    except Exception:  # Redis down: the form still works, unthrottled, rather than failing residents
        limited = False
    if limited:
        return _page(
            project,
            form,
            {"form": translate(N_("Too many reports from here; please call the service desk"), {})},
            status=429,
        )
    raw = {
        **form,
        "project": project["code"],
        "kind": "repair",
        "channel": "online",
        "urgency": "normal",
        "area": "private",
    }
    try:
        now = clock.now()
        intake = validate_intake(raw, now=now)
        async with rt.engine.begin() as conn:
            reg = await orders_db.register(conn, intake, orders_db.ActorInfo(None, "线上报修", None), now)
    except ValidationErrors as e:
        return _page(project, form, {f: translate(m, p) for f, (m, p) in e.errors.items()}, status=422)
    except DomainError as e:
        return _page(project, form, {e.field or "form": translate(e.msgid, e.params)}, status=422)
    from server.web.api_orders import after_register

    await after_register(rt, reg)
    return _page(project, {}, {}, done={"number": reg.number})


ROUTES = [public_form, public_submit]
