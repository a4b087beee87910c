"""Canonical JSON payloads: encoding, errors, and the content-addressed storage form."""

# The house style writes asserts as `expected == actual`, which SIM300 calls a Yoda condition.
# (SIM300 is ignored for tests in pyproject.toml)

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall import PayloadTooLargeError, SerializationError
from seawall._payload import (
    INLINE_MAX,
    TREE_MIN,
    Blob,
    PayloadCodec,
    blob_bytes,
    column_ref,
    digest,
    pack,
    unpack,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

RESERVED_KEYS = ("\x00chunks", "\x00esc")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"))
)
json_keys = st.text(st.characters(codec="utf-8")) | st.sampled_from(RESERVED_KEYS)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(json_keys, children, max_size=6)
    ),
    max_leaves=25,
)


def _records(values: list[Any]) -> list[dict[str, Any]]:
    """Spread generated values over a list big enough to force the chunked tree form."""
    return [
        {"i": i, "pad": "p" * 200, "value": values[i % len(values)]}
        for i in range(48 + len(values))
    ]


large_lists = st.lists(json_values, min_size=1, max_size=12).map(_records)


def _store(blobs: list[Blob]) -> dict[str, Blob]:
    return {blob.hash: blob for blob in blobs}


def _fetcher(store: Mapping[str, Blob]) -> Any:
    def fetch(hashes: list[str]) -> dict[str, Blob]:
        return {h: store[h] for h in hashes if h in store}

    return fetch


def _round_trip(value: Any) -> tuple[bytes, Any, list[Blob]]:
    """Encode, pack and unpack ``value``; return the JSON, the decoded value and the blobs."""
    data = PayloadCodec().dumps(value, "inputs")
    column, blobs = pack(data, value)
    return data, unpack(column, _fetcher(_store(blobs))), blobs


def _chunk_refs(column: bytes, blobs: list[Blob]) -> list[str]:
    """Return the chunk references of a top-level list stored in the tree form."""
    top = _store(blobs)[column_ref(column) or ""]
    assert top.codec.startswith("tree")
    tree = json.loads(blob_bytes(top))
    return tree["\x00chunks"]


def _conversation(length: int) -> list[dict[str, Any]]:
    return [
        {"role": "user" if i % 2 else "assistant", "content": f"message {i}: " + "lorem " * 30}
        for i in range(length)
    ]


# -- canonical JSON -----------------------------------------------------------------------


def test_dumps_sorts_keys_without_whitespace() -> None:
    """dumps writes keys sorted at every level and no whitespace."""
    value = {"b": 1, "a": {"z": [1, 2], "y": None}}
    assert b'{"a":{"y":null,"z":[1,2]},"b":1}' == PayloadCodec().dumps(value, "inputs")


def test_dumps_writes_utf8_unescaped() -> None:
    """dumps writes non-ASCII text as UTF-8 rather than \\u escapes."""
    assert '{"name":"Zoë ✓"}'.encode() == PayloadCodec().dumps({"name": "Zoë ✓"}, "inputs")


def test_dumps_ignores_insertion_order() -> None:
    """Two dicts with the same items in a different order encode to the same bytes."""
    codec = PayloadCodec()
    assert codec.dumps({"a": 1, "b": 2}, "x") == codec.dumps({"b": 2, "a": 1}, "x")


# -- the form as given: kept and served back ----------------------------------------------


def _served(codec: PayloadCodec, value: Any) -> Any:
    column, blobs = codec.stored(value, "result")
    return unpack(column, _fetcher(_store(blobs)))


def _as_given(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=150, deadline=None)
@given(json_values | large_lists)
def test_stored_values_come_back_in_their_own_key_order(value: Any) -> None:
    """A stored value is served back key for key in its order (the serialised forms are equal)."""
    served = _served(PayloadCodec(), value)
    assert value == served
    assert _as_given(value) == _as_given(served)


