"""The static HTML report: numbers formatted here, markup in templates/index.html.

Jinja2 with autoescape on, so study names, arm names, factor values and
failure messages from users or plugins can never inject markup. Everything
the page needs (CSS, figures) sits next to it so it opens from the file system.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from ablate.engine.store.record import StudyRecord
from ablate.report.analysis import Analysis, analyse
from ablate.report.claims import ARM, BEST, INTERACTION, MAIN, Claim, arm_levels
from ablate.report.curves import has_eval_train, lr_schedules, runs_of
from ablate.report.effects import MAX_INTERACTION_ROWS
from ablate.report.exports import run_time, write_exports
from ablate.report.figure_files import curve_arms, rendering
from ablate.report.figure_limits import MAX_CURVE_SEEDS, MAX_LEVELS, MAX_LINES, MAX_PANELS
from ablate.report.findings import METRIC_WORDS, findings, saturation_lines, uncertainty
from ablate.report.fmt import DASH, finite, fmt, format_p, format_pct_ci, format_seconds, points, value
from ablate.report.glance import glance_context
from ablate.report.long_tables import fold
from ablate.report.paired import PAIRED_METRICS, Comparison, sentence, summary_lines
from ablate.report.settings import arm_settings, fixed_settings
from ablate.report.stats import COMPLETE, is_present
from ablate.report.verdicts import ANTAGONISM, DEFINITIONS, REDUNDANCY, SYNERGY

if TYPE_CHECKING:  # the pool's type only: its module is the figure workers'
    from ablate.report.figure_pool import ForkedPool

TEMPLATES = Path(__file__).resolve().parent / "templates"
FANOVA_EVALUATOR = "optuna.importance.FanovaImportanceEvaluator(seed=0)"


def write_report(
    out_dir: Path,
    table: pd.DataFrame,
    histories: list[dict[str, Any]],
    record: StudyRecord,
    pool: ForkedPool | None = None,
    while_drawing: Callable[[], None] | None = None,
) -> Path:
    """Write index.html, PNG figures, leaderboard.md/.tex and summary.md into out_dir;
    return the index.html path. ``pool``: figure workers forked earlier (``early_workers``);
    ``while_drawing``: work done first once the figures are drawing (the results tables)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    an = analyse(table, record)
    path = out_dir / "index.html"
    with rendering(out_dir, an, histories or [], pool=pool) as figs:  # figures draw while the page is written
        if while_drawing is not None:
            while_drawing()
        write_exports(out_dir, an)
        path.write_text(render_page(build_context(an, figs, histories or [])), encoding="utf-8")
    return path


def render_page(context: Mapping, template: str = "index.html") -> str:
    """Render a template; StrictUndefined turns a template typo into an error, not a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    return env.get_template(template).render(**context)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in a private per-user temp folder (checked against
    the templates' modification times): compiling them costs 0.15 s a report."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except OSError:  # no writable temp folder: compile every time
        return None


def build_context(an: Analysis, figs: Mapping[str, str], histories: Sequence[Mapping[str, Any]] = ()) -> dict:
    """Plain strings and lists for the template, so it holds no formatting logic."""
    table, rec = an.table, an.record
    status = table["status"] if "status" in table.columns else pd.Series(dtype=object)
    completed = int((status == COMPLETE).sum())
    context = {
        "name": rec.name or "Ablation study",
        "question": rec.question,
        "facts": _facts(rec, completed, int(len(table) - completed), rec.runs_total or len(table), table),
        "versions": [(str(k), str(v)) for k, v in rec.versions.items()],
        "fixed_settings": fixed_settings(rec),
        "arm_settings": [
            {"arm": a, "arm_parts": split_name(a), "settings": s}
            for a, s in arm_settings(rec, histories, _arm_values(an)).items()
        ],
        "factors": an.columns,
        "baseline": an.baseline or "",
        "baseline_note": an.baseline_note,
        "best": an.best or "",
        "rows": [_row(r, an) for r in an.board.to_dict("records")],
        "failures": _failures(table),
        "search_runs": _search_runs(rec),
        "figures": dict(figs),
        "findings": findings(an),
        "uncertainty": uncertainty(an),
        "claims": [_claim_row(c) for c in an.family.claims],
        "comparisons": [_comparison_block(m, comps) for m, comps in an.comparisons.items()],
        "curves_note": _curves_note(an, histories),
        **_factor_context(an),
        **glance_context(an),
        "facts_digest": _digest(rec, completed, table),
    }
    return fold(an, context)


def _digest(rec: StudyRecord, completed: int, table: pd.DataFrame) -> str:
    """The facts in one line, for the folded list's summary."""
    arms = f"{len(rec.arms)} arms" if rec.arms else ""
    return " · ".join(p for p in (rec.dataset, rec.model, arms, f"{completed} runs completed", run_time(table)) if p)


