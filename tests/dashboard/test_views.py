"""The dashboard's pure helpers: signatures, evidence, hosts, sessions, times, bidi markers."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from seawall.dashboard._alerts import effect, evidence
from seawall.dashboard._security import Access, Sessions, host_name
from seawall.dashboard._signatures import group_errors, search_fragment, signature
from seawall.dashboard._views import Clock, age, visible_controls
from seawall.ledger import AlertRecord, ErrorCount


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("order 1234 not found", "ValueError: order <n> not found"),
        ("order 98 not found", "ValueError: order <n> not found"),
        ("run 01a23bf8283c34f76a1a957a437dce61 lost", "ValueError: run <id> lost"),
        ("user 'ada' has no quota", "ValueError: user '…' has no quota"),
        ("id 123e4567-e89b-12d3-a456-426614174000 gone", "ValueError: id <id> gone"),
        ("10.0.3.202:5432 refused", "ValueError: <ip> refused"),
        ("gpt-4o failed at v2", "ValueError: gpt-4o failed at v2"),
    ],
)
def test_signature_sets_aside_what_varies(message: str, expected: str) -> None:
    """Numbers, ids and quoted values become placeholders; names with digits stay."""
    assert expected == signature("ValueError", message)


def test_errors_group_by_signature_with_roots_first() -> None:
    """Counts of one signature add up per agent and bucket; contained groups come last."""
    counts = [
        ErrorCount(0, "a", "cascade", "UpstreamFailedError", "node x failed", 9),
        ErrorCount(0, "a", "clean_abort", "TimeoutError", "took 31 s", 2),
        ErrorCount(2, "b", "clean_abort", "TimeoutError", "took 45 s", 3),
    ]
    first, last = group_errors(counts, 3)
    assert ("TimeoutError: took <n> s", 5, [2, 0, 3]) == (first.signature, first.runs, first.trend)
    assert {"a": 2, "b": 3} == dict(first.agents)
    assert (True, 2) == (last.contained, first.last_bucket)


def test_search_fragment_is_the_longest_constant_part() -> None:
    """The runs list searches for the part every message of the signature contains."""
    assert "not found in the catalogue" == search_fragment("order 42 not found in the catalogue")


def test_evidence_draws_shares_and_tabulates_other_numbers() -> None:
    """Category shares are drawn; quantiles become a table; unknown keys are kept."""
    shares = AlertRecord(
        "1", "drift", "a", "decision", 0.3, 0.2, "w", "m", 1.0,
        {"psi": 0.3, "reference": {"x": 0.4, "y": 0.6}, "current": {"x": 0.7, "y": 0.3}},
    )  # fmt: skip
    numbers = AlertRecord(
        "2", "semantic_drift", "a", "embedding", 0.5, 0.2, "w", "m", 1.0,
        {"reference": {"p50": 3.0}, "current": {"p50": 9.0}, "distance": 0.5},
    )  # fmt: skip
    drawn, table = evidence(shares), evidence(numbers)
    assert (True, "large") == (drawn.shares, drawn.size)
    assert drawn.chart is not None
    assert (False, None, ["distance"]) == (table.shares, table.chart, [k for k, _ in table.other])


@pytest.mark.parametrize(("psi", "words"), [(0.05, "small"), (0.1, "moderate"), (0.3, "large")])
def test_effect_size_in_words(psi: float, words: str) -> None:
    """PSI bands: below 0.1 small, to 0.25 moderate, above large."""
    assert words == effect(psi)


@pytest.mark.parametrize(
    ("host", "name"),
    [("LocalHost:8765", "localhost"), ("[::1]:8765", "::1"), ("::1", "::1"), ("a.b", "a.b")],
)
def test_host_name_drops_the_port(host: str, name: str) -> None:
    """IPv4, names and bracketed IPv6 hosts lose their port."""
    assert name == host_name(host)


def test_subdomain_patterns_do_not_match_lookalikes() -> None:
    """*.example.com matches its subdomains, not example.com nor evilexample.com."""
    access = Access.build(token="t" * 16, allowed_hosts=("*.example.com",))
    assert [True, False, False] == [
        access.host_allowed(h) for h in ("a.example.com", "example.com", "evilexample.com")
    ]


def test_sessions_end_at_logout_idle_and_ttl() -> None:
    """A session lives until closed, idle too long, or too old; the oldest goes when full."""
    now = [0.0]
    sessions = Sessions(100.0, 30.0, clock=lambda: now[0], limit=2)
    first = sessions.open("ada", "operator")
    now[0] = 20.0
    assert "ada" == (sessions.get(first) or pytest.fail("no session")).name
    now[0] = 51.0  # idle 31 s
    assert sessions.get(first) is None
    second = sessions.open("ada", "operator")
    for t in (70.0, 90.0, 110.0, 130.0):
        now[0] = t
        assert sessions.get(second) is not None
    now[0] = 152.0  # 101 s old
    assert sessions.get(second) is None
    third, fourth, fifth = (sessions.open(n, "viewer") for n in ("a", "b", "c"))
    assert (None, False) == (sessions.get(third), sessions.close(third))
    assert (True, None) == (sessions.close(fourth), sessions.get(fourth))
    assert fifth


def test_times_name_their_zone_and_parse_back() -> None:
    """Times are shown with the zone's name; a form value is read in that zone."""
    clock = Clock("Europe/Paris")
    assert "2024-07-01 14:00:00 CEST" == clock.text(1719835200.0)
    assert 1719835200.0 == clock.parse(clock.form(1719835200.0))
    assert 1719835200.0 == clock.parse("2024-07-01T12:00:00+00:00")


@pytest.mark.parametrize(
    ("seconds", "words"), [(5, "5 s"), (125, "2 min"), (7500, "2 h 5 min"), (90000, "1 d 1 h")]
)
def test_age_in_words(seconds: float, words: str) -> None:
    """How long a hand-off has waited, in words."""
    assert words == age(seconds)


def test_bidi_controls_become_visible() -> None:
    """A right-to-left override is shown as a marker; other text is left alone."""
    assert "invoice<U+202E>gnp.exe" == visible_controls("invoice\u202egnp.exe")
    assert "שלום ok" == visible_controls("שלום ok")
