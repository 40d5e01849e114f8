"""leaderboard.md, leaderboard.tex and summary.md: the numbers for a paper or a PR.

Plain functions of the Analysis with no timestamps, so rebuilding a report from
storage reproduces them byte for byte. Names from study files and plugins are
escaped for each format (a "|" cannot break a Markdown row, a "%" cannot
comment out half a LaTeX line, and leaderboard.tex is ASCII that pdflatex
typesets with booktabs alone).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ablate.report.analysis import Analysis
from ablate.report.effects import MAX_INTERACTION_ROWS
from ablate.report.findings import findings, interaction_sentence, uncertainty
from ablate.report.fmt import DASH, finite, fmt, format_pct_ci, format_seconds, value
from ablate.report.latex import tex
from ablate.report.paired import PAIRED_METRICS, sentence, summary_lines
from ablate.report.shown import MAX_RUN_ROWS, named_arms
from ablate.report.stats import is_present

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def md(text: object) -> str:
    """Escape Markdown syntax (and newlines, which would end a table row)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def board_cells(an: Analysis) -> tuple[list[str], list[list[str]]]:
    """Leaderboard headers and rows as plain strings, shared by every format."""
    headers = [
        "#",
        "Arm",
        *an.columns,
        "Seeds",
        "Test acc. [95% CI]",
        "Gap [95% CI]",
        "Loss gap",
        "Val. acc.",
        "Epochs",
        "Stop reasons",
        "Failed",
    ]
    rows = []
    for i, r in enumerate(an.board.to_dict("records"), start=1):
        n = int(r["n_complete"])
        tag = an.baseline and str(r["arm"]) == an.baseline and an.baseline != "baseline"
        arm = str(r["arm"]) + (" (baseline)" if tag else "")
        arm += " ≈ best" if str(r["arm"]) in an.near_best else ""
        rows.append(
            [
                str(i),
                arm,
                *[value(r.get(c)) for c in an.columns],
                str(n),
                format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], n),
                format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], n, unit=" pp"),
                fmt(r["loss_gap_mean"], "{:.3f}"),
                fmt(r["val_mean"] * 100 if finite(r["val_mean"]) else None, "{:.1f}%"),
                fmt(r["epochs_mean"], "{:.1f}"),
                str(r.get("stop_reasons") or DASH),
                str(int(r["n_failed"])),
            ]
        )
    return headers, rows


