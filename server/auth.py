"""Who is asking: staff sessions (Redis), personal API tokens, kiosk tokens; CSRF; guards.

The middleware resolves the caller once per request into a `Principal` and never answers
itself, except for a CSRF refusal. Lookups are cached in-process and dropped by NOTIFY
'auth' (disable, logout, revoke), so the wall board's poll needs no database round trip;
while the LISTEN connection is down the cache is bypassed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from server import clock
from server.domain.vocab import Role
from server.i18n import DEFAULT_LOCALE, normalize_locale, set_locale
from server.persistence import staff as staff_db
from server.security import new_csrf_token, new_session_id, same, token_hash

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from server.runtime import Runtime

SESSION_COOKIE = "bx_session"
LANG_COOKIE = "bx_lang"
CSRF_HEADER = b"x-csrf-token"
CSRF_FIELD = "_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The login forms have no session yet: they are checked against a pre-session cookie.
CSRF_EXEMPT = frozenset({"/login", "/login/pin"})
LOGIN_COOKIE = "bx_login"
TOUCH_EVERY = 60.0  # seconds between idle-timeout refreshes of one session
CACHE_MAX = 10_000
_UNAVAILABLE = (RedisError, OperationalError, InterfaceError, DBAPIError, OSError, TimeoutError)


@dataclass(frozen=True)
class Principal:
    """The caller: a staff member (by session or API token) or a wall-board kiosk."""

    kind: str  # "staff" | "kiosk"
    via: str  # "session" | "token" | "kiosk"
    name: str
    project_ids: frozenset[int]
    staff_id: int | None = None
    role: Role | None = None
    team_ids: frozenset[int] = frozenset()
    department: str | None = None
    locale: str = DEFAULT_LOCALE
    session_id: str | None = None
    csrf: str | None = None
    kiosk_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def can_see_project(self, project_id: int) -> bool:
        return project_id in self.project_ids


@dataclass
class _Cached:
    principal: Principal
    generation: int
    touched: float = field(default_factory=time.monotonic)


def _principal_from_staff(
    row: staff_db.StaffRow, via: str, session_id: str | None = None, csrf: str | None = None
) -> Principal:
    return Principal(
        kind="staff",
        via=via,
        name=row.display_name,
        project_ids=row.project_ids,
        staff_id=row.id,
        role=Role(row.role),
        team_ids=row.team_ids,
        department=row.department_code,
        locale=row.locale,
        session_id=session_id,
        csrf=csrf,
    )


class SessionStore:
    """Server-side sessions in Redis: `sess:<id>` → JSON, TTL = idle timeout."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.cache: dict[str, _Cached] = {}
        self.token_cache: dict[str, _Cached] = {}
        self.kiosk_cache: dict[str, _Cached] = {}

    @property
    def idle_seconds(self) -> int:
        return int(self.rt.settings.session_idle_hours * 3600)

    async def create(self, staff_id: int) -> tuple[str, str]:
        """Start a new session (a fresh id at every login) and return (id, csrf)."""
        sid, csrf = new_session_id(), new_csrf_token()
        data = json.dumps({"staff_id": staff_id, "csrf": csrf, "at": clock.now().isoformat()})
        pipe = self.rt.redis.pipeline()
        pipe.set(f"sess:{sid}", data, ex=self.idle_seconds)
        pipe.sadd(f"staff_sess:{staff_id}", sid)
        pipe.expire(f"staff_sess:{staff_id}", self.idle_seconds)
        await pipe.execute()
        return sid, csrf

    async def destroy(self, sid: str) -> None:
        await self.rt.redis.delete(f"sess:{sid}")
        self.cache.pop(sid, None)
        await self.rt.notify("auth", f"session:{sid}")

    async def destroy_all_for(self, staff_id: int) -> None:
        sids = await self.rt.redis.smembers(f"staff_sess:{staff_id}")
        if sids:
            await self.rt.redis.delete(*[f"sess:{s.decode() if isinstance(s, bytes) else s}" for s in sids])
        await self.rt.redis.delete(f"staff_sess:{staff_id}")

    def on_notify(self, payload: str) -> None:
        kind, _, value = payload.partition(":")
        if kind == "session":
            self.cache.pop(value, None)
        elif kind == "staff":
            sid_list = [k for k, v in self.cache.items() if str(v.principal.staff_id) == value]
            for k in sid_list:
                self.cache.pop(k, None)
            self.token_cache.clear()
        elif kind == "kiosk":
            self.kiosk_cache.clear()
        else:
            self.cache.clear()
            self.token_cache.clear()
            self.kiosk_cache.clear()

    def _cache_ok(self, entry: _Cached | None) -> bool:
        n = self.rt.notifier
        return entry is not None and n is not None and n.connected and entry.generation == n.generation

    def _remember(self, cache: dict[str, _Cached], key: str, principal: Principal) -> None:
        if len(cache) >= CACHE_MAX:
            cache.clear()
        gen = self.rt.notifier.generation if self.rt.notifier else -1
        cache[key] = _Cached(principal, gen)

    async def from_session(self, sid: str) -> Principal | None:
        entry = self.cache.get(sid)
        if self._cache_ok(entry):
            assert entry is not None
            if time.monotonic() - entry.touched > TOUCH_EVERY:
                if not await self.rt.redis.expire(f"sess:{sid}", self.idle_seconds):
                    self.cache.pop(sid, None)
                    return None
                entry.touched = time.monotonic()
            return entry.principal
        raw = await self.rt.redis.get(f"sess:{sid}")
        if raw is None:
            self.cache.pop(sid, None)
            return None
        data = json.loads(raw)
        async with self.rt.engine.connect() as conn:
            row = await staff_db.by_id(conn, int(data["staff_id"]))
        if row is None or not row.active:
            await self.rt.redis.delete(f"sess:{sid}")
            return None
        await self.rt.redis.expire(f"sess:{sid}", self.idle_seconds)
        principal = _principal_from_staff(row, "session", sid, data["csrf"])
        self._remember(self.cache, sid, principal)
        return principal

    async def from_api_token(self, token: str) -> Principal | None:
        h = token_hash(token)
        entry = self.token_cache.get(h)
        if self._cache_ok(entry):
            assert entry is not None
            return entry.principal
        async with self.rt.engine.begin() as conn:
            row = await staff_db.by_api_token(conn, h, clock.now())
        if row is None or not row.active:
            return None
        principal = _principal_from_staff(row, "token")
        self._remember(self.token_cache, h, principal)
        return principal

    async def from_kiosk_token(self, token: str) -> Principal | None:
        h = token_hash(token)
        entry = self.kiosk_cache.get(h)
        if self._cache_ok(entry):
            assert entry is not None
            return entry.principal
        async with self.rt.engine.connect() as conn:
            found = await staff_db.kiosk_projects(conn, h)
        if found is None:
            return None
        kid, projects = found
        principal = Principal(
            kind="kiosk", via="kiosk", name=f"kiosk#{kid}", project_ids=projects, kiosk_id=kid
        )
        self._remember(self.kiosk_cache, h, principal)
        return principal


