"""Typed settings, read once from the environment.

Every field names its variable. Secrets not given in the environment are generated on
first run into `<run dir>/secrets.json` (git-ignored) so sessions survive restarts.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from e


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from e


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_networks(name: str) -> tuple[str, ...]:
    import ipaddress

    out = []
    for part in (os.environ.get(name) or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as e:
            raise SystemExit(f"{name}: {part!r} is not an IP address or network (e.g. 10.0.0.0/8)") from e
    return tuple(out)


def load_or_create_secrets(run_dir: Path) -> dict[str, str]:
    """Return the generated secrets, creating them on first use (mode 0600)."""
    path = run_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"session_secret": secrets.token_urlsafe(48), "iot_secret": secrets.token_urlsafe(32)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.chmod(0o600)
    tmp.replace(path)
    return data


@dataclass(frozen=True)
class Settings:
    #: DATABASE_URL — SQLAlchemy URL, postgresql+asyncpg://…; empty means the embedded server.
    database_url: str = ""
    #: REDIS_URL — redis://host:port/db; empty means the embedded server.
    redis_url: str = ""
    #: BAOXIU_RUN_DIR — where embedded servers, secrets and logs live (git-ignored).
    run_dir: Path = ROOT / ".run"
    #: HOST / PORT — where `baoxiu serve` listens.
    host: str = "127.0.0.1"
    port: int = 8000
    #: WEB_WORKERS — web processes started by `baoxiu serve`.
    web_workers: int = 1
    #: SESSION_SECRET — signs the login forms' CSRF token (sessions are random ids). Generated when absent.
    session_secret: str = ""
    #: IOT_SECRET — shared secret of the elevator monitoring boxes' webhook.
    iot_secret: str = ""
    #: SESSION_IDLE_HOURS — idle timeout of a staff session.
    session_idle_hours: float = 12.0
    #: COOKIE_SECURE — force the Secure flag (it is set anyway when the request is https).
    cookie_secure: bool = False
    #: LOGIN_MAX_FAILURES / LOGIN_WINDOW_SECONDS — throttling per IP and per account.
    login_max_failures: int = 5
    login_window_seconds: int = 900
    #: BOARD_POLL_SECONDS — how often the wall board's fragments poll.
    board_poll_seconds: float = 2.0
    #: BOARD_SSE — push board changes over server-sent events on top of polling.
    board_sse: bool = True
    #: DEFAULT_LOCALE — zh_CN first; a user may choose en.
    default_locale: str = "zh_CN"
    #: DEFAULT_TZ — shown when a project gives none.
    default_tz: str = "Asia/Shanghai"
    #: SWEEP_SECONDS — the breach sweep's period (the safety net under scheduled jobs).
    sweep_seconds: float = 15.0
    #: BAOXIU_TEST_CLOCK — allow the test clock endpoint (tests and demos only).
    test_clock: bool = False
    #: SMS_WEBHOOK_URL — where the development SMS channel posts (empty: log only).
    sms_webhook_url: str = ""
    #: TRUSTED_PROXIES — comma-separated addresses or networks of the reverse proxies whose
    #: X-Forwarded-For / X-Forwarded-Proto are believed (empty: none; the peer is the client).
    trusted_proxies: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sync_database_url(self) -> str:
        return self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    run_dir = Path(os.environ.get("BAOXIU_RUN_DIR") or (ROOT / ".run")).resolve()
    session_secret = os.environ.get("SESSION_SECRET", "")
    iot_secret = os.environ.get("IOT_SECRET", "")
    if not session_secret or not iot_secret:
        generated = load_or_create_secrets(run_dir)
        session_secret = session_secret or generated["session_secret"]
        iot_secret = iot_secret or generated["iot_secret"]
    return Settings(
        database_url=os.environ.get("DATABASE_URL", ""),
        redis_url=os.environ.get("REDIS_URL", ""),
        run_dir=run_dir,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=_env_int("PORT", 8000),
        web_workers=_env_int("WEB_WORKERS", 1),
        session_secret=session_secret,
        iot_secret=iot_secret,
        session_idle_hours=_env_float("SESSION_IDLE_HOURS", 12.0),
        cookie_secure=_env_bool("COOKIE_SECURE", False),
        login_max_failures=_env_int("LOGIN_MAX_FAILURES", 5),
        login_window_seconds=_env_int("LOGIN_WINDOW_SECONDS", 900),
        board_poll_seconds=_env_float("BOARD_POLL_SECONDS", 2.0),
        board_sse=_env_bool("BOARD_SSE", True),
        default_locale=os.environ.get("DEFAULT_LOCALE", "zh_CN"),
        default_tz=os.environ.get("DEFAULT_TZ", "Asia/Shanghai"),
        sweep_seconds=_env_float("SWEEP_SECONDS", 15.0),
        test_clock=_env_bool("BAOXIU_TEST_CLOCK", False),
        sms_webhook_url=os.environ.get("SMS_WEBHOOK_URL", ""),
        trusted_proxies=_env_networks("TRUSTED_PROXIES"),
    )