def _factor_context(an: Analysis) -> dict:
    """The Factors section: main effects, interactions with their verdicts, importance."""
    return {
        "effects": _effect_rows(an),
        "varied": an.varied,
        "reference": [(f, str(an.reference.get(f, ""))) for f in an.varied],
        "interactions": [_interaction_row(c) for c in an.interactions[:MAX_INTERACTION_ROWS]],
        "interactions_cut": max(0, len(an.interactions) - MAX_INTERACTION_ROWS),
        "interaction_note": interaction_note(an),
        "never_crossed": bool(len(an.varied) >= 2 and not an.interactions),
        "verdicts": [(k, DEFINITIONS[k]) for k in (SYNERGY, REDUNDANCY, ANTAGONISM)],
        "pairs_cut": max(0, len(an.varied) * (len(an.varied) - 1) // 2 - MAX_PANELS),
        "levels_note": _levels_note(an),
        "importance": _importance_rows(an),
        "fanova_note": an.fanova_note,
        "fanova_evaluator": FANOVA_EVALUATOR,
        "pareto": [f"{a} ({an.pareto_freq.get(a, 0.0):.0%})" for a in an.pareto],
    }


def _arm_values(an: Analysis) -> dict[str, dict[str, Any]]:
    """{arm: {factor column: value}} in leaderboard order."""
    return {str(r["arm"]): {c: r.get(c) for c in an.columns} for r in an.board.to_dict("records")}


def _levels_note(an: Analysis) -> str:
    """What the effects and interaction figures leave out of a factor with many levels."""
    many = [f for f in an.varied if an.levels[f].nunique() > MAX_LEVELS]
    if not many:
        return ""
    return (
        f"{', '.join(many)} {'has' if len(many) == 1 else 'have'} more than {MAX_LEVELS} levels: the figure draws "
        f"the first {MAX_LEVELS} (and interaction plots at most {MAX_LINES} lines); the tables list every level."
    )


def _curves_note(an: Analysis, histories: Sequence[Mapping[str, Any]]) -> str:
    """Which arms the curves show, which train curve they draw, and the saturation caveat."""
    done = an.board[an.board["n_complete"] > 0] if len(an.board) else an.board
    shown = curve_arms(done, an.baseline)
    parts = []
    if len(done) > len(shown):
        parts.append(
            f"Showing {len(shown)} of {len(done)} arms: the best by mean validation accuracy"
            + (" and the baseline" if an.baseline in shown else "")
            + "."
        )
    drawn = set(shown)
    per_arm = Counter(str(h.get("arm")) for h in histories if str(h.get("arm")) in drawn)
    if per_arm and max(per_arm.values()) > MAX_CURVE_SEEDS:
        parts.append(
            f"Each panel draws the first {MAX_CURVE_SEEDS} of its arm's seeds (up to {max(per_arm.values())})."
        )
    if histories and not has_eval_train(histories):
        parts.append(
            "These runs recorded only the running train-mode accuracy (dropout on, augmented), "
            "drawn dashed: it is not the leaderboard's eval-mode train accuracy."
        )
    if lr_schedules({arm: runs_of(histories, arm) for arm in shown}):
        parts.append("The last panel is the learning rate at each epoch's last step, one line per schedule.")
    parts += saturation_lines(an)
    return " ".join(parts)


def interaction_note(an: Analysis) -> str:
    """Why the interaction table's "alone" effects can differ from the against-baseline table's."""
    if not an.interactions:
        return ""
    if len(an.varied) == 2:
        return (
            'With two factors, each "alone" effect is the same comparison as the matching row of '
            "Against the baseline; the numbers differ only where runs failed (this table fits every "
            "completed run, that one pairs the seeds both arms completed)."
        )
    rest = ", ".join(f"{f}={an.reference.get(f)}" for f in an.varied)
    return (
        'Each "alone" effect here is averaged over the levels of the factors not in the pair, as '
        "main effects are; Against the baseline instead holds every other factor at the baseline's level "
        f"({rest}). The two differ wherever a third factor changes the effect" + _differences(an) + "."
    )


def _differences(an: Analysis) -> str:
    """ ": e.g. dropout=... +1.0 here, +1.8 against the baseline" for up to three effects that differ."""
    if not an.comparisons:
        return ""
    lv = arm_levels(an.table, an.levels, an.varied)
    vs = {c.arm: c.diff for c in an.comparisons.get("test_accuracy", [])}
    seen, out = set(), []
    for c in an.interactions:
        for f, level, alone in ((c.subject, c.level, c.alone_a), (c.other, c.other_level, c.alone_b)):
            want = {**an.reference, f: level}
            arm = next((a for a, x in lv.items() if x == want), None)
            if arm in vs and (f, level) not in seen and abs(vs[arm] - alone) >= 0.0005:
                seen.add((f, level))
                out.append(f"{f}={level}: {points(alone)} here, {points(vs[arm])} against the baseline")
    return ": " + "; ".join(out[:3]) if out else ""


def _claim_row(c: Claim) -> dict:
    subject = {
        MAIN: f"{c.subject}: {c.level} vs {c.ref}",
        INTERACTION: f"{c.subject}={c.level} × {c.other}={c.other_level}",
        ARM: f"{c.subject} vs {c.ref}",
        BEST: f"{c.ref} (best) vs {c.subject}",
    }[c.kind]
    return {
        "kind": {MAIN: "main effect", INTERACTION: "interaction", ARM: "arm", BEST: "best arm"}[c.kind],
        "subject": subject,
        "metric": METRIC_WORDS.get(c.metric, c.metric),
        "estimate": points(c.estimate),
        "ci": f"{points(c.low)} to {points(c.high)}" if finite(c.low) else DASH,
        "p": format_p(c.p).removeprefix("p = ") if c.tested else DASH,
        "p_holm": format_p(c.p_holm).removeprefix("p = ") if c.tested else DASH,
        "significant": c.significant,
        "note": f"{c.decision}: {c.note}" if c.decision else c.note,
    }


def _importance_rows(an: Analysis) -> list[dict]:
    order = {k: an.shares[k][0] if k in an.shares else an.fanova.get(k, 0.0) for k in {*an.shares, *an.fanova}}
    keys = sorted(order, key=lambda k: -order[k])
    return [
        {
            "factor": k,
            "share": f"{order[k]:.2f}",
            "interval": f"{an.shares[k][1]:.2f} to {an.shares[k][2]:.2f}" if k in an.shares else DASH,
        }
        for k in keys
    ]


def _comparison_block(metric: str, comps: list[Comparison]) -> dict:
    words, higher = PAIRED_METRICS[metric]
    return {
        "metric": metric,
        "title": words.capitalize(),
        "better": "higher is better" if higher else "lower is better",
        "sentences": [sentence(c) for c in comps if c.significant],
        "others": summary_lines(comps)[sum(c.significant for c in comps) :],
        "rows": [
            {
                "arm": c.arm,
                "arm_parts": split_name(c.arm),
                "n": c.n,
                "diff": points(c.diff),
                "ci": f"{points(c.low)} to {points(c.high)}" if finite(c.low) else DASH,
                "d_z": fmt(c.d_z, "{:.2f}"),
                "p": format_p(c.p).removeprefix("p = ") if c.tested else DASH,
                "p_holm": format_p(c.p_holm).removeprefix("p = ") if c.tested else DASH,
                "significant": c.significant,
                "note": c.note,
            }
            for c in comps
        ],
    }


def _effect_rows(an: Analysis) -> list[dict]:
    rows = []
    for f in an.varied:
        acc, gap = an.main_effects["test_accuracy"][f], an.main_effects["gap"][f]
        for i, (a, g) in enumerate(zip(acc, gap)):
            rows.append(
                {
                    "factor": f if i == 0 else "",
                    "level": a.level,
                    "is_ref": a.level == an.reference.get(f),
                    "n": a.n,
                    "test": format_pct_ci(a.mean, a.low, a.high, a.n),
                    "gap": format_pct_ci(g.mean, g.low, g.high, g.n, unit=" pp"),
                }
            )
    return rows


def _interaction_row(c: Claim) -> dict:
    return {
        "pair": f"{c.subject} × {c.other}",
        "levels": f"{c.subject}={c.level}, {c.other}={c.other_level}",
        "alone_a": points(c.alone_a),
        "alone_b": points(c.alone_b),
        "joint": points(c.joint),
        "sum": points(c.alone_a + c.alone_b),
        "contrast": points(c.estimate),
        "ci": f"{points(c.low)} to {points(c.high)}" if finite(c.low) else DASH,
        "p_holm": format_p(c.p_holm).removeprefix("p = ") if c.tested else DASH,
        "verdict": _interaction_words(c),
        "significant": c.significant,
    }


def _interaction_words(c: Claim) -> str:
    """The reading of an interaction; an adaptive study's verdict first."""
    if c.decision == "equivalent":
        return "equivalent: they add up, within the margin"
    if c.decision in ("undecided", "open"):
        return f"{c.decision}: the interval is too wide to tell"
    return c.verdict[1] if c.tested else f"not tested: {c.note}"


def _facts(rec: StudyRecord, completed: int, failed: int, total: int, table: pd.DataFrame) -> list[tuple[str, str]]:
    runs = f"{completed} completed / {failed} failed / {total} total"
    missing = total - completed - failed
    if missing > 0:
        runs += f" ({missing} not run)"
    seeds = ", ".join(str(s) for s in rec.seeds) + f" (n={len(rec.seeds)})" if rec.seeds else DASH
    given = rec.design.get("seeds") if rec.design else None
    if isinstance(given, Mapping):
        seeds = f"{given['min']} to {given['max']} per arm, added while comparisons were open (seeds {seeds})"
    return [
        ("Data set", rec.dataset or DASH),
        ("Model", rec.model or DASH),
        ("Arms", str(len(rec.arms)) if rec.arms else DASH),
        ("Baseline", rec.baseline or DASH),
        ("Seeds", seeds),
        ("Test set", f"{rec.test_size} samples" if rec.test_size else "size not recorded"),
        ("Budget", _budget(rec, table)),
        ("Devices" if len(rec.devices) > 1 else "Device", ", ".join(rec.devices) or DASH),
        ("Runs", runs),
        ("Wall time", format_seconds(rec.seconds) + " (last ablate run command)" if finite(rec.seconds) else DASH),
        ("Run time", run_time(table)),
        ("Started", rec.started or DASH),
    ]


def _budget(rec: StudyRecord, table: pd.DataFrame) -> str:
    """What the study was allowed to spend: epochs per run, batch and optimizer, epochs actually run."""
    train = rec.train
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


def _row(r: Mapping, an: Analysis) -> dict:
    n = int(r["n_complete"])
    arm = str(r["arm"])
    is_base = an.baseline is not None and arm == an.baseline
    return {
        "arm": arm,
        "arm_parts": split_name(arm),
        "is_baseline": is_base,
        "tag_baseline": is_base and arm != "baseline",
        "is_best": arm == an.best,
        "near_best": arm in an.near_best,
        "factors": [value(r.get(f)) for f in an.columns],
        "n": n,
        "test": format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], n),
        "gap": format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], n, unit=" pp"),
        "train": fmt(r["train_mean"] * 100 if finite(r["train_mean"]) else None, "{:.1f}%"),
        "loss_gap": fmt(r["loss_gap_mean"], "{:.3f}"),
        "val": fmt(r["val_mean"] * 100 if finite(r["val_mean"]) else None, "{:.1f}%"),
        "epochs": fmt(r["epochs_mean"], "{:.1f}"),
        "stop_reasons": [f"{k} x{v}" for k, v in (r.get("stop_reason_counts") or {}).items()],
        "failed": int(r["n_failed"]),
        "pareto": arm in set(an.pareto),
    }


