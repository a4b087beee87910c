"""Serving the dashboard on a real port and driving Debian's Chromium with Playwright.

Shared by the browser tests and ``make screenshots``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

HOSTS: Final = ("attacker.example", "evil.example")
"""Names Chromium resolves to 127.0.0.1 here (a DNS-rebinding attacker's, another site's)."""
CHROMIUM_FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    # This closed network refuses Chromium's own connections: never make them.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=" + ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS),
)


def free_port() -> int:
    """A TCP port nothing listens on, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(asgi: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yield its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium(executable: str) -> Iterator[Any]:
    """A headless Chromium (Debian's, through Playwright)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, token: str) -> None:
    """Log in through the form (the page's context keeps the session)."""
    page.goto("/login")
    page.fill("input[name=token]", token)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=Logged in")


def overflow(page: Any) -> int:
    """Pixels the page is wider than its viewport (0: nothing sticks out sideways)."""
    width: int = page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return max(width, 0)
