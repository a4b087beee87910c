"""Canonical JSON payloads: encoding, hashing and the content-addressed storage form.

Every value Seawall stores (run inputs, outputs, tool requests and responses) is JSON (no
whitespace, UTF-8, no NaN), so nothing stored can execute code when it is loaded (no pickle).

Two forms of the same value matter:

- the *canonical* form (sorted keys) is what identities are computed over: a request's hash, a
  run's ``input_hash`` and ``output_hash``. Two values that differ only in key order are the same
  request.
- the form *as given* (the value's own key order) is what is stored and served back. A tool result
  replayed from the journal must be the value the tool returned, key for key in its order: an
  agent that writes ``json.dumps(result)`` into its next prompt must make the same request byte for
  byte after a resume, or the journal diverges.

Storage form (:func:`pack`): a payload of at most ``INLINE_MAX`` bytes is kept inline in
its row; a larger one becomes a blob keyed by its sha256, so an identical payload is stored
once. Inside a large payload, every long list is cut into content-defined chunks (a chunk
ends after an element whose hash has its top three bits clear), each chunk a blob of its
own. A list that grows by appending (an LLM conversation) therefore shares all but its
last chunk with its previous version. Blobs above ``COMPRESS_MIN`` bytes are zlib-compressed.
This module is pure: it produces rows for a store and never touches one.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from seawall.errors import PayloadTooLargeError, SerializationError

INLINE_MAX: Final = 256
COMPRESS_MIN: Final = 1024
TREE_MIN: Final = 8192
CHUNK_MIN_ITEMS: Final = 8
CHUNK_MAX_BYTES: Final = 65536
CHUNK_BOUNDARY: Final = 32
"""A chunk ends after an element whose 1-byte blake2b is below this (1 in 8 on average)."""
DEFAULT_MAX_PAYLOAD: Final = 16 * 1024 * 1024

_INLINE: Final = b"J"
_REF: Final = b"@"
_CHUNKS: Final = "\x00chunks"
_ESCAPE: Final = "\x00esc"

Encoder = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob row.

    Attributes:
        hash: sha256 hex of the canonical JSON (or, for chunks, of the chunk record).
        codec: ``json``, ``tree`` (holds chunk references), each optionally ``+zlib``.
        size: Length of the uncompressed data in bytes.
        data: The stored bytes.
    """

    hash: str
    codec: str
    size: int
    data: bytes


