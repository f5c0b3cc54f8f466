"""Bench: the wall board as deployed (granian, 2 web processes) under wrk on 127.0.0.1.

Runs on the data bench/seed.py leaves (20 projects, ~500 open orders each, 1,000,000 closed)
against the busiest bench project (200 cards sent: 40 per column). Figures:

- board_unchanged_rps_ratio: the unchanged answer (204, poll carrying the current version) per
  second over /healthz of the same server, both saturated by wrk with 200 connections. The poll
  lands on either process: every answer must be 204 (both processes hold the same version).
- board_full_vs_raw_ratio: the full fragment when every request finds the board changed (the
  bench-only /_bench/board_changed tells the process its snapshot is stale, as a NOTIFY does,
  then serves /board/fragment's path: database read, view, cards from the cache, assembly) over
  /_bench/board_raw (the same statement's rows as JSON straight from asyncpg).
- board_cached_rps_ratio: the full fragment of an unchanged board to a poller that has not seen
  it (the rendered bytes) over /healthz.
- board_full_p99_ms_paced: p99 latency of the full fragment (the poller has not seen the board)
  with 200 pollers at 1 request/s each, while the board really changes every second (an order
  is edited: trigger, NOTIFY, one read and assembly per process). wrk2 is not available: wrk with
  a Lua `delay()` of a uniformly random 0–2 s (mean 1 s) after each response paces each
  connection (closed loop, so not corrected for coordinated omission as wrk2 would be; with
  latencies far below the 1 s period the difference is small). Each connection's first request
  goes to /healthz, so the connect-time burst of 200 simultaneous requests is not board latency.
  board_cached_p99_ms_paced: the same without changes (every answer from memory).
  (Every request finding the board changed cannot be paced at 200/s here: the board's statement
  alone costs PostgreSQL several ms of CPU, 200 of them a second more than two cores.)
- order_to_screen_ms_p50 / _max_nopush: headless Chromium on the project's board; the page
  itself POSTs /api/v1/orders and a MutationObserver notes when the card enters the DOM (one
  clock for both ends), 20 samples; with the event stream (push), then on a server started with
  BOARD_SSE=0 (polling only, every BOARD_POLL_SECONDS), a random 0–2 s between samples.
- web_rss_mb: resident memory of the web server's processes (granian and its 2 workers) after
  everything above ran against it.

wrk's requests/s are means over RUN_SECONDS after a WARM_SECONDS warm-up of the same URL. Every
request says Accept-Encoding: gzip as a browser does (the fragment goes out gzipped once per
version; /healthz is too small to compress), except the full-vs-raw pair, compared uncompressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from datetime import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 200
THREADS = 2
WARM_SECONDS = 2
RUN_SECONDS = 8
PACED_SECONDS = 20
SAMPLES = 20
WORKERS = 2
CHROMIUM = "/usr/bin/chromium"

# A poller that follows the version it is given, as the page does: 204 while nothing changed,
# one 200 per connection when the board changes (a colour band turning by time, say).
UNCHANGED_LUA = """
counts = {}  -- a global: done() reads it from each thread
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) base = args[1]; version = args[2] end
function request() return wrk.format("GET", base .. "&v=" .. version) end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  local seen = headers["x-board-version"] or headers["X-Board-Version"]
  if seen then version = seen end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("STATUS %d %d\\n", status, n)) end
end
"""

PACED_LUA = """
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end
local sent = 0
function init(args)
  math.randomseed(os.time() * 1000 + id)
  first = wrk.format("GET", "/healthz")
  board = wrk.format("GET", args[1])
  per_thread = tonumber(args[2])
end
function request()
  sent = sent + 1
  if sent <= per_thread then return first end  -- the connect-time burst
  return board
end
function delay() return math.random(0, 2000) end
function done(summary, latency, requests)
  io.write(string.format("P50_US %d\\nP99_US %d\\nMAX_US %d\\nREQS %d\\nERRORS %d\\n",
    latency:percentile(50), latency:percentile(99), latency.max, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
      + summary.errors.status))