def _cookie(scope: Scope, name: str) -> str | None:
    for k, v in scope["headers"]:
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == name:
                    return val
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class AuthMiddleware:
    """ASGI middleware: resolve the principal, set the locale, refuse CSRF-less writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(("/static/", "/healthz")):
            scope["user"] = None  # type: ignore[typeddict-unknown-key]
            await self.app(scope, receive, send)
            return
        rt: Runtime = scope["app"].state.runtime  # type: ignore[index]
        try:
            principal = await self._resolve(scope, rt)
        except _UNAVAILABLE as e:
            # Redis (sessions) or PostgreSQL (staff) down: a clear 503 page, not a traceback.
            import logging

            logging.getLogger(__name__).warning("auth lookup failed on %s: %r", scope["path"], e)
            lang = _cookie(scope, LANG_COOKIE)
            set_locale(normalize_locale(lang) if lang else rt.settings.default_locale)
            scope["user"] = None  # type: ignore[typeddict-unknown-key]
            from server.web.errors import unavailable_raw

            await unavailable_raw(scope, receive, send)
            return
        scope["user"] = principal  # type: ignore[typeddict-unknown-key]
        lang = _cookie(scope, LANG_COOKIE)
        set_locale(
            normalize_locale(lang)
            if lang
            else (principal.locale if principal else rt.settings.default_locale)
        )
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            expected = _expected_csrf(scope, principal, rt)
            if expected is not _NO_CHECK:
                ok, receive = await _csrf_ok(scope, receive, expected)  # type: ignore[arg-type]
                if not ok:
                    from server.web.errors import csrf_refused

                    await csrf_refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _resolve(self, scope: Scope, rt: Runtime) -> Principal | None:
        store = rt.sessions
        principal: Principal | None = None
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer "):
            principal = await store.from_api_token(auth[7:].strip())
        else:
            kiosk = None
            qs = scope.get("query_string", b"")
            if b"kiosk=" in qs:
                kiosk = (parse_qs(qs.decode("latin-1")).get("kiosk") or [None])[0]
            if kiosk:
                principal = await store.from_kiosk_token(kiosk)
            else:
                sid = _cookie(scope, SESSION_COOKIE)
                if sid:
                    principal = await store.from_session(sid)
        return principal


_NO_CHECK = object()


def _expected_csrf(scope: Scope, principal: Principal | None, rt: Runtime) -> object:
    """The token a state-changing request must carry, or _NO_CHECK.

    Session callers: their session's token. The login forms (no session yet): the
    pre-session token of the `bx_login` cookie, signed with the session secret; a login
    post without that cookie and its field is refused like any forged form.
    """
    path = scope["path"]
    if path in CSRF_EXEMPT:
        return login_csrf_token(_cookie(scope, LOGIN_COOKIE), rt.settings.session_secret)
    if principal is None or principal.via != "session":
        return _NO_CHECK  # bearer tokens and anonymous posts carry no ambient credentials
    if path.startswith("/report/"):
        return _NO_CHECK  # the residents' form acts as nobody
    return principal.csrf


def login_csrf_token(cookie: str | None, secret: str) -> str | None:
    if not cookie:
        return None
    return hmac.new(secret.encode(), b"login:" + cookie.encode(), hashlib.sha256).hexdigest()


async def _csrf_ok(scope: Scope, receive: Receive, expected: str | None) -> tuple[bool, Receive]:
    """Check the header, or a form field `_csrf` (the body is buffered and replayed)."""
    if same(_header(scope, CSRF_HEADER), expected):
        return True, receive
    ctype = (_header(scope, b"content-type") or "").lower()
    if not ctype.startswith("application/x-www-form-urlencoded"):
        return False, receive
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
        if len(body) > 1_000_000:
            return False, receive
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    token = (parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or [None])[0]
    return same(token, expected), replay


# ---- guards -------------------------------------------------------------------------------


def current(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def staff_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Require a staff member; when the handler's opt names roles, require one of them."""
    p = current(connection)
    if p is None or not p.is_staff:
        raise NotAuthorizedException("login required")
    roles = handler.opt.get("roles")
    if roles and p.role not in roles:
        raise PermissionDeniedException("role")


def board_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The wall board: a kiosk token or a logged-in staff member."""
    p = current(connection)
    if p is None:
        raise NotAuthorizedException("login required")
    roles = handler.opt.get("roles")
    if p.is_staff and roles and p.role not in roles:
        raise PermissionDeniedException("role")


def require_project(principal: Principal, project_id: int) -> None:
    """Raise 404 (not 403) for a project the caller does not serve: its existence is private."""
    if project_id not in principal.project_ids:
        from litestar.exceptions import NotFoundException

        raise NotFoundException("project")
