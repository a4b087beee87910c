"""Refused artifacts: each fails the run with a typed error naming it, and nothing is published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seawall import Context, ErrorClass, RunResult, RunStatus, Seawall
from seawall.artifacts import check_name, read
from seawall.errors import (
    ArtifactError,
    ArtifactNameError,
    ArtifactTooLargeError,
    DestinationError,
)
from seawall.testing import no_waits

LONG_NAME = "/".join(["a" * 200] * 6)  # 1205 bytes, every part within 255

BAD_NAMES = [
    pytest.param("../escape.txt", id="parent"),
    pytest.param("a/../../b", id="parent-inside"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("C:/x", id="drive"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("with\x00nul", id="nul"),
    pytest.param("tab\there", id="control"),
    pytest.param("a//b", id="double-slash"),
    pytest.param("trailing/", id="trailing-slash"),
    pytest.param("./x", id="dot"),
    pytest.param("", id="empty"),
    pytest.param(".seawall-manifest.json", id="manifest"),
    pytest.param(LONG_NAME, id="over-1024-bytes"),
    pytest.param("p" * 256, id="part-over-255-bytes"),
]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The artifact destination folder."""
    return tmp_path / "out"


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """The staging root."""
    return tmp_path / "staging"


@pytest.fixture
def art_app(ledger_url: str, out: Path, staging: Path) -> Iterator[Seawall]:
    """An app with a local destination and a 1000-byte artifact limit; retries do not sleep."""
    with (
        no_waits(),
        Seawall(ledger_url, artifacts=out, staging=staging, max_artifact_bytes=1000) as instance,
    ):
        yield instance


def assert_nothing_visible(app: Seawall, result: RunResult, out: Path, staging: Path) -> None:
    """The failed run published nothing, recorded no artifact and left no staging."""
    assert RunStatus.FAILED == result.status
    assert [] == app.ledger.artifacts(result.run_id)
    assert not (out / result.run_id).exists()
    assert not (staging / result.run_id).exists()
    with pytest.raises(ArtifactError):
        read(result.run_id, out)


def run_writer(app: Seawall, name: Any) -> tuple[RunResult, list[BaseException]]:
    """Run an agent that stages one artifact under ``name``; return the result and its error."""
    raised: list[BaseException] = []

    @app.agent
    def writer(ctx: Context) -> str:
        try:
            ctx.artifacts.write_text(name, "payload")
        except Exception as exc:
            raised.append(exc)
            raise
        return "done"

    return app.run(writer), raised


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_name_raises_artifact_name_error_at_write(
    art_app: Seawall, out: Path, staging: Path, name: str
) -> None:
    """An unsafe name raises ArtifactNameError naming it in the agent; the run publishes nothing."""
    result, raised = run_writer(art_app, name)
    assert [ArtifactNameError] == [type(e) for e in raised]
    assert name == raised[0].artifact
    assert "ArtifactNameError" == result.error["type"]
    assert name == result.error["artifact"]
    assert 1 == len(result.attempts)
    assert_nothing_visible(art_app, result, out, staging)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_name_refuses_the_same_names(name: str) -> None:
    """check_name, the pure rule behind ctx.artifacts, refuses every unsafe name."""
    with pytest.raises(ArtifactNameError):
        check_name(name)


@pytest.mark.parametrize("name", ["a.txt", "reports/2026/q3.md", "log/12:30.txt", "é/ü.json"])
def test_check_name_accepts_safe_relative_paths(name: str) -> None:
    """check_name returns a safe relative POSIX path unchanged."""
    assert name == check_name(name)


@pytest.mark.parametrize("name", [42, b"bytes.txt", Path("a.txt")], ids=["int", "bytes", "path"])
def test_non_string_name_raises_artifact_name_error(
    art_app: Seawall, out: Path, staging: Path, name: object
) -> None:
    """A name that is not a str raises ArtifactNameError naming its repr; nothing is published."""
    result, raised = run_writer(art_app, name)
    assert [ArtifactNameError] == [type(e) for e in raised]
    assert repr(name) == raised[0].artifact
    assert repr(name) == result.error["artifact"]
    assert_nothing_visible(art_app, result, out, staging)


