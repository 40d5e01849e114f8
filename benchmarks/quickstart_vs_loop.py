"""The quickstart with `ablate run --jobs 2` (stacking on) against the same 36
runs written as a plain DataLoader loop (`dataloader_loop.py`), in one
invocation: training seconds and whole-command wall seconds of each, and the
ratios, with where the rest of ours goes (start-up until training, the report).
Run it more than once on a quiet machine and quote the median.

    .venv/bin/python benchmarks/quickstart_vs_loop.py [--jobs 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str], pattern: str) -> tuple[list[float], float]:
    """(the seconds the command prints, matched by ``pattern``'s groups; its whole wall seconds)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    found = re.search(pattern, done.stdout)
    if found is None:
        sys.exit(f"unexpected output from {' '.join(command)}:\n{done.stdout[-2000:]}")
    return [float(g) for g in found.groups()], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    training, whole = [], []
    for i in range(args.repeat):
        loop = [sys.executable, str(HERE / "dataloader_loop.py")]
        (loop_training,), loop_wall = timed(loop, r"36 runs in ([0-9.]+) s")
        with tempfile.TemporaryDirectory() as out:
            study = str(HERE.parent / "studies" / "quickstart.toml")
            command = [sys.executable, "-m", "ablate", "run", study, "--out", out, "--jobs", str(args.jobs)]
            (ours, report), wall = timed(command, r"runs finished in ([0-9.]+)s, report written in ([0-9.]+)s")
        training.append(loop_training / ours)
        whole.append(loop_wall / wall)
        print(
            f"[{i + 1}] training: loop {loop_training:.1f}s, ablate --jobs {args.jobs} {ours:.1f}s, x{training[-1]:.2f}"
            f" | whole command: {loop_wall:.1f}s vs {wall:.1f}s, x{whole[-1]:.2f}"
            f" (ours: start-up {wall - ours - report:.1f}s, report {report:.1f}s)",
            flush=True,
        )
    medians = statistics.median(training), statistics.median(whole)
    print(f"median over {len(whole)}: training x{medians[0]:.2f}, whole command x{medians[1]:.2f}")


if __name__ == "__main__":
    main()
