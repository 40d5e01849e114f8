"""Every file of the report folder read by the program its users read it with:
leaderboard.tex typeset by pdflatex in a minimal article, results.csv by pandas,
results.json by json, leaderboard.md by a CommonMark parser with GFM tables."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from pandas.api.types import is_float_dtype, is_integer_dtype, is_string_dtype
from synthetic import factorial

from ablate.cli import main
from ablate.engine.store.record import StudyRecord
from ablate.engine.store.results import METRICS
from ablate.report.analysis import analyse
from ablate.report.exports import leaderboard_md, leaderboard_tex
from ablate.report.latex import tex

ROOT = Path(__file__).resolve().parents[2]
PAPER = r"\documentclass{article}\usepackage[T1]{fontenc}\usepackage{booktabs}"
BARE = r"\documentclass{article}\usepackage{booktabs}"  # no fontenc: LaTeX's default OT1
FITTED = PAPER + r"\usepackage{graphicx}\newcommand{\ablatefit}[1]{\resizebox{\linewidth}{!}{#1}}"
HOSTILE = {
    "reg": ["none", "50%_a&b#c", "ü≈α — 中 ~^\\{}$"],
    "order": ["linear>norm>act>dropout", "*[act]>norm<drop--out"],
}
# Columns of results.csv as the README documents them, with the kind of dtype pandas gives each.
TEXT, INT, FLOAT = is_string_dtype, is_integer_dtype, is_float_dtype
CSV_HEAD = {"arm": TEXT, "arm_key": TEXT, "seed": INT, "status": TEXT, "stage": TEXT}
CSV_TAIL = {**{m: FLOAT for m in METRICS}, "epochs": INT, "stop_reason": TEXT, "seconds": FLOAT}
HISTORY_KEYS = {
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "running_loss",
    "running_accuracy",
    "lr",
}


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> Path:
    """The quickstart study trained for real, shrunk to seconds: its 12 arms x 2 seeds, one epoch of an 8-unit MLP."""
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    shrink = (("seeds = 3", "seeds = 2"), ("hidden = [128, 128]", "hidden = [8]"), ("epochs = 40", "epochs = 1"))
    for old, new in shrink:
        assert old in text
        text = text.replace(old, new)
    folder = tmp_path_factory.mktemp("quickstart")
    (folder / "quickstart.toml").write_text(text)
    assert main(["run", str(folder / "quickstart.toml"), "--out", str(folder / "report")]) == 0
    return folder / "report"


def _pdflatex() -> str:
    found = shutil.which("pdflatex")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("pdflatex is missing in CI: .ci/run installs texlive-latex-base and texlive-latex-recommended")
    pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")


def _typeset(table_tex: str, preamble: str, work: Path) -> str:
    """Compile leaderboard.tex inside a minimal article; the log, once the PDF is known to exist."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "leaderboard.tex").write_text(table_tex, encoding="utf-8")
    (work / "paper.tex").write_text(preamble + r"\begin{document}\input{leaderboard.tex}\end{document}" + "\n")
    proc = subprocess.run(
        [_pdflatex(), "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "paper.tex"],
        cwd=work,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,  # the first run on a machine may build the T1 fonts
    )
    log = (work / "paper.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!") or "Missing character" in line]
    assert proc.returncode == 0 and not errors, "\n".join(errors) or proc.stdout[-3000:]
    assert (work / "paper.pdf").stat().st_size > 1000
    return log


def _hostile():
    table, record = factorial(HOSTILE, seeds=3)
    return table, record.replace(name="Hostile & <names> 50% #1", baseline=None)


def test_quickstart_leaderboard_tex_compiles_with_pdflatex(quickstart, tmp_path):
    text = (quickstart / "leaderboard.tex").read_text(encoding="utf-8")
    assert text.isascii() and r"$\approx$ best" in text  # "≈ best" was the character pdflatex refused
    _typeset(text, PAPER, tmp_path / "paper")
    # The header's advice for a table wider than the text: defined, it fits without an overfull box.
    assert "Overfull \\hbox" not in _typeset(text, FITTED, tmp_path / "fitted")


def test_hostile_names_compile_and_survive(tmp_path):
    text = leaderboard_tex(analyse(*_hostile()))
    assert text.isascii()
    for preamble, where in ((PAPER, "t1"), (BARE, "ot1")):
        _typeset(text, preamble, tmp_path / where)
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    assert body.count(r"\\") == 6  # one row per arm: no name opened or closed a group or a row
    assert r"50\%\_a\&b\#c" in body and r"linear\textgreater{}norm" in body
    assert r"{*}{[}act{]}\textgreater{}norm\textless{}drop-{}-out" in body  # not read as \\* or \\[...]
    assert r"\"{u}$\approx$$\alpha$ --- {[}U+4E2D{]}" in body


