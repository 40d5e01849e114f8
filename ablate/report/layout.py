"""Figure margins set in inches from measured label widths, instead of ``tight_layout``.

``tight_layout`` lays every tick and label out once to measure the figure, then the save
lays them out again: a quarter of a figure's drawing time. The arms figure knows what is
wide in it (the arm names), so measuring those few strings is enough.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
from matplotlib.font_manager import FontProperties


def text_inches(fig: plt.Figure, texts: Iterable[object], fontsize: float, bold: bool = False) -> float:
    """The widest line of these texts in inches, measured by the renderer that draws them."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    prop = FontProperties(size=fontsize, weight="bold" if bold else "normal")
    widths = (
        renderer.get_text_width_height_descent(line, prop, ismath=False)[0]
        for text in texts
        for line in str(text).split("\n")
        if line
    )
    return max(widths, default=0.0) / fig.dpi


def grid_inches(
    fig: plt.Figure,
    nrows: int,
    ncols: int,
    *,
    left: float,
    right: float,
    top: float,
    bottom: float,
    wgap: float,
    hgap: float,
) -> dict[str, float]:
    """Subplot parameters (fractions, as ``gridspec_kw`` takes them) for margins and gaps in inches."""
    width, height = fig.get_size_inches()
    axes_w = max((width - left - right - wgap * (ncols - 1)) / ncols, 0.1)
    axes_h = max((height - top - bottom - hgap * (nrows - 1)) / nrows, 0.1)
    return {
        "left": left / width,
        "right": 1 - right / width,
        "top": 1 - top / height,
        "bottom": bottom / height,
        "wspace": wgap / axes_w,
        "hspace": hgap / axes_h,
    }
