"""Where a stacked group makes the host wait for the GPU: trains each of the
study's stacks once to warm up, then one again under torch's synchronisation
debug mode, and prints each line of code that synchronised with its count. A
line counted about once per step (epochs x batches) would stall the GPU every
step; per-epoch and per-run lines (metrics read back, weights copied out) are
expected. Needs a CUDA device.

    python benchmarks/cuda_syncs.py [--study studies/quickstart.toml] [--epochs 3] [--stack 1]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import math
import time
import warnings

import torch
from stacking import study_groups

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import Execution
from ablate.study.study_file import plugin_files_of
from ablate.train.build import load_data
from ablate.train.stacked.grouping import group_runs
from ablate.train.stacked.training import train_group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="studies/quickstart.toml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--stack", type=int, default=1, help="which of the study's stacks to check")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("cuda_syncs.py needs a CUDA device; none is available here")
    registry = build_registry(make_plugin_manager(plugin_files_of(args.study)))
    execution = Execution("cuda", 1)
    specs = [  # a short check: the study's runs with fewer epochs
        dataclasses.replace(spec, train={**spec.train, "epochs": args.epochs})
        for group in study_groups(args.study, registry)
        for spec in group
    ]
    units = group_runs(specs, registry, execution)
    unit = units[min(args.stack, len(units) - 1)]
    train_group(unit, registry, execution)  # warm-up: kernels loaded, memory pooled
    rows = len(load_data(unit[0], registry, torch.device("cuda")).x_train)
    steps = args.epochs * math.ceil(rows / int(unit[0].train["batch_size"]))
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        results = train_group(unit, registry, execution)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    torch.cuda.set_sync_debug_mode(0)
    stacked = sum(getattr(r, "stack", 1) > 1 for r in results)
    counts = collections.Counter(f"{w.filename.split('site-packages/')[-1]}:{w.lineno}" for w in caught)
    print(f"{len(unit)} runs ({stacked} stacked), {args.epochs} epochs, about {steps} steps, {seconds:.2f} s")
    print(f"{len(caught)} synchronising calls; per line:")
    for where, n in counts.most_common(15):
        print(f"  {n:6d}  {where}")


if __name__ == "__main__":
    main()
