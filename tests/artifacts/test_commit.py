"""The commit of staged artifacts through real runs: local folders, fsspec, retries, reading back."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from seawall import (
    AsyncContext,
    Context,
    ErrorClass,
    Retry,
    RetryableError,
    RunStatus,
    Seawall,
    _faults,
    _payload,
)
from seawall.artifacts import MANIFEST_NAME, FsspecDestination, LocalDestination, Manifest, read
from seawall.errors import ArtifactError, ArtifactIntegrityError
from seawall.runtime.settle import output_hash_with
from seawall.testing import no_waits

LEDGERS = ("sqlite", "postgres")  # the same end-to-end tests on both ledgers

REPORT = {
    "summary.md": b"# Revenue\n\nUp 4%.\n",
    "figures/q3.json": b'{\n  "revenue": 104\n}\n',
    "figures/raw.bin": bytes(range(256)),
    "notes.txt": b"checked\n",
}


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
    """An app with a local destination; retries do not sleep."""
    with no_waits(), Seawall(ledger_url, artifacts=out, staging=staging) as instance:
        yield instance


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh fsspec memory:// destination, removed afterwards."""
    bucket = uuid.uuid4().hex
    yield f"memory://{bucket}/out"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


@pytest.fixture
def memory_app(ledger_url: str, memory_url: str, staging: Path) -> Iterator[Seawall]:
    """An app publishing to the memory:// destination."""
    with no_waits(), Seawall(ledger_url, artifacts=memory_url, staging=staging) as instance:
        yield instance


@pytest.fixture
def fault_hooks() -> Iterator[None]:
    """Remove any fault hook a test installs."""
    yield
    _faults.clear()


def register_reporter(app: Seawall) -> Any:
    """Register an agent staging REPORT through each writing method; it returns "done"."""

    @app.agent
    def reporter(ctx: Context) -> str:
        ctx.artifacts.write_bytes("summary.md", REPORT["summary.md"])
        ctx.artifacts.write_json("figures/q3.json", {"revenue": 104})
        ctx.artifacts.path("figures/raw.bin").write_bytes(REPORT["figures/raw.bin"])
        with ctx.artifacts.open("notes.txt", "w") as notes:
            notes.write("checked\n")
        return "done"

    return reporter


def bare_hash(app: Seawall, output: Any) -> str:
    """The output hash a run with this output and no artifacts records."""
    return _payload.digest(app.runtime.codec.dumps(output, "output"))


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by POSIX relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# -- local destination -------------------------------------------------------------------------


