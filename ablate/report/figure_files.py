"""Which figure files a report gets, and drawing them: in forked processes, and
only where a figure's inputs changed since it was last drawn into the folder.

Matplotlib-free on purpose: a report whose figures are all current (``ablate
report`` again, or a rerun that trained nothing) never imports it. A figure is
current when its file exists and ``.figures.json`` holds the digest of what drew
it: the figure function's name, its pickled inputs, the DPI, the report package's
source and matplotlib's version. Anything else redraws it.

Ctrl-C while figures draw reaches only the command's own process: the workers
ignore it, and the command kills them, so it stops at once; a figure goes to its
name only when wholly written, and ``.figures.json`` names only those.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ablate.report.figure_limits import (
    DPI,
    MANY_ARMS,
    MANY_CURVE_ARMS,
    MAX_CURVE_ARMS,
    MAX_CURVE_SEEDS,
    MAX_PANELS,
)
from ablate.report.figure_pool import ForkedPool
from ablate.report.figure_workers import (
    Job,
    drawing_forked,
    fork_pool,
    partial_path,
    remove_orphans,
)
from ablate.report.glance import glance_rows

if TYPE_CHECKING:
    from ablate.report.analysis import Analysis

FIGURES = {
    "arms": "fig_arms.png",
    "learning_curves": "fig_learning_curves.png",
    "loss_curves": "fig_loss_curves.png",
    "accuracy_vs_gap": "fig_accuracy_vs_gap.png",
    "main_effects": "fig_main_effects.png",
    "interactions": "fig_interactions.png",
    "fanova": "fig_fanova.png",
    "glance": "fig_glance.png",
}
DIGESTS = ".figures.json"
# Slowest first, as measured on a study of 50 arms (`benchmarks/report_scale.py`): the
# longest figures start first and the short ones fill in, so no worker is left with a
# long one at the end.
DRAWING_ORDER = [
    "arms",
    "loss_curves",
    "learning_curves",
    "interactions",
    "main_effects",
    "glance",
    "accuracy_vs_gap",
    "fanova",
]


@contextmanager
def rendering(
    out_dir: Path,
    analysis: Analysis,
    histories: Sequence[Mapping],
    workers: int | None = None,
    pool: ForkedPool | None = None,
) -> Iterator[dict[str, str]]:
    """Start drawing every figure that applies into ``out_dir`` and yield {key: file name} at
    once, so the caller writes the page while the figures render; leaving the block waits for
    them (and re-raises a failure).

    The four core figures are always written (a placeholder when empty) so links never break;
    effects, interactions and the importance chart only when the study has what they need. Stale
    optional figures from an earlier build are removed so the folder matches the page. Figures
    render in forked processes (``workers``, default: the CPU count, at most 4), or in
    ``pool``, workers forked earlier (``early_workers``).

    An exception or Ctrl-C (KeyboardInterrupt) in the block or in a figure stops the
    workers at once and is re-raised; ``.figures.json`` then records only the figures
    wholly written, so the next build draws the rest.
    """
    out_dir = Path(out_dir)
    remove_orphans(out_dir)
    jobs = figure_jobs(analysis, histories)
    written = {key: FIGURES[key] for key, _, _ in jobs}
    for key, name in FIGURES.items():
        if key not in written and (out_dir / name).exists():
            (out_dir / name).unlink()
    stored = _read_digests(out_dir)
    digests = {FIGURES[key]: digest(fn, args) for key, fn, args in jobs}
    tasks = [
        (fn, args, out_dir / FIGURES[key])
        for key, fn, args in jobs
        if stored.get(FIGURES[key]) != digests[FIGURES[key]] or not _whole(out_dir / FIGURES[key])
    ]
    (out_dir / DIGESTS).unlink(missing_ok=True)  # until the figures it describes are written
    drawn = [name for name in digests if name not in {path.name for _, _, path in tasks}]  # current ones
    try:
        with _heap_frozen():
            pool = (pool if tasks else None) or fork_pool(len(tasks), workers)
            if pool is None:
                for task in tasks:
                    render(task)
                    drawn.append(task[2].name)
                yield written
            else:
                yield from drawing_forked(pool, render, tasks, written, drawn)
    except BaseException:  # stopped: what was wholly drawn stays current, and the cause goes on
        with suppress(OSError):
            _write_digests(out_dir, {name: digests[name] for name in drawn})
        raise
    _write_digests(out_dir, {name: digests[name] for name in drawn})


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Keep the objects that exist now out of the garbage collector's scans while the
    figures draw. Matplotlib makes tens of thousands of objects a figure, so full
    collections run often, and each would walk everything the command loaded before
    (optuna, pandas, the study's trials): a fifth of the drawing time. Forked workers
    inherit the frozen heap, and leave its pages unwritten, as Python's docs advise."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def figure_jobs(an: Analysis, histories: Sequence[Mapping]) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(key, figure function's name, its arguments) for every figure this study gets, slowest
    first (DRAWING_ORDER), so the workers finish together."""
    board, table, baseline = an.board, an.table, an.baseline
    done = board[board["n_complete"] > 0] if not board.empty else board
    arms = curve_arms(done, baseline)
    epochs = stats_int(an.record.train.get("epochs"))
    runs = curve_runs(histories, arms)  # only what the curves draw
    jobs: list[tuple[str, str, tuple[Any, ...]]] = [
        ("learning_curves", "learning_curves_figure", (runs, arms, 4, "accuracy", epochs)),
        ("loss_curves", "learning_curves_figure", (runs, arms, 4, "loss", epochs)),
        ("arms", "arms_figure", (done, table, baseline)),
        ("accuracy_vs_gap", "accuracy_vs_gap_figure", (done, baseline, an.pareto)),
    ]
    if an.varied:
        jobs.append(("main_effects", "main_effects_figure", (an.main_effects, an.varied[:MAX_PANELS])))
    if len(an.varied) >= 2:
        jobs.append(("interactions", "interactions_figure", (table, an.levels, an.varied)))
    if an.fanova or an.shares:
        jobs.append(("fanova", "fanova_figure", (an.fanova, an.shares)))
    rows, _ = glance_rows(an.family)
    if rows:  # the answer at a glance, on top of the page
        jobs.append(("glance", "glance_figure", (rows, 100 * an.family.margin)))
    return sorted(jobs, key=lambda job: DRAWING_ORDER.index(job[0]))


