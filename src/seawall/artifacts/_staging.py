"""The staging area: where an attempt's artifacts are written before they may be committed.

Each attempt gets its own folder, ``<staging root>/<run_id>/<attempt>/``, created on the first
write. Nothing in it is visible to readers of the destination; it becomes visible only through
the run's commit, and it is discarded when the attempt fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from seawall.artifacts._names import MANIFEST_NAME, case_collision, check_name
from seawall.errors import ArtifactError, ArtifactNameError, ArtifactTooLargeError

MANIFEST_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One committed artifact, as its manifest lists it.

    Attributes:
        name: Relative path of the artifact.
        size: Bytes.
        sha256: Hex digest of its bytes.
    """

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The list of a run's artifacts; readers go through it.

    Attributes:
        run_id: The run that produced them.
        entries: One per artifact, sorted by name.
    """

    run_id: str
    entries: tuple[ArtifactEntry, ...]

    def to_json(self) -> bytes:
        """The manifest file's bytes (canonical JSON)."""
        body = {
            "version": MANIFEST_VERSION,
            "run_id": self.run_id,
            "artifacts": [
                {"name": e.name, "size": e.size, "sha256": e.sha256} for e in self.entries
            ],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def as_list(self) -> list[dict[str, Any]]:
        """The entries as JSON-ready dicts."""
        return [{"name": e.name, "size": e.size, "sha256": e.sha256} for e in self.entries]

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest file.

        Raises:
            ArtifactError: The bytes are not a manifest this version understands.
        """
        try:
            body = json.loads(data)
            entries = tuple(
                ArtifactEntry(str(a["name"]), int(a["size"]), str(a["sha256"]))
                for a in body["artifacts"]
            )
            return cls(run_id=str(body["run_id"]), entries=entries)
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"unreadable artifact manifest ({exc})") from exc


def file_sha256(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class StagingArea:
    """``ctx.artifacts``: write files privately; they are published only by the run's commit.

    Args:
        root: The app's staging root.
        run_id: The run.
        attempt: The attempt (each attempt starts from an empty area).
        max_bytes: Largest artifact accepted.
    """

    def __init__(self, root: Path, run_id: str, attempt: int, max_bytes: int) -> None:
        self.dir = root / run_id / str(attempt)
        self.run_id = run_id
        self.max_bytes = max_bytes
        self._folded: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<StagingArea {self.dir}>"

    # -- writing ----------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Return the staging path of ``name`` (folders created), for tools that need a file.

        Raises:
            ArtifactNameError: The name is unsafe or differs only by case from a staged one.
        """
        check_name(name)
        other = self._folded.setdefault(name.casefold(), name)
        if other != name:
            raise ArtifactNameError(
                f"artifact {name!r} differs from the staged {other!r} only by case; "
                "they would overwrite each other on a case-insensitive store",
                artifact=name,
            )
        target = self.dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def open(self, name: str, mode: str = "r", encoding: str | None = None) -> IO[Any]:
        """Open a staged artifact (``"w"``/``"wb"``/``"a"`` to write, ``"r"``/``"rb"`` to read)."""
        if any(flag in mode for flag in "wax+"):
            target = self.path(name)
        else:
            check_name(name)
            target = self.dir / name
        if "b" in mode:
            return target.open(mode)
        return target.open(mode, encoding=encoding or "utf-8")

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Stage ``data`` as ``name``; return its staging path."""
        self._check_size(name, len(data))
        target = self.path(name)
        target.write_bytes(data)
        return target

    def write_text(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        """Stage ``text`` as ``name``; return its staging path."""
        return self.write_bytes(name, text.encode(encoding))

    def write_json(self, name: str, value: Any, *, indent: int | None = 2) -> Path:
        """Stage ``value`` as JSON (sorted keys) under ``name``; return its staging path."""
        text = json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)
        return self.write_text(name, text + "\n")

    def read_bytes(self, name: str) -> bytes:
        """Read back a staged artifact."""
        check_name(name)
        return (self.dir / name).read_bytes()

    def list(self) -> list[str]:
        """Names staged so far, sorted."""
        if not self.dir.exists():
            return []
        return sorted(
            path.relative_to(self.dir).as_posix()
            for path in self.dir.rglob("*")
            if path.is_symlink() or path.is_file()
        )

    def _check_size(self, name: str, size: int) -> None:
        if size > self.max_bytes:
            raise ArtifactTooLargeError(
                f"artifact {name!r} is {size:,} bytes, over the limit of {self.max_bytes:,}; "
                "raise Seawall(max_artifact_bytes=...) or split it",
                artifact=name,
                size=size,
                limit=self.max_bytes,
            )

    # -- sealing ----------------------------------------------------------------------------

    def staged(self) -> bool:
        """Whether any file was staged (empty folders do not count)."""
        return self.dir.exists() and any(p.is_file() or p.is_symlink() for p in self.dir.rglob("*"))

    def seal(self, *, sync: bool = False) -> Manifest:
        """Check every staged file and write the manifest into the staging folder.

        Args:
            sync: fsync every file and folder (the ``power`` durability level).

        Returns:
            The manifest of what will be committed.

        Raises:
            ArtifactError: A file is a symlink, too large, badly named or clashes by case.
        """
        entries = []
        for name in self.list():
            if name == MANIFEST_NAME:
                continue
            check_name(name)
            path = self.dir / name
            if path.is_symlink():
                raise ArtifactError(
                    f"artifact {name!r} is a symlink (to {str(path.readlink())!r}); symlinks are "
                    "not published, since they could point outside the run. Write the file itself",
                    artifact=name,
                )
            size = path.stat().st_size
            self._check_size(name, size)
            entries.append(ArtifactEntry(name, size, file_sha256(path)))
        clash = case_collision(e.name for e in entries)
        if clash is not None:
            raise ArtifactNameError(
                f"artifacts {clash[0]!r} and {clash[1]!r} differ only by case; they would "
                "overwrite each other on a case-insensitive store",
                artifact=clash[1],
            )
        manifest = Manifest(self.run_id, tuple(entries))
        (self.dir / MANIFEST_NAME).write_bytes(manifest.to_json())
        if sync:
            fsync_tree(self.dir)
        return manifest

    def discard(self) -> None:
        """Remove this attempt's staging folder (and the run's, once empty)."""
        remove_tree(self.dir)
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()


def fsync_tree(root: Path) -> None:
    """Fsync every file and folder under ``root`` (and ``root`` itself)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def fsync_dir(folder: Path) -> None:
    """Fsync a folder so a rename or a new entry in it is durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a folder tree if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