def test_success_publishes_every_artifact_and_the_manifest(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """A successful run's artifacts and manifest appear under <out>/<run_id>/, staging is gone."""
    result = art_app.run(register_reporter(art_app))
    assert RunStatus.SUCCEEDED == result.status
    published = files_under(out / result.run_id)
    manifest = Manifest.from_json(published.pop(MANIFEST_NAME))
    assert REPORT == published
    assert sorted(REPORT) == [e.name for e in manifest.entries]
    assert result.run_id == manifest.run_id
    assert not (staging / result.run_id).exists()


def test_read_returns_names_and_verified_bytes(art_app: Seawall, out: Path) -> None:
    """artifacts.read gives the committed names and each file's bytes."""
    result = art_app.run(register_reporter(art_app))
    committed = read(result.run_id, out)
    assert sorted(REPORT) == committed.names
    assert REPORT == {name: committed.read_bytes(name) for name in committed.names}
    assert "checked\n" == committed.read_text("notes.txt")


def test_read_accepts_a_destination_object(art_app: Seawall, out: Path) -> None:
    """artifacts.read takes a LocalDestination as well as a path."""
    result = art_app.run(register_reporter(art_app))
    assert sorted(REPORT) == read(result.run_id, LocalDestination(out)).names


def test_manifest_sizes_and_hashes_match_the_bytes(art_app: Seawall, out: Path) -> None:
    """Each manifest entry's size and sha256 are those of the published bytes."""
    result = art_app.run(register_reporter(art_app))
    entries = read(result.run_id, out).manifest.entries
    expected = [(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in sorted(REPORT.items())]
    assert expected == [(e.name, e.size, e.sha256) for e in entries]


def test_ledger_records_each_artifact(art_app: Seawall) -> None:
    """artifacts_of lists name, size, sha256 and a committed_at within the run's lifetime."""
    result = art_app.run(register_reporter(art_app))
    run = art_app.ledger.run(result.run_id)
    records = art_app.ledger.artifacts(result.run_id)
    expected = [(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in sorted(REPORT.items())]
    assert expected == [(r.name, r.size, r.sha256) for r in records]
    assert {result.run_id} == {r.run_id for r in records}
    assert run.end_time is not None
    for record in records:
        assert record.committed_at is not None
        assert run.start_time <= record.committed_at <= run.end_time


def test_output_hash_covers_the_manifest(art_app: Seawall, out: Path) -> None:
    """With artifacts, output_hash is output_hash_with(bare hash, manifest), not the bare hash."""
    result = art_app.run(register_reporter(art_app))
    manifest = read(result.run_id, out).manifest
    bare = bare_hash(art_app, "done")
    expected = output_hash_with(bare, manifest)
    assert expected == result.output_hash
    assert expected == art_app.ledger.run(result.run_id).output_hash
    assert bare != result.output_hash
    assert "done" == result.output


def test_output_hash_without_artifacts_is_the_bare_hash(art_app: Seawall) -> None:
    """A run that stages nothing records the plain hash of its output."""

    @art_app.agent
    def plain(ctx: Context) -> str:
        return "done"

    result = art_app.run(plain)
    assert bare_hash(art_app, "done") == result.output_hash


def test_output_hash_changes_with_artifact_content(art_app: Seawall, out: Path) -> None:
    """Two runs with the same output but different artifact bytes record different hashes."""

    @art_app.agent
    def writer(ctx: Context, text: str) -> str:
        ctx.artifacts.write_text("a.txt", text)
        return "same"

    first = art_app.run(writer, text="one")
    second = art_app.run(writer, text="two")
    assert first.output_hash != second.output_hash


def test_run_that_stages_nothing_publishes_nothing(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """A successful run with no artifacts creates no folder and records no artifact."""

    @art_app.agent
    def plain(ctx: Context) -> int:
        assert [] == ctx.artifacts.list()
        return 1

    result = art_app.run(plain)
    assert RunStatus.SUCCEEDED == result.status
    assert not (out / result.run_id).exists()
    assert [] == art_app.ledger.artifacts(result.run_id)
    assert not (staging / result.run_id).exists()


def test_read_of_a_run_without_manifest_raises(art_app: Seawall, out: Path) -> None:
    """artifacts.read of a run that committed nothing raises ArtifactError naming the run."""

    @art_app.agent
    def plain(ctx: Context) -> int:
        return 1

    run_id = art_app.run(plain).run_id
    with pytest.raises(ArtifactError) as caught:
        read(run_id, out)
    assert run_id == caught.value.run_id


def test_read_bytes_of_an_unknown_name_raises(art_app: Seawall, out: Path) -> None:
    """read_bytes of a name the manifest does not list raises ArtifactError naming it."""
    result = art_app.run(register_reporter(art_app))
    with pytest.raises(ArtifactError) as caught:
        read(result.run_id, out).read_bytes("missing.txt")
    assert "missing.txt" == caught.value.artifact


def test_tampered_local_file_fails_its_integrity_check(art_app: Seawall, out: Path) -> None:
    """A published file changed after the commit raises ArtifactIntegrityError on read."""
    result = art_app.run(register_reporter(art_app))
    (out / result.run_id / "notes.txt").write_bytes(b"changed\n")
    committed = read(result.run_id, out)
    with pytest.raises(ArtifactIntegrityError) as caught:
        committed.read_bytes("notes.txt")
    assert "notes.txt" == caught.value.artifact
    assert REPORT["summary.md"] == committed.read_bytes("summary.md")


def test_failing_run_discards_its_staging(art_app: Seawall, out: Path, staging: Path) -> None:
    """A run that fails after staging publishes nothing, is partial_write and leaves no staging."""

    @art_app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("draft.txt", "half")
        raise ValueError("the model refused")

    result = art_app.run(writer)
    assert RunStatus.FAILED == result.status
    assert ErrorClass.PARTIAL_WRITE == result.error_class
    assert [] == art_app.ledger.artifacts(result.run_id)
    assert not (out / result.run_id).exists()
    assert not (staging / result.run_id).exists()


def test_failing_run_without_staging_is_a_clean_abort(art_app: Seawall) -> None:
    """A run that fails before staging anything is clean_abort."""

    @art_app.agent
    def failer(ctx: Context) -> str:
        raise ValueError("nothing written")

    assert ErrorClass.CLEAN_ABORT == art_app.run(failer).error_class


def test_retry_starts_from_an_empty_staging_area(
    art_app: Seawall, out: Path, staging: Path
) -> None:
    """Attempt 2 sees no staged file and attempt 1's folder is gone; only attempt 2's files publish."""
    seen: dict[int, Any] = {}

    @art_app.agent(retry=Retry(attempts=2))
    def flaky(ctx: Context) -> str:
        seen[ctx.attempt] = (ctx.artifacts.list(), (staging / ctx.run_id / "1").exists())
        if ctx.attempt == 1:
            ctx.artifacts.write_text("draft.txt", "first try")
            ctx.artifacts.write_text("shared.txt", "from attempt 1")
            raise RetryableError("upstream hiccup")
        ctx.artifacts.write_text("final.txt", "second try")
        ctx.artifacts.write_text("shared.txt", "from attempt 2")
        return "done"

    result = art_app.run(flaky)
    assert RunStatus.SUCCEEDED == result.status
    assert 2 == len(result.attempts)
    assert ErrorClass.PARTIAL_WRITE == result.attempts[0].error_class
    assert ([], False) == seen[2]
    committed = read(result.run_id, out)
    assert ["final.txt", "shared.txt"] == committed.names
    assert "from attempt 2" == committed.read_text("shared.txt")
    assert ["final.txt", "shared.txt"] == [r.name for r in art_app.ledger.artifacts(result.run_id)]
    assert {".seawall-manifest.json", "final.txt", "shared.txt"} == set(
        files_under(out / result.run_id)
    )
    assert not (staging / result.run_id).exists()


def test_async_agent_can_stage_artifacts(art_app: Seawall, out: Path) -> None:
    """An async agent stages through ctx.artifacts and its files are published."""

    @art_app.agent
    async def writer(ctx: AsyncContext) -> str:
        ctx.artifacts.write_json("result.json", {"ok": True})
        return "done"

    result = art_app.run(writer)
    assert RunStatus.SUCCEEDED == result.status
    assert {"ok": True} == json.loads(read(result.run_id, out).read_bytes("result.json"))


def test_artifacts_without_a_destination_raise_configuration_error(app: Seawall) -> None:
    """ctx.artifacts on an app with no destination fails the run with ConfigurationError."""

    @app.agent
    def writer(ctx: Context) -> str:
        ctx.artifacts.write_text("a.txt", "a")
        return "done"

    result = app.run(writer)
    assert RunStatus.FAILED == result.status
    assert "ConfigurationError" == result.error["type"]
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert 1 == len(result.attempts)
    assert [] == app.ledger.artifacts(result.run_id)


def test_staging_for_is_none_without_a_destination(app: Seawall) -> None:
    """app.runtime.staging_for returns None on an app with no destination."""
    assert app.runtime.staging_for("run", 1) is None


def test_staging_for_uses_the_app_root_and_limit(art_app: Seawall, staging: Path) -> None:
    """app.runtime.staging_for gives the attempt's area under the app's staging root."""
    area = art_app.runtime.staging_for("run", 3)
    assert area is not None
    assert staging / "run" / "3" == area.dir
    assert art_app.runtime.max_artifact_bytes == area.max_bytes


# -- fsspec destination ------------------------------------------------------------------------


def test_memory_destination_publishes_files_and_manifest(
    memory_app: Seawall, memory_url: str, staging: Path
) -> None:
    """A memory:// destination holds every file and the manifest under <prefix>/<run_id>/."""
    result = memory_app.run(register_reporter(memory_app))
    assert RunStatus.SUCCEEDED == result.status
    destination = memory_app.runtime.destination
    assert isinstance(destination, FsspecDestination)
    fs = fsspec.filesystem("memory")
    prefix = f"{destination.root}/{result.run_id}/"
    keys = {k.removeprefix(prefix) for k in fs.find(prefix)}
    assert {*REPORT, MANIFEST_NAME} == keys
    assert REPORT["figures/raw.bin"] == fs.cat_file(prefix + "figures/raw.bin")
    assert not (staging / result.run_id).exists()


def test_memory_destination_writes_the_manifest_last(
    memory_app: Seawall, memory_url: str, fault_hooks: None
) -> None:
    """When the manifest is about to be written, every file is there and read() sees nothing."""
    fs = fsspec.filesystem("memory")
    destination = memory_app.runtime.destination
    assert isinstance(destination, FsspecDestination)
    snapshot: dict[str, Any] = {}

    def before_manifest(_point: str) -> None:
        snapshot["keys"] = sorted(fs.find(destination.root))
        snapshot["manifest"] = [k for k in snapshot["keys"] if k.endswith(MANIFEST_NAME)]

    _faults.install("commit.manifest", before_manifest)
    result = memory_app.run(register_reporter(memory_app))
    prefix = f"{destination.root}/{result.run_id}/"
    assert sorted(prefix + name for name in REPORT) == snapshot["keys"]
    assert [] == snapshot["manifest"]
    assert sorted(REPORT) == read(result.run_id, memory_url).names


def test_memory_destination_read_returns_verified_bytes(
    memory_app: Seawall, memory_url: str
) -> None:
    """artifacts.read through a memory:// URL returns names and bytes."""
    result = memory_app.run(register_reporter(memory_app))
    committed = read(result.run_id, memory_url)
    assert sorted(REPORT) == committed.names
    assert REPORT == {name: committed.read_bytes(name) for name in committed.names}


def test_memory_destination_detects_a_tampered_file(memory_app: Seawall, memory_url: str) -> None:
    """A file overwritten in the store after the commit raises ArtifactIntegrityError on read."""
    result = memory_app.run(register_reporter(memory_app))
    destination = memory_app.runtime.destination
    assert isinstance(destination, FsspecDestination)
    fsspec.filesystem("memory").pipe_file(
        f"{destination.root}/{result.run_id}/summary.md", b"# Revenue\n\nUp 40%.\n"
    )
    committed = read(result.run_id, memory_url)
    with pytest.raises(ArtifactIntegrityError) as caught:
        committed.read_bytes("summary.md")
    assert ("summary.md", result.run_id) == (caught.value.artifact, caught.value.run_id)
    assert REPORT["notes.txt"] == committed.read_bytes("notes.txt")


def test_memory_destination_read_without_manifest_raises(
    memory_app: Seawall, memory_url: str
) -> None:
    """artifacts.read of a memory:// run that committed nothing raises ArtifactError."""

    @memory_app.agent
    def plain(ctx: Context) -> int:
        return 1

    run_id = memory_app.run(plain).run_id
    with pytest.raises(ArtifactError):
        read(run_id, memory_url)


def test_memory_destination_files_without_manifest_are_invisible(
    memory_app: Seawall, memory_url: str
) -> None:
    """Files uploaded under a run without its manifest are not readable through read()."""
    destination = memory_app.runtime.destination
    assert isinstance(destination, FsspecDestination)
    fsspec.filesystem("memory").pipe_file(f"{destination.root}/orphan/a.txt", b"a")
    with pytest.raises(ArtifactError):
        read("orphan", memory_url)


def test_memory_destination_with_async_agent(memory_app: Seawall, memory_url: str) -> None:
    """An async agent's artifacts are published to memory:// too."""

    @memory_app.agent
    async def writer(ctx: AsyncContext) -> str:
        ctx.artifacts.write_text("async.txt", "awaited")
        return "done"

    result = memory_app.run(writer)
    assert "awaited" == read(result.run_id, memory_url).read_text("async.txt")