end
"""

# The page posts the order and waits for its card: both ends on the page's clock.
ORDER_TO_SCREEN_JS = """async ([token, body]) => {
  const t0 = performance.now();
  const r = await fetch('/api/v1/orders', {method: 'POST', body: JSON.stringify(body),
    headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token}});
  if (r.status !== 201) throw new Error('POST /api/v1/orders: ' + r.status + ' ' + await r.text());
  const number = (await r.json()).number;
  const posted = performance.now() - t0;
  const sel = '[data-number="' + number + '"]';
  if (!document.querySelector(sel)) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { obs.disconnect(); reject(new Error('no card ' + number)); }, 15000);
      const obs = new MutationObserver(() => {
        if (document.querySelector(sel)) { clearTimeout(timer); obs.disconnect(); resolve(); }
      });
      obs.observe(document.getElementById('board-live'), {childList: true, subtree: true});
    });
  }
  return [performance.now() - t0, number, posted];
}"""


def figure(metric: str, value: float, unit: str, target: str, **extra: Any) -> dict[str, Any]:
    obj = {"metric": metric, "value": round(value, 3), "unit": unit, "target": target, **extra}
    print(json.dumps({"note": "board", **obj}, ensure_ascii=False), file=sys.stderr, flush=True)
    return obj


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the data the board is looked at with ----------------------------------------------------


async def _prepare(engine: AsyncEngine) -> dict[str, Any]:
    """The busiest bench project, a kiosk token for it, a desk account with an API token, a
    public area for new orders and a rota (so the header's on-call and gap logic run)."""
    from server.persistence import staff as staff_db
    from server.security import hash_password, new_token, token_hash

    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT p.id, p.code, count(*) AS open FROM projects p JOIN orders o ON o.project_id = p.id "
                    "WHERE p.code LIKE 'B__' AND o.status NOT IN ('closed', 'cancelled') "
                    "GROUP BY p.id, p.code ORDER BY count(*) DESC, p.code LIMIT 1"
                )
            )
        ).one()
        pid, code, open_orders = row.id, row.code, row.open
        # bench/seed.py's statuses follow the order number, and so does the project: each project's
        # open orders fall in three stages only. Spread this project's over all five, so that the
        # board sends 200 cards (40 a column) as the figure assumes.
        await conn.execute(
            text(
                "UPDATE orders SET status = (ARRAY['pooled','assigned','accepted','on_site','paused','done'])"
                "[1 + (id / 20) % 6] WHERE project_id = :p AND number LIKE 'BN-O-%' "
                "AND status IN ('pooled','assigned','accepted','on_site','paused','done')"
            ),
            {"p": pid},
        )
        await conn.execute(
            text(
                "INSERT INTO public_areas (project_id, name) VALUES (:p, '压测地库') ON CONFLICT DO NOTHING"
            ),
            {"p": pid},
        )
        desk = await staff_db.by_username(conn, "bench_desk")
        desk_id = (
            desk.id
            if desk is not None
            else await staff_db.create_staff(
                conn,
                username="bench_desk",
                display_name="压测客服",
                role="dispatcher",
                password_hash=hash_password("bench-only"),
                project_ids=[pid],
            )
        )
        await conn.execute(
            text("INSERT INTO staff_projects VALUES (:s, :p) ON CONFLICT DO NOTHING"),
            {"s": desk_id, "p": pid},
        )
        api_token = new_token("bx")
        await staff_db.create_api_token(conn, desk_id, token_hash(api_token), "bench")
        kiosk = new_token("kiosk")
        await staff_db.create_kiosk_token(conn, token_hash(kiosk), [pid], "bench wall")
        has_rota = (
            await conn.execute(text("SELECT count(*) FROM oncall_shifts WHERE project_id = :p"), {"p": pid})
        ).scalar_one()
        if not has_rota:
            engs = [
                r[0]
                for r in await conn.execute(
                    text("SELECT id FROM staff WHERE username LIKE 'bench_eng_%' ORDER BY id LIMIT 3")
                )
            ]
            for kind, starts, ends, a, b in (
                ("day", "09:00", "17:30", 0, 1),
                ("night", "17:30", "09:00", 1, 0),
                ("weekend", "09:00", "09:00", 2, 0),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO oncall_shifts (project_id, kind, starts, ends, primary_id, backup_id) "
                        "VALUES (:p, :k, :s, :e, :a, :b)"
                    ),
                    {
                        "p": pid,
                        "k": kind,
                        "s": time.fromisoformat(starts),
                        "e": time.fromisoformat(ends),
                        "a": engs[a],
                        "b": engs[b],
                    },
                )
        closed = (
            await conn.execute(text("SELECT count(*) FROM orders WHERE status = 'closed'"))
        ).scalar_one()
        total_open = (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE status NOT IN ('closed', 'cancelled')")
            )
        ).scalar_one()
    return {
        "project_id": pid,
        "project": code,
        "project_open": open_orders,
        "open": total_open,
        "closed": closed,
        "kiosk": kiosk,
        "api_token": api_token,
    }


