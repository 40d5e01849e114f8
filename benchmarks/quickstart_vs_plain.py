"""Wall time of `ablate run studies/quickstart.toml` with stacking off (each run
trained alone, one process, one thread) against the same training written as a
plain PyTorch loop, in the same process. Prints the ratio (target: at most 1.10).

    .venv/bin/python benchmarks/quickstart_vs_plain.py [--study studies/quickstart.toml] [--stack off|auto]

The plain loop trains the same arms (norm x dropout x early stopping), seeds,
epochs, batch size and optimizer, on the same digits split, with the same
per-epoch validation and final measurement; it has no Optuna, no plugins, no
storage and no report.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def plain_data():
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x, x_test, y, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std < 1e-8] = 1
    t = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)
    labels = lambda a: torch.tensor(a, dtype=torch.long)
    return t(x_tr), labels(y_tr), t(x_val), labels(y_val), t(x_test), labels(y_test)


def plain_run(data, norm, dropout, early, seed, epochs=40, batch=64, lr=1e-3, patience=5):
    x_tr, y_tr, x_val, y_val, x_te, y_te = data
    torch.manual_seed(seed)
    layers, f = [nn.Flatten()], 64
    for width in (128, 128):
        layers.append(nn.Linear(f, width))
        f = width
        if norm == "batchnorm":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layernorm":
            layers.append(nn.LayerNorm(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(f, 10))
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, waited = None, None, 0

    @torch.no_grad()
    def evaluate(x, y):
        model.eval()
        logits = model(x)
        model.train()
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    for _ in range(epochs):
        order = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_loss, _ = evaluate(x_val, y_val)
        if early:
            if best is None or val_loss < best:
                best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if early and best_state is not None:
        model.load_state_dict(best_state)
    return [evaluate(x, y) for x, y in ((x_tr, y_tr), (x_val, y_val), (x_te, y_te))]


def with_stack(study: Path, stack: str, folder: Path) -> Path:
    """A copy of the study file with ``[train] stack`` set (beside the original's plugin files)."""
    text = study.read_text(encoding="utf-8")
    if "\n[train]\n" not in text or "\nstack =" in text:
        raise SystemExit(f"{study}: expected a [train] table without a stack setting")
    path = study.parent / f".{study.stem}-stack-{stack}-{folder.name}.toml"
    path.write_text(text.replace("\n[train]\n", f'\n[train]\nstack = "{stack}"\n', 1), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--study", default="studies/quickstart.toml")
    parser.add_argument("--stack", default="off", choices=("off", "auto"), help="[train] stack for the ablate run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same deliberate thread count ablate uses

    import pandas as pd

    from ablate.cli import main as ablate_main

    with tempfile.TemporaryDirectory() as tmp:
        study = with_stack(Path(args.study), args.stack, Path(tmp))
        start = time.perf_counter()
        try:
            code = ablate_main(["run", str(study), "--out", str(Path(tmp) / "out")])
        finally:
            study.unlink()
        if code != 0:
            raise SystemExit(f"ablate run {args.study} failed with exit status {code}")
        ablate_seconds = time.perf_counter() - start
        in_runs = pd.read_csv(Path(tmp) / "out" / "results.csv")["seconds"].sum()

    start = time.perf_counter()
    data = plain_data()
    runs = 0
    for norm, dropout, early in itertools.product(["none", "batchnorm", "layernorm"], [False, True], [False, True]):
        for seed in range(3):
            plain_run(data, norm, dropout, early, seed)
            runs += 1
    plain_seconds = time.perf_counter() - start
    print(f"\nablate run {args.study} (stack = {args.stack!r}): {ablate_seconds:.1f} s (training, storage, report)")
    print(f"plain PyTorch loop, same {runs} runs: {plain_seconds:.1f} s")
    print(
        f"ratio ablate / plain: {ablate_seconds / plain_seconds:.2f} (whole command); "
        f"{in_runs / plain_seconds:.2f} (time inside runs, {in_runs:.1f} s: the training loop alone)"
    )


if __name__ == "__main__":
    main()