def leaderboard_md(an: Analysis) -> str:
    headers, rows = board_cells(an)
    k = len(an.columns)
    right = {0, *range(2 + k, 8 + k), 9 + k}  # numbers right-aligned: rank, Seeds..Epochs, Failed
    lines = [
        "| " + " | ".join(md(h) for h in headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_MINUS = re.compile(r"(?<![\w.])-(?=\d)")


def leaderboard_tex(an: Analysis) -> str:
    """A booktabs table; numbers in percent, mean [95% CI]. \\ablatefit, which a paper
    may define before \\input, wraps the tabular: a table wider than the text fits."""
    _headers, rows = board_cells(an)
    k = len(an.columns)
    # Arm, factor columns, then Seeds .. Epochs; units move from the cells into the header.
    keep = [1, *range(2, 2 + k), *range(2 + k, 8 + k)]
    head = [
        "Arm",
        *(tex(c) for c in an.columns),
        "$n$",
        r"Test acc.\ (\%)",
        "Gap (pp)",
        "Loss gap",
        r"Val.\ acc.\ (\%)",
        "Epochs",
    ]
    name = an.record.name or "ablation study"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "study"
    out = [
        f"% ablate leaderboard for {tex(name)}: needs \\usepackage{{booktabs}}, then \\input this file.",
        "% Wider than the text (long arm names)? Before \\input, define \\ablatefit to shrink it,",
        "% e.g. with \\usepackage{graphicx}: \\newcommand{\\ablatefit}[1]{\\resizebox{\\linewidth}{!}{#1}}",
        "% (or {\\small #1}); undefined, the table keeps its natural width.",
        r"\begin{table}[ht]",
        r"\centering",
        r"\providecommand{\ablatefit}[1]{#1}",
        rf"\caption{{{tex(name)}: mean over seeds with Student-t 95\% confidence intervals; "
        r"gap = train $-$ test accuracy.}",
        rf"\label{{tab:ablate-{slug}}}",
        r"\ablatefit{%",
        r"\begin{tabular}{" + "l" * (1 + k) + "r" * 6 + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        cells = [row[i] for i in keep]
        names = [tex(c) for c in cells[: 1 + k]]
        numbers = [_MINUS.sub("$-$", tex(c.replace("%", "").replace(" pp", ""))) for c in cells[1 + k :]]
        out.append(" & ".join(names + numbers) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def run_time(table: pd.DataFrame) -> str:
    """Training time summed over the stored runs: unlike the wall time of the last
    `ablate run`, it does not shrink to seconds when a study is resumed or rebuilt."""
    if "seconds" not in table.columns or not len(table):
        return DASH
    total = pd.to_numeric(table["seconds"], errors="coerce").sum()
    return f"{format_seconds(total)} summed over {len(table)} runs"


def significance_lines(an: Analysis) -> list[tuple[str, list[str]]]:
    """(heading, sentences) per metric compared against the baseline; past MANY_ARMS arms, the
    arms the report names, and a count for the others."""
    keep = set(named_arms(an.board, an.baseline))
    out = []
    for m, comps in an.comparisons.items():
        lines = summary_lines(comps)
        out_of = [c for c in comps if c.arm not in keep]
        if out_of:  # the named arms' sentences, the line on all the others, the named untested
            sig = [sentence(c) for c in comps if c.significant and c.arm in keep]
            rest = lines[sum(c.significant for c in comps) :]
            summary = rest[:1] if any(c.tested and not c.significant for c in comps) else []
            untested = [f"{c.arm}: {c.note}." for c in comps if not c.tested and c.arm in keep]
            left = sum(c.significant for c in out_of)
            lines = [*sig, *summary, *untested]
            lines.append(
                f"{left} of the {len(out_of)} arms not named here differ significantly from {an.baseline} "
                f"(Holm-corrected over all {len(comps)} arms); index.html lists the named arms' rows."
            )
        out.append((PAIRED_METRICS[m][0].capitalize(), lines))
    return out


def summary_md(an: Analysis) -> str:
    rec = an.record
    out = [f"# {md(rec.name or 'Ablation study')}", ""]
    if rec.question:
        out += [f"> {md(rec.question)}", ""]
    facts = [
        ("Data set", rec.dataset),
        ("Model", rec.model),
        ("Devices", ", ".join(rec.devices)),
        ("Seeds", len(rec.seeds) or None),
        ("Wall time (last ablate run command)", format_seconds(rec.seconds)),
        ("Run time", run_time(an.table)),
        ("Versions", ", ".join(f"{k} {v}" for k, v in rec.versions.items()) or None),
    ]
    out += [f"- {k}: {md(v)}" for k, v in facts if v not in (None, "", DASH)] + [""]
    out += ["## Findings", ""] + [f"- {md(line)}" for line in findings(an)] + [""]
    out += ["## How precise", ""] + [f"- {md(line)}" for line in uncertainty(an)] + [""]
    out += [
        "## Leaderboard",
        "",
        *_summary_board(an),
        "",
        "Best mean validation accuracy first; mean over seeds with Student-t 95% confidence intervals; "
        "gap = train − test accuracy in percentage points; failed runs are excluded from means and "
        "counted; ≈ best: cannot be told apart from the best arm on validation accuracy.",
        "",
    ]
    out += _failed_md(an) + _baseline_md(an) + _interactions_md(an) + _importance_md(an)
    return "\n".join(out)


def _summary_board(an: Analysis) -> list[str]:
    """The leaderboard's rows of the arms the report names (shown.py): all of them up to
    MANY_ARMS arms, else the best and the baseline, with a line for the rest."""
    lines = leaderboard_md(an).rstrip("\n").split("\n")
    keep = set(named_arms(an.board, an.baseline))
    rows = [row for row, arm in zip(lines[2:], an.board["arm"]) if str(arm) in keep]
    if len(rows) == len(lines) - 2:
        return lines
    return [*lines[:2], *rows, "", f"{len(lines) - 2 - len(rows)} more arms are in leaderboard.md and results.csv."]


def _failed_md(an: Analysis) -> list[str]:
    table = an.table
    failed = table[table["status"] != "complete"] if "status" in table.columns else table.iloc[0:0]
    if not len(failed):
        return []
    return (
        [f"## Failed runs ({len(failed)})", ""]
        + [
            f"- {md(r['arm'])}, seed {r['seed']}: "
            f"{md(r['failure'] if is_present(r.get('failure')) else '(no reason recorded)')}"
            for r in failed.head(MAX_RUN_ROWS).to_dict("records")
        ]
        + ([f"- … and {len(failed) - MAX_RUN_ROWS} more in results.csv"] if len(failed) > MAX_RUN_ROWS else [])
        + [""]
    )


def _baseline_md(an: Analysis) -> list[str]:
    out = [f"## Against the baseline ({md(an.baseline)})" if an.baseline else "## Against the baseline", ""]
    if not an.baseline:
        out += [md(an.baseline_note), ""]
    for heading, lines in significance_lines(an):
        out += [f"### {heading}", ""] + [f"- {md(line)}" for line in lines] + [""]
    return out


def _interactions_md(an: Analysis) -> list[str]:
    if not an.interactions:
        return []
    return (
        ["## Interactions (test accuracy)", ""]
        + [f"- {md(interaction_sentence(c))}" for c in an.interactions[:MAX_INTERACTION_ROWS]]
        + [""]
    )


def _importance_md(an: Analysis) -> list[str]:
    out = ["## Factor importance (descriptive)", ""]
    if an.shares:
        out += [
            f"- {md(k)}: variance share {v[0]:.2f} (bootstrap 95% interval {v[1]:.2f} to {v[2]:.2f})"
            for k, v in sorted(an.shares.items(), key=lambda kv: -kv[1][0])
        ]
    if an.fanova:
        out += [f"- {md(k)}: Optuna fANOVA {v:.2f}" for k, v in sorted(an.fanova.items(), key=lambda kv: -kv[1])]
    if not (an.shares or an.fanova):
        out.append(md(an.fanova_note))
    out.append("")
    if an.pareto:
        out += [
            "## Pareto front of the means (descriptive: higher test accuracy, lower gap)",
            "",
            ", ".join(f"{md(a)} ({an.pareto_freq.get(a, math.nan):.0%} of seed resamples)" for a in an.pareto),
            "",
        ]
    return out


def write_exports(out_dir: Path, an: Analysis) -> None:
    for name, text in (
        ("leaderboard.md", leaderboard_md(an)),
        ("leaderboard.tex", leaderboard_tex(an)),
        ("summary.md", summary_md(an)),
    ):
        (Path(out_dir) / name).write_text(text, encoding="utf-8")
