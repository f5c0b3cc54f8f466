"""The command line as an operator meets it: clear one-line failures, and `run` cleans up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

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


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "demo"])
def test_every_command_names_a_wrong_database_url(command):
    r = run_cli(command, env={"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "DATABASE_URL" in line and "127.0.0.1" in line


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_malformed_redis_url_is_one_clear_line(command):
    r = run_cli(
        *([command, "--port", str(free_port())] if command == "serve" else [command]),
        env={"REDIS_URL": "http://not-redis/0"},
    )
    assert r.returncode == 1
    assert "REDIS_URL" in one_line(r.stderr)


def test_a_database_url_of_another_driver_is_one_clear_line():
    r = run_cli("migrate", env={"DATABASE_URL": "mysql://root@localhost/baoxiu"})
    assert r.returncode == 1
    assert "postgresql+asyncpg://" in one_line(r.stderr)


@pytest.mark.parametrize(("given", "missing"), [("DATABASE_URL", "REDIS_URL"), ("REDIS_URL", "DATABASE_URL")])
@pytest.mark.parametrize("command", [["run"], ["with-services", "--", "true"]])
def test_only_one_of_the_urls_is_refused_before_anything_starts(tmp_path, command, given, missing):
    """Half a production setup must not silently start both embedded servers instead."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env[given] = os.environ[given]
    env.update({"BAOXIU_RUN_DIR": str(tmp_path / "run"), "PORT": str(free_port())})
    r = subprocess.run([*BAOXIU, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert f"{given} is set but {missing} is not" in line
    assert not (tmp_path / "run" / "pgdata").exists()
    assert not (tmp_path / "run" / "valkey").exists()


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


def _service_pids(run_dir: Path) -> list[int]:
    """The embedded postmaster and valkey, read from their pid files (they are not our children)."""
    pids = []
    pg = run_dir / "pgdata" / "postmaster.pid"
    if pg.exists():
        pids.append(int(pg.read_text().split("\n", 1)[0]))
    vk = run_dir / "valkey" / "valkey.pid"
    if vk.exists():
        pids.append(int(vk.read_text().strip()))
    return pids


CHECK_BOTH = (
    "import asyncio, os, asyncpg, redis.asyncio as r\n"
    "async def go():\n"
    "    url = os.environ['DATABASE_URL'].replace('postgresql+asyncpg', 'postgresql')\n"
    "    c = await asyncpg.connect(url); await c.close()\n"
    "    x = r.Redis.from_url(os.environ['REDIS_URL']); await x.ping(); await x.aclose()\n"
    "asyncio.run(go())"
)


def test_stale_pid_files_are_cleaned_on_the_next_start(tmp_path):
    """A killed run leaves pid files naming dead pids, or pids since reused by other programs."""
    root = tmp_path / "svc"
    bare = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    cmd = [*BAOXIU, "with-services", "--root", str(root), "--", sys.executable, "-c", CHECK_BOTH]
    first = subprocess.run(cmd, cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert _service_pids(root) == []  # a clean stop removes both pid files
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "300"])  # an unrelated live process holding the "stale" pid
    try:
        (root / "pgdata" / "postmaster.pid").write_text(f"{alive.pid}\n{root / 'pgdata'}\n")
        (root / "valkey" / "valkey.pid").write_text(f"{dead.pid}\n")
        again = subprocess.run(cmd, cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert alive.poll() is None  # the unrelated process was left alone
        assert _service_pids(root) == []
    finally:
        alive.kill()
        alive.wait()


def _run_and_stop(tmp_path: Path, stop: Any) -> None:
    """`baoxiu run` on a bare machine: embedded servers, migrate, demo, web, worker — then stop."""
    run_dir = tmp_path / "run"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BAOXIU_TEST_CLOCK")}
    env.update({"BAOXIU_RUN_DIR": str(run_dir), "PORT": str(port)})
    proc = subprocess.Popen(
        [*BAOXIU, "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
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
        # Everything it started: web and worker (children) and the two servers (daemons).
        started = psutil.Process(proc.pid).children(recursive=True)
        started += [psutil.Process(pid) for pid in _service_pids(run_dir)]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "granian" in names and "worker" in names and "postgres" in names and "valkey" in names
    finally:
        stop(proc)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "stopped" in out
    # The run exited only after stopping them; wait_procs tolerates a last child being reaped.
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    assert _service_pids(run_dir) == []  # no pid file left to be stale
    with socket.socket() as s:  # nobody listens on the web port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_run_starts_everything_and_sigterm_leaves_nothing_behind(tmp_path):
    _run_and_stop(tmp_path, lambda proc: proc.send_signal(signal.SIGTERM))


def test_run_stopped_by_ctrl_c_leaves_nothing_behind(tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group."""
    _run_and_stop(tmp_path, lambda proc: os.killpg(proc.pid, signal.SIGINT))
