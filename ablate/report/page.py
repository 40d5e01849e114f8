"""The static HTML report: numbers formatted here, markup in templates/index.html.

Jinja2 with autoescape on, so study names, arm names, factor values and
failure messages from users or plugins can never inject markup. Everything
the page needs (CSS, figures) sits next to it so it opens from the file system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2
import pandas as pd

from ablate.report import effects, figures, fmt, paired, stats
from ablate.report.analysis import Analysis, analyse
from ablate.report.exports import findings, run_time, write_exports
from ablate.report.fmt import DASH, format_pct_ci, format_seconds  # noqa: F401  (re-exported)

TEMPLATES = Path(__file__).resolve().parent / "templates"
FANOVA_EVALUATOR = "optuna.importance.FanovaImportanceEvaluator(seed=0)"


def write_report(out_dir: Path, table: pd.DataFrame, histories: list[dict], meta: dict) -> Path:
    """Write index.html, PNG figures, leaderboard.md/.tex and summary.md into out_dir;
    return the index.html path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    an = analyse(table, meta)
    figs = figures.write_figures(out_dir, an, histories or [])
    write_exports(out_dir, an)
    html = render_page(build_context(an, figs))
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def render_page(context: Mapping, template: str = "index.html") -> str:
    """Render a template; StrictUndefined turns a template typo into an error, not a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(template).render(**context)


def build_context(an: Analysis, figs: Mapping[str, str]) -> dict:
    """Plain strings and lists for the template, so it holds no formatting logic."""
    table, meta, board = an.table, an.meta, an.board
    status = table["status"] if "status" in table.columns else pd.Series(dtype=object)
    completed = int((status == stats.COMPLETE).sum())
    failed = int(len(table) - completed)
    total = fmt.as_int(meta.get("runs_total"), len(table))
    shown = figures.curve_arms(board[board["n_complete"] > 0] if len(board) else board, an.baseline)
    n_done = int((board["n_complete"] > 0).sum()) if len(board) else 0
    return {
        "name": str(meta.get("name") or "Ablation study"),
        "question": str(meta.get("question") or ""),
        "facts": _facts(meta, completed, failed, total, table),
        "versions": [(str(k), str(v)) for k, v in (meta.get("versions") or {}).items()],
        "train": [(str(k), fmt.value(v)) for k, v in (meta.get("train") or {}).items()],
        "factors": an.columns,
        "baseline": an.baseline or "",
        "baseline_note": an.baseline_note,
        "rows": [_row(r, an.columns, an.baseline, an.pareto) for r in board.to_dict("records")],
        "failures": _failures(table),
        "search_runs": _search_runs(meta),
        "figures": dict(figs),
        "findings": findings(an),
        "comparisons": [_comparison_block(m, comps) for m, comps in an.comparisons.items()],
        "effects": _effect_rows(an),
        "varied": an.varied,
        "reference": [(f, str(an.reference.get(f, ""))) for f in an.varied],
        "interactions": [_interaction_row(it) for it in an.interactions[:effects.MAX_INTERACTION_ROWS]],
        "interactions_cut": max(0, len(an.interactions) - effects.MAX_INTERACTION_ROWS),
        "pairs_cut": max(0, len(an.varied) * (len(an.varied) - 1) // 2 - figures.MAX_PANELS),
        "fanova": [(k, f"{v:.2f}") for k, v in sorted(an.fanova.items(), key=lambda kv: -kv[1])],
        "fanova_note": an.fanova_note,
        "fanova_evaluator": FANOVA_EVALUATOR,
        "pareto": an.pareto,
        "curves_note": (f"Showing {len(shown)} of {n_done} arms: the best by mean test accuracy"
                        + (" and the baseline" if an.baseline in shown else "") + "."
                        if n_done > len(shown) else ""),
    }


def _comparison_block(metric: str, comps: list[paired.Comparison]) -> dict:
    words, higher = paired.METRICS[metric]
    return {
        "metric": metric, "title": words.capitalize(),
        "better": "higher is better" if higher else "lower is better",
        "sentences": [paired.sentence(c) for c in comps if c.significant],
        "others": paired.summary_lines(comps)[sum(c.significant for c in comps):],
        "rows": [{"arm": c.arm, "arm_parts": split_name(c.arm), "n": c.n,
                  "diff": fmt.points(c.diff),
                  "ci": f"{fmt.points(c.low)} to {fmt.points(c.high)}" if fmt.finite(c.low) else DASH,
                  "d_z": fmt.fmt(c.d_z, "{:.2f}"),
                  "p": fmt.format_p(c.p).removeprefix("p = ") if c.tested else DASH,
                  "p_holm": fmt.format_p(c.p_holm).removeprefix("p = ") if c.tested else DASH,
                  "significant": c.significant, "note": c.note} for c in comps],
    }


def _effect_rows(an: Analysis) -> list[dict]:
    rows = []
    for f in an.varied:
        acc, gap = an.main_effects["test_accuracy"][f], an.main_effects["gap"][f]
        for i, (a, g) in enumerate(zip(acc, gap)):
            rows.append({"factor": f if i == 0 else "", "level": a.level,
                         "is_ref": a.level == an.reference.get(f), "n": a.n,
                         "test": format_pct_ci(a.mean, a.low, a.high, a.n),
                         "gap": format_pct_ci(g.mean, g.low, g.high, g.n, unit=" pp")})
    return rows


def _interaction_row(it: effects.Interaction) -> dict:
    return {"pair": f"{it.f} × {it.g}", "levels": f"{it.f}={it.a}, {it.g}={it.b}", "n": it.n,
            "alone_a": fmt.points(it.effect_a), "alone_b": fmt.points(it.effect_b),
            "joint": fmt.points(it.joint), "contrast": fmt.points(it.contrast),
            "ci": f"{fmt.points(it.low)} to {fmt.points(it.high)}" if fmt.finite(it.low) else DASH,
            "verdict": it.verdict}


def _facts(meta: Mapping, completed: int, failed: int, total: int,
           table: pd.DataFrame) -> list[tuple[str, str]]:
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
        ("Budget", _budget(meta, table)),
        ("Device", str(meta.get("device") or DASH)),
        ("Runs", runs),
        ("Wall time", format_seconds(meta.get("seconds")) + " (last ablate run command)"
         if fmt.finite(meta.get("seconds")) else DASH),
        ("Run time", run_time(table)),
        ("Started", str(meta.get("started") or DASH)),
    ]
    return facts


def _budget(meta: Mapping, table: pd.DataFrame) -> str:
    """What the study was allowed to spend: epochs per run, batch and optimizer, epochs actually run."""
    train = meta.get("train") or {}
    parts = []
    if train.get("epochs") is not None:
        parts.append(f"up to {train['epochs']} epochs per run")
    extra = ", ".join(f"{k} {train[k]}" for k in ("batch_size", "optimizer", "lr") if k in train)
    if extra:
        parts.append(extra)
    if "epochs" in table.columns and len(table):
        ran = pd.to_numeric(table["epochs"], errors="coerce").fillna(0).sum()
        parts.append(f"{int(ran)} epochs run in all")
    return "; ".join(parts) or DASH


def _row(r: Mapping, factors: Sequence[str], baseline, pareto: Sequence[str] = ()) -> dict:
    n = int(r["n_complete"])
    return {
        "arm": str(r["arm"]),
        "arm_parts": split_name(str(r["arm"])),
        "is_baseline": baseline is not None and str(r["arm"]) == str(baseline),
        "tag_baseline": baseline is not None and str(r["arm"]) == str(baseline) and str(r["arm"]) != "baseline",
        "factors": [fmt.value(r.get(f)) for f in factors],
        "n": n,
        "test": format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], n),
        "gap": format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], n, unit=" pp"),
        "loss_gap": fmt.fmt(r["loss_gap_mean"], "{:.3f}"),
        "val": fmt.fmt(r["val_mean"] * 100 if fmt.finite(r["val_mean"]) else None, "{:.1f}%"),
        "epochs": fmt.fmt(r["epochs_mean"], "{:.1f}"),
        "stop_reasons": [f"{k} x{v}" for k, v in (r.get("stop_reason_counts") or {}).items()],
        "failed": int(r["n_failed"]),
        "pareto": str(r["arm"]) in set(pareto),
    }


def _search_runs(meta: Mapping) -> list[dict]:
    """The search stage of a search with confirmation, best validation accuracy first."""
    pct = lambda v: "—" if not stats.is_present(v) else f"{100 * float(v):.1f}%"
    return [{"arm": str(r["arm"]), "arm_parts": split_name(str(r["arm"])), "seed": fmt.value(r["seed"]),
             "status": str(r["status"]), "val": pct(r["val_accuracy"]), "test": pct(r["test_accuracy"]),
             "gap": "—" if not stats.is_present(r["gap"]) else f"{100 * float(r['gap']):.1f} pp",
             "epochs": fmt.value(r["epochs"]), "confirmed": bool(r["confirmed"])}
            for r in meta.get("search_runs") or []]


def _failures(table: pd.DataFrame) -> list[dict]:
    if "status" not in table.columns:
        return []
    bad = table[table["status"] != stats.COMPLETE]
    out = []
    for r in bad.to_dict("records"):
        reason = r.get("failure")
        reason = str(reason) if stats.is_present(reason) else "(no reason recorded)"
        arm = str(r.get("arm", ""))
        out.append({"arm": arm, "arm_parts": split_name(arm), "seed": fmt.value(r.get("seed")),
                    "status": str(r.get("status", "")), "reason": reason})
    return out


def split_name(name: str) -> list[str]:
    """Pieces of an arm name ending at its separators; the template puts <wbr>
    between them so long names wrap at "+" or " " rather than mid-word ("early_stopping" stays whole)."""
    return [p for p in re.findall(r"[^+,/ =]*[+,/ =]?", name) if p] or [name]
