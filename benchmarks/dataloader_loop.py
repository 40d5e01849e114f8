"""The quickstart's 36 runs written the plain PyTorch way: a DataLoader over a
TensorDataset, torch's default thread count, one run after another.

    .venv/bin/python benchmarks/dataloader_loop.py

Same arms (norm none/batchnorm/layernorm x dropout 0/0.3 x early stopping
off/on), seeds 0-2, 40 epochs, batch size 64, Adam at lr 1e-3, early stopping on
the validation loss with patience 5 restoring the best weights, digits split
60/20/20 and standardised on the training split. Each epoch measures the
validation loss (early stopping needs it); each run ends with loss and accuracy
on all three splits. No ablate import: this is the baseline a user would write.
"""

from __future__ import annotations

import copy
import itertools
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

Splits = tuple[TensorDataset, TensorDataset, TensorDataset]


def digits() -> Splits:
    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(x / 16.0, y, test_size=0.2, stratify=y, random_state=0)
    x_tr, x_val, y_tr, y_val = train_test_split(x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std < 1e-8] = 1.0

    def dataset(a, b) -> TensorDataset:
        return TensorDataset(torch.tensor((a - mean) / std, dtype=torch.float32), torch.tensor(b))

    return dataset(x_tr, y_tr), dataset(x_val, y_val), dataset(x_test, y_test)


def mlp(norm: str, dropout: float) -> nn.Module:
    layers: list[nn.Module] = []
    features = 64
    for width in (128, 128):
        layers.append(nn.Linear(features, width))
        if norm != "none":
            layers.append(nn.BatchNorm1d(width) if norm == "batchnorm" else nn.LayerNorm(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        features = width
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset) -> tuple[float, float]:
    model.eval()
    loss = correct = 0.0
    for x, y in DataLoader(data, batch_size=256):
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return loss / len(data), correct / len(data)


def run(
    splits: Splits, norm: str, dropout: float, early: bool, seed: int, epochs: int = 40, patience: int = 5
) -> dict[str, float]:
    train, val, _ = splits
    torch.manual_seed(seed)
    model = mlp(norm, dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    best, best_state, waited = float("inf"), None, 0
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        val_loss, _ = evaluate(model, val)
        if not early:
            continue
        if val_loss < best:
            best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    names = ("train", "val", "test")
    return {f"{name}_accuracy": evaluate(model, data)[1] for name, data in zip(names, splits, strict=True)}


def main() -> None:
    start = time.perf_counter()
    splits = digits()
    arms = list(itertools.product(("none", "batchnorm", "layernorm"), (0.0, 0.3), (False, True)))
    accuracy = [run(splits, *arm, seed)["test_accuracy"] for arm in arms for seed in range(3)]
    seconds = time.perf_counter() - start
    print(
        f"plain DataLoader loop, torch's default threads ({torch.get_num_threads()}): "
        f"{len(arms)} arms x 3 seeds = {len(accuracy)} runs in {seconds:.1f} s "
        f"({seconds / len(accuracy):.2f} s per run); "
        f"mean test accuracy {sum(accuracy) / len(accuracy):.3f}"
    )


if __name__ == "__main__":
    main()
