"""How fast the CLI answers, against the floor of starting Python: `ablate --help`
against `python -c pass` (target: at most 0.3 s more) and `ablate plugins`
against `python -c "import torch"` (target: at most 1.3x). Medians of N runs.

    .venv/bin/python benchmarks/cli_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ABLATE = [sys.executable, "-m", "ablate"]


def wall(cmd: list[str], repeat: int, before: Callable[[], object] = lambda: None) -> float:
    """Median wall seconds of ``cmd`` over ``repeat`` runs (``before`` runs untimed before each)."""
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "ablate"
    ablate = [str(exe)] if exe.exists() else ABLATE
    floor = wall([sys.executable, "-c", "pass"], args.repeat)
    help_ = wall([*ablate, "--help"], args.repeat)
    torch_ = wall([sys.executable, "-c", "import torch"], args.repeat)
    plugins = wall([*ablate, "plugins"], args.repeat)
    print(f"ablate --help   {help_:.3f}s vs python -c pass {floor:.3f}s: +{help_ - floor:.3f}s (target <= 0.3s)")
    print(f"ablate plugins  {plugins:.3f}s vs import torch {torch_:.3f}s: x{plugins / torch_:.2f} (target <= 1.3x)")


if __name__ == "__main__":
    main()