async def _tidy(engine: AsyncEngine, numbers: list[str]) -> None:
    """Cancel the orders the samples registered, so the next run sees the same board."""
    if not numbers:
        return
    async with engine.begin() as conn:
        ids = [
            r[0]
            for r in await conn.execute(text("SELECT id FROM orders WHERE number = ANY(:n)"), {"n": numbers})
        ]
        await conn.execute(
            text("UPDATE order_clocks SET state = 'cancelled', ended_at = now() WHERE order_id = ANY(:i)"),
            {"i": ids},
        )
        await conn.execute(
            text(
                "UPDATE orders SET status = 'cancelled', cancelled_at = now(), next_deadline = NULL, "
                "next_clock = NULL WHERE id = ANY(:i)"
            ),
            {"i": ids},
        )


async def _keep_changing(engine: AsyncEngine, project_id: int) -> None:
    """Edit the project's most urgent order once a second (a real write: trigger, NOTIFY)."""
    n = 0
    while True:
        n += 1
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE orders SET summary = :s, updated_at = now() WHERE id = (SELECT id FROM orders "
                    "WHERE project_id = :p AND status = 'pooled' ORDER BY next_deadline LIMIT 1)"
                ),
                {"p": project_id, "s": f"压测：地库消防管渗水（第 {n} 次更新）"},
            )
        await asyncio.sleep(1)


# ---- the server ------------------------------------------------------------------------------


class Server:
    """`baoxiu serve --workers 2` (granian), as deployed; stopped with its process group."""

    def __init__(self, sse: bool) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sse = sse
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.gettempdir()) / f"baoxiu-bench-board-{self.port}.log"

    async def start(self) -> None:
        env = {
            **os.environ,
            "BAOXIU_BENCH": "1",
            "BAOXIU_TEST_CLOCK": "0",
            "BOARD_SSE": "1" if self.sse else "0",
            "WEB_WORKERS": str(WORKERS),
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 (fork/exec returns at once)
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(WORKERS),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        async with httpx.AsyncClient() as c:
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"web server exited ({self.proc.returncode}); see {self.log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(self.url + "/readyz", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"web server did not come up; see {self.log}")

    def rss_mb(self) -> float:
        """Resident memory of the server's process group (granian and its workers)."""
        assert self.proc is not None
        pgid = os.getpgid(self.proc.pid)
        total_kb = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != pgid:
                    continue
                status = (entry / "status").read_text()
            except (OSError, ProcessLookupError):
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            if m:
                total_kb += int(m.group(1))
        return total_kb / 1024

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        for _ in range(100):
            if self.proc.poll() is not None:
                return
            await asyncio.sleep(0.1)
        os.killpg(self.proc.pid, signal.SIGKILL)


# ---- wrk -------------------------------------------------------------------------------------


async def wrk(
    url: str, seconds: int, *, script: str | None = None, args: list[str] | None = None, gzip: bool = True
) -> str:
    # Every request says what a browser says: it takes gzip (the board's fragment is sent
    # compressed, gzipped once per version; /healthz is too small to be compressed).
    cmd = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s"]
    cmd += ["-H", "Accept-Encoding: gzip" if gzip else "Accept-Encoding: identity"]
    path = None
    if script is not None:
        fd, path = tempfile.mkstemp(suffix=".lua")
        with os.fdopen(fd, "w") as f:
            f.write(script)
        cmd += ["-s", path]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
    finally:
        if path:
            os.unlink(path)
    return out.decode()


def _rps(out: str) -> float:
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk said:\n{out}")
    return float(m.group(1))


def _bad(out: str) -> int:
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(m.group(1)) if m else 0) + (sum(int(x) for x in errors.groups()) if errors else 0)


