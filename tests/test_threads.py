"""The threads sync tools and ledger calls hop to: an executor's loop without its futures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from seawall.runtime.threads import Threads

if TYPE_CHECKING:
    from pathlib import Path


def _drain(pool: Threads) -> None:
    """Return once every call given to ``pool`` so far has ended."""
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(timeout=10)


def test_calls_run_in_order_on_threads_named_for_the_pool() -> None:
    """One thread busy at a time: the calls run in the order given, on the pool's threads."""
    pool = Threads(4, "pool-test")
    seen: list[tuple[int, str]] = []
    try:
        for i in range(20):
            pool.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
            _drain(pool)
    finally:
        pool.shutdown()
    assert list(range(20)) == [i for i, _ in seen]
    assert all(name.startswith("pool-test_") for _, name in seen)


def test_a_thread_is_started_only_when_none_is_idle() -> None:
    """Calls made one after another reuse one thread; calls that wait together get more."""
    pool = Threads(3, "pool-test")
    try:
        for _ in range(10):
            _drain(pool)
        assert len({t.name for t in threading.enumerate() if t.name.startswith("pool-test")}) <= 2
        together = threading.Barrier(3)
        names: list[str] = []

        def meet() -> None:
            names.append(threading.current_thread().name)
            together.wait(timeout=10)

        for _ in range(3):
            pool.submit(meet)
        _drain(pool)
        assert 3 == len(set(names))
    finally:
        pool.shutdown()


def test_never_more_threads_than_its_size() -> None:
    """Forty calls waiting at once on a pool of two run two at a time."""
    pool = Threads(2, "pool-small")
    release = threading.Event()
    running: list[str] = []
    started = threading.Semaphore(0)

    def hold() -> None:
        running.append(threading.current_thread().name)
        started.release()
        release.wait(timeout=10)

    try:
        for _ in range(40):
            pool.submit(hold)
        for _ in range(2):
            assert started.acquire(timeout=10)
        assert not started.acquire(timeout=0.2)  # the third call waits for a thread
        assert 2 == len({t for t in threading.enumerate() if t.name.startswith("pool-small")})
        release.set()
    finally:
        release.set()
        pool.shutdown()
    assert 40 == len(running)
    assert 2 == len(set(running))


def test_a_call_after_shutdown_is_refused() -> None:
    pool = Threads(1, "pool-test")
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(print)


def test_shutdown_runs_what_was_queued_or_drops_it_when_told() -> None:
    """Calls queued behind a busy thread run before shutdown(wait=True) returns, or are dropped."""
    for drop in (False, True):
        pool = Threads(1, "pool-test")
        release = threading.Event()
        ran: list[int] = []
        pool.submit(release.wait, 10)
        for i in range(5):
            pool.submit(ran.append, i)
        stopping = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": drop})
        stopping.start()
        release.set()
        stopping.join(timeout=10)
        assert not stopping.is_alive()
        assert ([] if drop else [0, 1, 2, 3, 4]) == ran


def test_a_call_that_raises_is_logged_and_its_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = Threads(1, "pool-test")
    names: list[str] = []

    def fails() -> None:
        names.append(threading.current_thread().name)
        raise KeyError("gone")

    try:
        with caplog.at_level(logging.ERROR, logger="seawall.runtime.threads"):
            pool.submit(fails)
            pool.submit(lambda: names.append(threading.current_thread().name))
            _drain(pool)
    finally:
        pool.shutdown()
    assert 2 == len(names)
    assert names[0] == names[1]
    assert any("KeyError" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_calls_on_threads_of_its_own() -> None:
    """The parent's threads are not in a forked child: the child's first call starts its own."""
    pool = Threads(2, "pool-fork")
    try:
        _drain(pool)  # the parent has a thread now
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                done = threading.Event()
                pool.submit(lambda: os.write(write, threading.current_thread().name.encode()))
                pool.submit(done.set)
                os._exit(0 if done.wait(timeout=10) else 3)
            finally:
                os._exit(4)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        name = os.read(read, 100).decode()
        os.close(read)
    finally:
        pool.shutdown()
    assert 0 == os.waitstatus_to_exitcode(status)
    assert name.startswith("pool-fork_")


def test_a_call_in_flight_ends_before_the_interpreter_exits(tmp_path: Path) -> None:
    """Daemon threads would be stopped mid-call at exit: the pool lets them finish."""
    out = tmp_path / "written"
    script = f"""
import threading, time
from seawall.runtime.threads import Threads
started = threading.Event()
def slow():
    started.set()
    time.sleep(0.5)
    open({str(out)!r}, "w").write("finished")
pool = Threads(1, "exit-test")
pool.submit(slow)
pool.submit(lambda: open({str(out)!r}, "a").write(" and the queued call"))
started.wait(10)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == done.returncode, done.stderr
    assert "finished and the queued call" == out.read_text()


def test_a_sync_agent_runs_in_a_fresh_context_each_time(tmp_path: Path) -> None:
    """A context variable a sync agent sets is not seen by the next run on its thread."""
    import contextvars

    from seawall import Seawall

    mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")
    seen: list[tuple[str, str]] = []
    with Seawall(f"sqlite:///{tmp_path / 'l.db'}", max_threads=1) as app:

        @app.agent(name="marks")
        def marks(ctx: object, label: str) -> str:
            seen.append((mark.get(), threading.current_thread().name))
            mark.set(label)
            return label

        for label in ("first", "second"):
            app.run("marks", label=label).raise_for_status()
    assert ["unset", "unset"] == [value for value, _ in seen]
    assert seen[0][1] == seen[1][1]  # the same thread both times