def test_case_collision_is_refused_at_write_time(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """Staging report.md after Report.md raises ArtifactNameError at once; nothing is published."""
    seen: dict[str, Any] = {}

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("Report.md", "one")
        try:
            ctx.artifacts.write_text("report.md", "two")
        except ArtifactNameError as exc:
            seen["error"] = exc
            seen["staged"] = ctx.artifacts.list()
            raise
        return "done"

    result = art_app.run(writer)
    assert "report.md" == seen["error"].artifact
    assert ["Report.md"] == seen["staged"]
    assert "ArtifactNameError" == result.error["type"]
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert_nothing_visible(art_app, result, out, staging)


def test_case_collision_of_folders_is_refused_at_write_time(art_app: Seawall) -> None:
    """Names whose folders differ only by case collide too."""
    seen: list[ArtifactNameError] = []

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("Docs/a.md", "one")
        try:
            ctx.artifacts.path("docs/a.md")
        except ArtifactNameError as exc:
            seen.append(exc)
            raise
        return "done"

    result = art_app.run(writer)
    assert ["docs/a.md"] == [e.artifact for e in seen]
    assert "ArtifactNameError" == result.error["type"]


def test_rewriting_the_same_name_is_not_a_collision(art_app: Seawall, out: Path) -> None:
    """Writing one name twice replaces it; only differing case is refused."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("Report.md", "one")
        ctx.artifacts.write_text("Report.md", "two")
        return "done"

    result = art_app.run(writer)
    assert RunStatus.SUCCEEDED == result.status
    assert "two" == read(result.run_id, out).read_text("Report.md")


def test_case_collision_made_on_disk_is_caught_at_seal(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """Files differing only by case, written straight into the folder, fail the commit."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.path("Report.md").write_text("one")
        (ctx.artifacts.dir / "report.md").write_text("two")
        return "done"

    result = art_app.run(writer)
    assert "ArtifactNameError" == result.error["type"]
    assert "report.md" == result.error["artifact"]
    assert "'Report.md'" in result.error["message"]
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert_nothing_visible(art_app, result, out, staging)


def test_unsafe_name_made_on_disk_is_caught_at_seal(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """A file whose name has a control character, created on disk, fails the commit."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("ok.txt", "fine")
        (ctx.artifacts.dir / "bad\x01name").write_text("x")
        return "done"

    result = art_app.run(writer)
    assert "ArtifactNameError" == result.error["type"]
    assert "bad\x01name" == result.error["artifact"]
    assert_nothing_visible(art_app, result, out, staging)


def test_symlink_in_staging_fails_the_commit(
    art_app: Seawall, out: Path, staging: Path, tmp_path: Path
) -> None:
    """A symlink staged by hand fails the commit with ArtifactError (partial_write); its target is untouched."""
    outside = tmp_path / "secret.txt"
    outside.write_text("do not publish")

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("real.txt", "real")
        (ctx.artifacts.dir / "link.txt").symlink_to(outside)
        return "done"

    result = art_app.run(writer)
    assert "ArtifactError" == result.error["type"]
    assert "link.txt" == result.error["artifact"]
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert 1 == len(result.attempts)
    assert_nothing_visible(art_app, result, out, staging)
    assert "do not publish" == outside.read_text()


def test_symlink_to_a_folder_fails_the_commit(
    art_app: Seawall, out: Path, staging: Path, tmp_path: Path
) -> None:
    """A symlink to a folder outside staging is refused too."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "inner.txt").write_text("inner")

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("real.txt", "real")
        (ctx.artifacts.dir / "linked").symlink_to(tmp_path / "elsewhere")
        return "done"

    result = art_app.run(writer)
    assert "ArtifactError" == result.error["type"]
    assert "linked" == result.error["artifact"]
    assert_nothing_visible(art_app, result, out, staging)
    assert "inner" == (tmp_path / "elsewhere" / "inner.txt").read_text()


def test_write_bytes_over_the_limit_raises_at_once(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """write_bytes over max_artifact_bytes raises ArtifactTooLargeError before writing anything."""
    seen: dict[str, Any] = {}

    @art_app.agent
    def writer(ctx: Context) -> str:
        try:
            ctx.artifacts.write_bytes("big.bin", b"x" * 1001)
        except ArtifactTooLargeError as exc:
            seen["error"] = exc
            seen["staged"] = ctx.artifacts.list()
            raise
        return "done"

    result = art_app.run(writer)
    error = seen["error"]
    assert ("big.bin", 1001, 1000) == (error.artifact, error.size, error.limit)
    assert [] == seen["staged"]
    assert "ArtifactTooLargeError" == result.error["type"]
    assert "big.bin" == result.error["artifact"]
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert_nothing_visible(art_app, result, out, staging)


def test_artifact_of_exactly_the_limit_is_accepted(art_app: Seawall, out: Path) -> None:
    """An artifact of exactly max_artifact_bytes is published."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_bytes("edge.bin", b"x" * 1000)
        return "done"

    result = art_app.run(writer)
    assert RunStatus.SUCCEEDED == result.status
    assert 1000 == len(read(result.run_id, out).read_bytes("edge.bin"))


def test_file_over_the_limit_written_at_its_path_is_caught_at_seal(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """A file over the limit written straight to path() fails the commit with ArtifactTooLargeError."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("small.txt", "ok")
        ctx.artifacts.path("big.bin").write_bytes(b"x" * 1001)
        return "done"

    result = art_app.run(writer)
    assert "ArtifactTooLargeError" == result.error["type"]
    assert "big.bin" == result.error["artifact"]
    assert (1001, 1000) == (result.error["size"], result.error["limit"])
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert_nothing_visible(art_app, result, out, staging)


def test_file_over_the_limit_streamed_through_open_is_caught_at_seal(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """A file grown past the limit through open("wb") fails the commit."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        with ctx.artifacts.open("stream.bin", "wb") as handle:
            for _ in range(11):
                handle.write(b"y" * 100)
        return "done"

    result = art_app.run(writer)
    assert "ArtifactTooLargeError" == result.error["type"]
    assert "stream.bin" == result.error["artifact"]
    assert_nothing_visible(art_app, result, out, staging)


def test_unwritable_destination_fails_the_run_with_destination_error(
    ledger_url: str, staging: Path
) -> None:
    """A destination that cannot be created fails the run with DestinationError; nothing is visible."""
    target = "/proc/seawall-no/out"
    with no_waits(), Seawall(ledger_url, artifacts=target, staging=staging) as app:

        @app.agent
        def writer(ctx: Context) -> str:
            ctx.artifacts.write_text("a.txt", "a")
            return "done"

        result = app.run(writer)
        assert RunStatus.FAILED == result.status
        assert "DestinationError" == result.error["type"]
        assert target == result.error["destination"]
        assert ErrorClass.PARTIAL_WRITE == result.error_class
        assert 1 == len(result.attempts)
        assert [] == app.ledger.artifacts(result.run_id)
        assert app.ledger.run(result.run_id).phase is None
        assert not (staging / result.run_id).exists()
        assert not Path(target).exists()
        with pytest.raises(ArtifactError):
            read(result.run_id, target)


def test_destination_error_is_an_artifact_error() -> None:
    """DestinationError, ArtifactNameError and ArtifactTooLargeError are ArtifactErrors."""
    assert issubclass(DestinationError, ArtifactError)
    assert issubclass(ArtifactNameError, ArtifactError)
    assert issubclass(ArtifactTooLargeError, ArtifactError)