async def saturated(
    url: str, script: str | None = None, args: list[str] | None = None, gzip: bool = True
) -> tuple[float, str]:
    await wrk(url, WARM_SECONDS, script=script, args=args, gzip=gzip)
    out = await wrk(url, RUN_SECONDS, script=script, args=args, gzip=gzip)
    if _bad(out):
        raise RuntimeError(f"errors under load on {url}:\n{out}")
    return _rps(out), out


async def paced(base: str, path: str) -> dict[str, float]:
    out = await wrk(
        base + "/healthz", PACED_SECONDS, script=PACED_LUA, args=[path, str(CONNECTIONS // THREADS)]
    )
    values = dict(re.findall(r"^(P50_US|P99_US|MAX_US|REQS|ERRORS) (\d+)$", out, re.M))
    if not values or int(values["ERRORS"]):
        raise RuntimeError(f"paced run on {path}:\n{out}")
    return {
        "p50_ms": int(values["P50_US"]) / 1000,
        "p99_ms": int(values["P99_US"]) / 1000,
        "max_ms": int(values["MAX_US"]) / 1000,
        "rps": int(values["REQS"]) / PACED_SECONDS,
    }


# ---- the browser -----------------------------------------------------------------------------


async def order_to_screen(
    server: Server, data: dict[str, Any], jitter_s: float, engine: AsyncEngine
) -> list[tuple[float, str, float]]:
    """(ms from the POST to the card in the DOM, the order's number, ms the POST itself took)."""
    from playwright.async_api import async_playwright

    body = {
        "project": data["project"],
        "kind": "repair",
        "category": "plumbing",
        "urgency": "normal",
        "public_area": "压测地库",
        "reporter_name": "王芳",
        "reporter_phone": "13800138000",
        "summary": "压测：地库消防管渗水",
        "channel": "phone",
    }
    samples = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            await page.goto(f"{server.url}/board?project={data['project']}&kiosk={data['kiosk']}")
            await page.wait_for_selector(".board-body")
            await page.wait_for_timeout(1000)  # the stream is open, the first polls are done
            for _ in range(SAMPLES):
                await page.wait_for_timeout(int(random.uniform(0.2, 0.2 + jitter_s) * 1000))
                ms, number, posted = await page.evaluate(ORDER_TO_SCREEN_JS, [data["api_token"], body])
                samples.append((ms, number, posted))
                await _tidy(engine, [number])  # the next sample's card lands where this one did
        finally:
            await browser.close()
    return samples


# ---- all of it -------------------------------------------------------------------------------


async def bench_board(database_url: str) -> list[dict[str, Any]]:
    """Start the web server, load it with wrk and Chromium, return the figures."""
    from server.config import get_settings
    from server.persistence.db import make_engine

    engine = make_engine(database_url)
    data = await _prepare(engine)
    scale = {"project_open": data["project_open"], "open": data["open"], "closed": data["closed"]}
    poll_s = get_settings().board_poll_seconds
    out: list[dict[str, Any]] = []
    numbers: list[str] = []
    server = Server(sse=True)
    await server.start()
    try:
        q = f"project={data['project']}&kiosk={data['kiosk']}"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            first = await c.get(f"/board/fragment?{q}", headers={"Accept-Encoding": "identity"})
            first.raise_for_status()
            tag = first.headers["x-board-version"]
            cards = first.text.count('class="bcard ')
            # Both processes must know the version (a poll may land on either).
            for _ in range(20):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as fresh:
                    await fresh.get(f"/board/fragment?{q}&v={tag}")
        healthz, _ = await saturated(f"{server.url}/healthz")
        unchanged, log = await saturated(
            f"{server.url}/board/fragment?{q}", UNCHANGED_LUA, [f"/board/fragment?{q}", tag]
        )
        statuses = {int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)$", log, re.M)}
        share_204 = statuses.get(204, 0) / max(1, sum(statuses.values()))
        out.append(
            figure(
                "board_unchanged_rps_ratio",
                unchanged / healthz,
                "ratio",
                ">= 0.70",
                rps=round(unchanged),
                healthz_rps=round(healthz),
                share_204=round(share_204, 4),
                **scale,
            )
        )
        # Like for like: neither compressed (a change is gzipped once per process, not per poller).
        raw, _ = await saturated(f"{server.url}/_bench/board_raw?{q}", gzip=False)
        changed, _ = await saturated(f"{server.url}/_bench/board_changed?{q}", gzip=False)
        out.append(
            figure(
                "board_full_vs_raw_ratio",
                changed / raw,
                "ratio",
                ">= 0.5",
                rps=round(changed),
                raw_rps=round(raw),
                cards_sent=cards,
                bytes=len(first.content),
            )
        )
        cached, _ = await saturated(f"{server.url}/board/fragment?{q}&v=seen-before")
        out.append(
            figure(
                "board_cached_rps_ratio",
                cached / healthz,
                "ratio",
                ">= 0.4",
                rps=round(cached),
                healthz_rps=round(healthz),
            )
        )
        # Pollers that have not seen the board (v never matches) while it really changes every
        # second: an order is edited, its trigger notifies, each process reads and assembles once.
        changing = asyncio.create_task(_keep_changing(engine, data["project_id"]))
        try:
            p_full = await paced(server.url, f"/board/fragment?{q}&v=seen-before")
        finally:
            changing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changing
        out.append(
            figure(
                "board_full_p99_ms_paced",
                p_full["p99_ms"],
                "ms",
                "< 50",
                pollers=CONNECTIONS,
                p50_ms=p_full["p50_ms"],
                max_ms=p_full["max_ms"],
                rps=round(p_full["rps"]),
                board="changing every second",
            )
        )
        p_cached = await paced(server.url, f"/board/fragment?{q}&v=seen-before")
        out.append(
            figure(
                "board_cached_p99_ms_paced",
                p_cached["p99_ms"],
                "ms",
                "",
                pollers=CONNECTIONS,
                p50_ms=p_cached["p50_ms"],
                max_ms=p_cached["max_ms"],
                rps=round(p_cached["rps"]),
            )
        )
        push = await order_to_screen(server, data, 0.5, engine)
        numbers += [n for _ms, n, _p in push]
        ms = [m for m, _n, _p in push]
        out.append(
            figure(
                "order_to_screen_ms_p50",
                statistics.median(ms),
                "ms",
                "<= 150",
                samples=len(ms),
                max_ms=round(max(ms), 1),
                post_ms_p50=round(statistics.median(p for _m, _n, p in push), 1),
                path="push (server-sent events)",
            )
        )
        await asyncio.sleep(1)
        out.append(
            figure("web_rss_mb", server.rss_mb(), "MB", "< 250", processes=f"granian + {WORKERS} workers")
        )
    finally:
        await server.stop()
    polling = Server(sse=False)
    await polling.start()
    try:
        nopush = await order_to_screen(polling, data, poll_s, engine)
        numbers += [n for _ms, n, _p in nopush]
        ms = [m for m, _n, _p in nopush]
        out.append(
            figure(
                "order_to_screen_ms_max_nopush",
                max(ms),
                "ms",
                f"<= {poll_s * 1000 + 500:.0f}",
                samples=len(ms),
                p50_ms=round(statistics.median(ms), 1),
                poll_ms=poll_s * 1000,
            )
        )
    finally:
        await polling.stop()
        await _tidy(engine, numbers)
        await engine.dispose()
    return out


if __name__ == "__main__":  # the board alone: .venv/bin/baoxiu with-services … -- python -m bench.board
    os.environ.setdefault("BAOXIU_TEST_CLOCK", "0")
    for obj in asyncio.run(bench_board(os.environ["DATABASE_URL"])):
        print(json.dumps(obj, ensure_ascii=False), flush=True)
