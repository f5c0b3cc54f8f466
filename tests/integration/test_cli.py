"""The command line as an operator meets it: clear one-line failures, and `run` cleans up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
BAOXIU = [sys.executable, "-m", "server.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BAOXIU, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_wrong_database_url_is_one_clear_line():
    r = run_cli("serve", env={"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert r.returncode == 1
    assert "DATABASE_URL" in one_line(r.stderr)


def test_a_wrong_redis_url_is_one_clear_line():
    r = run_cli("serve", env={"REDIS_URL": "redis://127.0.0.1:1/0", "PORT": str(free_port())})
    assert r.returncode == 1
    assert "REDIS_URL" in one_line(r.stderr)


def test_a_port_in_use_is_one_clear_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("serve", "--port", str(port))
    assert r.returncode == 1
    assert str(port) in one_line(r.stderr)


async def test_serve_refuses_an_unmigrated_database(engine):
    from sqlalchemy import text

    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("DROP DATABASE IF EXISTS baoxiu_cli_empty WITH (FORCE)"))
        await conn.execute(text("CREATE DATABASE baoxiu_cli_empty"))
    url = engine.url.set(database="baoxiu_cli_empty").render_as_string(hide_password=False)
    r = run_cli("serve", "--port", str(free_port()), env={"DATABASE_URL": url})
    assert r.returncode == 1
    assert "baoxiu migrate" in one_line(r.stderr)


def test_run_starts_everything_and_sigterm_leaves_nothing_behind(tmp_path):
    """`baoxiu run` on a bare machine: embedded servers, migrate, demo, web, worker — then stop."""
    run_dir = tmp_path / "run"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BAOXIU_TEST_CLOCK")}
    env.update({"BAOXIU_RUN_DIR": str(run_dir), "PORT": str(port)})
    proc = subprocess.Popen(
        [*BAOXIU, "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if r.status_code == 200:
                    ready = True
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready, proc.stdout.read() if proc.poll() is not None else "not ready in time"
        login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert login.status_code == 200 and "登录" in login.text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "stopped" in out
    time.sleep(0.5)
    left = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(run_dir) in cmd or f"--port {port}" in cmd:
            left.append(cmd)
    assert not left, left
    conf = (run_dir / "valkey" / "valkey.conf").read_text()
    valkey_port = int(next(line.split()[1] for line in conf.splitlines() if line.startswith("port ")))
    with socket.socket() as s:  # nobody listens on the embedded Redis port any more
        assert s.connect_ex(("127.0.0.1", valkey_port)) != 0
