"""leaderboard.md, leaderboard.tex and summary.md: one row per arm, names escaped per format."""

import math
import re

import pandas as pd

from ablate.engine.store.record import StudyRecord
from ablate.report import write_report
from ablate.report.analysis import analyse
from ablate.report.exports import leaderboard_md, leaderboard_tex, md, summary_md, tex

ODD = "wd|1e-4 & 50% _x_ <b>#1</b> $"


def _table():
    rows = []
    for a, (arm, level, acc) in enumerate([("baseline", "none", 0.80), (ODD, "on", 0.90), ("dead", "dead", 0)]):
        for s in range(3):
            ok = arm != "dead"
            test = acc + 0.01 * s + (0.002 * (s == 1) if a == 1 else 0)
            rows.append(
                {
                    "arm": arm,
                    "seed": s,
                    "status": "complete" if ok else "failed",
                    "reg": level,
                    "train_accuracy": test + 0.05 if ok else math.nan,
                    "val_accuracy": test if ok else math.nan,
                    "test_accuracy": test if ok else math.nan,
                    "gap": 0.05 if ok else math.nan,
                    "loss_gap": 0.1 if ok else math.nan,
                    "epochs": 5 if ok else 0,
                    "stop_reason": "max_epochs" if ok else "",
                    "seconds": 1.0,
                    "failure": "" if ok else "boom",
                }
            )
    record = StudyRecord(
        name="Odd | study",
        question="Does *weight decay* help?",
        factors=("reg",),
        baseline="baseline",
        arms=("baseline", ODD, "dead"),
        seeds=(0, 1, 2),
    )
    return pd.DataFrame(rows), record


def test_markdown_table_has_one_escaped_row_per_arm():
    text = leaderboard_md(analyse(*_table()))
    lines = text.strip().split("\n")
    assert len(lines) == 2 + 3
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in lines]  # unescaped pipes
    assert len(set(cells)) == 1  # a "|" in an arm name cannot add a column
    assert md(ODD) in lines[2] and lines[2].startswith("| 1 | ")  # best arm first
    assert md(ODD) == r"wd\|1e-4 & 50% \_x\_ \<b\>#1\</b\> $"
    assert "| 3 | dead |" in text and "| 3 |" in lines[-1]  # failed arm listed last with its count


def test_latex_table_escapes_specials_and_drops_units_from_cells():
    text = leaderboard_tex(analyse(*_table()))
    assert r"wd\textbar{}1e-4 \& 50\% \_x\_ \textless{}b\textgreater{}\#1\textless{}/b\textgreater{} \$" in text
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    assert body.count(r"\\") == 3
    assert "%" not in body.replace(r"\%", "")  # an unescaped % would comment out the rest of a row
    assert r"\begin{tabular}{llrrrrrr}" in text and text.count("&") - text.count(r"\&") > 0
    assert tex("a_b") == r"a\_b"


def test_summary_states_question_leaderboard_and_significant_differences():
    an = analyse(*_table())
    text = summary_md(an)
    assert "> Does \\*weight decay\\* help?" in text
    assert leaderboard_md(an).strip() in text
    assert f"{md(ODD)} beats baseline on test accuracy by 10.1 points" in text
    assert "dead: no seed where both arms completed." in text
    assert "## Failed runs (3)" in text and "- dead, seed 2: boom" in text


def test_report_folder_holds_the_exports_and_they_are_deterministic(tmp_path):
    table, meta = _table()
    write_report(tmp_path / "a", table, [], meta)
    write_report(tmp_path / "b", table, [], meta)
    for name in ("leaderboard.md", "leaderboard.tex", "summary.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "leaderboard.md").read_text() in (tmp_path / "a" / "summary.md").read_text()
