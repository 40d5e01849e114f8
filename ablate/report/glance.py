"""The report's answer at a glance: every claim the Findings consider, in one figure.

One row per comparison (each factor level against its reference, or each arm
against the baseline), test accuracy on the left and the gap on the right: the
difference with its interval, the zero line, the margin band of an adaptive
study, and the verdict as the marker's colour and shape. The rows and words come
from ``glance_rows`` (no matplotlib), the drawing from ``glance_figure``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ablate.report.claims import ARM, MAIN, Claim, Family

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from ablate.report.analysis import Analysis

MAX_ROWS = 30  # beyond this the rows are the largest effects; the table below has them all
# verdict -> (colour, marker, legend words)
STYLE = {
    "different": ("#c0392b", "D", "different: interval excludes 0"),
    "equivalent": ("#27ae60", "s", "equivalent: interval within the margin"),
    "undecided": ("#7f8c8d", "o", "undecided: max seeds reached"),
    "open": ("#2980b9", "o", "open: rounds left"),
    "significant": ("#c0392b", "D", "significant after Holm correction"),
    "not significant": ("#7f8c8d", "o", "not significant"),
    "no test": ("#bbbbbb", "x", "no test"),
}
PANELS = (("test_accuracy", "Test accuracy: difference (points)"), ("gap", "Gap, train − test: difference (points)"))


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    estimate: float  # points
    low: float
    high: float
    verdict: str


def glance_rows(family: Family) -> tuple[list[Row], int]:
    """(rows to draw, rows left out) for the claims the figure shows."""
    kinds = (MAIN,) if family.crossed else (ARM,)
    claims = [c for c in family.claims if c.kind in kinds and c.metric in dict(PANELS)]
    labels = list(dict.fromkeys(_label(c) for c in claims))
    if len(labels) > MAX_ROWS:
        size: dict[str, float] = {}
        for c in claims:
            size[_label(c)] = max(size.get(_label(c), 0.0), abs(c.estimate) if math.isfinite(c.estimate) else 0.0)
        keep = set(sorted(labels, key=lambda k: -size[k])[:MAX_ROWS])
        claims = [c for c in claims if _label(c) in keep]
    rows = [Row(_label(c), c.metric, 100 * c.estimate, 100 * c.low, 100 * c.high, _verdict(c)) for c in claims]
    return rows, max(0, len(labels) - MAX_ROWS)


def glance_context(an: Analysis) -> dict[str, Any]:
    """The page's words for the figure: what its intervals are and how to read its verdicts."""
    fam = an.family
    _, cut = glance_rows(fam)
    what = (
        "each factor level against its reference level, averaged over the other factors"
        if fam.crossed
        else (f"each arm against {an.baseline}")
    )
    more = (
        f" The {cut} comparisons with the smallest differences are left out here (see the table below)." if cut else ""
    )
    if fam.adaptive:
        margin = 100 * fam.margin
        caption = (
            f"The answer at a glance: {what}, in points, test accuracy left, gap right (a lower gap is less "
            f"overfitting). Each interval holds under the adaptive stopping rule, corrected over the "
            f"{len(fam.claims)} comparisons and the {len(fam.rounds)} planned looks. Different: the interval misses "
            f"zero (the black line); equivalent: it lies inside the green band of ±{margin:g} points (the margin: "
            "no difference that matters); undecided: neither, with no seeds left to add."
        )
        return {"margin": margin, "glance_caption": caption + more}
    caption = (
        f"The answer at a glance: {what}, in points, test accuracy left, gap right (a lower gap is less "
        "overfitting), with 95% confidence intervals (not adjusted) and the zero line. A red diamond survives the "
        "Holm correction over every claim the findings could make; the rest are not told apart from zero."
    )
    return {"margin": 0.0, "glance_caption": caption + more}


def _label(c: Claim) -> str:
    return f"{c.subject}: {c.level} vs {c.ref}" if c.kind == MAIN else f"{c.subject} vs {c.ref}"


def _verdict(c: Claim) -> str:
    if c.decision:
        return c.decision
    if not c.tested:
        return "no test"
    return "significant" if c.significant else "not significant"


def glance_figure(rows: Sequence[Row], margin_points: float) -> plt.Figure:
    """Two panels sharing the comparisons: intervals, zero line, margin band, verdict markers."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ablate.report.layout import grid_inches, text_inches  # matplotlib: only when this draws

    labels = list(dict.fromkeys(r.label for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.3 + 0.42 * max(len(labels), 1)), sharey=True)
    if not rows:
        for ax in axes:
            ax.set_axis_off()
        axes[0].text(0.5, 0.5, "No comparison to show", ha="center", va="center", transform=axes[0].transAxes)
        return fig
    y = {label: i for i, label in enumerate(labels)}
    for ax, (metric, title) in zip(axes, PANELS):
        if math.isfinite(margin_points):
            ax.axvspan(-margin_points, margin_points, color="#27ae60", alpha=0.12, lw=0)
        ax.axvline(0, color="#333333", lw=1)
        for r in (r for r in rows if r.metric == metric):
            color, marker, _ = STYLE[r.verdict]
            if math.isfinite(r.low):
                ax.plot([r.low, r.high], [y[r.label]] * 2, color=color, lw=2.2, solid_capstyle="butt")
            if math.isfinite(r.estimate):
                ax.plot(r.estimate, y[r.label], marker=marker, color=color, ms=7, ls="none")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=9)
    axes[0].set_ylim(len(labels) - 0.5, -0.5)
    used = list(dict.fromkeys(r.verdict for r in rows))
    handles = [
        Line2D([], [], color=STYLE[v][0], marker=STYLE[v][1], lw=2, label=STYLE[v][2]) for v in STYLE if v in used
    ]
    if math.isfinite(margin_points):
        handles.append(
            Line2D(
                [], [], color="#27ae60", alpha=0.3, lw=8, label=f"margin ±{margin_points:g} points (equivalent inside)"
            )
        )
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize=8, frameon=False)
    left = max(text_inches(fig, labels, 9), 0.4) + 0.25  # the comparisons' names, ticks and a pad
    legend = 0.25 * math.ceil(len(handles) / 3) + 0.1
    fig.subplots_adjust(
        **grid_inches(fig, 1, 2, left=left, right=0.2, top=0.35, bottom=0.4 + legend, wgap=0.25, hgap=0.0)
    )
    return fig
