"""Number formatting shared by the HTML page, summary.md, leaderboard.md/.tex and
compare.html, so every output shows the same digits for the same number."""

from __future__ import annotations

import math
from typing import Any

from ablate.report.stats import is_present

DASH = "—"


def finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fmt(v: Any, pattern: str) -> str:
    return pattern.format(float(v)) if finite(v) else DASH


def format_pct_ci(mean: Any, low: Any, high: Any, n: int, unit: str = "%") -> str:
    """ "95.3% [94.1, 96.5]" from fractions; one seed has no interval, so say n=1."""
    if not finite(mean):
        return DASH
    text = f"{mean * 100:.1f}{unit}"
    if n < 2 or not (finite(low) and finite(high)):
        return f"{text} (n={n})"
    return f"{text} [{low * 100:.1f}, {high * 100:.1f}]"


def format_seconds(seconds: Any) -> str:
    """Wall time as "1h 02m 03s" — a reviewer wants the cost at a glance."""
    if not finite(seconds):
        return DASH
    s = round(float(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    return f"{m}m {s:02d}s" if m else f"{s}s"


def format_p(p: Any) -> str:
    """ "p = 0.003" / "p < 0.001"; never a bare NaN."""
    if not finite(p):
        return "no test"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def points(v: Any, signed: bool = True) -> str:
    """A fraction as percentage points, "+1.8"; dash when undefined."""
    if not finite(v):
        return DASH
    if round(float(v) * 100, 1) == 0:
        return "0.0"  # never "-0.0" or "+0.0"
    return f"{v * 100:+.1f}" if signed else f"{v * 100:.1f}"


def value(v: Any) -> str:
    """Factor and setting values: compact numbers, dash for not-applicable."""
    if not is_present(v):
        return DASH
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
