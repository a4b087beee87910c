"""``make screenshots``: the dashboard's pages on the 3 a.m. scene, light and dark, into docs/img.

Run with ``python -m tests.dashboard.screenshots [FOLDER]`` (default ``docs/img``); needs the
dashboard extra, Playwright and Debian's Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Final

from seawall import Seawall
from seawall.testing import no_waits
from tests.dashboard.browser import chromium, log_in, serving
from tests.dashboard.conftest import TOKEN, dashboard
from tests.dashboard.scene import TRACE_URL, build
from tests.services import CHROMIUM_PATH

VIEWPORT: Final = {"width": 1280, "height": 900}


def _chromium() -> str:
    found = CHROMIUM_PATH if Path(CHROMIUM_PATH).exists() else shutil.which("chromium")
    if found is None:
        raise SystemExit("make screenshots needs Chromium: apt-get install chromium")
    return found


def main(argv: list[str] | None = None) -> None:
    """Seed the scene, serve it, and save each page in both colour schemes."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "docs/img")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seawall-shots-") as tmp, no_waits():
        app = Seawall(f"sqlite:///{Path(tmp) / 'ledger.db'}", staging=Path(tmp) / "staging")
        try:
            scene = build(app)
            pages = {
                "overview": "/",
                "run": f"/runs/{scene.failed}",
                "drift": "/drift",
                "handoffs": "/handoffs",
            }
            web = dashboard(app, trace_url=TRACE_URL)
            with serving(web) as url, chromium(_chromium()) as browser:
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport=VIEWPORT, base_url=url, color_scheme=scheme
                    )
                    page = context.new_page()
                    log_in(page, TOKEN)
                    for name, path in pages.items():
                        page.goto(path)
                        target = folder / f"{name}-{scheme}.png"
                        page.screenshot(path=target)
                        print(f"{target}")
                    context.close()
        finally:
            app.close()


if __name__ == "__main__":
    main()