def test_int_float_and_unicode_survive_as_given() -> None:
    """1 stays an int, 1.0 a float and non-ASCII text as written."""
    value = {"z": 1, "a": 1.0, "é": "naïve ✓", "big": 10**20}
    served = _served(PayloadCodec(), value)
    assert [("z", int), ("a", float), ("é", str), ("big", int)] == [
        (k, type(v)) for k, v in served.items()
    ]
    assert _as_given(value) == _as_given(served)


def test_snapshot_hashes_the_canonical_form_and_keeps_the_order() -> None:
    """Two orders of one value share their hash; each is stored, and served, in its own order."""
    codec = PayloadCodec()
    big = {"pad": "x" * 400}
    first = {"b": 1, "a": 2, **big}
    second = {"pad": "x" * 400, "a": 2, "b": 1}
    hash_1, column_1, blobs_1 = codec.snapshot(first, "inputs")
    hash_2, column_2, blobs_2 = codec.snapshot(second, "inputs")
    assert digest(codec.dumps(first, "inputs")) == hash_1 == hash_2
    assert column_1 != column_2  # two blobs: the content address is of the stored bytes
    store = _store([*blobs_1, *blobs_2])
    assert ["b", "a", "pad"] == list(unpack(column_1, _fetcher(store)))
    assert ["pad", "a", "b"] == list(unpack(column_2, _fetcher(store)))


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [{"c": 2, "d": {"e": None}}]},  # sorted throughout: one encoding
        {"a": 1, "b": [{"d": 2, "c": {"e": None}}]},  # out of order only deep inside
        {"a": ({"y": 1}, {"x": {"b": 1, "a": 2}})},  # inside a tuple
        [{"b": 1, "a": 2}, "é", 1.5],
    ],
)
def test_snapshot_hash_is_of_the_canonical_form_at_every_depth(value: Any) -> None:
    """Whether the keys come sorted or not, at any depth, the hash is the canonical bytes'."""
    codec = PayloadCodec()
    value_hash, _column, _blobs = codec.snapshot(value, "inputs")
    assert digest(codec.dumps(value, "inputs")) == value_hash


def test_chunked_conversation_keeps_message_key_order() -> None:
    """Messages inside a chunked conversation keep their keys in order (an LLM prompt's form)."""
    conversation = [{"role": "user", "content": f"{i} " + "word " * 80} for i in range(60)]
    column, blobs = PayloadCodec().stored({"messages": conversation}, "request")
    assert any(blob.codec.startswith("tree") for blob in blobs)
    served = unpack(column, _fetcher(_store(blobs)))
    assert _as_given({"messages": conversation}) == _as_given(served)


# -- storage form round trips -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_pack_unpack_round_trips_any_json_value(value: Any) -> None:
    """unpack(pack(...)) gives back exactly the decoded canonical JSON."""
    data, decoded, _ = _round_trip(value)
    assert json.loads(data) == decoded


@settings(max_examples=30, deadline=None)
@given(large_lists)
def test_pack_unpack_round_trips_large_chunked_lists(value: list[dict[str, Any]]) -> None:
    """A list large enough for the chunked tree form round-trips unchanged."""
    data, decoded, blobs = _round_trip(value)
    assert len(data) >= TREE_MIN
    assert any(blob.codec.startswith("tree") for blob in blobs)
    assert json.loads(data) == decoded


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(st.sampled_from(RESERVED_KEYS), json_values, min_size=1),
    large_lists,
)
def test_reserved_marker_keys_round_trip_in_the_tree_form(
    marked: dict[str, Any], items: list[dict[str, Any]]
) -> None:
    """Dicts keyed by the internal markers come back unchanged from the tree form."""
    value = {**marked, "items": items, "nested": [marked, {"inner": marked}]}
    data, decoded, blobs = _round_trip(value)
    assert any(blob.codec.startswith("tree") for blob in blobs)
    assert json.loads(data) == decoded


