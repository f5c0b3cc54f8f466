"""`baoxiu` — the one command line: run, serve, worker, migrate, demo, user, token, kiosk.

Operator errors (bad URL, port in use, unmigrated database) print one line saying what
failed and what to do, and exit non-zero; no traceback wall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.config import ROOT, get_settings


class OperatorError(Exception):
    """One line for the person at the terminal."""


def fail(message: str) -> None:
    print(f"baoxiu: {message}", file=sys.stderr)
    sys.exit(1)


# ---- checks -------------------------------------------------------------------------------


def _require_urls() -> tuple[str, str]:
    s = get_settings()
    if not s.database_url:
        raise OperatorError(
            "DATABASE_URL is not set (use `make run`, which starts an embedded PostgreSQL, or set it)"
        )
    if not s.redis_url:
        raise OperatorError(
            "REDIS_URL is not set (use `make run`, which starts an embedded Redis, or set it)"
        )
    return s.database_url, s.redis_url


async def _check_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if not url.startswith("postgresql+asyncpg://"):
        raise OperatorError("DATABASE_URL must start with postgresql+asyncpg://")
    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as e:
        where = urlsplit(url)
        raise OperatorError(
            f"cannot reach PostgreSQL at {where.hostname or where.query or '?'}/{where.path.lstrip('/')}: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'timed out'} — check DATABASE_URL"
        ) from None
    finally:
        await engine.dispose()


async def _check_redis(url: str) -> None:
    from redis.asyncio import Redis

    try:
        r = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    except ValueError as e:
        raise OperatorError(f"REDIS_URL is not valid: {e}") from None
    try:
        await r.ping()
    except Exception as e:
        raise OperatorError(f"cannot reach Redis at {url}: {type(e).__name__} — check REDIS_URL") from None
    finally:
        await r.aclose()


async def _check_migrated(url: str) -> None:
    from server.persistence.db import make_engine
    from server.persistence.migrate import is_current

    engine = make_engine(url)
    try:
        if not await is_current(engine):
            raise OperatorError(
                "the database schema is not current: run `baoxiu migrate` (or `make migrate`)"
            )
    finally:
        await engine.dispose()


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise OperatorError(
                f"port {port} on {host} is in use: stop what uses it or run with PORT=<another>"
            ) from None


# ---- commands -----------------------------------------------------------------------------


def cmd_migrate(_: argparse.Namespace) -> None:
    db, _r = _require_urls()
    asyncio.run(_check_database(db))
    from server.persistence.migrate import upgrade

    upgrade(db)
    print("baoxiu: database schema is current")


def _serve_argv(host: str, port: int, workers: int) -> list[str]:
    granian = shutil.which("granian", path=str(Path(sys.executable).parent)) or "granian"
    return [
        granian,
        "--interface",
        "asgi",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-ws",
        "server.app:app_factory",
    ]


def cmd_serve(args: argparse.Namespace) -> None:
    db, redis_url = _require_urls()
    s = get_settings()
    host, port = args.host or s.host, args.port or s.port
    asyncio.run(_check_database(db))
    asyncio.run(_check_migrated(db))
    asyncio.run(_check_redis(redis_url))
    _check_port_free(host, port)
    os.chdir(ROOT)
    argv = _serve_argv(host, port, args.workers or s.web_workers)
    os.execv(argv[0], argv)


def cmd_worker(_: argparse.Namespace) -> None:
    db, redis_url = _require_urls()
    asyncio.run(_check_database(db))
    asyncio.run(_check_migrated(db))
    asyncio.run(_check_redis(redis_url))
    from arq.worker import run_worker

    from workers.settings import WorkerSettings

    run_worker(WorkerSettings)  # type: ignore[arg-type]


def cmd_demo(args: argparse.Namespace) -> None:
    db, _r = _require_urls()
    from server.demo import seed_demo

    asyncio.run(_check_database(db))
    asyncio.run(_check_migrated(db))
    logins = asyncio.run(seed_demo(db, reset=not args.if_empty))
    if logins is None:
        print("baoxiu: demo data already present")
    else:
        _print_logins(logins)


def _print_logins(logins: list[tuple[str, str, str]]) -> None:
    print("Demo logins (username / password — role):")
    for username, password, role in logins:
        print(f"  {username:<14} {password:<10} {role}")


async def _with_conn(url: str, fn: Any) -> Any:
    from server.persistence.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await fn(conn)
    finally:
        await engine.dispose()


def cmd_user_create(args: argparse.Namespace) -> None:
    db, _r = _require_urls()
    from server.domain.vocab import Role
    from server.persistence import staff as staff_db
    from server.security import hash_password

    if args.role not in {r.value for r in Role}:
        raise OperatorError(f"unknown role {args.role!r}; one of: {', '.join(r.value for r in Role)}")
    password = args.password or _random_password()

    async def go(conn: Any) -> int:
        pid = await staff_db.project_id_by_code(conn, args.project)
        if pid is None:
            raise OperatorError(f"no project with code {args.project!r}")
        team_ids = []
        if args.team:
            tid = await staff_db.team_id_by_name(conn, pid, args.team)
            if tid is None:
                raise OperatorError(f"no team {args.team!r} in project {args.project}")
            team_ids.append(tid)
        if await staff_db.by_username(conn, args.name.lower()):
            raise OperatorError(f"user {args.name!r} exists already")
        return await staff_db.create_staff(
            conn,
            username=args.name.lower(),
            display_name=args.display or args.name,
            role=args.role,
            password_hash=hash_password(password),
            project_ids=[pid],
            team_ids=team_ids,
            pin_hash=hash_password(args.pin) if args.pin else None,
        )

    staff_id = asyncio.run(_with_conn(db, go))
    print(
        f"created user {args.name} (id {staff_id}, role {args.role})"
        + ("" if args.password else f"; password: {password}")
    )


def _random_password() -> str:
    import secrets

    return secrets.token_urlsafe(9)


def cmd_token_create(args: argparse.Namespace) -> None:
    db, _r = _require_urls()
    from server.persistence import staff as staff_db
    from server.security import new_token, token_hash

    token = new_token("bx")

    async def go(conn: Any) -> None:
        row = await staff_db.by_username(conn, args.user.lower())
        if row is None:
            raise OperatorError(f"no user {args.user!r}")
        await staff_db.create_api_token(conn, row.id, token_hash(token), args.label or "")

    asyncio.run(_with_conn(db, go))
    print(token)


def cmd_kiosk_create(args: argparse.Namespace) -> None:
    db, _r = _require_urls()
    from server.persistence import staff as staff_db
    from server.security import new_token, token_hash

    token = new_token("kiosk")

    async def go(conn: Any) -> None:
        ids = []
        for code in args.project:
            pid = await staff_db.project_id_by_code(conn, code)
            if pid is None:
                raise OperatorError(f"no project with code {code!r}")
            ids.append(pid)
        await staff_db.create_kiosk_token(conn, token_hash(token), ids, args.label or ",".join(args.project))

    asyncio.run(_with_conn(db, go))
    s = get_settings()
    print(f"http://{s.host}:{s.port}/board?kiosk={token}")


# ---- embedded services and the supervisor -------------------------------------------------


def _need_embedded() -> bool:
    """True when neither URL is set (start embedded servers); both set: use them.

    Only one of them set is refused: mixing an external PostgreSQL with an embedded Redis
    (or the reverse) is never what a production setup means, and silently starting both
    embedded servers would hide the operator's URL.
    """
    db, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if db and redis_url:
        return False
    if not db and not redis_url:
        return True
    given, missing = ("DATABASE_URL", "REDIS_URL") if db else ("REDIS_URL", "DATABASE_URL")
    raise OperatorError(
        f"{given} is set but {missing} is not: set both to use your own servers, "
        "or neither to use the embedded ones"
    )


def _start_embedded(root: Path, database: str) -> Any:
    from server.devservices import EmbeddedServices, ServiceError

    services = EmbeddedServices(root, database)
    try:
        env = services.start()
    except ServiceError as e:
        raise OperatorError(str(e)) from None
    os.environ.update(env)
    get_settings.cache_clear()
    return services


def cmd_with_services(args: argparse.Namespace) -> None:
    """Run a command with DATABASE_URL/REDIS_URL set, starting embedded servers when unset."""
    cmd = [c for c in args.cmd if c != "--"]
    if not cmd:
        raise OperatorError("nothing to run: baoxiu with-services -- COMMAND")
    services = None
    if _need_embedded():
        root = Path(args.root).resolve() if args.root else get_settings().run_dir
        services = _start_embedded(root, args.database)
    proc = subprocess.Popen(cmd)
    stop = _forward_signals(lambda sig: proc.send_signal(sig))
    try:
        code = proc.wait()
    finally:
        stop()
        if services:
            services.stop()
    sys.exit(code)


def _forward_signals(handler: Any) -> Any:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda sig, _f: handler(sig))

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent process dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """`baoxiu run`: web server plus a worker restarted when it dies; everything stopped on exit."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own session (a terminal's Ctrl-C reaches only us; we stop them in order), and on Linux
        # SIGTERM when we die even by SIGKILL, so a killed run leaves no web or worker behind.
        return subprocess.Popen(argv, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)

    def start_worker(self) -> None:
        self.worker = self._spawn([sys.executable, "-m", "server.cli", "worker"])

    def run(self) -> int:
        self.web = self._spawn(_serve_argv(self.host, self.port, get_settings().web_workers))
        self.start_worker()
        restarts: list[float] = []
        while not self.stopping:
            time.sleep(0.5)
            if self.web.poll() is not None:
                if not self.stopping:
                    print(f"baoxiu: the web server exited with code {self.web.returncode}", file=sys.stderr)
                return self.web.returncode or 1
            if self.worker is not None and self.worker.poll() is not None and not self.stopping:
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                print(f"baoxiu: the worker exited ({self.worker.returncode}); restarting", file=sys.stderr)
                time.sleep(min(5, len(restarts)))
                self.start_worker()
        return 0

    def stop(self) -> None:
        self.stopping = True
        procs = [p for p in (self.worker, self.web) if p is not None and p.poll() is None]
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)


