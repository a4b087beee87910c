"""An id typed by its beginning is found through the id's index under any collation.

PostgreSQL's ``LIKE 'abc%'`` reads an index only under the ``C`` collation: under ``C.UTF-8``
(Debian's default) or ``en_US.UTF-8`` it scanned every run, 20-25 ms at 100,000 runs for each
``seawall show <prefix>``, and once per listed id for the shortest unique prefixes of
``seawall runs``. Where the database sorts ids as their bytes the store also bounds the prefix by
a range of the primary key (so on a database whose collation is ``C`` the old query passes the
plan test too; CI's and this project's databases use ``C.UTF-8``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
import psycopg.errors
import pytest

from seawall.ledger import open_store
from seawall.ledger._queries import ID_ORDER_PROBE
from tests.ledger.plans import copy_rows, explain_store, table_scans
from tests.ledger.rows import new_run
from tests.postgres_schemas import with_schema

IDS = 20_000


def _seed(postgres_url: str, schema: str) -> list[str]:
    """``IDS`` runs with ids of 32 hex digits (and ``0...0``), analysed; their ids, sorted."""
    store = open_store(with_schema(postgres_url, schema))
    try:
        store.create_run(*new_run("0" * 32, start=time.time()))
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        copy_rows(conn, "runs", "0" * 32, IDS, {"run_id": "md5(g::text)"})
        conn.execute("ANALYZE runs")
        return sorted(row[0] for row in conn.execute("SELECT run_id FROM runs").fetchall())


def test_an_id_prefix_is_read_from_the_ids_index(postgres_url: str, schema: str) -> None:
    """The store's lookup reads the few ids in the primary key's range, not every id."""
    ids = _seed(postgres_url, schema)
    url = with_schema(postgres_url, schema) + "&pool_min_size=1&pool_max_size=1"
    store = open_store(url)
    plans: list[dict[str, Any]] = []
    try:
        explain_store(store, plans, mentioning="FROM runs")
        prefix = ids[IDS // 2][:3]
        found = store.ids_with_prefix("run", prefix, 11)
    finally:
        store.close()
    expected = [i for i in ids if i.startswith(prefix)]
    assert expected[:11] == found
    assert 2 <= len(expected) <= 11, "the prefix should name a few ids: the plan reads them all"
    [plan] = plans
    scans = list(table_scans(plan))
    assert scans, plan
    assert all(s["Node Type"] != "Seq Scan" and s.get("Index Name") for s in scans), plan
    # Walking the whole index in order and filtering (the old plan: 19,996 rows removed) is a
    # scan too: only the ids found may be read.
    read = sum(int(s["Actual Rows"]) + int(s.get("Rows Removed by Filter", 0)) for s in scans)
    assert read == len(expected), plan


@pytest.mark.parametrize("ranged", [True, False], ids=["ranged", "scanned"])
def test_a_prefix_finds_exactly_the_ids_beginning_with_it(
    postgres_url: str, schema: str, ranged: bool
) -> None:
    """Every prefix of one to three id characters, and longer ones, finds what ``startswith`` does.

    ``scanned``: the same on a database that does not sort ids as their bytes (the store's
    answer from its probe set to false), where the lookup is the plain ``LIKE``.
    """
    ids = _seed(postgres_url, schema)
    hexdigits = "0123456789abcdef"
    prefixes = [
        *hexdigits,
        *(a + b for a in hexdigits for b in "0f9a"),
        "ff",
        "fff",
        "000",
        "",
        *(i[:size] for i in ids[::997] for size in (3, 5, 32)),
    ]
    store = open_store(with_schema(postgres_url, schema))
    try:
        assert store._ids_sort_as_bytes(), "this database sorts ids otherwise: nothing ranged"
        store._ids_sorted = ranged
        found = {p: store.ids_with_prefix("run", p, IDS + 10) for p in prefixes}
    finally:
        store.close()
    wrong = {
        p: (len(got), len(want))
        for p, got in found.items()
        if got != (want := [i for i in ids if i.startswith(p)])
    }
    assert not wrong


def _collations(conn: psycopg.Connection[Any], schema: str) -> None:
    try:
        for name, locale in (("danish", "da"), ("numeric", "en-u-kn-true"), ("english", "en")):
            conn.execute(f"CREATE COLLATION {schema}.{name} (provider = icu, locale = '{locale}')")
    except psycopg.errors.FeatureNotSupported:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("this PostgreSQL was built without ICU collations")


def test_the_probe_tells_collations_that_sort_ids_otherwise(postgres_url: str, schema: str) -> None:
    """Danish (``aa`` sorts as ``å``, after ``f``) and numeric ordering are found out."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        _collations(conn, schema)

        def sorts_as_bytes(collation: str) -> bool:
            probe = ID_ORDER_PROBE.format(collation=collation)
            [(answer,)] = conn.execute(probe).fetchall()
            return bool(answer)

        assert (True, True, True, False, False) == (
            sorts_as_bytes(""),
            sorts_as_bytes(' COLLATE "C"'),
            sorts_as_bytes(f" COLLATE {schema}.english"),
            sorts_as_bytes(f" COLLATE {schema}.danish"),
            sorts_as_bytes(f" COLLATE {schema}.numeric"),
        )
