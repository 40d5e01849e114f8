"""The workers' parent warms matplotlib once (``figures.warm_up``): afterwards no figure of
a report looks a font up for itself (each lookup costs a few milliseconds, in every worker
that would otherwise make it). A new font size or weight in a figure belongs in WARM_FONTS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = """
import io, sys
sys.path.insert(0, {tests!r})
from matplotlib import font_manager
from support import _study
import ablate.report.figures as figures
from ablate.report.analysis import analyse
from ablate.report.figure_files import figure_jobs

lookups = font_manager.FontManager._findfont_cached.cache_info
figures.warm_up()
warmed = lookups().misses
table, histories, record = _study(["baseline", "bn", "ln", "bn+ln"], [0, 1, 2])
drawn = []
for key, fn, args in figure_jobs(analyse(table, record), histories):
    figures.save_figure(getattr(figures, fn)(*args), io.BytesIO())
    drawn.append(key)
print(warmed, lookups().misses - warmed, " ".join(drawn))
"""


def test_after_the_warm_up_no_figure_looks_a_font_up_for_itself():
    tests = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(tests=tests)], capture_output=True, text=True, timeout=120, check=True
    )
    warmed, new, *drawn = done.stdout.split()
    assert int(warmed) > 0  # the warm-up did look fonts up (a fresh process)
    assert {"learning_curves", "loss_curves", "arms", "main_effects"} <= set(drawn)
    assert int(new) == 0, f"{new} font lookups after the warm-up"


def test_the_figure_code_loads_without_scipy():
    """The workers' parent loads the figure code while the command loads scipy for itself:
    a tenth of a second on the way to the first figure, where the figures would load it too."""
    code = "import sys, ablate.report.figures; print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