def digest(data: bytes) -> str:
    """Return the sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


class PayloadCodec:
    """Encodes values to canonical JSON with user-registered encoders and a size limit.

    Args:
        encoders: Maps a type to a function returning a JSON-serialisable stand-in.
        max_bytes: Largest encoded payload accepted.
    """

    def __init__(
        self, encoders: Mapping[type, Encoder] | None = None, max_bytes: int = DEFAULT_MAX_PAYLOAD
    ) -> None:
        self.encoders: dict[type, Encoder] = dict(encoders or {})
        self.max_bytes = max_bytes
        self._json = json.JSONEncoder(
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=self._default,
        )
        self._json_as_given = json.JSONEncoder(
            sort_keys=False,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=self._default,
        )

    def _find_encoder(self, value: Any) -> Encoder | None:
        for cls in type(value).__mro__:
            encoder = self.encoders.get(cls)
            if encoder is not None:
                return encoder
        return None

    def _default(self, value: Any) -> Any:
        encoder = self._find_encoder(value)
        if encoder is not None:
            return encoder(value)
        dump = getattr(value, "model_dump", None)  # Pydantic models: their JSON form
        if dump is not None and callable(dump):
            return dump(mode="json")
        raise TypeError(type(value).__name__)

    def dumps(self, value: Any, where: str) -> bytes:
        """Encode ``value`` as canonical JSON bytes (sorted keys): the form hashes are taken over.

        Args:
            value: The value to encode.
            where: How to name the value in an error (``inputs``, ``tool search result``).

        Returns:
            The canonical UTF-8 JSON.

        Raises:
            SerializationError: The value (at the path named in the error) cannot be encoded.
            PayloadTooLargeError: The encoding is larger than ``max_bytes``.
        """
        return self._encode(self._json, value, where)

    def dumps_as_given(self, value: Any, where: str) -> bytes:
        """Encode ``value`` as JSON bytes keeping its own key order: the form that is stored.

        Raises:
            SerializationError: The value cannot be encoded (see :meth:`dumps`).
            PayloadTooLargeError: The encoding is larger than ``max_bytes``.
        """
        return self._encode(self._json_as_given, value, where)

    def snapshot(self, value: Any, where: str) -> tuple[str, bytes, list[Blob]]:
        """Encode a value that is both identified and served back (inputs, outputs).

        Returns:
            The sha256 of its canonical form, and the row column and blobs of its form as
            given.

        Raises:
            SerializationError: The value cannot be encoded (see :meth:`dumps`).
            PayloadTooLargeError: The encoding is larger than ``max_bytes``.
        """
        order = self._key_order(value, where)
        data = self._encode(self._json_as_given, value, where, order)
        # A value whose objects all list their keys sorted already (or that holds none) has
        # one spelling: its canonical form is the same bytes (the two encoders differ only in
        # sorting, and the one as given uses no custom encoder: it succeeded without them).
        canonical = data if order == _SORTED else self._encode(self._json, value, where, order)
        column, blobs = pack(data, value)
        return digest(canonical), column, blobs

    def stored(self, value: Any, where: str) -> tuple[bytes, list[Blob]]:
        """Encode a value that is only served back (a tool's result): its column and blobs.

        Raises:
            SerializationError: The value cannot be encoded (see :meth:`dumps`).
            PayloadTooLargeError: The encoding is larger than ``max_bytes``.
        """
        return pack(self.dumps_as_given(value, where), value)

    def _encode(
        self, encoder: json.JSONEncoder, value: Any, where: str, order: int | None = None
    ) -> bytes:
        if order is None:
            order = self._key_order(value, where)
        try:
            data = encoder.encode(value).encode("utf-8") if order != _NON_STRING else None
        except (TypeError, ValueError, RecursionError) as exc:
            raise self._explain(value, where) from exc
        if data is None:
            raise self._explain(value, where)
        if len(data) > self.max_bytes:
            raise PayloadTooLargeError(
                f"{where} is {len(data):,} bytes of JSON, over the limit of "
                f"{self.max_bytes:,} bytes; store large data elsewhere (an artifact or your own "
                "store) and pass a reference, or raise Seawall(max_payload_bytes=...)",
                where=where,
                size=len(data),
                limit=self.max_bytes,
            )
        return data

    def _key_order(self, value: Any, where: str) -> int:
        try:
            return _key_order(value)
        except RecursionError as exc:  # a value that contains itself, or nested too deep
            raise self._explain(value, where) from exc

    def _explain(self, value: Any, where: str) -> SerializationError:
        path, problem = _first_problem(value, where, self._find_encoder, set())
        return SerializationError(
            f"{path}: {problem}. Seawall stores values as JSON; convert it to a JSON type or "
            "register an encoder with Seawall(encoders={YourType: to_json})",
            path=path,
            where=where,
        )


_NON_STRING: Final = 0
"""A dict inside the value has a key that is not a string (refused)."""
_UNSORTED: Final = 1
"""Every key is a string; some dict lists its keys out of order."""
_SORTED: Final = 2
"""Every key is a string, and every dict lists its keys in sorted order (or there is none)."""


def _key_order(value: Any) -> int:  # noqa: C901 - one walk, written out: it is per step
    """Whether every dict inside ``value`` has only string keys, and lists them sorted.

    JSON would silently turn ``{10: "a", 9: "b"}`` into string keys sorted by their numeric
    value, which another process decoding the ledger could never reproduce: the canonical form
    (and so every hash) would depend on the Python types. We refuse non-string keys instead.
    Key order tells :meth:`PayloadCodec.snapshot` whether the canonical form is the one given.
    """
    kind = type(value)
    order = _SORTED
    if kind is dict:
        previous = ""  # no string sorts before it: the first key is never out of order
        for key, item in value.items():
            if type(key) is not str:
                return _NON_STRING
            if key < previous:
                order = _UNSORTED
            previous = key
            if type(item) not in _LEAVES:
                inner = _key_order(item)
                if inner < order:
                    if inner == _NON_STRING:
                        return _NON_STRING
                    order = inner
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) not in _LEAVES:
                inner = _key_order(item)
                if inner < order:
                    if inner == _NON_STRING:
                        return _NON_STRING
                    order = inner
    return order


_LEAVES: Final = frozenset({str, int, float, bool, type(None)})
"""Types holding no key: walking them is skipped (most values are mostly these)."""


def _first_problem(  # noqa: C901, PLR0911, PLR0912 - one case per JSON type, read top-down
    value: Any, path: str, find_encoder: Callable[[Any], Encoder | None], seen: set[int]
) -> tuple[str, str]:
    """Walk ``value`` and describe the first part that cannot be encoded."""
    if value is None or isinstance(value, bool | int):
        return path, "unknown problem"
    if isinstance(value, float):
        if math.isfinite(value):
            return path, "unknown problem"
        return path, f"{value!r} has no JSON spelling"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "string contains a lone surrogate and is not valid UTF-8"
        return path, "unknown problem"
    if isinstance(value, list | tuple | dict):
        if id(value) in seen:
            return path, "circular reference (the value contains itself)"
        seen.add(id(value))
        try:
            items: Iterable[tuple[str, Any]]
            if isinstance(value, dict):
                for key in value:
                    if not isinstance(key, str):
                        return path, (
                            f"dict key {key!r} is a {type(key).__name__}, not a string "
                            "(convert keys with str() so the stored form is unambiguous)"
                        )
                    problem = _first_problem(key, f"{path} key {key[:40]!r}", find_encoder, seen)
                    if problem[1] != "unknown problem":
                        return problem
                items = ((f"{path}.{key}", item) for key, item in value.items())
            else:
                items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
            for sub_path, item in items:
                found = _first_problem(item, sub_path, find_encoder, seen)
                if found[1] != "unknown problem":
                    return found
            return path, "unknown problem"
        finally:
            seen.discard(id(value))
    encoder = find_encoder(value)
    if encoder is None:
        return path, f"object of type {type(value).__name__} is not JSON-serialisable"
    try:
        converted = encoder(value)
    except Exception as exc:
        return path, f"the encoder for {type(value).__name__} raised {exc!r}"
    return _first_problem(converted, path, find_encoder, seen)


def loads(data: bytes) -> Any:
    """Decode canonical JSON bytes."""
    return json.loads(data)


# -- storage form -------------------------------------------------------------------------


def pack(data: bytes, value: Any, data_hash: str | None = None) -> tuple[bytes, list[Blob]]:
    """Turn one encoded payload into its row column and the blobs it needs.

    A blob is addressed by the sha256 of the bytes it stores, so two values that differ only in
    key order are two blobs, each served back in its own order.

    Args:
        data: The JSON of ``value`` as it is to be stored.
        value: The decoded value (used to cut long lists into chunks without re-parsing).
        data_hash: ``digest(data)`` if the caller already has it.

    Returns:
        The bytes for the row column (inline payload or blob reference) and the blobs to store.
    """
    if len(data) <= INLINE_MAX:
        return _INLINE + data, []
    top_hash = data_hash or digest(data)
    blobs: list[Blob] = []
    if len(data) >= TREE_MIN:
        tree, changed = _externalize(value, blobs)
        if changed:
            tree_data = _dump_plain(tree)
            blobs.append(_make_blob(top_hash, "tree", tree_data))
            return _REF + top_hash.encode(), blobs
    blobs.append(_make_blob(top_hash, "json", data))
    return _REF + top_hash.encode(), blobs


def column_ref(column: bytes) -> str | None:
    """Return the blob hash a column refers to, or ``None`` when the payload is inline."""
    return column[1:].decode() if column[:1] == _REF else None


def column_refs(records: Iterable[Any]) -> list[str]:
    """The blob hashes the request and response columns of journal ``records`` refer to."""
    return [
        ref
        for record in records
        for column in (record.request, record.response)
        if column is not None and (ref := column_ref(column)) is not None
    ]


def unpack(column: bytes, fetch: Callable[[list[str]], Mapping[str, Blob]]) -> Any:
    """Decode a row column produced by :func:`pack`.

    Args:
        column: The row's column bytes.
        fetch: Returns the blobs for a list of hashes (missing ones absent).

    Returns:
        The decoded value.

    Raises:
        LookupError: A referenced blob is missing from the store.
    """
    if column[:1] == _INLINE:
        return json.loads(column[1:])
    return load_blob(column[1:].decode(), fetch)


def load_blob(blob_hash: str, fetch: Callable[[list[str]], Mapping[str, Blob]]) -> Any:
    """Load and decode the value stored under ``blob_hash`` (resolving chunks)."""
    blob = fetch([blob_hash]).get(blob_hash)
    if blob is None:
        raise LookupError(blob_hash)
    value = json.loads(blob_bytes(blob))
    if blob.codec.startswith("tree"):
        return _internalize(value, fetch)
    return value


def blob_bytes(blob: Blob) -> bytes:
    """Return a blob's uncompressed bytes."""
    return zlib.decompress(blob.data) if blob.codec.endswith("+zlib") else blob.data


def _make_blob(blob_hash: str, codec: str, data: bytes) -> Blob:
    if len(data) >= COMPRESS_MIN:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data) * 0.9:
            return Blob(blob_hash, codec + "+zlib", len(data), packed)
    return Blob(blob_hash, codec, len(data), data)


