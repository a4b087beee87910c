"""Real services the tests talk to: PostgreSQL, Redis, RabbitMQ and Chromium.

Tests never mock these. On a user's machine without one, the tests that need it skip with a
one-line reason; under ``CI=true`` a missing service fails the test instead, because CI
provisions every service (``.ci/run``) and a silent skip would hide a broken machine.

Use the fixtures (``postgres_url``, ``redis_url``, ``rabbitmq_url``, ``chromium_path``) or
call :func:`require` directly.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Final

import pytest

POSTGRES_URL: Final = os.environ.get(
    "SEAWALL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL: Final = os.environ.get("SEAWALL_TEST_REDIS", "redis://127.0.0.1:6379/0")
RABBITMQ_URL: Final = os.environ.get("SEAWALL_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
CHROMIUM_PATH: Final = os.environ.get("SEAWALL_TEST_CHROMIUM", "/usr/bin/chromium")

_PORTS: Final = {"postgresql": 5432, "redis": 6379, "rabbitmq": 5672}


def in_ci() -> bool:
    """Return whether the tests run in CI, where every service must be present."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Fail under CI, skip elsewhere, with a one-line ``reason``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run must provide it)", pytrace=False)
    pytest.skip(reason)


def reachable(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Skip (or, under CI, fail) unless ``service`` listens on its port on 127.0.0.1."""
    port = _PORTS[service]
    if not reachable(port):
        missing(f"{service} is not running on 127.0.0.1:{port}")


def require_chromium() -> str:
    """Return Chromium's path, or skip (fail under CI) when it is not installed."""
    found = CHROMIUM_PATH if os.access(CHROMIUM_PATH, os.X_OK) else shutil.which("chromium")
    if found is None:
        missing("chromium is not installed (apt-get install chromium)")
    assert found is not None
    return found


@pytest.fixture
def postgres_url() -> str:
    """The URL of the test PostgreSQL database (skips or fails when it is down)."""
    require("postgresql")
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    """The URL of the test Redis (skips or fails when it is down)."""
    require("redis")
    return REDIS_URL


@pytest.fixture
def rabbitmq_url() -> str:
    """The URL of the test RabbitMQ (skips or fails when it is down)."""
    require("rabbitmq")
    return RABBITMQ_URL


@pytest.fixture
def chromium_path() -> str:
    """Chromium's executable (skips or fails when it is not installed)."""
    return require_chromium()
