"""StagingArea on its own: writing, listing, sealing into a manifest and discarding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from seawall.artifacts import MANIFEST_NAME, ArtifactEntry, Manifest, StagingArea
from seawall.errors import ArtifactError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The staging root."""
    return tmp_path / "staging"


@pytest.fixture
def area(root: Path) -> StagingArea:
    """Attempt 1 of run ``run-1``, with a 1 MiB limit."""
    return StagingArea(root, "run-1", 1, max_bytes=1 << 20)


def test_attempt_folder_is_root_run_attempt(area: StagingArea, root: Path) -> None:
    """The attempt's folder is <root>/<run_id>/<attempt>."""
    assert root / "run-1" / "1" == area.dir
    assert "run-1" == area.run_id


def test_nothing_is_created_before_the_first_write(area: StagingArea, root: Path) -> None:
    """A fresh area creates no folder and lists nothing."""
    assert [] == area.list()
    assert not area.staged()
    assert not root.exists()


def test_write_text_stages_the_encoded_text(area: StagingArea) -> None:
    """write_text stores the text in the given encoding and returns the staging path."""
    path = area.write_text("notes.txt", "café", encoding="latin-1")
    assert area.dir / "notes.txt" == path
    assert "café".encode("latin-1") == path.read_bytes()


def test_write_text_defaults_to_utf8(area: StagingArea) -> None:
    """write_text encodes as UTF-8 by default."""
    area.write_text("notes.txt", "café")
    assert "café".encode() == area.read_bytes("notes.txt")


def test_write_bytes_round_trips_through_read_bytes(area: StagingArea) -> None:
    """read_bytes returns exactly what write_bytes staged."""
    data = bytes(range(256))
    path = area.write_bytes("blob.bin", data)
    assert area.dir / "blob.bin" == path
    assert data == area.read_bytes("blob.bin")


def test_write_json_is_sorted_indented_and_ends_with_a_newline(area: StagingArea) -> None:
    """write_json sorts keys, indents by 2, keeps non-ASCII and adds a final newline."""
    area.write_json("data.json", {"b": 1, "a": "é"})
    assert '{\n  "a": "é",\n  "b": 1\n}\n' == area.read_bytes("data.json").decode()


def test_write_json_without_indent_is_one_line(area: StagingArea) -> None:
    """write_json(indent=None) writes the JSON on one line."""
    area.write_json("data.json", {"b": [1, 2], "a": None}, indent=None)
    assert '{"a": null, "b": [1, 2]}\n' == area.read_bytes("data.json").decode()


def test_open_w_writes_text(area: StagingArea) -> None:
    """open(name, "w") stages text written through the handle (UTF-8)."""
    with area.open("out/report.md", "w") as handle:
        handle.write("# Título\n")
    assert "# Título\n".encode() == area.read_bytes("out/report.md")


def test_open_wb_writes_bytes(area: StagingArea) -> None:
    """open(name, "wb") stages bytes written through the handle."""
    with area.open("raw.bin", "wb") as handle:
        handle.write(b"\x00\x01\x02")
    assert b"\x00\x01\x02" == area.read_bytes("raw.bin")


def test_open_a_appends(area: StagingArea) -> None:
    """open(name, "a") appends to what is already staged."""
    area.write_text("log.txt", "one\n")
    with area.open("log.txt", "a") as handle:
        handle.write("two\n")
    assert b"one\ntwo\n" == area.read_bytes("log.txt")


def test_open_r_and_rb_read_back(area: StagingArea) -> None:
    """open(name, "r") and open(name, "rb") read a staged artifact."""
    area.write_text("a.txt", "héllo")
    with area.open("a.txt") as text:
        assert "héllo" == text.read()
    with area.open("a.txt", "rb") as raw:
        assert "héllo".encode() == raw.read()


def test_path_creates_parent_folders_but_not_the_file(area: StagingArea) -> None:
    """path() returns the staging path with its folders created, for tools that need a file."""
    path = area.path("deep/er/file.csv")
    assert area.dir / "deep" / "er" / "file.csv" == path
    assert path.parent.is_dir()
    assert not path.exists()


def test_file_written_through_path_is_listed(area: StagingArea) -> None:
    """A file a tool writes at path() is staged like any other."""
    area.path("tool/output.csv").write_text("a,b\n")
    assert ["tool/output.csv"] == area.list()
    assert area.staged()


def test_list_is_sorted_and_includes_nested_folders(area: StagingArea) -> None:
    """list() returns every staged file as a POSIX relative path, sorted."""
    for name in ("b.txt", "a/z.txt", "a/b/c.txt", "A.txt"):
        area.write_text(name, name)
    assert ["A.txt", "a/b/c.txt", "a/z.txt", "b.txt"] == area.list()


