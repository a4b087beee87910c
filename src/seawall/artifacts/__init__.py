"""Staged artifacts and their atomic commit.

Agents write files through ``ctx.artifacts``; they become visible at the app's destination only
when the run succeeds, all at once. Readers go through the run's manifest with :func:`read`,
which works the same for a local folder and for an object store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from seawall.artifacts._gc import GcEntry, staging_verdict
from seawall.artifacts._names import MANIFEST_NAME, check_name
from seawall.artifacts._publish import (
    Destination,
    FsspecDestination,
    LocalDestination,
    destination_for,
)
from seawall.artifacts._staging import ArtifactEntry, Manifest, StagingArea
from seawall.errors import ArtifactError, ArtifactIntegrityError

__all__ = [
    "MANIFEST_NAME",
    "ArtifactEntry",
    "CommittedArtifacts",
    "Destination",
    "FsspecDestination",
    "GcEntry",
    "LocalDestination",
    "Manifest",
    "StagingArea",
    "check_name",
    "destination_for",
    "read",
    "staging_verdict",
]


@dataclass(frozen=True, slots=True)
class CommittedArtifacts:
    """A run's committed artifacts, read through its manifest.

    Attributes:
        run_id: The run.
        manifest: What was committed.
        destination: Where.
    """

    run_id: str
    manifest: Manifest
    destination: Destination

    @property
    def names(self) -> list[str]:
        """The artifacts' names."""
        return [entry.name for entry in self.manifest.entries]

    def read_bytes(self, name: str) -> bytes:
        """Return an artifact's bytes, checked against the manifest's sha256.

        Raises:
            ArtifactError: No artifact of that name was committed.
            ArtifactIntegrityError: Its bytes changed since the commit.
        """
        entry = next((e for e in self.manifest.entries if e.name == name), None)
        if entry is None:
            raise ArtifactError(
                f"run {self.run_id} committed no artifact {name!r} (it has {self.names})",
                artifact=name,
                run_id=self.run_id,
            )
        from seawall._payload import digest  # noqa: PLC0415 - tiny, avoids a wide import

        data = self.destination.read_bytes(self.run_id, name)
        if digest(data) != entry.sha256:
            raise ArtifactIntegrityError(
                f"artifact {name!r} of run {self.run_id} no longer matches its manifest "
                "(its bytes changed after the commit)",
                artifact=name,
                run_id=self.run_id,
            )
        return data

    def read_text(self, name: str, encoding: str = "utf-8") -> str:
        """Return an artifact's text, checked against the manifest."""
        return self.read_bytes(name).decode(encoding)


def read(run_id: str, destination: str | os.PathLike[str] | Destination) -> CommittedArtifacts:
    """Read a run's committed artifacts through its manifest.

    Args:
        run_id: The run.
        destination: The app's artifact destination (a folder, an fsspec URL, or a Destination).

    Returns:
        The committed artifacts.

    Raises:
        ArtifactError: The run has no committed artifacts there (nothing of an unfinished or
            failed commit is ever visible).
    """
    target = (
        destination_for(os.fspath(destination))
        if isinstance(destination, str | os.PathLike)
        else destination
    )
    manifest = target.manifest(run_id)
    if manifest is None:
        raise ArtifactError(
            f"run {run_id} has no committed artifacts at {target.url}",
            run_id=run_id,
            destination=target.url,
        )
    return CommittedArtifacts(run_id, manifest, target)
