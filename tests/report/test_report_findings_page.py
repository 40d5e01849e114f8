"""The page answers the question and claims no more than the data shows: per-factor effects on
accuracy and gap, the best arm chosen on validation, test-set precision and power, settings;
a null study's page claims nothing, identical arms are called identical."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import numpy as np
from synthetic import factorial, histories

from ablate.report import write_report

QUICK = {
    "norm": ["none", "batchnorm", "layernorm"],
    "dropout": ["none", "dropout"],
    "early_stopping": ["none", "early_stopping"],
}


def _effect(lv):  # dropout helps, early stopping adds little, batch norm helps a bit
    return 0.03 * (lv["dropout"] != "none") + 0.015 * (lv["norm"] == "batchnorm")


def _items(page: str, ident: str) -> list[str]:
    start = page.index(f'id="{ident}"')
    block = page[start : page.index("</ul>", start)]
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", block, re.S)]


def _page(tmp_path: Path, table, record, hist=()) -> str:
    return write_report(tmp_path, table, list(hist), record).read_text(encoding="utf-8")


def test_quickstart_like_page_answers_per_factor_and_shows_settings(tmp_path):
    table, record = factorial(
        QUICK, seeds=4, sd=0.004, test_effect=_effect, train_effect=lambda lv: -0.04 * (lv["dropout"] != "none")
    )
    record = record.replace(
        test_size=360, arm_settings={a: {"dropout.rate": 0.3} for a in record.arms if "dropout" in a}
    )
    page = _page(tmp_path, table, record, histories(table))
    found = _items(page, "findings")
    dropout = next(line for line in found if line.startswith("dropout: dropout against none"))
    assert "averaged over the levels of norm and early_stopping" in dropout
    acc = re.search(r"test accuracy \+(\d\.\d) points \(95% CI [^)]*: significant\)", dropout)
    gap = re.search(r"generalization gap -(\d\.\d) points [^)]*: significant, narrower\)", dropout)
    assert acc and abs(float(acc[1]) - 3.0) < 0.5  # planted: +3 points on accuracy
    assert gap and abs(float(gap[1]) - 7.0) < 0.5  # and -4 on train accuracy: -7 on the gap
    assert any(
        line.startswith("early_stopping: early_stopping against none") and "not significant" in line for line in found
    )
    assert sum(line.startswith(("norm:", "dropout:", "early_stopping:")) for line in found) == 4
    assert any(line.startswith("Highest mean validation accuracy (arms are chosen on validation") for line in found)
    assert any("Holm-corrected together" in line for line in found)
    precise = _items(page, "uncertainty")
    assert precise[0].startswith("Test set: 360 samples, so one sample is 0.28 points")
    assert any(line.startswith("Power (paired t-test over seeds") for line in precise)
    settings = page[page.index('id="fixed-settings"') : page.index('id="claims"')]
    assert "train.optimizer" in settings and "train.momentum" not in settings  # momentum under Adam
    assert "dropout.rate = 0.3" in settings and "early_stopping = early_stopping" in settings


def test_best_arm_is_chosen_on_validation_and_its_equals_are_marked(tmp_path):
    table, record = factorial(
        {"reg": ["none", "a", "b", "c"]},
        seeds=5,
        sd=0.002,
        test_effect=lambda lv: {"none": 0.0, "a": 0.05, "b": 0.04, "c": 0.0}[lv["reg"]],
    )
    # b leads a on validation by 0.1 point on every seed (well within the noise); a leads on test
    val_a = table.loc[table["arm"] == "a", "val_accuracy"].to_numpy()
    table.loc[table["arm"] == "b", "val_accuracy"] = val_a + 0.001
    page = _page(tmp_path, table, record)
    rows = re.findall(r'<tr class="arm-row" data-arm="([^"]*)"', page)
    assert rows[0] == "b"
    first = page[page.index('data-arm="b"') :]
    assert "top (val.)" in first[: first.index("</tr>")]
    row_a = page[page.index('data-arm="a"') :]
    assert "≈ best" in row_a[: row_a.index("</tr>")]
    line = next(x for x in _items(page, "findings") if x.startswith("Highest mean validation accuracy"))
    assert "1 other arm cannot be told apart from it" in line and "fall significantly short" in line


def test_a_null_study_page_claims_nothing(tmp_path):
    table, record = factorial(
        {"a": ["none", "a1", "a2"], "b": ["none", "b1", "b2"]}, seeds=5, sd=0.01, rng=np.random.default_rng(5)
    )
    page = _page(tmp_path, table, record, histories(table))
    found = _items(page, "findings")
    assert not any(": significant" in line for line in found)
    assert any("None of the" in line and "claim none" in line for line in found)
    assert any("does not single out a best arm" in line for line in found)
    assert not any(line.startswith("Descriptive") for line in found)  # fANOVA and Pareto stay out
    assert 'class="claim-row sig"' not in page and 'class="interaction-row sig"' not in page


def test_identical_arms_are_called_identical_and_nothing_is_tested(tmp_path):
    table, record = factorial({"a": ["none", "a1"], "b": ["none", "b1"]}, seeds=3, sd=0.01)
    per_seed = table.groupby("seed")[["test_accuracy", "train_accuracy", "val_accuracy"]].transform("first")
    table[["test_accuracy", "train_accuracy", "val_accuracy"]] = per_seed
    table["gap"] = table["train_accuracy"] - table["test_accuracy"]
    page = _page(tmp_path, table, record)
    found = " ".join(_items(page, "findings"))
    assert "Every arm gave the same results on every seed" in found
    assert "CI includes 0" not in page and "interval includes 0" not in page
    assert "no seed-to-seed variation at all" in page  # the interaction table says why there is no test


def test_the_page_explains_why_alone_effects_differ_from_the_baseline_table(tmp_path):
    """With three factors, "alone" is averaged over the third; against the baseline holds it fixed."""

    def effect(lv):  # a helps only where c is off: the two tables' "alone" effects part ways
        return 0.03 * (lv["a"] == "a1" and lv["c"] == "none") + 0.01 * (lv["b"] == "b1")

    table, record = factorial(
        {"a": ["none", "a1"], "b": ["none", "b1"], "c": ["none", "c1"]}, seeds=4, sd=0.002, test_effect=effect
    )
    page = _page(tmp_path, table, record)
    start = page.index('id="alone-note"')
    note = htmllib.unescape(page[start : page.index("</p>", start)])
    assert "averaged over the levels of the factors not in the pair" in note
    assert re.search(r"a=a1: \+1\.\d here, \+3\.\d against the baseline", note)