def test_results_csv_read_by_pandas_has_the_documented_columns_and_types(quickstart):
    table = pd.read_csv(quickstart / "results.csv")
    factors = ["norm", "dropout", "early_stopping"]
    assert list(table.columns) == [*CSV_HEAD, *factors, *CSV_TAIL, "failure", "trial"]
    for column, kind in {**CSV_HEAD, **{f: TEXT for f in factors}, **CSV_TAIL, "trial": INT}.items():
        assert kind(table[column]), (column, table[column].dtype)
    assert table["failure"].isna().all()  # every run completed: an empty column, read as missing
    assert len(table) == 24 and not table.duplicated(["arm", "seed"]).any()
    assert set(table["status"]) == {"complete"} and set(table["stage"]) == {"main"}
    assert (table["gap"] - (table["train_accuracy"] - table["test_accuracy"])).abs().max() < 1e-12
    assert set(table.loc[table["arm"] == "layernorm + dropout", "norm"]) == {"layernorm"}


def test_results_json_read_by_json_has_the_documented_keys(quickstart):
    def no_nan(name):  # JSON has no NaN: a JavaScript or Go reader would refuse the file
        raise AssertionError(f"results.json holds {name}")

    data = json.loads((quickstart / "results.json").read_text(encoding="utf-8"), parse_constant=no_nan)
    assert set(data) == {"study", "runs"}
    assert set(data["study"]) == {f for f in StudyRecord.__dataclass_fields__}
    assert StudyRecord.from_json(data["study"]).arms == tuple(data["study"]["arms"])
    csv = pd.read_csv(quickstart / "results.csv")
    assert len(data["runs"]) == len(csv) == 24
    for run, row in zip(data["runs"], csv.to_dict("records")):
        assert set(run) == {*csv.columns, "history", "config"}
        assert (run["arm"], run["seed"], run["test_accuracy"]) == (row["arm"], row["seed"], row["test_accuracy"])
        assert [set(h) for h in run["history"]] == [HISTORY_KEYS]  # one epoch
        assert run["config"]["seed"] == run["seed"] and run["config"]["model"]["name"] == "mlp"


def _table_cells(markdown: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the one table the Markdown renders to, as text."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    assert [t.type for t in tokens].count("table_open") == 1
    rows, row, header = [], [], []
    for t in tokens:
        if t.type == "tr_open":
            row = []
        elif t.type == "inline":
            row.append("".join(c.content for c in t.children or [] if c.type in ("text", "code_inline")))
        elif t.type == "tr_close":
            rows.append(row)
        elif t.type == "thead_close":
            header = rows.pop()
    return header, rows


def test_leaderboard_md_renders_one_row_per_arm(quickstart):
    record = json.loads((quickstart / "results.json").read_text())["study"]
    header, rows = _table_cells((quickstart / "leaderboard.md").read_text(encoding="utf-8"))
    assert header[:5] == ["#", "Arm", "norm", "dropout", "early_stopping"] and len(header) == 13
    assert sorted(re.sub(r" ≈ best$", "", r[1]) for r in rows) == sorted(record["arms"])
    assert all(len(r) == len(header) for r in rows) and [r[0] for r in rows] == [str(i) for i in range(1, 13)]


def test_hostile_names_read_back_from_markdown_unchanged():
    table, record = _hostile()
    header, rows = _table_cells(leaderboard_md(analyse(table, record)))
    assert header[2:4] == ["reg", "order"]
    assert sorted(r[1].removesuffix(" ≈ best") for r in rows) == sorted(record.arms)
    assert {r[2] for r in rows} == set(HOSTILE["reg"]) and {r[3] for r in rows} == set(HOSTILE["order"])


def test_any_character_of_a_name_typesets(tmp_path):
    """Accents, letters, symbols, Greek, compatibility forms, CJK, emoji, control and ligature pairs."""
    name = "é ñ ç ő ï Å ß æ Ø ł ≈ × ± → α β Ω µ ² ﬁ Ａ 中 😀 \x07 ½ e\u0301 ą a--b ``q'' ,, !` ¿ « » – — − … ‘’ “”"
    text = tex(name)
    assert text.isascii() and r"\'{e} \~{n} \c{c} \H{o} \"{\i} \r{A} \ss{}" in text and "a-{}-b" in text
    assert r"$\alpha$ $\beta$ $\Omega$ $\mu$ 2 fi A {[}U+4E2D{]} {[}U+1F600{]} {[}U+0007{]}" in text
    for preamble, where in ((PAPER, "t1"), (BARE, "ot1")):
        _typeset(text + "\n", preamble, tmp_path / where)
