"""Charts as inline SVG, drawn from numbers with no JavaScript and nothing fetched.

Every label is escaped here (agent and tool names come from the ledger), and its bidirectional
control characters are shown as markers (SVG has no ``<bdi>``); colours are CSS classes
(``c-succeeded``, ``c-clean_abort``...) so the stylesheet owns the palette. Bars may link to the
runs they count. Each function returns markup ready to embed (:class:`markupsafe.Markup`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape as _escape
from typing import TYPE_CHECKING

from markupsafe import Markup

from seawall.dashboard._views import visible_controls

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    Href = Callable[[int, str], str | None]
    """Where a bar links: ``href(bar index, series name)`` (``None``: no link)."""


def escape(text: str) -> str:
    """Escape ``text`` for SVG, showing its bidirectional controls as visible markers."""
    return _escape(visible_controls(text))


def _linked(markup: str, href: str | None) -> str:
    return markup if href is None else f'<a href="{_escape(href)}">{markup}</a>'


_LABEL_PX = 80  # horizontal room an x-axis label needs, in pixels
_LABEL = 20  # characters of a row or node label before it is clipped
_STEP_LABEL = 32  # same, for a waterfall row
_MILLISECOND = 0.001
_MINUTES_FROM = 120.0  # durations from this many seconds are shown in minutes


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cls(name: str) -> str:
    """A CSS class for a series name (letters, digits, ``_`` and ``-`` kept)."""
    return "c-" + "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name)


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(top))
    for factor in (1, 2, 2.5, 5, 10):
        if step * factor >= top:
            return step * factor
    return step * 10


def number(value: float) -> str:
    """Format a count or amount compactly (1.2k, 3.4M, 0.012)."""
    if value == 0:
        return "0"
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    if size >= 1:
        return f"{value:.4g}"
    return f"{value:.2g}"


def _legend(names: Sequence[str], y: float) -> str:
    parts, x = [], 48.0
    for name in names:
        parts.append(
            f'<rect class="{_cls(name)}" x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" '
            f'rx="2"/><text x="{x + 14:.0f}" y="{y:.0f}">{escape(name)}</text>'
        )
        x += 22 + 6.5 * len(name)
    return "".join(parts)


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    width: int = 420,
    height: int = 200,
    prefix: str = "",
    href: Href | None = None,
) -> Markup:
    """Vertical bars, one per label, stacked by series (in the mapping's order).

    Args:
        labels: The x-axis labels (one per bar); only a few are printed.
        series: Values per series name, each as long as ``labels``.
        title: The chart's accessible title.
        width: Width in pixels (the SVG scales to its container).
        height: Height in pixels.
        prefix: Prefix of the values (``$``).
        href: Where each bar segment links (the runs it counts).
    """
    left, right, top, bottom = 48, 8, 10, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    ceiling = _nice(max(totals, default=0))
    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        )
    ]
    for tick in range(5):
        value = ceiling * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(prefix)}{escape(number(value))}</text>"
        )
    count = max(len(labels), 1)
    slot = plot_w / count
    bar = max(slot * 0.78, 1.0)
    every = max(1, math.ceil(count / max(plot_w // _LABEL_PX, 1)))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        base = float(top + plot_h)
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / ceiling
            base -= h
            rect = (
                f'<rect class="{_cls(name)}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}"><title>{escape(label)} · {escape(name)}: '
                f"{escape(prefix)}{escape(number(value))}</title></rect>"
            )
            parts.append(_linked(rect, None if href is None else href(i, name)))
        if i % every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if len(series) > 1:
        parts.append(_legend(list(series), height - 8))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def horizontal_bars(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    *,
    title: str,
    width: int = 420,
    series: Sequence[str] = (),
    href: Href | None = None,
) -> Markup:
    """Horizontal bars, one per row label, stacked by series (e.g. error classes by agent).

    ``href(row, name)`` links a segment (``name`` is ``""`` for the row's label).
    """
    left, right, row_h = 110, 40, 22
    names = list(series) or sorted({name for _, values in rows for name in values})
    height = 16 + row_h * max(len(rows), 1) + 26
    ceiling = _nice(max((sum(values.values()) for _, values in rows), default=0))
    plot_w = width - left - right
    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        )
    ]
    for i, (label, values) in enumerate(rows):
        y = 8 + i * row_h
        short = _clip(visible_controls(label), _LABEL)
        text = (
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end"><title>{escape(label)}</title>'
            f"{escape(short)}</text>"
        )
        parts.append(_linked(text, None if href is None else href(i, "")))
        x = float(left)
        for name in names:
            value = values.get(name, 0)
            if value <= 0:
                continue
            w = plot_w * value / ceiling
            rect = (
                f'<rect class="{_cls(name)}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
                f'height="{row_h - 6}" rx="2"><title>{escape(label)} · {escape(name)}: '
                f"{escape(number(value))}</title></rect>"
            )
            parts.append(_linked(rect, None if href is None else href(i, name)))
            x += w
        parts.append(
            f'<text class="axis" x="{x + 6:.1f}" y="{y + 14}">'
            f"{escape(number(sum(values.values())))}</text>"
        )
    parts.append(_legend(names, height - 6))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


@dataclass(frozen=True, slots=True)
class Span:
    """One bar of a waterfall: a step of a run.

    Attributes:
        label: What ran (``#3 tool search``).
        start: Seconds after the run started.
        duration: Seconds it took (``None`` while unfinished).
        status: CSS status name (``completed``, ``failed``, ``started``).
        note: Extra text shown on hover (tries, attempt).
    """

    label: str
    start: float
    duration: float | None
    status: str
    note: str = ""


def waterfall(spans: Sequence[Span], *, total: float, title: str, width: int = 1300) -> Markup:
    """A timeline of steps: one row per step, offset by its start, as long as it took."""
    left, right, row_h = 220, 70, 20
    plot_w = width - left - right
    span_total = max([total, *(s.start + (s.duration or 0) for s in spans)], default=total) or 1e-6
    height = 26 + row_h * max(len(spans), 1)
    parts = [
        (
            f'<svg class="chart waterfall" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        )
    ]
    for tick in range(5):
        x = left + plot_w * tick / 4
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="14" y2="{height}"/>'
            f'<text class="axis" x="{x:.1f}" y="10" text-anchor="middle">'
            f"{escape(duration_text(span_total * tick / 4))}</text>"
        )
    for i, span in enumerate(spans):
        y = 18 + i * row_h
        x = left + plot_w * span.start / span_total
        w = max(plot_w * (span.duration or 0) / span_total, 2.0)
        label = _clip(visible_controls(span.label), _STEP_LABEL)
        tip = f"{span.label}: {duration_text(span.duration)} {span.note}".strip()
        parts.append(
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="{_cls(span.status)}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
            f'height="{row_h - 6}" rx="2"><title>{escape(tip)}</title></rect>'
            f'<text class="axis" x="{x + w + 4:.1f}" y="{y + 13}">'
            f"{escape(duration_text(span.duration))}{escape(' ' + span.note if span.note else '')}"
            "</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


@dataclass(frozen=True, slots=True)
class DagNode:
    """A node of a graph run.

    Attributes:
        name: The node's name.
        status: Its run's status (``not started`` when it has no run).
        href: Link to its run, if it has one.
        after: Names of the nodes it depends on.
    """

    name: str
    status: str
    href: str | None
    after: tuple[str, ...]


def _layers(nodes: Sequence[DagNode]) -> dict[int, list[DagNode]]:
    """Nodes by layer: a node's layer is the length of the longest path from a root to it."""
    by_name = {node.name: node for node in nodes}
    layer: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str]) -> int:
        if name not in layer:
            parents = [p for p in by_name[name].after if p in by_name and p not in seen]
            layer[name] = 1 + max((depth(p, seen | {name}) for p in parents), default=-1)
        return layer[name]

    columns: dict[int, list[DagNode]] = {}
    for node in nodes:
        columns.setdefault(depth(node.name, frozenset()), []).append(node)
    return columns


def dag(nodes: Sequence[DagNode], *, title: str) -> Markup:
    """A graph run's DAG: nodes in layers (longest path from a root), edges left to right."""
    columns = _layers(nodes)
    box_w, box_h, gap_x, gap_y = 170, 50, 70, 18
    width = 20 + max(len(columns), 1) * (box_w + gap_x)
    height = 20 + max((len(c) for c in columns.values()), default=1) * (box_h + gap_y)
    where: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, node in enumerate(members):
            where[node.name] = (10 + col * (box_w + gap_x), 10 + row * (box_h + gap_y))
    parts = [
        (
            f'<svg class="chart dag" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path class="edge-head" '
            'd="M 0 0 L 10 5 L 0 10 z"/></marker></defs>'
        )
    ]
    for node in nodes:
        x2, y2 = where[node.name]
        for parent in node.after:
            if parent not in where:
                continue
            x1, y1 = where[parent]
            sx, sy, ex, ey = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
            mid = (sx + ex) / 2
            parts.append(
                f'<path class="edge" marker-end="url(#arrow)" d="M {sx:.0f} {sy:.0f} C {mid:.0f} '
                f'{sy:.0f}, {mid:.0f} {ey:.0f}, {ex - 2:.0f} {ey:.0f}"/>'
            )
    for node in nodes:
        x, y = where[node.name]
        name = _clip(visible_controls(node.name), _LABEL)
        box = (
            f'<rect class="node {_cls(node.status)}" x="{x:.0f}" y="{y:.0f}" width="{box_w}" '
            f'height="{box_h}" rx="6"/><text class="node-name" x="{x + 10:.0f}" y="{y + 18:.0f}">'
            f'{escape(name)}</text><text class="node-status" x="{x + 10:.0f}" y="{y + 34:.0f}">'
            f"{escape(node.status)}</text>"
        )
        if node.href is not None:
            box = f'<a href="{escape(node.href)}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def duration_text(seconds: float | None) -> str:
    """Format a duration for people (µs, ms, s, min)."""
    if seconds is None:
        return "-"
    if seconds < _MILLISECOND:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < _MINUTES_FROM:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def distribution(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    *,
    title: str,
    width: int = 460,
) -> Markup:
    """Two distributions side by side: one pair of bars (reference, recent) per category.

    Values are shares (0 to 1); a category missing from one side counts as 0 there.
    """
    names = list(dict.fromkeys([*reference, *current]))[:20]
    left, right, row_h = 130, 60, 30
    height = 10 + row_h * max(len(names), 1) + 24
    plot_w = width - left - right
    top = max([*reference.values(), *current.values(), 0.0]) or 1.0
    parts = [
        (
            f'<svg class="chart distribution" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        )
    ]
    for i, name in enumerate(names):
        y = 6 + i * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end"><title>{escape(name)}</title>'
            f"{escape(_clip(visible_controls(name), _LABEL))}</text>"
        )
        for j, (side, values) in enumerate((("reference", reference), ("recent", current))):
            share = float(values.get(name, 0.0))
            w = max(plot_w * share / top, 1.0)
            parts.append(
                f'<rect class="c-{side}" x="{left}" y="{y + 2 + j * 12}" width="{w:.1f}" '
                f'height="10" rx="2"><title>{escape(name)} · {side}: {share:.1%}</title></rect>'
                f'<text class="axis" x="{left + w + 4:.1f}" y="{y + 11 + j * 12}">'
                f"{share:.1%}</text>"
            )
    parts.append(_legend(["reference", "recent"], height - 6))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def sparkline(values: Sequence[float], *, title: str, width: int = 160, height: int = 28) -> Markup:
    """A small bar trend (one bar per time bucket), for a table cell."""
    count = max(len(values), 1)
    top = max([*values, 0]) or 1
    slot = width / count
    parts = [
        (
            f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>"
        )
    ]
    for i, value in enumerate(values):
        if value <= 0:
            continue
        h = max((height - 2) * value / top, 1.5)
        parts.append(
            f'<rect x="{i * slot:.1f}" y="{height - h:.1f}" width="{max(slot - 1, 1):.1f}" '
            f'height="{h:.1f}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
