"""Seconds of one run trained eager and with `[train] compile = true`, in one
invocation, and how far apart their numbers are.

    .venv/bin/python benchmarks/compile_vs_eager.py [--device cpu|cuda] [--epochs 5]
                                                     [--model mlp|cnn] [--precision fp32|bf16|fp16]

The run: digits (8x8 images for the cnn), batch size 128, Adam at lr 1e-3,
batch norm and dropout. Each side trains it twice and keeps the second (the
first pays torch's one-time costs; the compiled side's first also compiles).
Printed: both sides' seconds, the compiled side's compile cost (its first run
minus its second), the ratio eager / compiled, and the largest relative
difference of any epoch's losses (the tolerance is
ablate.train.compiled.EPOCH_TOLERANCE).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import ComponentSpec, Execution, RunSpec
from ablate.train.compiled import EPOCH_TOLERANCE
from ablate.train.training import train_run

LOSSES = ("train_loss", "val_loss", "running_loss")


def run_spec(registry, model: str, epochs: int, precision: str) -> RunSpec:
    resolve = registry.resolve_params
    image = model == "cnn"
    components = (("norm", "batchnorm", {}), ("regularizer", "dropout", {"rate": 0.1}))
    train = {"epochs": epochs, "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "momentum": 0.9}
    if precision != "fp32":
        train["precision"] = precision
    return RunSpec(
        data=ComponentSpec("dataset", "digits", resolve("dataset", "digits", {"image": image}, "data")),
        split_seed=0,
        model=ComponentSpec("model", model, resolve("model", model, {}, "model")),
        train=train,
        components=tuple(ComponentSpec(k, n, resolve(k, n, p, n)) for k, n, p in components),
        seed=0,
    )


def timed(spec: RunSpec, registry, execution: Execution) -> tuple[float, float, object]:
    """(first run's seconds, second run's seconds, second run's result)."""
    began = time.perf_counter()
    train_run(spec, registry, execution)
    first = time.perf_counter() - began
    began = time.perf_counter()
    result = train_run(spec, registry, execution)
    return first, time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    args = parser.parse_args()
    registry = build_registry(make_plugin_manager())
    spec = run_spec(registry, args.model, args.epochs, args.precision)
    eager = Execution(args.device, 1)
    _, eager_s, eager_result = timed(spec, registry, eager)
    first, compiled_s, compiled_result = timed(spec, registry, dataclasses.replace(eager, compile=True))
    worst = max(
        abs(a[k] - b[k]) / abs(a[k])
        for a, b in zip(eager_result.history, compiled_result.history, strict=True)  # type: ignore[attr-defined]
        for k in LOSSES
    )
    print(f"{args.model} on digits, {args.epochs} epochs, {args.precision}, {args.device}, one thread")
    print(f"eager:    {eager_s:.2f} s")
    print(f"compiled: {compiled_s:.2f} s (+ {max(first - compiled_s, 0.0):.1f} s to compile, the first time)")
    print(f"compiled record: {compiled_result.compile}")  # type: ignore[attr-defined]
    print(
        f"largest relative difference of an epoch's losses: {worst:.1e} (tolerance {EPOCH_TOLERANCE[args.precision]:g})"
    )
    print(f"ratio eager / compiled: {eager_s / compiled_s:.2f}x")


if __name__ == "__main__":
    main()
