"""A new user's first hour, for real: a fresh clone, `make demo`, every hint, every README command.

The repository's HEAD is cloned into a temporary folder and set up exactly as the README says
(`make demo`, which installs the core only). Then every command the demo suggests is pasted into
a shell in that folder, and the README's Quickstart and the commands after it are run on the
same core install: each exits 0, or, where it needs an extra, fails naming it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PLAN = """
seed = 3

[[fault]]
target = "tool:search"
kind = "exception"
on_call = 1
"""


def shell(command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with bash in ``cwd``, as a user would type it (80-column terminal)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "SEAWALL_LEDGER", "PYTHONPATH", "MFLAGS")
        and not key.startswith(("PYTEST", "MAKE"))
    }
    env.update({"COLUMNS": "80", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def suggested(output: str) -> list[str]:
    """The commands the demo printed after "Next, try", continuation lines joined."""
    tail = output.split("Next, try (from this folder):\n", 1)[1].replace("\\\n", " ")
    return [
        line.strip()
        for line in tail.splitlines()
        if line.startswith("  ") and not line.strip().startswith("#")
    ]


def readme_commands() -> tuple[str, list[str]]:
    """The README's Quickstart code and the `seawall` commands that follow it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = re.search(r"## Quickstart\n.*?```python\n(.*?)```", text, re.DOTALL)
    assert quickstart is not None
    after = text[quickstart.end() :]
    block = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert block is not None
    return quickstart.group(1), [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this repository's HEAD."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed to set up a fresh clone")
    inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse"], check=False, capture_output=True)
    if inside.returncode:
        pytest.skip("not a git checkout")
    folder = tmp_path_factory.mktemp("first-hour") / "seawall"
    subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(folder)], check=True, capture_output=True
    )
    return folder


@pytest.fixture(scope="module")
def demo(clone: Path) -> str:
    """`make demo` in the clone: what it printed."""
    done = shell(f"make demo PYTHON={sys.executable}", clone)
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def test_make_demo_installs_the_core_only(clone: Path, demo: str) -> None:
    """After `make demo`, .venv holds no dev or optional dependency."""
    listed = shell(".venv/bin/python -m pip list --format=freeze", clone)
    installed = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "seawall" in installed
    assert set() == installed & {"pytest", "playwright", "scipy", "psycopg", "openai", "ruff"}
    assert "Invariants held in every run" in demo


def test_every_hint_of_the_demo_works_when_pasted(clone: Path, demo: str) -> None:
    """Each command `make demo` suggests exits 0 in the same folder and shell."""
    commands = suggested(demo)
    assert 5 == len(commands)
    for command in commands:
        done = shell(command, clone)
        assert 0 == done.returncode, (command, done.stdout, done.stderr)


def test_readme_quickstart_and_commands_work_on_the_core_install(clone: Path, demo: str) -> None:
    """The Quickstart runs; each README command after it exits 0 or names the extra it needs."""
    quickstart, commands = readme_commands()
    (clone / "quick.py").write_text(quickstart, encoding="utf-8")
    (clone / "plan.toml").write_text(PLAN, encoding="utf-8")
    ran = shell(". .venv/bin/activate && python quick.py", clone)
    assert 0 == ran.returncode, ran.stderr
    run_id = ran.stdout.split()[-1]
    for line in commands:
        command, _, comment = line.partition("#")
        command = command.strip().replace("RUN_ID", run_id)
        extra = re.search(r"pip install '(seawall\[\w+\])'", comment)
        if command.startswith(("seawall dashboard", "seawall metrics")) and extra is None:
            pytest.fail(f"README: {line!r} needs an extra the line does not name")
        done = shell(f". .venv/bin/activate && {command}", clone, timeout=300)
        if extra is not None:
            assert 0 != done.returncode, command
            assert f"pip install '{extra.group(1)}'" in done.stdout + done.stderr, command
        else:
            assert 0 == done.returncode, (command, done.stdout, done.stderr)
