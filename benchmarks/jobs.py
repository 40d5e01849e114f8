"""Throughput of the quickstart's runs phase with `--jobs 2` against `--jobs 1`,
measured in the same invocation (each into a fresh output folder). Prints both
and the ratio, and the whole command's wall time (start-up and report
included) beside it; run it more than once on a quiet machine and quote the median.

    .venv/bin/python benchmarks/jobs.py [--study studies/quickstart.toml] [--jobs 2] [--repeat 1]
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


def runs_phase(study: str, jobs: int) -> tuple[float, float]:
    """Seconds `ablate run` reports for training (start-up and report excluded),
    and the whole command's wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ablate", "run", study, "--out", str(Path(out) / "o"), "--jobs", str(jobs)],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - start
    found = re.search(r"runs finished in ([0-9.]+)s", done.stdout)
    if found is None:
        sys.exit(f"unexpected output:\n{done.stdout[-2000:]}")
    return float(found.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/quickstart.toml")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    ratios, walls = [], []
    for i in range(args.repeat):
        one, one_wall = runs_phase(args.study, 1)
        many, many_wall = runs_phase(args.study, args.jobs)
        ratios.append(one / many)
        walls.append(one_wall / many_wall)
        print(
            f"[{i + 1}] runs phase: --jobs 1 {one:.1f}s, --jobs {args.jobs} {many:.1f}s, throughput x{one / many:.2f}"
            f" | whole command: {one_wall:.1f}s vs {many_wall:.1f}s, x{one_wall / many_wall:.2f}",
            flush=True,
        )
    print(
        f"median over {len(ratios)}: runs phase x{statistics.median(ratios):.2f}, "
        f"whole command x{statistics.median(walls):.2f}"
    )


if __name__ == "__main__":
    main()