def _search_runs(rec: StudyRecord) -> list[dict]:
    """The search stage of a search with confirmation, best validation accuracy first."""
    pct = lambda v: "—" if not is_present(v) else f"{100 * float(v):.1f}%"
    return [
        {
            "arm": str(r["arm"]),
            "arm_parts": split_name(str(r["arm"])),
            "seed": value(r["seed"]),
            "status": str(r["status"]),
            "val": pct(r["val_accuracy"]),
            "test": pct(r["test_accuracy"]),
            "gap": "—" if not is_present(r["gap"]) else f"{100 * float(r['gap']):.1f} pp",
            "epochs": value(r["epochs"]),
            "confirmed": bool(r["confirmed"]),
        }
        for r in rec.search_runs
    ]


def _failures(table: pd.DataFrame) -> list[dict]:
    if "status" not in table.columns:
        return []
    bad = table[table["status"] != COMPLETE]
    out = []
    for r in bad.to_dict("records"):
        reason = r.get("failure")
        reason = str(reason) if is_present(reason) else "(no reason recorded)"
        arm = str(r.get("arm", ""))
        out.append(
            {
                "arm": arm,
                "arm_parts": split_name(arm),
                "seed": value(r.get("seed")),
                "status": str(r.get("status", "")),
                "reason": reason,
            }
        )
    return out


def split_name(name: str) -> list[str]:
    """Pieces of an arm name ending at its separators; the template puts <wbr>
    between them so long names wrap at "+" or " " rather than mid-word ("early_stopping" stays whole)."""
    return [p for p in re.findall(r"[^+,/ =]*[+,/ =]?", name) if p] or [name]
