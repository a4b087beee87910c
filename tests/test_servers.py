"""The throwaway servers of ``tests/servers.py``: they start, break, recover and always go away."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import (
    ServerError,
    ThrowawayPostgres,
    ThrowawayRedis,
    pid_alive,
    require_throwaway_postgres,
    require_throwaway_redis,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _wait_for(condition: object, timeout: float = 30.0) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _redis(port: int, command: bytes, timeout: float = 5.0) -> bytes:
    """Send one inline command to Redis on ``port``; return the first reply bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as link:
        link.sendall(command + b"\r\n")
        return link.recv(256)


def test_postgres_restart_keeps_port_and_data(throwaway_postgres: ThrowawayPostgres) -> None:
    """A restart, even after an immediate stop, keeps the URL and what was committed."""
    server = throwaway_postgres
    server.execute("CREATE TABLE IF NOT EXISTS kept (v int)")
    server.execute("INSERT INTO kept VALUES (7)")
    url, before = server.url, server.pid
    server.restart("immediate")
    assert url == server.url
    assert before != server.pid
    assert [(7,)] == server.execute("SELECT v FROM kept")
    server.execute("DROP TABLE kept")


def test_postgres_terminate_connections(throwaway_postgres: ThrowawayPostgres) -> None:
    """terminate_connections kills every other client's backend and reports how many."""
    import psycopg

    with psycopg.connect(throwaway_postgres.url, autocommit=True) as victim:
        assert 1 == throwaway_postgres.connection_count()
        assert 1 == throwaway_postgres.terminate_connections()
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
    assert 0 == throwaway_postgres.connection_count()


def test_postgres_refusing_then_back(throwaway_postgres: ThrowawayPostgres) -> None:
    """Inside refusing() a connection is refused; after it the server accepts again."""
    import psycopg

    with throwaway_postgres.refusing():
        assert throwaway_postgres.pid is None
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(throwaway_postgres.url, connect_timeout=5).close()
    assert [(1,)] == throwaway_postgres.execute("SELECT 1")


def test_postgres_frozen_connection_hangs(throwaway_postgres: ThrowawayPostgres) -> None:
    """Inside frozen() a connection attempt times out instead of being refused."""
    import psycopg

    with throwaway_postgres.frozen(), pytest.raises(psycopg.OperationalError, match="timeout"):
        psycopg.connect(throwaway_postgres.url, connect_timeout=2).close()
    assert [(1,)] == throwaway_postgres.execute("SELECT 1")


def test_postgres_close_removes_everything() -> None:
    """close() stops the postmaster and removes the folder; a closed server cannot restart."""
    require_throwaway_postgres()
    server = ThrowawayPostgres()
    server.start()
    pid, root = server.pid, server.root
    assert pid is not None
    server.close()
    assert (True, False) == (not pid_alive(pid), root.exists())
    with pytest.raises(ServerError, match="closed"):
        server.start()


def test_redis_restart_empty_unless_persistent(throwaway_redis: ThrowawayRedis) -> None:
    """A restart forgets the data by default; a persistent server keeps it even when killed."""
    assert b"+OK" == _redis(throwaway_redis.port, b"SET k v")[:3]
    before = throwaway_redis.pid
    throwaway_redis.restart()
    assert before != throwaway_redis.pid
    assert b"$-1" == _redis(throwaway_redis.port, b"GET k")[:3]
    with ThrowawayRedis(persistent=True) as kept:
        _redis(kept.port, b"SET k v")
        kept.restart("immediate")
        assert b"$1\r\nv" == _redis(kept.port, b"GET k")[:5]


def test_redis_refusing_and_frozen(throwaway_redis: ThrowawayRedis) -> None:
    """refusing() refuses connections, frozen() leaves them unanswered; both recover."""
    with throwaway_redis.refusing(), pytest.raises(ConnectionRefusedError):
        _redis(throwaway_redis.port, b"PING")
    with throwaway_redis.frozen(), pytest.raises(TimeoutError):
        _redis(throwaway_redis.port, b"PING", timeout=1.0)
    assert b"+PONG" == _redis(throwaway_redis.port, b"PING")[:5]


_ORPHAN = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.servers import ThrowawayPostgres, ThrowawayRedis
server = ThrowawayPostgres() if sys.argv[2] == "postgres" else ThrowawayRedis()
server.start()
print(server.pid, server.root, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_killed_test_process_leaves_no_server(kind: str) -> None:
    """When the process that started a server is SIGKILLed, the watchdog removes the server."""
    (require_throwaway_postgres if kind == "postgres" else require_throwaway_redis)()
    with subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(REPO), kind], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            pid_text, root_text = child.stdout.readline().split()
        finally:
            child.send_signal(signal.SIGKILL)
    pid, root = int(pid_text), Path(root_text)
    assert _wait_for(lambda: not pid_alive(pid) and not root.exists())
