"""Every refusal answers in the user's language with the right status, never a 500 page.

JSON for /api and bearer callers, an in-place message for htmx requests, a page otherwise.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from server.domain.messages import DomainError, ValidationErrors
from server.i18n import gettext as _
from server.web.templates import render

log = logging.getLogger(__name__)

STATUS_OF_KIND = {"forbidden": 403, "invalid": 422, "conflict": 409, "not_found": 404, "throttled": 429}


class FieldErrors(Exception):
    """Several invalid fields at once (forms): {field: translated message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


def wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or request.headers.get(
        "authorization", ""
    ).lower().startswith("bearer")


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    fields: dict[str, str] | None = None,
) -> Response[Any]:
    if wants_json(request):
        body: dict[str, Any] = {"code": code, "message": message}
        if field:
            body["field"] = field
        if fields:
            body["fields"] = fields
        return Response({"error": body}, status_code=status, media_type=MediaType.JSON)
    if is_htmx(request):
        html = render("fragments/flash.html", level="error", message=message, fields=fields or {})
        headers = {"HX-Retarget": request.headers.get("x-error-target", "#flash"), "HX-Reswap": "innerHTML"}
        return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)
    html = render(
        "error.html", status=status, message=message, fields=fields or {}, user=request.scope.get("user")
    )
    return Response(html, status_code=status, media_type=MediaType.HTML)


def translate(msgid: str, params: dict[str, Any]) -> str:
    """Translate a domain message; code-valued parameters (a status) become their labels."""
    if not params:
        return _(msgid)
    from server.labels import label

    shown = {k: (label(v) if k == "status" and isinstance(v, str) else v) for k, v in params.items()}
    return _(msgid, **shown)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    message = translate(exc.msgid, exc.params)
    fields = None
    if isinstance(exc, ValidationErrors):
        fields = {f: translate(m, p) for f, (m, p) in exc.errors.items()}
    elif exc.field:
        fields = {exc.field: message}
    return error_response(
        request, STATUS_OF_KIND.get(exc.kind, 400), exc.kind, message, field=exc.field, fields=fields
    )


def field_errors_handler(request: Request[Any, Any, Any], exc: FieldErrors) -> Response[Any]:
    first = next(iter(exc.errors.values()), _("Invalid input"))
    return error_response(request, 422, "invalid", first, fields=exc.errors)


def not_authorized_handler(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    if wants_json(request):
        return error_response(request, 401, "unauthorized", _("Please log in"))
    # A tablet logs in again with its PIN.
    pin = "pin=1&" if request.url.path.startswith("/tablet") else ""
    target = f"/login?{pin}next=" + quote(
        request.url.path + (f"?{request.url.query}" if request.url.query else "")
    )
    if is_htmx(request):
        # The page polling behind it (board, tablet) is sent to the login prompt, not a broken fragment.
        page = urlsplit(request.headers.get("hx-current-url", "/"))
        target = f"/login?{pin}expired=1&next=" + quote(page.path + (f"?{page.query}" if page.query else ""))
        return Response("", status_code=401, headers={"HX-Redirect": target})
    if request.method == "GET":
        return Response("", status_code=303, headers={"Location": target})
    return error_response(request, 401, "unauthorized", _("Please log in"))


def forbidden_handler(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    return error_response(request, 403, "forbidden", _("You are not allowed to do this"))


def not_found_handler(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    return error_response(request, 404, "not_found", _("Not found"))


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    fields: dict[str, str] = {}
    for item in exc.extra or []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            msg = str(item.get("message", ""))
            # msgspec: "Object missing required field `summary`" / "Expected `int`, got `str` - at `$.version`"
            if "missing required field" in msg and "`" in msg:
                key = msg.split("`")[1]
                fields[key] = _("This field is required")
                continue
            if "at `$." in msg:
                key = msg.rsplit("at `$.", 1)[1].rstrip("`").split(".")[0].split("[")[0]
            fields[key] = _("Invalid value")
    return error_response(request, 422, "invalid", _("Invalid input"), fields=fields or None)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 405:
        return error_response(request, 405, "method_not_allowed", _("Method not allowed"))
    if exc.status_code == 429:
        return error_response(request, 429, "throttled", str(exc.detail))
    if exc.status_code >= 500:
        log.error("http %s on %s: %s", exc.status_code, request.url.path, exc.detail)
        return error_response(
            request,
            exc.status_code,
            "server_error",
            _("The server could not finish this request; please try again"),
        )
    return error_response(request, exc.status_code, "bad_request", _("Bad request"))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "server_error",
        _("The server could not finish this request; please try again"),
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    FieldErrors: field_errors_handler,
    NotAuthorizedException: not_authorized_handler,
    PermissionDeniedException: forbidden_handler,
    NotFoundException: not_found_handler,
    ValidationException: validation_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Redis or PostgreSQL unreachable mid-request: 503 in the user's language, not a 500."""
    log.warning("service unavailable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(request, 503, "unavailable", unavailable_message())


def unavailable_message() -> str:
    return _("The service is temporarily unavailable; please try again in a minute")


EXCEPTION_HANDLERS[RedisError] = unavailable_handler
EXCEPTION_HANDLERS[OperationalError] = unavailable_handler
EXCEPTION_HANDLERS[InterfaceError] = unavailable_handler
EXCEPTION_HANDLERS[ConnectionError] = unavailable_handler  # the builtin: a refused socket


def _scope_header(scope: Any, name: bytes) -> str:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return ""


async def _raw_error(scope: Any, send: Any, status: int, code: str, message: str) -> None:
    """Answer from the auth middleware (before routing): JSON, an htmx flash, or a full page."""
    path = scope.get("path", "")
    headers: list[tuple[bytes, bytes]] = []
    if path.startswith("/api/") or _scope_header(scope, b"authorization").lower().startswith("bearer"):
        body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
        ctype = b"application/json"
    elif _scope_header(scope, b"hx-request") == "true":
        body = render("fragments/flash.html", level="error", message=message, fields={}).encode()
        ctype = b"text/html; charset=utf-8"
        target = _scope_header(scope, b"x-error-target") or "#flash"
        headers += [(b"hx-retarget", target.encode("latin-1")), (b"hx-reswap", b"innerHTML")]
    else:
        body = render("error.html", status=status, message=message, fields={}, user=None).encode()
        ctype = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def csrf_refused(scope: Any, receive: Any, send: Any) -> None:
    message = _("Your form has expired; reload the page and try again")
    await _raw_error(scope, send, 403, "csrf", message)


async def unavailable_raw(scope: Any, receive: Any, send: Any) -> None:
    await _raw_error(scope, send, 503, "unavailable", unavailable_message())
