"""`ablate report` of the quickstart (36 runs), wall time of the whole command,
against the floor of importing the libraries a report cannot do without (pandas,
optuna with SQLAlchemy, scipy.special, jinja2). Target: at most 2 s.

    .venv/bin/python benchmarks/report_quickstart.py [--from FOLDER] [--repeat 7]

Two cases, medians of --repeat runs each, in one invocation:
- figures current: the report made again from storage with its figures already
  drawn (as after `ablate run`, which draws them; the tables and page are rebuilt);
- figures drawn: every figure drawn anew (the digest file removed before each run).

Without --from it first runs the quickstart (`--jobs 2`) into a temporary folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_start import wall  # this folder's: benchmarks run as scripts

from ablate.report.figure_files import DIGESTS

FLOOR = "import pandas, optuna, sqlalchemy, scipy.special, jinja2"
STUDY = Path(__file__).resolve().parent.parent / "studies" / "quickstart.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a finished quickstart folder (default: run one)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "ablate"
    ablate = [str(exe)] if exe.exists() else [sys.executable, "-m", "ablate"]
    folder = args.source or Path(tempfile.mkdtemp(prefix="ablate-report-quickstart-"))
    if args.source is None:
        print(f"running the quickstart into {folder} ...", flush=True)
        subprocess.run([*ablate, "run", str(STUDY), "--out", str(folder), "--jobs", "2"], check=True)
    report = [*ablate, "report", str(folder)]
    subprocess.run(report, check=True, stdout=subprocess.DEVNULL)  # figures current for the first case
    floor = wall([sys.executable, "-c", FLOOR], args.repeat)
    current = wall(report, args.repeat)
    drawn = wall(report, args.repeat, before=lambda: (folder / DIGESTS).unlink(missing_ok=True))
    print(f"libraries alone ({FLOOR}): {floor:.2f}s")
    print(f"ablate report, figures current: {current:.2f}s (target <= 2 s: {'ok' if current <= 2 else 'SLOW'})")
    print(f"ablate report, every figure drawn: {drawn:.2f}s")


if __name__ == "__main__":
    main()
