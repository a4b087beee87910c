"""Embedders for semantic drift: a local sentence-transformers model, or an embeddings API.

Either goes to ``seawall.DriftWatch(semantic=...)``; the app's monitor thread calls it with a
batch of outputs every few runs, never on a run's path:

- :class:`SentenceTransformerEmbedder` runs a sentence-transformers model on this machine
  (``pip install 'seawall[semantic]'``). Give it a model directory (set ``HF_HUB_OFFLINE=1`` to
  keep the library off the network) or a loaded ``SentenceTransformer``.
- :class:`OpenAIEmbedder` calls an OpenAI-compatible ``/embeddings`` endpoint
  (``pip install 'seawall[semantic-api]'``): OpenAI, or a local server speaking its API.

Example:
    >>> import seawall
    >>> from seawall.integrations.embeddings import SentenceTransformerEmbedder
    >>> embedder = SentenceTransformerEmbedder("models/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> watch = seawall.DriftWatch(semantic=embedder)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall._extras import optional_module
from seawall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["OpenAIEmbedder", "SentenceTransformerEmbedder"]


class SentenceTransformerEmbedder:
    """Embeds texts with a sentence-transformers model, on this machine.

    Args:
        model: A loaded ``SentenceTransformer``, a model directory, or a model id the
            library can find in its local cache. It is loaded here, once.
        name: The name embeddings are recorded under (default: the model id, or the last two
            parts of the model directory). Change it when the model changes.
        device: Where the model runs (``"cpu"`` by default).
        batch_size: Texts per forward pass.

    Raises:
        MissingExtraError: sentence-transformers is not installed.
        ConfigurationError: The model cannot be loaded.
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        sentence_transformers = optional_module(
            "sentence_transformers",
            extra="semantic",
            needed_by="SentenceTransformerEmbedder needs sentence-transformers",
        )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(
                f"SentenceTransformerEmbedder(batch_size={batch_size!r}) must be an integer >= 1"
            )
        if isinstance(model, sentence_transformers.SentenceTransformer):
            loaded = model
            default = "sentence-transformers"
        elif isinstance(model, str | Path):
            default = _label(model)
            try:
                loaded = sentence_transformers.SentenceTransformer(str(model), device=device)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"SentenceTransformerEmbedder could not load the model {str(model)!r}: {exc}. "
                    "Give the directory of a sentence-transformers model (with HF_HUB_OFFLINE=1 "
                    "the library does not try the network)"
                ) from exc
        else:
            raise ConfigurationError(
                f"SentenceTransformerEmbedder({model!r}) takes a SentenceTransformer, a model "
                "directory or a model id"
            )
        self.model = loaded
        self.batch_size = batch_size
        self._name = name or default

    @property
    def name(self) -> str:
        """The name embeddings are recorded under."""
        return self._name

    def embed(self, texts: Sequence[str]) -> Any:
        """Return one unit vector per text (a NumPy array, one row each)."""
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self._name!r})"


def _label(model: str | Path) -> str:
    """A model's name from its id or directory (its last two parts: no machine path)."""
    path = Path(model)
    if path.exists():
        return "/".join(path.resolve().parts[-2:])
    return str(model)


class OpenAIEmbedder:
    """Embeds texts through an OpenAI-compatible ``/embeddings`` endpoint.

    Args:
        model: The embedding model (``"text-embedding-3-small"``...).
        client: An ``openai.OpenAI`` client (default: one built from ``base_url`` and
            ``api_key``, or the ``OPENAI_*`` environment variables).
        base_url: The endpoint, for a server other than OpenAI's.
        api_key: Its key.
        dimensions: Ask for shorter vectors (models that support it).
        batch_size: Texts per request.
        name: The name embeddings are recorded under (default: ``openai:{model}``).

    Raises:
        MissingExtraError: openai is not installed.
        ConfigurationError: An argument is invalid.
    """

    def __init__(
        self,
        model: str,
        *,
        client: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        openai = optional_module(
            "openai", extra="semantic-api", needed_by="OpenAIEmbedder needs the openai client"
        )
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"OpenAIEmbedder(model={model!r}) must name a model")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(
                f"OpenAIEmbedder(batch_size={batch_size!r}) must be an integer >= 1"
            )
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise ConfigurationError(
                f"OpenAIEmbedder(dimensions={dimensions!r}) must be a positive integer or None"
            )
        if client is None:
            client = openai.OpenAI(base_url=base_url, api_key=api_key)
        elif not isinstance(client, openai.OpenAI):
            raise ConfigurationError(
                f"OpenAIEmbedder(client={client!r}) must be an openai.OpenAI client (the "
                "monitor thread calls it synchronously)"
            )
        self.client = client
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self._name = name or f"openai:{model}"

    @property
    def name(self) -> str:
        """The name embeddings are recorded under."""
        return self._name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one vector per text, in order (one request per ``batch_size`` texts)."""
        vectors: list[list[float]] = []
        extra: dict[str, Any] = {} if self.dimensions is None else {"dimensions": self.dimensions}
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            answer = self.client.embeddings.create(
                model=self.model, input=chunk, encoding_format="float", **extra
            )
            data = sorted(answer.data, key=lambda item: item.index)
            if len(data) != len(chunk):
                raise ConfigurationError(
                    f"{self._name} answered {len(data)} embeddings for {len(chunk)} texts"
                )
            vectors.extend(list(item.embedding) for item in data)
        return vectors

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(name={self._name!r})"