def cmd_run(args: argparse.Namespace) -> None:
    s = get_settings()
    host, port = args.host or s.host, args.port or s.port
    embedded = _need_embedded()
    _check_port_free(host, port)
    services = None
    sup: Supervisor | None = None

    signalled = False

    def on_signal(sig: int, _frame: Any) -> None:
        # SIGTERM and Ctrl-C both end in the same orderly shutdown (finally below); make
        # and terminals often deliver both, so only the first one interrupts.
        nonlocal signalled
        if signalled:
            return
        signalled = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        if embedded:
            print("baoxiu: starting embedded PostgreSQL and Redis under", s.run_dir)
            services = _start_embedded(s.run_dir, "baoxiu")
        db, redis_url = _require_urls()
        asyncio.run(_check_database(db))
        asyncio.run(_check_redis(redis_url))
        from server.persistence.migrate import upgrade

        upgrade(db)
        from server.demo import seed_demo

        logins = asyncio.run(seed_demo(db, reset=False))
        if logins is not None:
            print("baoxiu: demo data seeded (first run)")
        from server.demo import demo_logins

        sup = Supervisor(host, port)
        print(f"\nBaoxiu is running at http://{host}:{port}/   (Ctrl-C stops everything)")
        _print_logins(demo_logins())
        sys.stdout.flush()
        code = sup.run()
    except KeyboardInterrupt:
        code = 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if sup:
            sup.stop()
        if services:
            services.stop()
        print("baoxiu: stopped")
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="baoxiu", description="报事报修 work orders")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start everything (embedded services when no URLs are set)")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="the web server (granian)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="the arq worker: breach jobs, escalations, deliveries").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("migrate", help="bring the schema to the newest version").set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="reset and seed the demo project DEMO")
    demo.add_argument("--if-empty", action="store_true", help="seed only when no demo exists")
    demo.set_defaults(func=cmd_demo)

    user = sub.add_parser("user").add_subparsers(dest="sub", required=True)
    uc = user.add_parser("create")
    uc.add_argument("--name", required=True)
    uc.add_argument("--role", required=True)
    uc.add_argument("--project", required=True)
    uc.add_argument("--team")
    uc.add_argument("--password")
    uc.add_argument("--pin")
    uc.add_argument("--display")
    uc.set_defaults(func=cmd_user_create)

    token = sub.add_parser("token").add_subparsers(dest="sub", required=True)
    tc = token.add_parser("create")
    tc.add_argument("--user", required=True)
    tc.add_argument("--label")
    tc.set_defaults(func=cmd_token_create)

    kiosk = sub.add_parser("kiosk").add_subparsers(dest="sub", required=True)
    kc = kiosk.add_parser("create")
    kc.add_argument("--project", required=True, action="append")
    kc.add_argument("--label")
    kc.set_defaults(func=cmd_kiosk_create)

    ws = sub.add_parser("with-services", help="run COMMAND with embedded services when no URLs are set")
    ws.add_argument("--root")
    ws.add_argument("--database", default="baoxiu")
    ws.add_argument("cmd", nargs=argparse.REMAINDER)
    ws.set_defaults(func=cmd_with_services)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except OperatorError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
