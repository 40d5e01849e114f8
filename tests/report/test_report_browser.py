"""The report in a real browser: headless Chromium opens index.html from the file system.

A wrapper page next to the report (written by the test, never part of the report) loads
index.html in an iframe and writes what it sees into its own DOM, which --dump-dom
prints: how many images loaded, how many leaderboard rows. Console messages of both pages
go to Chromium's stderr (--enable-logging=stderr); the report has no scripts, so any
console message at all is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import EVIL, _study

from ablate.report import write_report
from ablate.report.compare import write_compare

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "chrome")

WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"><script>
var errors = [];
window.onerror = function (m) { errors.push(String(m)); };
function probe() {
  var out = document.getElementById("out");
  try {
    var d = document.getElementById("f").contentDocument;
    var imgs = Array.prototype.slice.call(d.images);
    out.setAttribute("data-images", imgs.length);
    out.setAttribute("data-loaded", imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
    out.setAttribute("data-rows", d.querySelectorAll("#leaderboard tr.arm-row").length);
    out.setAttribute("data-scripts", d.scripts.length);
    out.setAttribute("data-title", d.title);
  } catch (e) { errors.push("cannot read the report: " + e); }
  out.setAttribute("data-errors", errors.join(" | "));
  out.setAttribute("data-done", "1");
}
</script></head><body><div id="out"></div>
<iframe id="f" src="PAGE" style="width:1400px;height:1000px" onload="setTimeout(probe, 50)"></iframe>
</body></html>
"""


def _chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def open_in_chromium(folder: Path, page: str, tmp_path: Path) -> tuple[dict, list[str]]:
    """(what the wrapper saw, console lines) for folder/page opened from file://."""
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium binary found (looked for " + ", ".join(CANDIDATES) + ")")
    wrapper = folder / "_browser_check.html"
    wrapper.write_text(WRAPPER.replace("PAGE", page), encoding="utf-8")
    profile = tmp_path / f"chromium-profile-{page}"
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--allow-file-access-from-files",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        wrapper.resolve().as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env={**os.environ, "TZ": "UTC"})
    finally:
        wrapper.unlink()
    tag = re.search(r'<div id="out"([^>]*)>', proc.stdout)
    assert tag, f"no probe output; stderr:\n{proc.stderr[-2000:]}"
    seen = dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag.group(1)))
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return seen, console


def test_report_renders_in_chromium_with_every_figure_and_no_console_error(tmp_path):
    arms = ["baseline", f"bn {EVIL}", "layernorm", "dropout"]
    table, histories, meta = _study(arms, [0, 1, 2], failed={("layernorm", 1)})
    meta = meta.replace(baseline="baseline")
    out = tmp_path / "report"
    write_report(out, table, histories, meta)
    imgs = re.findall(r"<img ", (out / "index.html").read_text(encoding="utf-8"))

    seen, console = open_in_chromium(out, "index.html", tmp_path)
    assert seen["done"] == "1" and seen["errors"] == ""
    assert int(seen["images"]) == len(imgs) >= 4
    assert seen["loaded"] == seen["images"]  # every figure decoded: naturalWidth > 0
    assert int(seen["rows"]) == len(arms)  # one leaderboard row per arm
    assert seen["scripts"] == "0"  # the report itself runs no code
    assert console == []


def test_a_broken_figure_is_caught(tmp_path):
    """The probe is not vacuous: a missing PNG and a script error both show up."""
    table, histories, meta = _study(["a", "b"], [0, 1])
    out = tmp_path / "report"
    write_report(out, table, histories, meta)
    (out / "fig_arms.png").unlink()
    html = (out / "index.html").read_text(encoding="utf-8")
    (out / "index.html").write_text(html.replace("</body>", "<script>console.error('x'); nope();</script></body>"))
    seen, console = open_in_chromium(out, "index.html", tmp_path)
    assert int(seen["loaded"]) == int(seen["images"]) - 1
    assert any("nope is not defined" in line for line in console)


def test_compare_page_renders_in_chromium(tmp_path):
    studies = []
    for name, arms in (("s1", ["baseline", "bn"]), ("s2", ["baseline", "dropout", "wd"])):
        table, _histories, meta = _study(arms, [0, 1])
        studies.append((tmp_path / name, table, meta.replace(name=name)))
    out = tmp_path / "compare"
    out.mkdir()
    write_compare(out, studies)
    seen, console = open_in_chromium(out, "compare.html", tmp_path)
    assert seen["loaded"] == seen["images"] == "1"
    assert seen["rows"] == "5" and console == []


def test_the_answer_comes_first_and_long_tables_fold(tmp_path):
    """The at-a-glance figure is the page's first image, above its first table, and
    shows within the first screen at 1400 x 1000; the long tables open on a click."""
    arms = ["baseline", "bn", "dropout", "bn + dropout"]
    table, histories, meta = _study(arms, [0, 1, 2])
    levels = {"baseline": ("none", "none"), "bn": ("bn", "none"), "dropout": ("none", "dropout")}
    levels["bn + dropout"] = ("bn", "dropout")
    table["norm"] = [levels[a][0] for a in table["arm"]]
    table["reg"] = [levels[a][1] for a in table["arm"]]
    meta = meta.replace(baseline="baseline", factors=("norm", "reg"))
    out = tmp_path / "report"
    write_report(out, table, histories, meta)
    html = (out / "index.html").read_text(encoding="utf-8")
    first_img, first_table = html.index("<img "), html.index("<table")
    assert first_img < first_table
    assert 'src="fig_glance.png"' in html[first_img : first_img + 80]
    for section in ("claims-table", "comparison-test_accuracy", "fixed-settings"):
        start = html.index(f'id="{section}"')
        assert html.rfind("<details", 0, start) > html.rfind("</details>", 0, start), section

    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium binary found")
    probe = out / "_top.html"
    probe.write_text(
        WRAPPER.replace("PAGE", "index.html").replace(
            'out.setAttribute("data-title", d.title);',
            'out.setAttribute("data-title", d.title); '
            'out.setAttribute("data-top", Math.round(d.getElementById("glance").getBoundingClientRect().top));',
        ),
        encoding="utf-8",
    )
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           f"--user-data-dir={tmp_path / 'profile-top'}", "--allow-file-access-from-files",
           "--virtual-time-budget=5000", "--window-size=1400,1000", "--dump-dom", probe.resolve().as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    top = re.search(r'data-top="(\d+)"', proc.stdout)
    assert top, proc.stderr[-2000:]
    assert int(top.group(1)) < 600  # the figure starts well within the first screen
