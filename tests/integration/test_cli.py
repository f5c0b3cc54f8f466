"""The command line as an operator meets it: clear one-line failures, and `run` cleans up."""

from __future__ import annotations

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


def test_run_on_a_port_in_use_is_one_clear_line_and_starts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env.update({"BAOXIU_RUN_DIR": str(tmp_path / "run"), "PORT": str(port)})
        r = subprocess.run([*BAOXIU, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"port {port}" in one_line(r.stderr) and "PORT=" in r.stderr
    assert not (tmp_path / "run" / "pgdata").exists()


def test_run_with_a_wrong_redis_url_is_one_clear_line():
    r = run_cli("run", env={"REDIS_URL": "redis://127.0.0.1:1/0", "PORT": str(free_port())})
    assert r.returncode == 1
    assert "REDIS_URL" in one_line(r.stderr)


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


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"], ["demo"]])
async def test_serve_worker_and_demo_refuse_an_unmigrated_database(engine, command):
    from sqlalchemy import text

    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("DROP DATABASE IF EXISTS baoxiu_cli_empty WITH (FORCE)"))
        await conn.execute(text("CREATE DATABASE baoxiu_cli_empty"))
    url = engine.url.set(database="baoxiu_cli_empty").render_as_string(hide_password=False)
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    r = run_cli(*command, env={"DATABASE_URL": url})
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


def _workers(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(proc.pid).children()
        if "worker" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    ]


def _kill_the_worker_and_see_it_restarted(proc: subprocess.Popen[str]) -> None:
    (worker,) = _workers(proc)
    worker.kill()
    worker.wait(10)
    deadline = time.monotonic() + 60  # an upper bound for a broken supervisor, not a timing check
    while time.monotonic() < deadline:
        fresh = [w for w in _workers(proc) if w.pid != worker.pid]
        if fresh:
            return
        time.sleep(0.2)
    raise AssertionError("the worker was not restarted")


def _wait_ready(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 180  # an upper bound for a broken start, not a timing check
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready (exit code {proc.poll()})")


def _run_and_stop(tmp_path: Path, stop: Any, kill_worker: bool = False, port: int = 0) -> None:
    """`baoxiu run` on a bare machine: embedded servers, migrate, demo, web, worker — then stop."""
    run_dir = tmp_path / "run"
    port = port or free_port()
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
        if kill_worker:
            _kill_the_worker_and_see_it_restarted(proc)
        # Everything it started: web and worker (children) and the two servers (daemons).
        started = psutil.Process(proc.pid).children(recursive=True)
        started += [psutil.Process(pid) for pid in _service_pids(run_dir)]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "granian" in names and "worker" in names and "postgres" in names and "valkey" in names
    finally:
        stop(proc)
        try:
            out, _ = proc.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert f"http://127.0.0.1:{port}/" in out and "kefu" in out and "demo1234" in out  # URL and logins
    if kill_worker:
        assert "the worker exited" in out
    # The run exited only after stopping them; wait_procs tolerates a last child being reaped.
    _gone, alive = psutil.wait_procs(started, timeout=60)
    log = run_dir / "pgdata" / "server.log"
    for p in alive:  # a failure must not leave them running on the shared machine
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert not alive, ([p.cmdline() for p in alive], out, log.read_text()[-2000:] if log.exists() else "")
    assert _service_pids(run_dir) == []  # no pid file left to be stale
    with socket.socket() as s:  # nobody listens on the web port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_run_leaves_no_web_or_worker_and_the_next_run_starts_clean(tmp_path):
    """SIGKILL gives `run` no chance to clean up: web and worker still go, and the servers'
    pid files it leaves are dealt with by the next start, which then stops everything."""
    run_dir = tmp_path / "run"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BAOXIU_TEST_CLOCK")}
    env.update({"BAOXIU_RUN_DIR": str(run_dir), "PORT": str(port)})
    proc = subprocess.Popen(
        [*BAOXIU, "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_ready(proc, port)
        ours = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "granian" in " ".join(c.cmdline()) or "worker" in c.cmdline()
        ]
        assert ours
    finally:
        proc.kill()
        proc.wait(30)
    servers = [psutil.Process(pid) for pid in _service_pids(run_dir)]
    try:
        _gone, alive = psutil.wait_procs(ours, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
        assert len(servers) == 2  # the killed run left PostgreSQL and Redis running, with pid files
        # The next run on the same folder starts (adopting or replacing them) and stops
        # everything, the servers of the killed run included.
        _run_and_stop(tmp_path, lambda p: p.send_signal(signal.SIGTERM))
        _gone, alive = psutil.wait_procs(servers, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
    finally:  # a failed test must not leave its processes running on the shared machine
        for p in ours + servers:
            with contextlib.suppress(psutil.Error):
                p.kill()


def test_run_starts_everything_restarts_a_dead_worker_and_sigterm_leaves_nothing_behind(tmp_path):
    _run_and_stop(tmp_path, lambda proc: proc.send_signal(signal.SIGTERM), kill_worker=True)


def test_run_stopped_by_ctrl_c_leaves_nothing_behind(tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group."""
    _run_and_stop(tmp_path, lambda proc: os.killpg(proc.pid, signal.SIGINT))


# ---- .ci/run -----------------------------------------------------------------------------------


def _fake_tools(bin_dir: Path, log: Path, link: list[str]) -> None:
    """apt-get, sudo and make that only record their arguments; `link` real tools beside them."""
    bin_dir.mkdir()
    for name in ("apt-get", "make"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
        script.chmod(0o755)
    for name in link:
        real = shutil.which(name)
        assert real, name
        (bin_dir / name).symlink_to(real)


def _ci_run(path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "DATABASE_URL": "x", "REDIS_URL": "y"}
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_ci_run_installs_only_what_is_missing_then_runs_make_test(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the bare-machine case runs as root (no sudo in the fake PATH)")
    log = tmp_path / "calls.log"
    # A bare Debian: a shell and coreutils, no chromium, wrk, CJK fonts or python3 (make is the
    # recording fake).
    _fake_tools(tmp_path / "bin", log, ["bash", "dirname", "grep", "id", "env", "sh"])
    r = _ci_run(str(tmp_path / "bin"))
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    install = calls[1].split()
    assert install[:5] == ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
    assert set(install[5:]) == {"chromium", "fonts-noto-cjk", "wrk", "python3", "python3-venv"}
    assert calls[2:] == ["make test"]


def test_ci_run_twice_on_a_ready_machine_installs_nothing(tmp_path):
    if not (shutil.which("chromium") and shutil.which("wrk") and shutil.which("fc-list")):
        pytest.skip("this machine is not the ready CI image")
    log = tmp_path / "calls.log"
    _fake_tools(tmp_path / "bin", log, [])
    for _ in range(2):
        r = _ci_run(f"{tmp_path / 'bin'}:{os.environ['PATH']}")
        assert r.returncode == 0, r.stderr
    assert log.read_text().splitlines() == ["make test", "make test"]


# ---- user, token and kiosk commands; secrets; vendored files ---------------------------------


async def test_user_token_and_kiosk_commands_work_end_to_end(client, new_client, engine):
    from sqlalchemy import text

    from tests.conftest import post_login

    name = f"cli{os.getpid() % 100000}"
    r = run_cli(
        "user", "create", "--name", name, "--role", "engineer", "--project", "DEMO",
        "--team", "水电班", "--password", "longenough1", "--pin", "4680",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    async with engine.connect() as conn:
        teams = (
            (
                await conn.execute(
                    text(
                        "SELECT t.name FROM staff s JOIN staff_teams st ON st.staff_id = s.id"
                        " JOIN teams t ON t.id = st.team_id WHERE s.username = :u"
                    ),
                    {"u": name},
                )
            )
            .scalars()
            .all()
        )
    assert teams == ["水电班"]
    r = await post_login(client, {"username": name, "password": "longenough1"})
    assert r.status_code == 303 and r.headers["location"] == "/tablet"
    again = run_cli("user", "create", "--name", name, "--role", "engineer", "--project", "DEMO")
    assert again.returncode == 1 and "exists" in one_line(again.stderr)

    t = run_cli("token", "create", "--user", name)
    assert t.returncode == 0, t.stderr
    token = t.stdout.strip()
    assert token.startswith("bx_")
    async with engine.connect() as conn:  # stored hashed, never as given
        assert not (
            await conn.execute(text("SELECT 1 FROM api_tokens WHERE token_hash = :t"), {"t": token})
        ).first()
    r = await client.get("/api/v1/orders?project=DEMO&limit=1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200

    k = run_cli("kiosk", "create", "--project", "DEMO")
    assert k.returncode == 0, k.stderr
    url = k.stdout.strip()
    assert "/board?kiosk=" in url
    async with new_client() as wall:  # no login: the token is the credential
        r = await wall.get(url[url.index("/board") :] + "&project=DEMO")
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["user", "create", "--name", "x1", "--role", "wizard", "--project", "DEMO"], "unknown role"),
        (["user", "create", "--name", "x2", "--role", "engineer", "--project", "NOPE"], "NOPE"),
        (
            ["user", "create", "--name", "x3", "--role", "engineer", "--project", "DEMO", "--team", "无此班"],
            "无此班",
        ),
        (["token", "create", "--user", "nobody-here"], "nobody-here"),
        (["kiosk", "create", "--project", "NOPE"], "NOPE"),
    ],
)
def test_cli_refusals_are_one_line(args, says):
    r = run_cli(*args)
    assert r.returncode == 1
    assert says in one_line(r.stderr)


def test_secrets_are_generated_once_into_the_run_dir(tmp_path):
    from server.config import load_or_create_secrets

    first = load_or_create_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(first["session_secret"]) >= 40 and first["session_secret"] != first["iot_secret"]
    assert load_or_create_secrets(tmp_path) == first  # kept across restarts: sessions survive
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".run/secrets.json"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0  # never committed


def test_the_vendored_files_match_the_readmes_sha256():
    import hashlib
    import re

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"\| `(static/vendor/[^`]+)` \| [^|]+ \| `([0-9a-f]{64})` \|", readme)
    assert len(rows) >= 2
    for path, digest in rows:
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, path
    assert {p for p, _ in rows} == {f"static/vendor/{f.name}" for f in (ROOT / "static" / "vendor").iterdir()}
