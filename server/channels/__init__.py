"""Notification channels behind one interface: each answers sent / retry / failed.

A channel never raises for a delivery problem: it returns a `DeliveryResult`, so the outbox
records every outcome (the failure too) and retries only what may succeed later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

log = logging.getLogger("baoxiu.channels")


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # "sent" | "retry" | "failed"
    detail: str = ""


def classify_status(code: int) -> str:
    """2xx sent; timeouts, throttling and server errors may succeed later; other 4xx never will."""
    if 200 <= code < 300:
        return "sent"
    if code in (408, 425, 429) or code >= 500:
        return "retry"
    return "failed"


class Channel(Protocol):
    name: str

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult: ...


class ScreenChannel:
    """On-screen (board, tablet): the outbox row itself is what the screens read."""

    name = "screen"

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        return DeliveryResult("sent", "shown on screen")


class LoggingSms:
    """Development SMS gateway: writes the message to the log."""

    name = "sms"

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        log.info("SMS to %s: %s", recipient.get("phone"), payload.get("text"))
        return DeliveryResult("sent", "logged")


class WebhookPost:
    """POST the payload as JSON to a URL (generic webhook, SMS gateway adapter, WeCom robot)."""

    def __init__(self, name: str, url: str, *, timeout: float = 5.0, body: Any = None) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self.body = body

    async def deliver(self, recipient: dict[str, Any], payload: dict[str, Any]) -> DeliveryResult:
        body = self.body(recipient, payload) if callable(self.body) else {"recipient": recipient, **payload}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(self.url, json=body)
        except httpx.HTTPError as e:
            return DeliveryResult("retry", f"{type(e).__name__}: {e}"[:300])
        outcome = classify_status(r.status_code)
        return DeliveryResult(outcome, f"HTTP {r.status_code}")


def wecom_body(recipient: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """WeCom (企业微信) group robot: a text message mentioning the recipient's mobile."""
    mention = [recipient["phone"]] if recipient.get("phone") else []
    return {"msgtype": "text", "text": {"content": payload.get("text", ""), "mentioned_mobile_list": mention}}


def sms_channel(webhook_url: str) -> Channel:
    if webhook_url:
        return WebhookPost("sms", webhook_url)
    return LoggingSms()
