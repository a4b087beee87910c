"""Real Celery worker processes for the tests: started, watched, SIGKILLed, always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from celery import Celery

from seawall import Seawall
from seawall.integrations.celery import TAKEOVER_SUFFIX

from .celery_worker import VISIBILITY, build

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integrations.celery_worker:celery_app"
READY_TIMEOUT = 45.0


class Fleet:
    """Celery workers sharing one ledger, broker and queue with the test process's app.

    Args:
        tmp: A private folder (worker logs, the side-effect log, hold files).
        ledger: The ledger URL every process uses.
        broker: The broker URL.
        visibility: The broker's visibility timeout (``None``: Seawall's default, an hour).
    """

    def __init__(
        self, tmp: Path, ledger: str, broker: str, visibility: float | None = VISIBILITY
    ) -> None:
        self.tmp = tmp
        self.ledger = ledger
        self.broker = broker
        self.visibility = visibility
        tag = uuid.uuid4().hex[:10]
        self.queue = f"seawall-test-{tag}"
        self.prefix = f"seawall-test-{tag}:"
        self.effects = tmp / "effects.log"
        self.effects.touch()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.celery_app, self.app = build(
            ledger, broker, self.queue, self.prefix, self.effects, visibility
        )

    def env(self) -> dict[str, str]:
        """The environment of a worker process."""
        env = dict(os.environ)
        env.update(
            SEAWALL_CELERY_LEDGER=self.ledger,
            SEAWALL_CELERY_BROKER=self.broker,
            SEAWALL_CELERY_QUEUE=self.queue,
            SEAWALL_CELERY_PREFIX=self.prefix,
            SEAWALL_CELERY_EFFECTS=str(self.effects),
            SEAWALL_CELERY_VISIBILITY="" if self.visibility is None else str(self.visibility),
            # The workers import the tests' seawall (a PYTHONPATH given to them comes first).
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        )
        return env

    def log(self, name: str) -> Path:
        """The log file of worker ``name``."""
        return self.tmp / f"worker-{name}.log"

    def start(self, *names: str) -> None:
        """Start workers ``names`` (one prefork pool process each) and wait until they consume."""
        for name in names:
            self._launch(name)
        deadline = time.monotonic() + READY_TIMEOUT
        for name in names:
            log, proc = self.log(name), self.workers[name]
            while b" ready." not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.kill(name)
                    text = log.read_text(errors="replace")[-3000:]
                    raise AssertionError(f"worker {name} did not start:\n{text}")
                time.sleep(0.05)

    def _launch(self, name: str) -> None:
        with self.log(name).open("ab") as out:
            self.workers[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    APP,
                    "worker",
                    "-Q",
                    self.queue,
                    "-n",
                    f"{name}-{self.queue}@%h",
                    "-c",
                    "1",
                    "-P",
                    "prefork",
                    "-l",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """SIGKILL worker ``name`` with its pool processes, and reap it."""
        proc = self.workers.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def owner_of(self, pid: int) -> str:
        """The name of the worker whose process group holds ``pid``."""
        group = os.getpgid(pid)
        return next(name for name, proc in self.workers.items() if proc.pid == group)

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        """Wait until a worker's log holds ``text``."""
        deadline = time.monotonic() + timeout
        while not any(
            text in log.read_text(errors="replace") for log in self.tmp.glob("worker-*.log")
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker logged {text!r} within {timeout} s")
            time.sleep(0.05)

    def effect_keys(self) -> list[str]:
        """The idempotency keys of every side effect logged, in order (one per effect)."""
        return [line.split(":", 3)[3] for line in self.effects.read_text().splitlines()]

    def effects_of(self, order: str) -> list[str]:
        """The side effects logged for ``order``, in order (``kind``)."""
        return [
            line.split(":")[0]
            for line in self.effects.read_text().splitlines()
            if line.split(":")[1] == order
        ]

    def close(self) -> None:
        """Kill every worker, close the test process's apps and remove the broker's data."""
        for name in list(self.workers):
            self.kill(name)
        self.app.close()
        purge(self.celery_app, self.queue, self.prefix)
        self.celery_app.close()


def purge(celery_app: Celery, queue: str, prefix: str) -> None:
    """Delete the test's queues (RabbitMQ: the runs' and the takeover queue) or keys (Redis)."""
    url = str(celery_app.conf.broker_url)
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        return
    with celery_app.connection_for_write() as conn:
        for name in (queue, queue + TAKEOVER_SUFFIX):
            channel = conn.channel()
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
                channel.close()


def wait_for(path: Path, timeout: float = 30.0) -> None:
    """Wait until ``path`` exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.02)


__all__ = ["Fleet", "Seawall", "wait_for"]
