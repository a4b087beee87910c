"""Throwaway PostgreSQL and Redis servers that a test starts, breaks and removes itself.

The machine's own servers (PostgreSQL on 5432, Redis on 6379) are shared with everyone else's
test runs, so no test may stop, restart or reconfigure them. A test that needs to do that to a
server starts one of these instead: a private server on a free port of 127.0.0.1, with its data
in a temporary folder of its own, removed when the server is cleaned up.

A server is always cleaned up: by :meth:`close` (or leaving its ``with`` block), by a finalizer
when the process exits, and by a watchdog shell that stops the server and removes its folder when
the test process dies without running either (a ``SIGKILL``, a crashed interpreter).

Fixtures (registered in ``tests/conftest.py``): ``throwaway_postgres`` and ``throwaway_redis``
give a test a running server it may stop, restart or freeze (shared by the tests of one module;
each test gets it back running), ``throwaway_postgres_ledger`` a ledger URL on a fresh schema of
that server. Where the binaries are missing they skip with a one-line reason, and fail under
``CI=true`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import abc
import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Self

import pytest

from tests.services import missing

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

StopMode = Literal["fast", "immediate"]

_START_TIMEOUT: Final = 60.0
_POSTGRES_GLOB: Final = "/usr/lib/postgresql/*/bin"


class ServerError(RuntimeError):
    """A throwaway server could not be started or stopped (its log's tail is in the message)."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of ``path`` (empty when it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(child) for child in text)
    return found


class _Lifetime:
    """The folder and watchdog of one server; :meth:`close` stops the server and removes both.

    Kept apart from the server object so that a :func:`weakref.finalize` can call it.
    """

    def __init__(self, root: Path, stop_command: str) -> None:
        self.root = root
        self.stop_command = stop_command
        # The watchdog blocks on its stdin; when every holder of the pipe's write end is gone
        # (this process exited or was killed), the read returns and it cleans up after us.
        script = f"read -r _; {stop_command} >/dev/null 2>&1; rm -rf -- {shlex.quote(str(root))}"
        self.watchdog = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.closed = False

    def close(self) -> None:
        """Stop the server (if running), remove the folder and release the watchdog."""
        if self.closed:
            return
        self.closed = True
        subprocess.run(
            ["/bin/sh", "-c", self.stop_command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=_START_TIMEOUT,
        )
        shutil.rmtree(self.root, ignore_errors=True)
        if self.watchdog.stdin is not None:
            self.watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.watchdog.wait(_START_TIMEOUT)


class _Server(abc.ABC):
    """What both throwaway servers share: a folder, a port, a lifetime and context-manager use."""

    _lifetime: _Lifetime | None = None
    _finalizer: weakref.finalize[[], None] | None = None

    def __init__(self) -> None:
        self.port = 0
        self.root = Path()

    @property
    @abc.abstractmethod
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def _adopt(self, root: Path, stop_command: str) -> None:
        """Tie ``root`` and the server's lifetime to this object (and to process exit)."""
        self.root = root
        self._lifetime = _Lifetime(root, stop_command)
        self._finalizer = weakref.finalize(self, self._lifetime.close)

    def close(self) -> None:
        """Stop the server for good and remove its data; later calls do nothing."""
        if self._finalizer is None or not self._finalizer.alive:
            return
        with contextlib.suppress(ServerError):
            self.stop("immediate")
        self._finalizer()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Suspend the server (``SIGSTOP``) for the block: connections hang instead of failing.

        It is what a stalled or partitioned server looks like to a client. The processes are
        resumed (``SIGCONT``) when the block ends, however it ends.
        """
        pid = self.pid
        if pid is None:
            raise ServerError("the server is not running; start() it before freezing it")
        group = [pid, *_children(pid)]
        for member in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGSTOP)
        try:
            yield
        finally:
            for member in group:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGCONT)

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Stop the server for the block, so new connections are refused; start it again after."""
        self.stop("fast")
        try:
            yield
        finally:
            self.start()

    @abc.abstractmethod
    def start(self) -> None:
        """Start the server (no-op when it runs)."""

    @abc.abstractmethod
    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server, keeping its data (no-op when it is stopped)."""

    def restart(self, mode: StopMode = "fast") -> None:
        """Stop the server (``mode``) and start it again on the same port and data."""
        self.stop(mode)
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def postgres_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None`` when absent."""
    candidates: list[Path] = []
    if (pg_config := shutil.which("pg_config")) is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(done.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    candidates.extend(sorted(Path("/").glob(_POSTGRES_GLOB.lstrip("/")), key=version, reverse=True))
    if (initdb := shutil.which("initdb")) is not None:
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _postgres_user() -> pwd.struct_passwd | None:
    """The ``postgres`` OS account, or ``None`` when there is none."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def postgres_unavailable() -> str | None:
    """Why a throwaway PostgreSQL cannot run here (one line), or ``None`` when it can."""
    if postgres_bindir() is None:
        return "PostgreSQL's server binaries are not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and (_postgres_user() is None or shutil.which("runuser") is None):
        return "as root, a throwaway PostgreSQL needs the postgres OS user and runuser"
    return None


class ThrowawayPostgres(_Server):
    """A private PostgreSQL server: ``initdb`` in a temporary folder, ``pg_ctl`` on a free port.

    It trusts every local connection (user ``postgres``), listens on 127.0.0.1 and on a unix
    socket inside its own folder, and trades durability against an OS crash for speed
    (``fsync=off``): a stop in any mode, even ``immediate``, loses nothing committed. As root,
    ``initdb`` and ``postgres`` run as the ``postgres`` OS user, which owns the folder.

    Args:
        settings: extra server settings (``postgres -c name=value``), e.g.
            ``{"max_connections": "20"}``.

    Example:
        >>> with ThrowawayPostgres() as server:
        ...     server.restart("immediate")
    """

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        super().__init__()
        reason = postgres_unavailable()
        if reason is not None:
            raise ServerError(reason)
        bindir = postgres_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.settings = {
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "60",
            **(settings or {}),
        }
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (valid once started)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "server.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (from ``postmaster.pid``), else ``None``."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid is not None and pid_alive(pid) else None

    def _command(self, *argv: str) -> list[str]:
        """``argv`` run as the postgres OS user when we are root."""
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)

    def _run(self, *argv: str, what: str) -> None:
        """Run a PostgreSQL tool; raise :class:`ServerError` with its output when it fails."""
        done = subprocess.run(
            self._command(*argv),
            capture_output=True,
            text=True,
            check=False,
            timeout=_START_TIMEOUT * 2,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            raise ServerError(f"{what} failed ({done.returncode}): {detail}\n{_tail(self.log)}")

    def _initdb(self) -> None:
        """Create the folder (owned by the postgres user when root) and a cluster in it."""
        root = Path(tempfile.mkdtemp(prefix="seawall-pg-"))
        if self._as_postgres:
            account = _postgres_user()
            assert account is not None
            os.chown(root, account.pw_uid, account.pw_gid)
        stop = " ".join(
            shlex.quote(part)
            for part in self._command(
                str(self.bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w"
            )
        )
        self._adopt(root, f"{stop} stop")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            what="initdb",
        )

    def start(self) -> None:
        """Start the server (``initdb`` first on the first call); wait until it accepts."""
        if self._lifetime is not None and self._lifetime.closed:
            raise ServerError("this throwaway PostgreSQL was closed; create a new one")
        if self.running:
            return
        if self._lifetime is None:
            self._initdb()
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = free_port()
            options = [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                *(f"-c {name}={value}" for name, value in self.settings.items()),
            ]
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    " ".join(options),
                    "-t",
                    str(int(_START_TIMEOUT)),
                    "-w",
                    "start",
                    what=f"starting PostgreSQL on 127.0.0.1:{self.port}",
                )
            except ServerError:
                if attempt + 1 == attempts or "could not bind" not in _tail(self.log, 5):
                    raise
            else:
                return

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected cleanly) or ``immediate`` (as a crash).

        After an ``immediate`` stop the next start runs crash recovery from the WAL.
        """
        postmaster = self.pid
        if postmaster is None:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-t",
            str(int(_START_TIMEOUT)),
            "-w",
            "stop",
            what=f"stopping PostgreSQL ({mode})",
        )
        # pg_ctl returns once the pid file is gone, a moment before the process itself.
        deadline = time.monotonic() + _START_TIMEOUT
        while pid_alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.01)

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run one statement as the superuser on database ``postgres``; return its rows."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
            cursor = connection.execute(sql.encode(), params)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def terminate_connections(self) -> int:
        """Kill every other client's backend (``pg_terminate_backend``); return how many."""
        rows = self.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(str(rows[0][0]))

    def connection_count(self) -> int:
        """How many other client backends are connected now."""
        rows = self.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(str(rows[0][0]))


def redis_unavailable() -> str | None:
    """Why a throwaway Redis cannot run here (one line), or ``None`` when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


class ThrowawayRedis(_Server):
    """A private ``redis-server`` on a free port of 127.0.0.1, its files in a temporary folder.

    Args:
        persistent: keep the data across a stop, even ``immediate`` (an append-only file
            written on every command); by default nothing is saved (``--save ""
            --appendonly no``) and a restart starts empty.

    Example:
        >>> with ThrowawayRedis() as server:
        ...     server.restart()
    """

    def __init__(self, *, persistent: bool = False) -> None:
        super().__init__()
        reason = redis_unavailable()
        if reason is not None:
            raise ServerError(reason)
        self.persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (valid once started)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.root / "redis.log"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _arguments(self) -> list[str]:
        """The ``redis-server`` command line."""
        durability = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--pidfile",
            str(self.root / "redis.pid"),
            "--logfile",
            str(self.log),
            "--daemonize",
            "no",
            *durability,
        ]

    def _ping(self) -> bool:
        """Return whether the server answers ``PING`` with ``PONG`` (not ``LOADING``)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as link:
                link.sendall(b"PING\r\n")
                return link.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start the server (no-op when it runs); wait until it answers ``PING``."""
        if self._lifetime is not None and self._lifetime.closed:
            raise ServerError("this throwaway Redis was closed; create a new one")
        if self.running:
            return
        if self._lifetime is None:
            root = Path(tempfile.mkdtemp(prefix="seawall-redis-"))
            pidfile = shlex.quote(str(root / "redis.pid"))
            self._adopt(root, f'[ -f {pidfile} ] && kill -KILL "$(cat {pidfile})"')
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = free_port()
            self._process = subprocess.Popen(
                self._arguments(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + _START_TIMEOUT
            while self._process.poll() is None and time.monotonic() < deadline:
                if self._ping():
                    return
                time.sleep(0.02)
            self._kill()
            if attempt + 1 == attempts or "Address already in use" not in _tail(self.log, 5):
                raise ServerError(f"redis-server did not start on {self.url}\n{_tail(self.log)}")

    def _kill(self) -> None:
        """Kill the process outright and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(_START_TIMEOUT)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` shuts it down cleanly (``SIGTERM``), ``immediate`` kills it."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if mode == "immediate":
            self._kill()
        else:
            process.terminate()
            try:
                process.wait(_START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
        (self.root / "redis.pid").unlink(missing_ok=True)


def require_throwaway_postgres() -> None:
    """Skip (fail under ``CI=true``) unless a throwaway PostgreSQL can run here."""
    reason = postgres_unavailable()
    if reason is not None:
        missing(reason)


def require_throwaway_redis() -> None:
    """Skip (fail under ``CI=true``) unless a throwaway Redis can run here."""
    reason = redis_unavailable()
    if reason is not None:
        missing(reason)


@pytest.fixture(scope="module")
def throwaway_postgres_module() -> Iterator[ThrowawayPostgres]:
    """One throwaway PostgreSQL for the tests of a module (use ``throwaway_postgres``)."""
    require_throwaway_postgres()
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture
def throwaway_postgres(throwaway_postgres_module: ThrowawayPostgres) -> ThrowawayPostgres:
    """A running throwaway PostgreSQL the test may stop, restart, freeze or cut off.

    Shared by the tests of one module; each test gets it running with no other connections.
    """
    server = throwaway_postgres_module
    server.start()
    server.terminate_connections()
    return server


@pytest.fixture
def throwaway_postgres_ledger(throwaway_postgres: ThrowawayPostgres) -> Iterator[str]:
    """A Seawall ledger URL on a fresh schema of the test's throwaway PostgreSQL."""
    schema = f"sw_{uuid.uuid4().hex[:12]}"
    yield f"{throwaway_postgres.url}?schema={schema}"
    if throwaway_postgres.running:
        throwaway_postgres.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="module")
def throwaway_redis_module() -> Iterator[ThrowawayRedis]:
    """One throwaway Redis for the tests of a module (use ``throwaway_redis``)."""
    require_throwaway_redis()
    with ThrowawayRedis() as server:
        yield server


@pytest.fixture
def throwaway_redis(throwaway_redis_module: ThrowawayRedis) -> ThrowawayRedis:
    """A running, empty throwaway Redis the test may stop, restart or freeze.

    Shared by the tests of one module; each test gets it running and flushed.
    """
    server = throwaway_redis_module
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as link:
        link.sendall(b"FLUSHALL\r\n")
        link.recv(64)
    return server
