"""The static HTML report: numbers formatted here, markup in templates/index.html.

Jinja2 with autoescape on, so study names, arm names, factor values and
failure messages from users or plugins can never inject markup. Everything
the page needs (CSS, figures) sits next to it so it opens from the file system.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2
import pandas as pd

from ablate.report import figures, stats

TEMPLATES = Path(__file__).resolve().parent / "templates"
DASH = "—"


def write_report(out_dir: Path, table: pd.DataFrame, histories: list[dict], meta: dict) -> Path:
    """Write index.html and PNG figures into out_dir; return the index.html path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    board = stats.leaderboard(table, meta)
    figs = figures.write_figures(out_dir, table, histories or [], board, meta.get("baseline"))
    html = render_page(build_context(table, meta, board, figs))
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def render_page(context: Mapping) -> str:
    """Render the template; StrictUndefined turns a template typo into an error, not a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("index.html").render(**context)


def build_context(table: pd.DataFrame, meta: Mapping, board: pd.DataFrame,
                  figs: Mapping[str, str]) -> dict:
    """Plain strings and lists for the template, so it holds no formatting logic."""
    factors = stats.factor_columns(table, meta.get("factors") or [])
    status = table["status"] if "status" in table.columns else pd.Series(dtype=object)
    completed = int((status == stats.COMPLETE).sum())
    failed = int(len(table) - completed)
    total = _int(meta.get("runs_total"), len(table))
    baseline = meta.get("baseline")
    return {
        "name": str(meta.get("name") or "Ablation study"),
        "question": str(meta.get("question") or ""),
        "facts": _facts(meta, completed, failed, total),
        "versions": [(str(k), str(v)) for k, v in (meta.get("versions") or {}).items()],
        "train": [(str(k), _value(v)) for k, v in (meta.get("train") or {}).items()],
        "factors": factors,
        "baseline": str(baseline) if baseline else "",
        "rows": [_row(r, factors, baseline) for r in board.to_dict("records")],
        "failures": _failures(table),
        "figures": figs,
    }


def _facts(meta: Mapping, completed: int, failed: int, total: int) -> list[tuple[str, str]]:
    seeds = meta.get("seeds") or []
    runs = f"{completed} completed / {failed} failed / {total} total"
    missing = total - completed - failed
    if missing > 0:
        runs += f" ({missing} not run)"
    facts = [
        ("Data set", str(meta.get("dataset") or DASH)),
        ("Model", str(meta.get("model") or DASH)),
        ("Arms", str(len(meta.get("arms") or [])) if meta.get("arms") else DASH),
        ("Baseline", str(meta.get("baseline") or DASH)),
        ("Seeds", ", ".join(str(s) for s in seeds) + f" (n={len(seeds)})" if seeds else DASH),
        ("Device", str(meta.get("device") or DASH)),
        ("Runs", runs),
        ("Total time", format_seconds(meta.get("seconds"))),
        ("Started", str(meta.get("started") or DASH)),
    ]
    return facts


def _row(r: Mapping, factors: Sequence[str], baseline) -> dict:
    n = int(r["n_complete"])
    return {
        "arm": str(r["arm"]),
        "arm_parts": split_name(str(r["arm"])),
        "is_baseline": baseline is not None and str(r["arm"]) == str(baseline),
        "factors": [_value(r.get(f)) for f in factors],
        "n": n,
        "test": format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], n),
        "gap": format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], n, unit=" pp"),
        "loss_gap": _fmt(r["loss_gap_mean"], "{:.3f}"),
        "val": _fmt(r["val_mean"] * 100 if _finite(r["val_mean"]) else None, "{:.1f}%"),
        "epochs": _fmt(r["epochs_mean"], "{:.1f}"),
        "stop_reasons": [f"{k} x{v}" for k, v in (r.get("stop_reason_counts") or {}).items()],
        "failed": int(r["n_failed"]),
    }


def _failures(table: pd.DataFrame) -> list[dict]:
    if "status" not in table.columns:
        return []
    bad = table[table["status"] != stats.COMPLETE]
    out = []
    for r in bad.to_dict("records"):
        reason = r.get("failure")
        reason = str(reason) if stats.is_present(reason) else "(no reason recorded)"
        arm = str(r.get("arm", ""))
        out.append({"arm": arm, "arm_parts": split_name(arm), "seed": _value(r.get("seed")),
                    "status": str(r.get("status", "")), "reason": reason})
    return out


def split_name(name: str) -> list[str]:
    """Pieces of an arm name ending at its separators; the template puts <wbr>
    between them so long names wrap at "+" or "_" rather than mid-word."""
    return [p for p in re.findall(r"[^+,_/ =]*[+,_/ =]?", name) if p] or [name]


def format_pct_ci(mean, low, high, n: int, unit: str = "%") -> str:
    """"95.3% [94.1, 96.5]" from fractions; one seed has no interval, so say n=1."""
    if not _finite(mean):
        return DASH
    text = f"{mean * 100:.1f}{unit}"
    if n < 2 or not (_finite(low) and _finite(high)):
        return f"{text} (n={n})"
    return f"{text} [{low * 100:.1f}, {high * 100:.1f}]"


def format_seconds(seconds) -> str:
    """Wall time as "1h 02m 03s" — a reviewer wants the cost at a glance."""
    if not _finite(seconds):
        return DASH
    s = int(round(float(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    return f"{m}m {s:02d}s" if m else f"{s}s"


def _value(v) -> str:
    """Factor and setting values: compact numbers, dash for not-applicable."""
    if not stats.is_present(v):
        return DASH
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _fmt(v, pattern: str) -> str:
    return pattern.format(float(v)) if _finite(v) else DASH


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _int(v, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default
