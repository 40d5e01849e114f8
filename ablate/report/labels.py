"""Point labels that never overlap each other, the points, or the axes' edge.

Greedy placement in display space: each label tries positions on rings of
growing radius around its point and takes the first whose box is free; points
that coincide (identical arms) share one label ("3, 7"). Call it after the
axes' limits and the figure's layout are final: a later tight_layout would
move the points under their labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

RADII = (6, 12, 20, 30, 42, 56, 72, 90)  # in points
ANGLES = (45, 135, -45, -135, 0, 180, 90, -90, 22, 158, -22, -158)
POINT_HALF = 4.0  # half the side of the box kept free around each point, in pixels
SAME_PIXELS = 3.0
HAlign = Literal["left", "center", "right"]
VAlign = Literal["bottom", "center", "top"]


def group_points(xy: np.ndarray, texts: Sequence[str]) -> list[tuple[np.ndarray, str]]:
    """Points closer than SAME_PIXELS in display space share one label."""
    groups: list[tuple[np.ndarray, list[str]]] = []
    for p, t in zip(xy, texts):
        for q, names in groups:
            if np.hypot(*(p - q)) <= SAME_PIXELS:
                names.append(t)
                break
        else:
            groups.append((p, [t]))
    return [(p, ", ".join(names)) for p, names in groups]


def place(
    ax: Axes,
    x: Sequence[float],
    y: Sequence[float],
    texts: Sequence[str],
    fontsize: float = 8,
    weights: Sequence[str] | None = None,
) -> list[Annotation]:
    """Annotate (x, y) points with texts at free spots; returns the annotations placed."""
    ax.set_xlim(ax.get_xlim())  # settle and freeze the lazily autoscaled limits the points sit on
    ax.set_ylim(ax.get_ylim())
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    xy = ax.transData.transform(np.column_stack([x, y])) if len(x) else np.zeros((0, 2))
    bold = {t for t, w in zip(texts, weights or [""] * len(texts)) if w == "bold"}
    frame = ax.get_window_extent(renderer)
    side = 2 * POINT_HALF
    taken = [Bbox.from_bounds(px - POINT_HALF, py - POINT_HALF, side, side) for px, py in xy]
    placed = []
    for p, text in group_points(xy, texts):
        data = tuple(ax.transData.inverted().transform(p))
        style: dict[str, Any] = {
            "textcoords": "offset points",
            "fontsize": fontsize,
            "zorder": 5,
            "weight": "bold" if text in bold else "normal",
        }
        probe = ax.annotate(text, data, xytext=(0, 0), **style)
        spot = _first_free(probe, renderer, frame, taken)
        probe.remove()
        if spot is None:
            continue
        box, offset, ha, va = spot
        arrow = (
            {"arrowstyle": "-", "lw": 0.5, "color": "#888888", "shrinkA": 0, "shrinkB": 2}
            if math.hypot(*offset) > RADII[1] + 1
            else None
        )  # far from its point: a leader line
        placed.append(ax.annotate(text, data, xytext=offset, ha=ha, va=va, arrowprops=arrow, **style))
        taken.append(box)
    return placed


def _first_free(
    ann: Annotation, renderer: Any, frame: Bbox, taken: list[Bbox]
) -> tuple[Bbox, tuple[float, float], HAlign, VAlign] | None:
    """The first candidate spot for ``ann`` whose box is inside the frame and overlaps nothing."""
    for radius in RADII:
        for angle in ANGLES:
            dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
            ha: HAlign = "left" if dx > 1 else "right" if dx < -1 else "center"
            va: VAlign = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            ann.xyann = (dx, dy)
            ann.set_horizontalalignment(ha)
            ann.set_verticalalignment(va)
            box = ann.get_window_extent(renderer).padded(1.0)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in taken):
                return box, (dx, dy), ha, va
    return None
