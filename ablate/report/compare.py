"""Several finished studies side by side: one leaderboard with a study column.

Each study's arms are summarised by the same leaderboard as its own
report, so a number here matches the number on that study's page. Each study
is (folder, results table, StudyRecord).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ablate.engine.store.record import StudyRecord
from ablate.report.figures import compare_figure, save_figure
from ablate.report.fmt import DASH, finite, fmt, format_pct_ci
from ablate.report.page import render_page, split_name
from ablate.report.stats import leaderboard

Study = tuple[Path, pd.DataFrame, StudyRecord]

CSV_COLUMNS = [
    "study",
    "arm",
    "baseline",
    "n_complete",
    "n_failed",
    "test_mean",
    "test_low",
    "test_high",
    "gap_mean",
    "gap_low",
    "gap_high",
    "loss_gap_mean",
    "val_mean",
    "epochs_mean",
    "stop_reasons",
]
FIGURE = "fig_compare.png"


def study_labels(studies: Sequence[Study]) -> list[str]:
    """Study names, made unique with the folder name where two studies share one."""
    names = [rec.name or folder.name for folder, _, rec in studies]
    counts = Counter(names)
    return [f"{n} ({folder})" if counts[n] > 1 else n for n, (folder, _, _) in zip(names, studies)]


def combined_board(studies: Sequence[Study]) -> pd.DataFrame:
    """All arms of all studies, best mean validation accuracy first (as each study's own page)."""
    frames = []
    for label, (_, table, rec) in zip(study_labels(studies), studies):
        board = leaderboard(table, rec.arms, rec.factors)
        if board.empty:
            continue
        board.insert(0, "study", label)
        board["baseline"] = board["arm"].astype(str) == str(rec.baseline)
        frames.append(board)
    if not frames:
        return pd.DataFrame(columns=CSV_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["_missing"] = out["val_mean"].isna()
    out = out.sort_values(["_missing", "val_mean"], ascending=[True, False], kind="mergesort")
    return out.drop(columns="_missing").reset_index(drop=True)


def write_compare(out_dir: Path, studies: Sequence[Study]) -> Path:
    """compare.csv, compare.html and one scatter; returns the compare.html path."""
    out_dir = Path(out_dir)
    board = combined_board(studies)
    board[CSV_COLUMNS].to_csv(out_dir / "compare.csv", index=False, float_format="%.6g")
    save_figure(compare_figure(board), out_dir / FIGURE)
    labels = study_labels(studies)
    context = {
        "studies": [
            {
                "label": lab,
                "question": rec.question,
                "dataset": rec.dataset or DASH,
                "model": rec.model or DASH,
                "runs": len(table),
                "folder": str(folder),
            }
            for lab, (folder, table, rec) in zip(labels, studies)
        ],
        "rows": [
            {
                "study": str(r["study"]),
                "arm": str(r["arm"]),
                "arm_parts": split_name(str(r["arm"])),
                "is_baseline": bool(r["baseline"]),
                "n": int(r["n_complete"]),
                "failed": int(r["n_failed"]),
                "test": format_pct_ci(r["test_mean"], r["test_low"], r["test_high"], int(r["n_complete"])),
                "gap": format_pct_ci(r["gap_mean"], r["gap_low"], r["gap_high"], int(r["n_complete"]), unit=" pp"),
                "val": fmt(r["val_mean"] * 100 if finite(r["val_mean"]) else None, "{:.1f}%"),
                "epochs": fmt(r["epochs_mean"], "{:.1f}"),
            }
            for r in board.to_dict("records")
        ],
        "figure": FIGURE,
    }
    path = out_dir / "compare.html"
    path.write_text(render_page(context, "compare.html"), encoding="utf-8")
    return path