def render(job: Job) -> None:
    """Build one figure and save it (runs in a worker process)."""
    import ablate.report.figures as figures

    name, args, path = job
    partial = partial_path(path, os.getpid())
    try:  # drawn under a temporary name, so the file's own name never holds a half-written figure
        with _collected_after():
            figures.save_figure(getattr(figures, name)(*args), partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def _collected_after() -> Iterator[None]:
    """No garbage collection while a figure is built and drawn, one after: matplotlib's
    tens of thousands of short-lived objects otherwise set off collections all along,
    a tenth of the drawing time. One figure's garbage is what waits meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect()


def _whole(path: Path) -> bool:
    """A figure file there and not emptied (a full disk, a user's truncation): else redrawn."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def digest(name: str, args: tuple[Any, ...]) -> str:
    """What a figure is drawn from: a changed input, DPI, drawing code or matplotlib redraws it."""
    h = hashlib.sha256(f"{name}|{DPI}|{_code_fingerprint()}".encode())
    h.update(pickle.dumps(args, protocol=4))
    return h.hexdigest()


@cache
def _code_fingerprint() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    with suppress(metadata.PackageNotFoundError):
        h.update(metadata.version("matplotlib").encode())
    return h.hexdigest()


def _write_digests(out_dir: Path, digests: Mapping[str, str]) -> None:
    """``.figures.json``, replaced whole: a reader never finds it half written."""
    partial = out_dir / f"{DIGESTS}.{os.getpid()}.partial"
    partial.write_text(json.dumps(dict(digests), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, out_dir / DIGESTS)


def _read_digests(out_dir: Path) -> dict[str, str]:
    try:
        found = json.loads((out_dir / DIGESTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def stats_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def curve_arms(board: pd.DataFrame, baseline: str | None) -> list[str]:
    """The best MAX_CURVE_ARMS arms by the leaderboard (MANY_CURVE_ARMS past MANY_ARMS arms),
    the baseline always among them."""
    arms = [str(a) for a in board.get("arm", [])]
    top = arms[: MAX_CURVE_ARMS if len(arms) <= MANY_ARMS else MANY_CURVE_ARMS]
    if baseline in arms and baseline not in top:
        top = top[:-1] + [baseline]
    return top


def curve_runs(histories: Sequence[Mapping], arms: Sequence[str]) -> list[Mapping]:
    """The runs the curves draw: of the arms drawn, the first MAX_CURVE_SEEDS seeds each."""
    wanted, seen, out = set(arms), dict[str, int](), []
    for h in histories:
        arm = str(h.get("arm"))
        if arm in wanted and seen.get(arm, 0) < MAX_CURVE_SEEDS:
            seen[arm] = seen.get(arm, 0) + 1
            out.append(h)
    return out
