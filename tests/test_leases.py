"""The heartbeat of a process's leases: started once, stopped cleanly."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from seawall import Seawall
from seawall.runtime import leases as leases_module
from seawall.runtime.leases import Leases


class _SlowStart(threading.Thread):
    """A thread whose start takes a while, as it may on a loaded machine."""

    def start(self) -> None:
        time.sleep(0.3)
        super().start()


def test_close_waits_for_a_heartbeat_another_thread_is_starting(
    app: Seawall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() while another thread is starting the heartbeat joins it instead of raising."""
    monkeypatch.setattr(leases_module.threading, "Thread", _SlowStart)
    leases = Leases(app.runtime.store, 2.0)
    starter = threading.Thread(target=leases.start)
    starter.start()
    deadline = time.monotonic() + 5
    while leases._thread is None and time.monotonic() < deadline:
        time.sleep(0.001)
    heartbeat: Any = leases._thread
    assert isinstance(heartbeat, _SlowStart)
    assert not heartbeat.is_alive()  # close() below comes while it is being started

    leases.close()

    starter.join(5)
    assert not heartbeat.is_alive()