def _dump_plain(value: Any) -> bytes:
    # Key order is kept: chunks are served back as the value was given.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def _externalize(value: Any, blobs: list[Blob]) -> tuple[Any, bool]:
    """Replace long lists inside ``value`` by chunk references, adding chunk blobs."""
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], item_changed = _externalize(item, blobs)
            changed = changed or item_changed
        if _CHUNKS in out or _ESCAPE in out:
            return {_ESCAPE: out}, True
        return out, changed
    if isinstance(value, list | tuple):
        results = [_externalize(item, blobs) for item in value]
        elements = [element for element, _ in results]
        encoded = [_dump_plain(element) for element in elements]
        if len(elements) < CHUNK_MIN_ITEMS or sum(map(len, encoded)) < TREE_MIN:
            return elements, any(changed for _, changed in results)
        refs: list[str] = []
        start = size = 0
        for index, element_data in enumerate(encoded):
            size += len(element_data) + 1
            last = index == len(encoded) - 1
            boundary = hashlib.blake2b(element_data, digest_size=1).digest()[0] < CHUNK_BOUNDARY
            if boundary or last or size >= CHUNK_MAX_BYTES:
                chunk_data = b"[" + b",".join(encoded[start : index + 1]) + b"]"
                chunk_hash = digest(b"chunk\x00" + chunk_data)
                blobs.append(_make_blob(chunk_hash, "tree", chunk_data))
                refs.append(chunk_hash)
                start, size = index + 1, 0
        return {_CHUNKS: refs}, True
    return value, False


def _internalize(value: Any, fetch: Callable[[list[str]], Mapping[str, Blob]]) -> Any:
    if isinstance(value, dict):
        if _ESCAPE in value and len(value) == 1:
            return {k: _internalize(v, fetch) for k, v in value[_ESCAPE].items()}
        if _CHUNKS in value and len(value) == 1:
            refs: list[str] = value[_CHUNKS]
            found = fetch(refs)
            out: list[Any] = []
            for ref in refs:
                blob = found.get(ref)
                if blob is None:
                    raise LookupError(ref)
                out.extend(_internalize(item, fetch) for item in json.loads(blob_bytes(blob)))
            return out
        return {k: _internalize(v, fetch) for k, v in value.items()}
    if isinstance(value, list):
        return [_internalize(item, fetch) for item in value]
    return value
