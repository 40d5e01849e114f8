"""leaderboard.md, leaderboard.tex and summary.md: the numbers for a paper or a PR.

Plain functions of the Analysis with no timestamps, so rebuilding a report from
storage reproduces them byte for byte. Names from study files and plugins are
escaped for each format (a "|" cannot break a Markdown row, a "%" cannot
comment out half a LaTeX line).
"""

from __future__ import annotations

import re
from pathlib import Path

from ablate.report import effects, fmt, paired
from ablate.report.stats import is_present

MAX_FINDINGS = 5  # significant differences per metric in the findings; all are listed further down
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "—": "--", "−": "-", "<": r"\textless{}", ">": r"\textgreater{}"}


def md(text: object) -> str:
    """Escape Markdown syntax (and newlines, which would end a table row)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def tex(text: object) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))


def board_cells(an) -> tuple[list[str], list[list[str]]]:
    """Leaderboard headers and rows as plain strings, shared by every format."""
    headers = ["#", "Arm", *an.columns, "Seeds", "Test acc. [95% CI]", "Gap [95% CI]", "Loss gap",
               "Val. acc.", "Epochs", "Stop reasons", "Failed"]
    rows = []
    for i, r in enumerate(an.board.to_dict("records"), start=1):
        n = int(r["n_complete"])
        tag = an.baseline and str(r["arm"]) == an.baseline and an.baseline != "baseline"
        arm = str(r["arm"]) + (" (baseline)" if tag else "")
        rows.append([str(i), arm, *[fmt.value(r.get(c)) for c in an.columns], str(n),
                     fmt.format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], n),
                     fmt.format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], n, unit=" pp"),
                     fmt.fmt(r["loss_gap_mean"], "{:.3f}"),
                     fmt.fmt(r["val_mean"] * 100 if fmt.finite(r["val_mean"]) else None, "{:.1f}%"),
                     fmt.fmt(r["epochs_mean"], "{:.1f}"), str(r.get("stop_reasons") or fmt.DASH),
                     str(int(r["n_failed"]))])
    return headers, rows


def leaderboard_md(an) -> str:
    headers, rows = board_cells(an)
    k = len(an.columns)
    right = {0, *range(2 + k, 8 + k), 9 + k}  # numbers right-aligned: rank, Seeds..Epochs, Failed
    lines = ["| " + " | ".join(md(h) for h in headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def leaderboard_tex(an) -> str:
    """A booktabs table (\\usepackage{booktabs}); numbers in percent, mean [95% CI]."""
    headers, rows = board_cells(an)
    k = len(an.columns)
    # Arm, factor columns, then Seeds .. Epochs; units move from the cells into the header.
    keep = [1, *range(2, 2 + k), *range(2 + k, 8 + k)]
    head = ["Arm", *(tex(c) for c in an.columns), "$n$", r"Test acc.\ (\%)", "Gap (pp)", "Loss gap",
            r"Val.\ acc.\ (\%)", "Epochs"]
    name = str(an.meta.get("name") or "ablation study")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "study"
    out = [f"% ablate leaderboard for {tex(name)}; needs \\usepackage{{booktabs}}",
           r"\begin{table}[ht]", r"\centering",
           rf"\caption{{{tex(name)}: mean over seeds with Student-t 95\% confidence intervals; "
           r"gap = train $-$ test accuracy.}",
           rf"\label{{tab:ablate-{slug}}}",
           r"\begin{tabular}{" + "l" * (1 + k) + "r" * 6 + "}", r"\toprule",
           " & ".join(head) + r" \\", r"\midrule"]
    for row in rows:
        cells = [row[i] for i in keep]
        cells = cells[:1 + k] + [c.replace("%", "").replace(" pp", "") for c in cells[1 + k:]]
        out.append(" & ".join(tex(c) for c in cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def run_time(table) -> str:
    """Training time summed over the stored runs: unlike the wall time of the last
    `ablate run`, it does not shrink to seconds when a study is resumed or rebuilt."""
    import pandas as pd

    if "seconds" not in table.columns or not len(table):
        return fmt.DASH
    total = pd.to_numeric(table["seconds"], errors="coerce").sum()
    return f"{fmt.format_seconds(total)} summed over {len(table)} runs"


def findings(an) -> list[str]:
    """The answer first, in plain words: best arm, significant differences, non-additive pairs,
    the most important factor, the Pareto front. Shared by index.html and summary.md."""
    out = []
    board = an.board[an.board["n_complete"] > 0] if len(an.board) else an.board
    if len(board):
        best = board.iloc[0]
        out.append(f"Best mean test accuracy: {best['arm']}, "
                   f"{fmt.format_pct_ci(best['test_mean'], best['test_low'], best['test_high'], int(best['n_complete']))}"
                   f" over {int(best['n_complete'])} seeds.")
    if an.baseline:
        every = [c for comps in an.comparisons.values() for c in comps]
        for metric, comps in an.comparisons.items():  # a few per metric; the rest below
            sig = [c for c in comps if c.significant]
            out += [paired.sentence(c) for c in sig[:MAX_FINDINGS]]
            if len(sig) > MAX_FINDINGS:
                out.append(f"… and {len(sig) - MAX_FINDINGS} more significant differences on "
                           f"{paired.METRICS[metric][0]} (see Against the baseline).")
        if any(c.significant for c in every):
            pass  # said above
        elif any(c.tested for c in every):
            out.append(f"No arm differs significantly from {an.baseline} on test accuracy or generalization gap "
                       f"after Holm correction (adjusted p ≥ {paired.ALPHA:g}).")
        elif every:
            out.append(f"No arm could be tested against {an.baseline}: too few shared seeds or no variance.")
    else:
        out.append(an.baseline_note)
    strong = [it for it in an.interactions if fmt.finite(it.low) and not it.low <= 0 <= it.high]
    out += [effects.interaction_sentence(it) for it in strong[:MAX_FINDINGS]]
    if len(strong) > MAX_FINDINGS:
        out.append(f"… and {len(strong) - MAX_FINDINGS} more pairs of levels that do not add up (see Factors).")
    if an.interactions and not strong:
        out.append("No pair of factors interacts beyond noise on test accuracy (every interaction's 95% CI "
                   "includes 0): their effects are consistent with adding up.")
    if an.fanova:
        top, share = max(an.fanova.items(), key=lambda kv: kv[1])
        out.append(f"fANOVA attributes the largest share of the variance of test accuracy to {top} ({share:.2f}).")
    if an.pareto:
        out.append("On the accuracy–gap Pareto front (no other arm has both higher accuracy and a lower gap): "
                   + ", ".join(an.pareto) + ".")
    return out


def significance_lines(an) -> list[tuple[str, list[str]]]:
    """(heading, sentences) per metric compared against the baseline."""
    return [(paired.METRICS[m][0].capitalize(), paired.summary_lines(comps))
            for m, comps in an.comparisons.items()]


def summary_md(an) -> str:
    meta = an.meta
    name = str(meta.get("name") or "Ablation study")
    out = [f"# {md(name)}", ""]
    if meta.get("question"):
        out += [f"> {md(meta['question'])}", ""]
    facts = [("Data set", meta.get("dataset")), ("Model", meta.get("model")), ("Device", meta.get("device")),
             ("Seeds", len(meta.get("seeds") or []) or None), ("Wall time (last ablate run command)", fmt.format_seconds(meta.get("seconds"))),
             ("Run time", run_time(an.table)),
             ("Versions", ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items()) or None)]
    facts = [f"- {k}: {md(v)}" for k, v in facts if v not in (None, "", fmt.DASH)]
    out += facts + [""] if facts else []
    out += ["## Findings", ""] + [f"- {md(line)}" for line in findings(an)] + [""]
    out += ["## Leaderboard", "", leaderboard_md(an).rstrip("\n"), "",
            "Mean over seeds with Student-t 95% confidence intervals; gap = train − test accuracy "
            "in percentage points; failed runs are excluded from means and counted.", ""]
    failed = an.table[an.table["status"] != "complete"] if "status" in an.table.columns else an.table.iloc[0:0]
    if len(failed):
        out += [f"## Failed runs ({len(failed)})", ""]
        out += [f"- {md(r['arm'])}, seed {r['seed']}: {md(r['failure'] if is_present(r.get('failure')) else '(no reason recorded)')}"
                for r in failed.to_dict("records")] + [""]
    out += [f"## Against the baseline ({md(an.baseline)})" if an.baseline else "## Against the baseline",
            ""]
    if not an.baseline:
        out += [md(an.baseline_note), ""]
    for heading, lines in significance_lines(an):
        out += [f"### {heading}", ""] + [f"- {md(line)}" for line in lines] + [""]
    if an.interactions:
        out += ["## Interactions (test accuracy)", ""]
        out += [f"- {md(effects.interaction_sentence(it))}"
                for it in an.interactions[:effects.MAX_INTERACTION_ROWS]] + [""]
    out += ["## Factor importance (fANOVA)", ""]
    if an.fanova:
        out += [f"- {md(k)}: {v:.2f}" for k, v in sorted(an.fanova.items(), key=lambda kv: -kv[1])]
    else:
        out.append(md(an.fanova_note))
    out.append("")
    if an.pareto:
        out += ["## Pareto front (higher test accuracy, lower gap)", "",
                ", ".join(md(a) for a in an.pareto), ""]
    return "\n".join(out)


def write_exports(out_dir: Path, an) -> None:
    for name, text in (("leaderboard.md", leaderboard_md(an)), ("leaderboard.tex", leaderboard_tex(an)),
                       ("summary.md", summary_md(an))):
        (Path(out_dir) / name).write_text(text, encoding="utf-8")
