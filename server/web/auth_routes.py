"""Login (password and tablet PIN), logout, language choice."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from server.auth import LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, current, login_csrf_token
from server.domain.vocab import Role
from server.i18n import gettext as _
from server.i18n import normalize_locale
from server.persistence import staff as staff_db
from server.runtime import Runtime
from server.security import client_ip, from_trusted_proxy, new_csrf_token, verify_password
from server.web.templates import render

HOME_OF_ROLE: dict[Role, str] = {
    Role.DISPATCHER: "/desk",
    Role.MONITOR: "/board",
    Role.SUPERVISOR: "/triage",
    Role.ENGINEER: "/tablet",
    Role.HANDLER: "/tablet",
    Role.MANAGER: "/reports",
    Role.FINANCE: "/finance",
    Role.ADMIN: "/admin",
}

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(value: str | None) -> str | None:
    """Only same-site paths: an open redirect after login would be a phishing aid."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return None
    return value


def _client_ip(request: Request[Any, Any, Any]) -> str:
    """The address login throttling counts: behind a trusted proxy, from X-Forwarded-For."""
    rt: Runtime = request.app.state.runtime
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), rt.settings.trusted_proxies)


def _is_https(request: Request[Any, Any, Any], rt: Runtime) -> bool:
    peer = request.client.host if request.client else None
    return (
        rt.settings.cookie_secure
        or request.url.scheme == "https"
        or (
            request.headers.get("x-forwarded-proto") == "https"
            and from_trusted_proxy(peer, rt.settings.trusted_proxies)
        )
    )


def login_page(
    request: Request[Any, Any, Any],
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "",
    pin_mode: bool = False,
) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    cookie = request.cookies.get(LOGIN_COOKIE)
    fresh = not cookie
    if fresh:
        cookie = new_csrf_token()
    html = render(
        "login.html",
        login_csrf=login_csrf_token(cookie, rt.settings.session_secret),
        error=error,
        username=username,
        next=_safe_next(request.query_params.get("next")) or "",
        expired=request.query_params.get("expired") == "1",
        pin_mode=pin_mode,
        user=None,
    )
    resp: Response[str] = Response(html, status_code=status, media_type="text/html")
    if fresh:
        # The pre-session CSRF cookie of the login forms (see server.auth._expected_csrf).
        resp.set_cookie(
            LOGIN_COOKIE, cookie, httponly=True, samesite="lax", secure=_is_https(request, rt), path="/login"
        )
    return resp


@get("/login", sync_to_thread=False)
def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    return login_page(request, pin_mode=request.query_params.get("pin") == "1")


async def _throttled(rt: Runtime, ip: str, username: str) -> bool:
    keys = [f"login:ip:{ip}", f"login:acct:{username.lower()}"]
    counts = await rt.redis.mget(keys)
    return any(c is not None and int(c) >= rt.settings.login_max_failures for c in counts)


async def _record_failure(rt: Runtime, ip: str, username: str) -> None:
    pipe = rt.redis.pipeline()
    for key in (f"login:ip:{ip}", f"login:acct:{username.lower()}"):
        pipe.incr(key)
        pipe.expire(key, rt.settings.login_window_seconds, nx=True)
    await pipe.execute()


async def _do_login(request: Request[Any, Any, Any], data: dict[str, str], *, pin: bool) -> Response[Any]:
    rt: Runtime = request.app.state.runtime
    username = (data.get("username") or "").strip().lower()[:40]
    secret = data.get("pin" if pin else "password") or ""
    ip = _client_ip(request)
    if await _throttled(rt, ip, username):
        minutes = max(1, rt.settings.login_window_seconds // 60)
        return login_page(
            request,
            error=_("Too many failed attempts; try again in %(minutes)s minutes", minutes=minutes),
            status=429,
            username=username,
            pin_mode=pin,
        )
    async with rt.engine.connect() as conn:
        row = await staff_db.by_username(conn, username) if username else None
    hashed = (row.pin_hash if pin else row.password_hash) if row else None
    ok = verify_password(secret, hashed) and row is not None and row.active
    if ok and pin and row is not None and row.role not in (Role.ENGINEER, Role.HANDLER):
        ok = False  # PINs are for the shared tablet only
    if not ok or row is None:
        await _record_failure(rt, ip, username)
        # One message for unknown user, wrong password and disabled account.
        return login_page(
            request, error=_("Wrong username or password"), status=401, username=username, pin_mode=pin
        )
    await rt.redis.delete(f"login:acct:{username}")
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await rt.sessions.destroy(old)
    sid, _csrf = await rt.sessions.create(row.id)
    target = _safe_next(data.get("next")) or HOME_OF_ROLE.get(Role(row.role), "/")
    resp: Response[Any] = Redirect(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE, sid, httponly=True, samesite="lax", secure=_is_https(request, rt), path="/"
    )
    return resp


@post("/login", status_code=303)
async def login_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    return await _do_login(request, data, pin=False)


@post("/login/pin", status_code=303)
async def login_pin_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    return await _do_login(request, data, pin=True)


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    rt: Runtime = request.app.state.runtime
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await rt.sessions.destroy(sid)
    resp: Response[Any] = Redirect("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@post("/lang", status_code=303)
async def set_language(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    lang = normalize_locale(data.get("lang"))
    back = _safe_next(data.get("next")) or "/"
    resp: Response[Any] = Redirect(back, status_code=303)
    resp.set_cookie(LANG_COOKIE, lang, httponly=False, samesite="lax", path="/", max_age=365 * 86400)
    return resp


@get("/", sync_to_thread=False)
def home(request: Request[Any, Any, Any]) -> Response[Any]:
    p = current(request)
    if p is None or not p.is_staff or p.role is None:
        return Redirect("/login", status_code=303)
    return Redirect(HOME_OF_ROLE.get(p.role, "/login"), status_code=303)


ROUTES = [login_form, login_submit, login_pin_submit, logout, set_language, home]