@pytest.mark.parametrize(
    "value",
    [
        {"\x00chunks": ["not", "a", "reference"]},
        {"\x00esc": {"\x00chunks": []}},
        {"\x00esc": 1, "\x00chunks": 2},
    ],
)
def test_reserved_marker_keys_round_trip_in_small_payloads(value: dict[str, Any]) -> None:
    """Small dicts keyed by the internal markers round-trip unchanged."""
    assert value == _round_trip(value)[1]


def test_small_payload_is_inline() -> None:
    """A payload of at most INLINE_MAX bytes is stored inline, with no blob."""
    data = PayloadCodec().dumps("x" * (INLINE_MAX - 2), "inputs")
    column, blobs = pack(data, "x" * (INLINE_MAX - 2))
    assert (b"J" + data, []) == (column, blobs)
    assert column_ref(column) is None


def test_medium_payload_is_one_json_blob() -> None:
    """A payload over INLINE_MAX and under TREE_MIN is one blob keyed by its sha256."""
    value = [f"item {i}" for i in range(60)]
    data = PayloadCodec().dumps(value, "inputs")
    column, blobs = pack(data, value)
    assert [(digest(data), "json")] == [(b.hash, b.codec) for b in blobs]
    assert digest(data) == column_ref(column)


# -- content addressing -------------------------------------------------------------------


def test_identical_payloads_share_hash_and_blobs() -> None:
    """Equal values packed separately give the same column and the same blobs."""
    first = _conversation(120)
    second = _conversation(120)
    codec = PayloadCodec()
    assert pack(codec.dumps(first, "a"), first) == pack(codec.dumps(second, "b"), second)


@pytest.mark.parametrize("length", [40, 137, 301])
def test_appending_one_element_keeps_the_earlier_chunks(length: int) -> None:
    """A list grown by one element keeps every chunk of its previous version but the last."""
    codec = PayloadCodec()
    old, new = _conversation(length), _conversation(length + 1)
    old_column, old_blobs = pack(codec.dumps(old, "a"), old)
    new_column, new_blobs = pack(codec.dumps(new, "a"), new)
    old_refs = _chunk_refs(old_column, old_blobs)
    new_refs = _chunk_refs(new_column, new_blobs)
    assert old_refs[:-1] == new_refs[: len(old_refs) - 1]
    assert len(set(new_refs) - set(old_refs)) <= 2


# -- compression --------------------------------------------------------------------------


def test_large_repetitive_json_blob_is_compressed() -> None:
    """A large, repetitive payload is stored zlib-compressed and smaller than its JSON."""
    value = {"text": "the same words again " * 300}
    data = PayloadCodec().dumps(value, "inputs")
    _, blobs = pack(data, value)
    (blob,) = blobs
    assert "json+zlib" == blob.codec
    assert len(blob.data) < len(data)
    assert len(data) == blob.size
    assert data == blob_bytes(blob)


def test_large_repetitive_tree_blobs_are_compressed() -> None:
    """Chunks of a large repetitive list are compressed too, and still round-trip."""
    value = _conversation(200)
    data, decoded, blobs = _round_trip(value)
    assert any(b.codec == "tree+zlib" for b in blobs)
    assert sum(len(b.data) for b in blobs) < len(data)
    assert value == decoded


# -- serialisation errors -----------------------------------------------------------------


def _error_of(value: Any, where: str = "inputs") -> SerializationError:
    with pytest.raises(SerializationError) as info:
        PayloadCodec().dumps(value, where)
    return info.value


def test_set_in_nested_dict_names_its_path() -> None:
    """A set inside nested dicts and a list is named by a dotted path with an index."""
    error = _error_of({"a": {"b": [1, 2, {3}]}})
    assert "inputs.a.b[2]" == error.path
    assert "inputs" == error.where
    assert str(error).startswith("inputs.a.b[2]: object of type set is not JSON-serialisable")


def test_nan_names_its_path() -> None:
    """A float NaN is refused and its path named."""
    error = _error_of({"score": [1.0, math.nan]})
    assert "inputs.score[1]" == error.path
    assert "has no JSON spelling" in str(error)


