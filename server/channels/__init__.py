"""Notification channels behind one interface: each answers sent / retry / failed.

A channel never raises for a delivery problem: it returns a `DeliveryResult`, so the outbox
records every outcome (the failure too) and retries only what may succeed later
(server.domain.escalation.classify_http_status / next_retry_at decide).

Channels of an outbox row (`channel` column):

- ``screen`` — on-screen. Every triggered alert is on the project's wall board the moment it
  commits (the board is published to, not delivered to). Each person paged also gets a screen
  row: it is *delivered* (state sent, sent_at = then) when that person's tablet or /alerts page
  fetches a list showing the alert (server.persistence.alerts.mark_seen). A row not fetched
  within SCREEN_GRACE becomes due for the worker, which records it failed ("not shown on the
  recipient's screen"), visible to the supervisor. Rows that are not alert pages (breach
  notices on work lists) are published: sent when the worker reaches them.
- ``sms`` — the project's SMS gateway adapter (alert_channels row 'sms'), else the process-wide
  SMS_WEBHOOK_URL, else the log (development).
- ``wecom`` — a WeCom (企业微信) group robot: markdown as the robot API expects.
- ``webhook`` — a generic JSON webhook (group channels, elevator contractors).
  Group channels get the alert's facts, never a person's phone.
- Sound: the wall board rings while an entrapment alert is triggered (static/board.js); it is
  part of the board's on-screen presentation, not a delivery of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx

from server.domain.escalation import classify_http_status
from server.domain.messages import N_

log = logging.getLogger("baoxiu.channels")

#: A paged person's screen row not fetched within this is recorded failed (the SMS still goes).
SCREEN_GRACE = timedelta(seconds=60)
#: Stored as the delivery's error in English and translated where shown (the order's timeline).
NOT_SHOWN = N_("Not shown on the recipient's screen within a minute")


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # "sent" | "retry" | "failed"
    detail: str = ""


class Channel(Protocol):
    name: str

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult: ...


class ScreenChannel:
    """On-screen: an alert page reaching the worker was not fetched by the recipient's screen."""

    name = "screen"

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        if payload.get("alert"):
            return DeliveryResult("failed", NOT_SHOWN)
        return DeliveryResult("sent", "published")


class Refused:
    """A delivery that cannot be attempted (its channel was removed): failed, with why."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        return DeliveryResult("failed", self.why)


class LoggingSms:
    """Development SMS gateway: writes the message to the log."""

    name = "sms"

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        log.info("SMS to %s: %s", recipient.get("phone"), payload.get("text"))
        return DeliveryResult("sent", "logged")


Body = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
_CLIENTS: dict[int, httpx.AsyncClient] = {}


def _http() -> httpx.AsyncClient:
    """One client per event loop: a worker delivers a batch in parallel, and building a client
    (its TLS context) per delivery costs enough CPU to make the others time out."""
    loop = id(asyncio.get_running_loop())
    client = _CLIENTS.get(loop)
    if client is None or client.is_closed:
        client = _CLIENTS[loop] = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
    return client


class WebhookPost:
    """POST a JSON body to a URL (generic webhook, SMS gateway adapter, WeCom robot)."""

    def __init__(self, name: str, url: str, *, body: Body, token: str = "", timeout: float = 5.0) -> None:
        self.name = name
        self.url = url
        self.body = body
        self.token = token
        self.timeout = timeout

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = await _http().post(
                self.url, json=self.body(recipient, payload), headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as e:
            return DeliveryResult("retry", f"{type(e).__name__}: {e}"[:300])
        outcome = classify_http_status(r.status_code)
        if outcome == "sent" and self.name == "wecom":
            return _wecom_outcome(r)
        return DeliveryResult(outcome, f"HTTP {r.status_code}")


# ---- bodies --------------------------------------------------------------------------------

#: The alert facts a webhook or a group may see: no person's phone, no customer data.
PUBLIC_KEYS = ("alert", "kind", "title", "number", "project", "location", "step", "round", "purpose")


def sms_body(recipient: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The SMS gateway adapter's request: one phone, one text."""
    return {"phone": recipient.get("phone") or payload.get("phone"), "text": payload.get("text", "")}


def webhook_body(recipient: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A generic webhook: the alert's facts, who was paged by name, the text."""
    body = {k: payload.get(k) for k in PUBLIC_KEYS}
    body["paged"] = list(payload.get("paged") or [])
    body["text"] = payload.get("text", "")
    return body


def wecom_body(recipient: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A WeCom group robot message (msgtype markdown, at most 4096 bytes of content)."""
    lines = [f"**{_md(payload.get('title') or payload.get('text') or '')}**"]
    if payload.get("number"):
        lines.append(f"> 工单：{_md(payload['number'])}")
    if payload.get("location"):
        lines.append(f"> 位置：{_md(payload['location'])}")
    if payload.get("paged"):
        lines.append(f"> 已通知：{_md('、'.join(payload['paged']))}")
    if payload.get("round"):
        lines.append(f"> 升级：第{payload.get('round')}轮 第{int(payload.get('step') or 0) + 1}步")
    lines.append(_md(payload.get("text") or ""))
    content = "\n".join(lines)
    while len(content.encode()) > 4096:
        content = content[:-20]
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _md(text: str) -> str:
    """WeCom markdown has no escaping: keep user text from turning into markup."""
    return str(text).replace("<", "＜").replace(">", "＞").replace("*", "＊").replace("`", "'")


def _wecom_outcome(r: httpx.Response) -> DeliveryResult:
    """The robot answers 200 with {"errcode": 0}; any other errcode is a refusal (bad key, too big)."""
    try:
        data = r.json()
    except ValueError:
        return DeliveryResult("sent", f"HTTP {r.status_code}")
    code = data.get("errcode", 0) if isinstance(data, dict) else 0
    if code in (0, None):
        return DeliveryResult("sent", f"HTTP {r.status_code}")
    # 45009: the robot's rate limit (20 messages a minute) — try again later.
    outcome = "retry" if code == 45009 else "failed"
    return DeliveryResult(outcome, f"WeCom errcode {code}: {str(data.get('errmsg', ''))[:200]}")


# ---- which channel delivers a row ----------------------------------------------------------


def default_sms(webhook_url: str) -> Channel:
    if webhook_url:
        return WebhookPost("sms", webhook_url, body=sms_body)
    return LoggingSms()


async def channel_for(ctx: dict[str, Any], row: dict[str, Any]) -> Channel:
    """The channel that delivers this outbox row, with the settings it has now (a URL corrected
    after a failure counts on the next retry)."""
    from server.persistence import alert_setup

    name, payload = row["channel"], row.get("payload") or {}
    if name == "screen":
        return ScreenChannel()
    target = None
    if payload.get("channel_id") or payload.get("contractor_id"):
        async with ctx["engine"].connect() as conn:
            target = await alert_setup.delivery_target(conn, payload)
        if target is None:
            return Refused(name, "channel removed or switched off")
    if name == "sms":
        if target is not None:
            return WebhookPost("sms", target["url"], body=sms_body, token=target["token"])
        return default_sms(ctx["settings"].sms_webhook_url)
    if name in ("webhook", "wecom") and target is not None:
        body = wecom_body if name == "wecom" else webhook_body
        return WebhookPost(name, target["url"], body=body, token=target["token"])
    return Refused(name, f"no {name} channel configured")