def test_list_ignores_folders(area: StagingArea) -> None:
    """list() names files only, not the folders holding them."""
    area.write_text("sub/x.txt", "x")
    area.path("empty/y.txt")
    assert ["sub/x.txt"] == area.list()


def test_staged_is_true_once_a_file_is_written(area: StagingArea) -> None:
    """staged() turns true with the first write."""
    assert not area.staged()
    area.write_bytes("x.bin", b"x")
    assert area.staged()


def test_seal_lists_every_file_with_size_and_sha256(area: StagingArea) -> None:
    """seal() returns a manifest whose sizes and sha256 match the staged bytes."""
    files = {"b/data.bin": bytes(range(200)) * 3, "a.txt": b"hello\n", "empty.txt": b""}
    for name, data in files.items():
        area.write_bytes(name, data)
    manifest = area.seal()
    expected = tuple(
        ArtifactEntry(name, len(data), hashlib.sha256(data).hexdigest())
        for name, data in sorted(files.items())
    )
    assert "run-1" == manifest.run_id
    assert expected == manifest.entries


def test_seal_writes_the_manifest_into_the_staging_folder(area: StagingArea) -> None:
    """seal() writes .seawall-manifest.json (the manifest's JSON) beside the files."""
    area.write_text("a.txt", "a")
    manifest = area.seal()
    written = (area.dir / MANIFEST_NAME).read_bytes()
    assert manifest.to_json() == written
    body = json.loads(written)
    assert [{"name": "a.txt", "size": 1, "sha256": hashlib.sha256(b"a").hexdigest()}] == body[
        "artifacts"
    ]
    assert "run-1" == body["run_id"]


def test_sealing_twice_does_not_list_the_manifest_itself(area: StagingArea) -> None:
    """A second seal() ignores the manifest the first one wrote."""
    area.write_text("a.txt", "a")
    first = area.seal()
    assert first == area.seal()


def test_seal_with_sync_gives_the_same_manifest(area: StagingArea) -> None:
    """seal(sync=True) fsyncs and returns the same manifest."""
    area.write_text("x/y.txt", "y")
    manifest = area.seal(sync=True)
    assert ("x/y.txt",) == tuple(e.name for e in manifest.entries)
    assert (area.dir / MANIFEST_NAME).is_file()


def test_manifest_round_trips_through_json(area: StagingArea) -> None:
    """Manifest.from_json(manifest.to_json()) equals the manifest."""
    area.write_text("one.txt", "1")
    area.write_bytes("two/two.bin", b"22")
    manifest = area.seal()
    assert manifest == Manifest.from_json(manifest.to_json())


def test_manifest_as_list_matches_its_entries(area: StagingArea) -> None:
    """as_list() gives one JSON-ready dict per entry."""
    area.write_text("one.txt", "1")
    manifest = area.seal()
    sha = hashlib.sha256(b"1").hexdigest()
    assert [{"name": "one.txt", "size": 1, "sha256": sha}] == manifest.as_list()


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"run_id": "r", "artifacts": [{}]}'])
def test_unreadable_manifest_raises_artifact_error(data: bytes) -> None:
    """Manifest.from_json refuses bytes that are not a manifest."""
    with pytest.raises(ArtifactError, match="unreadable artifact manifest"):
        Manifest.from_json(data)


def test_discard_removes_the_attempt_and_the_empty_run_folder(
    area: StagingArea, root: Path
) -> None:
    """discard() removes the attempt's folder, then the run's folder once empty."""
    area.write_text("a/b.txt", "b")
    area.seal()
    area.discard()
    assert not area.dir.exists()
    assert not (root / "run-1").exists()
    assert root.is_dir()


def test_discard_keeps_the_run_folder_of_another_attempt(area: StagingArea, root: Path) -> None:
    """discard() leaves the run's folder when another attempt still has staging in it."""
    other = StagingArea(root, "run-1", 2, max_bytes=1 << 20)
    other.write_text("keep.txt", "k")
    area.write_text("gone.txt", "g")
    area.discard()
    assert not area.dir.exists()
    assert ["keep.txt"] == other.list()


def test_discard_of_an_unused_area_is_a_no_op(area: StagingArea, root: Path) -> None:
    """discard() on an area never written to raises nothing and creates nothing."""
    area.discard()
    assert not root.exists()


def test_a_new_area_for_the_same_attempt_sees_what_was_staged(
    area: StagingArea, root: Path
) -> None:
    """Staging lives on disk: another StagingArea for the same attempt lists the same files."""
    area.write_text("a.txt", "a")
    assert ["a.txt"] == StagingArea(root, "run-1", 1, max_bytes=10).list()