def test_infinity_names_its_path() -> None:
    """A float infinity is refused and its path named."""
    assert "inputs.limit" == _error_of({"limit": math.inf}).path


def test_circular_list_names_its_path() -> None:
    """A list that contains itself is reported as a circular reference at its path."""
    loop: list[Any] = [1]
    loop.append(loop)
    error = _error_of({"l": loop})
    assert "inputs.l[1]" == error.path
    assert "circular reference" in str(error)


def test_tuple_dict_key_names_its_path() -> None:
    """A dict with a tuple key is named by the dict's path and the key's type."""
    error = _error_of({"k": {(1, 2): "v"}})
    assert "inputs.k" == error.path
    assert "dict key (1, 2) is a tuple, not a string" in str(error)


def test_int_dict_key_is_refused_so_hashes_stay_canonical() -> None:
    """Non-string keys are refused: JSON would order them by number, which no reader can redo."""
    error = _error_of({"counts": {10: "a", 9: "b"}})
    assert "inputs.counts" == error.path
    assert "is a int, not a string" in str(error)


def test_shared_reference_is_not_circular() -> None:
    """A list referenced twice encodes, and a problem beside it is still named."""
    shared = [1]
    assert b'{"a":[1],"b":[1]}' == PayloadCodec().dumps({"a": shared, "b": shared}, "inputs")
    error = _error_of({"a": shared, "b": shared, "c": {1}})
    assert "inputs.c" == error.path


def test_lone_surrogate_names_its_path() -> None:
    """A string holding a lone surrogate is refused and its path named."""
    error = _error_of({"s": ["ok", "bad \ud800"]})
    assert "inputs.s[1]" == error.path
    assert "lone surrogate" in str(error)


def test_serialization_error_path_starts_with_where() -> None:
    """The path starts with the ``where`` label the caller gave."""
    assert "result of tool 't'.x" == _error_of({"x": object()}, "result of tool 't'").path


def test_serialization_error_is_a_type_error() -> None:
    """SerializationError is also a TypeError, for callers that catch the builtin."""
    assert isinstance(_error_of({object()}), TypeError)


# -- encoders -----------------------------------------------------------------------------


class _Stamp(datetime):
    """A datetime subclass, to check encoders are found through the MRO."""


def test_registered_encoder_encodes_its_type() -> None:
    """A value of a registered type is encoded with the registered function."""
    codec = PayloadCodec({datetime: datetime.isoformat})
    value = {"at": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)}
    assert b'{"at":"2024-05-06T07:08:09+00:00"}' == codec.dumps(value, "inputs")


def test_registered_encoder_covers_subclasses() -> None:
    """An encoder registered for a base class also encodes its subclasses."""
    codec = PayloadCodec({datetime: datetime.isoformat})
    assert b'["2024-05-06T07:08:09"]' == codec.dumps([_Stamp(2024, 5, 6, 7, 8, 9)], "inputs")


def test_unregistered_datetime_is_refused() -> None:
    """Without an encoder a datetime is refused, naming its type."""
    error = _error_of({"at": datetime(2024, 5, 6, tzinfo=UTC)})
    assert "inputs.at" == error.path
    assert "object of type datetime is not JSON-serialisable" in str(error)


# -- size limit ---------------------------------------------------------------------------


def test_payload_over_max_bytes_is_refused() -> None:
    """A payload over max_bytes raises PayloadTooLargeError with its size and the limit."""
    with pytest.raises(PayloadTooLargeError) as info:
        PayloadCodec(max_bytes=100).dumps("x" * 200, "inputs")
    assert (202, 100, "inputs") == (info.value.size, info.value.limit, info.value.where)


def test_payload_at_max_bytes_is_accepted() -> None:
    """A payload of exactly max_bytes is accepted."""
    assert 100 == len(PayloadCodec(max_bytes=100).dumps("x" * 98, "inputs"))
