"""The HTML report end to end: files, links, one row per arm, escaping."""

import re

import pytest
from support import EVIL, _study

from ablate.engine.store.record import StudyRecord
from ablate.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Always written (a placeholder when empty), so the page never links to a missing file.
FIGURES = ["fig_arms.png", "fig_learning_curves.png", "fig_loss_curves.png", "fig_accuracy_vs_gap.png"]


_METRICS = ["train_accuracy", "val_accuracy", "test_accuracy", "gap", "train_loss", "val_loss", "test_loss", "loss_gap"]


def _check_files(out):
    html = (out / "index.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    assert set(FIGURES) <= set(srcs)
    for src in srcs:
        assert (out / src).read_bytes()[:8] == PNG_MAGIC, src
    assert sorted(p.name for p in out.glob("*.png")) == sorted(srcs)  # no stale or unlinked figure
    for name in ("leaderboard.md", "leaderboard.tex", "summary.md"):
        assert (out / name).is_file() and f'href="{name}"' in html
    assert "http://" not in html and "https://" not in html  # opens offline
    return html


def _arm_column(html):
    """Arm names in leaderboard order, as they appear in the markup."""
    board = html[html.index('id="leaderboard"') : html.index("</table>")]
    return re.findall(r'<tr class="arm-row" data-arm="([^"]*)"', board)


def test_report_three_arms_with_failure_and_escaping(tmp_path):
    arms = ["baseline", f"bn {EVIL}", "layernorm"]
    table, histories, record = _study(arms, [0, 1, 2], failed={("layernorm", 1)})
    path = write_report(tmp_path / "report", table, histories, record)
    assert path == tmp_path / "report" / "index.html"
    html = _check_files(path.parent)

    assert html.count('<tr class="arm-row"') == 3
    assert "<script" not in html  # study name, arm name and failure reason all escaped
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, h1, arm, failure
    assert "bn <wbr>&lt;script&gt;" in html  # visible arm cell: escaped pieces, break points
    assert "RuntimeError: &lt;script&gt;" in html
    assert 'href="results.csv"' in html and 'href="results.json"' in html
    assert "Does normalization help?" in html
    assert "8 completed / 1 failed / 9 total" in html
    assert "1h 02m 05s" in html
    # Best arm first: layernorm has the highest synthetic accuracy.
    board = html[html.index('id="leaderboard"') : html.index("</table>")]
    assert _arm_column(html) == ["layernorm", "bn &lt;script&gt;alert(1)&lt;/script&gt;", "baseline"]
    assert re.search(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]", board)  # mean with CI
    assert "early_stopping x" in board


def test_report_one_seed_and_all_failed_arm(tmp_path):
    arms = ["a", "b", "dead"]
    table, histories, record = _study(arms, [7], failed={("dead", 7)})
    record = record.replace(versions={}, train={}, last_command={}, question="")
    html = _check_files(write_report(tmp_path, table, histories, record).parent)
    assert html.count('<tr class="arm-row"') == 3
    assert "(n=1)" in html
    assert _arm_column(html) == ["b", "a", "dead"]  # no completed run: listed last


def test_report_with_minimal_meta_and_no_completed_runs(tmp_path):
    table, _histories, _record = _study(["x"], [0, 1], failed={("x", 0), ("x", 1)})
    html = _check_files(write_report(tmp_path, table, [], StudyRecord(name="", arms=("x",))).parent)
    assert html.count('<tr class="arm-row"') == 1
    assert "0 completed / 2 failed / 2 total" in html


@pytest.mark.parametrize("name", ["x" * 120, "norm=batchnorm,dropout=0.5,$weird$_label", "say \"hi\" & 'bye'"])
def test_long_or_odd_arm_names_render(tmp_path, name):
    table, histories, record = _study([name, "b"], [0, 1])
    html = _check_files(write_report(tmp_path, table, histories, record).parent)
    assert html.count('<tr class="arm-row"') == 2
    assert len(_arm_column(html)) == 2  # quotes in names cannot break out of the attribute


def test_new_sections_escape_names_from_study_files_and_plugins(tmp_path):
    """Comparisons, findings, effects, interactions and fANOVA all show user strings: all escaped."""
    evil_factor = f"reg{EVIL}"
    arms = ["baseline", f"wd {EVIL}", "bn", f"bn + wd {EVIL}"]
    levels = {"baseline": ("none", "none"), arms[1]: ("none", EVIL), "bn": ("bn", "none"), arms[3]: ("bn", EVIL)}
    table, histories, record = _study(arms, [0, 1, 2])
    table["norm"] = [levels[a][0] for a in table["arm"]]
    table[evil_factor] = [levels[a][1] for a in table["arm"]]
    record = record.replace(factors=("norm", evil_factor), baseline="baseline")
    out = tmp_path / "r"
    html = _check_files(write_report(out, table, histories, record).parent)
    assert "<script" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for section in (
        'id="comparison-test_accuracy"',
        'id="comparison-gap"',
        'id="main-effects"',
        'id="interactions"',
        'id="fanova"',
        'id="findings"',
    ):
        assert section in html, section
        start = html.index(section)
        assert escaped in html[start : html.index("</table>" if "findings" not in section else "</ul>", start)], section
    assert (out / "fig_interactions.png").is_file() and (out / "fig_fanova.png").is_file()
    for name in ("summary.md", "leaderboard.md"):
        assert "<script>" not in (out / name).read_text()
    assert r"\<script\>" in (out / "summary.md").read_text()


def test_no_baseline_and_single_factor_say_so(tmp_path):
    table, histories, record = _study(["a", "b"], [0, 1])
    record = record.replace(baseline=None)
    html = _check_files(write_report(tmp_path, table, histories, record).parent)
    assert "This study has no baseline arm" in html
    assert 'id="comparison-' not in html
    assert "fANOVA needs at least two factors" in html
    assert not (tmp_path / "fig_interactions.png").exists()
