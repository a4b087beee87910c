"""Destinations: where committed artifacts become visible, all at once or not at all.

- A local folder (a plain path): the sealed staging folder is renamed to
  ``<destination>/<run_id>``, one atomic step on a POSIX filesystem. Across filesystems the
  folder is first copied next to its final place, then renamed.
- Any fsspec URL (``s3://bucket/prefix``, ``memory://x``, ``file:///srv/out``...): renames are not
  atomic on object stores, so each file is put under ``<destination>/<run_id>/`` and the
  manifest is written *last*. Readers go through the manifest (:func:`seawall.artifacts.read`):
  without it, nothing of the run is visible.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol

from seawall import _faults
from seawall._extras import optional_module
from seawall.artifacts._names import MANIFEST_NAME
from seawall.artifacts._staging import Manifest, fsync_dir, fsync_tree, remove_tree
from seawall.errors import ConfigurationError, DestinationError


class Destination(Protocol):
    """Where a run's artifacts are published."""

    url: str

    def publish(self, run_id: str, staging: Path, manifest: Manifest) -> None:
        """Make the sealed staging folder visible as the run's artifacts (idempotent)."""

    def manifest(self, run_id: str) -> Manifest | None:
        """Return the run's published manifest, or ``None`` when nothing is visible."""

    def read_bytes(self, run_id: str, name: str) -> bytes:
        """Return one published artifact's bytes."""

    def remove_partial(self, run_id: str) -> None:
        """Remove files of an unfinished publication (one without its manifest)."""


class LocalDestination:
    """A folder on the local filesystem, published by an atomic rename.

    Args:
        root: The destination folder (created when missing).
        sync: fsync the published folder and its parent (the ``power`` durability level).
    """

    def __init__(self, root: str | os.PathLike[str], *, sync: bool = False) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self.sync = sync

    def _prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationError(
                f"cannot create the artifact destination {self.root} ({exc.strerror}); point "
                "Seawall(artifacts=...) at a writable folder",
                destination=self.url,
            ) from exc
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise DestinationError(
                f"the artifact destination {self.root} is not writable; point "
                "Seawall(artifacts=...) at a writable folder",
                destination=self.url,
            )

    def publish(self, run_id: str, staging: Path, manifest: Manifest) -> None:
        """Rename the sealed staging folder to ``<root>/<run_id>``."""
        target = self.root / run_id
        self._prepare()
        if self.manifest(run_id) == manifest:
            return
        _faults.point("commit.publish")
        try:
            staging.rename(target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise _unpublished(run_id, target, self.url, exc.strerror) from exc
            self._publish_across_devices(run_id, staging, target)
        _faults.point("commit.renamed")
        if self.sync:
            fsync_dir(self.root)

    def _publish_across_devices(self, run_id: str, staging: Path, target: Path) -> None:
        temporary = self.root / f".seawall-incoming-{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(staging, temporary)
            if self.sync:
                fsync_tree(temporary)
            temporary.rename(target)
        except OSError as exc:
            remove_tree(temporary)
            raise _unpublished(run_id, target, self.url, exc) from exc
        remove_tree(staging)

    def manifest(self, run_id: str) -> Manifest | None:
        """Return the published manifest, if the run's folder is in place."""
        path = self.root / run_id / MANIFEST_NAME
        try:
            return Manifest.from_json(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise DestinationError(
                f"cannot read the manifest of run {run_id} at {self.root} ({exc.strerror})",
                destination=self.url,
                run_id=run_id,
            ) from exc

    def read_bytes(self, run_id: str, name: str) -> bytes:
        """Return one published artifact's bytes."""
        return (self.root / run_id / name).read_bytes()

    def remove_partial(self, run_id: str) -> None:
        """Local publication is a single rename: there is never a partial folder to remove."""
        for leftover in self.root.glob(f".seawall-incoming-{run_id}-*"):
            remove_tree(leftover)


class FsspecDestination:
    """A destination reached through fsspec; the manifest is written last.

    Args:
        url: An fsspec URL (``s3://bucket/prefix``, ``memory://name``, ``file:///path``).
        storage_options: Passed to fsspec (credentials, endpoint...).
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        fsspec = optional_module(
            "fsspec", extra="fsspec", needed_by=f"artifact destination {url!r} needs fsspec"
        )
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        except (ValueError, ImportError) as exc:
            raise ConfigurationError(
                f"artifact destination {url!r} is not a usable fsspec URL ({exc})"
            ) from exc
        self.url = url
        self.root = self.root.rstrip("/")

    def _key(self, run_id: str, name: str) -> str:
        return f"{self.root}/{run_id}/{name}"

    def publish(self, run_id: str, staging: Path, manifest: Manifest) -> None:
        """Put every file, then the manifest; idempotent if the manifest is already there."""
        try:
            if self.manifest(run_id) == manifest:
                return
            for index, entry in enumerate(manifest.entries):
                _faults.point(f"commit.upload.{index}")
                key = self._key(run_id, entry.name)
                parent = key.rsplit("/", 1)[0]
                self.fs.makedirs(parent, exist_ok=True)
                self.fs.put_file(str(staging / entry.name), key)
            _faults.point("commit.manifest")
            self.fs.pipe_file(self._key(run_id, MANIFEST_NAME), manifest.to_json())
        except OSError as exc:
            raise _unpublished(run_id, self.url, self.url, exc) from exc
        _faults.point("commit.renamed")

    def manifest(self, run_id: str) -> Manifest | None:
        """Return the published manifest, or ``None`` before it is written."""
        try:
            data = self.fs.cat_file(self._key(run_id, MANIFEST_NAME))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Manifest.from_json(bytes(data))

    def read_bytes(self, run_id: str, name: str) -> bytes:
        """Return one published artifact's bytes."""
        return bytes(self.fs.cat_file(self._key(run_id, name)))

    def remove_partial(self, run_id: str) -> None:
        """Remove an unfinished upload (files without a manifest)."""
        if self.manifest(run_id) is not None:
            return
        folder = f"{self.root}/{run_id}"
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)


def destination_for(target: str | os.PathLike[str], *, sync: bool = False) -> Destination:
    """Return the destination for a path (atomic rename) or an fsspec URL (manifest last)."""
    text = os.fspath(target)
    if "://" in text:
        return FsspecDestination(text)
    return LocalDestination(text, sync=sync)


def _unpublished(run_id: str, target: object, url: str, reason: object) -> DestinationError:
    """The error of a run whose artifacts could not be published to ``target``."""
    return DestinationError(
        f"cannot publish the artifacts of run {run_id} to {target} ({reason})",
        destination=url,
        run_id=run_id,
    )
