"""Seconds per epoch of `ablate run` on CIFAR-shaped work with stacking off
(every run alone, one process) against the same training written as a plain,
tuned PyTorch loop, in one invocation; the stacked run's ratio too.

    .venv/bin/python benchmarks/recipe_vs_plain.py [--repeat 3] [--device cpu|cuda]
                                                   [--images 2000] [--epochs 2]

The work: generated 3x32x32 images in CIFAR-10's file format (a few thousand,
10 classes), a small ResNet (3 stages of 16/32/64 channels, one basic block
each, batch norm), SGD with momentum on a per-step cosine schedule, gradient
clipping to norm 1, random crop (4-pixel padding) and horizontal flip per
sample, 2 seeds. Both sides keep the data on the device,
draw batches as randperm index slices, and measure what ablate records: the
train and validation splits in eval mode after every epoch, and all three
splits at the end. The plain loop has no Optuna, plugins, storage or report.

A run's seconds per epoch: its own wall time (model built, trained, measured)
over its epochs; for ablate, the ``seconds`` of results.csv (a stacked run's
share of its stack's time). Each repeat runs the three passes in turn, each
pass first in one repeat of three, after one untimed warm-up run of the plain
loop; all share one process, so the plain loop also has the allocator setting ablate makes
(ablate.train.allocator) from the first pass on. The last line is the median ratio
of stack off to plain.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPOCHS, BATCH, LR, MOMENTUM, CLIP, SEEDS = 2, 128, 0.05, 0.9, 1.0, (0, 1)
# Tuned: evaluating this net on a CPU takes 0.7 s for 2,000 images in chunks of 64 to 256,
# 1.8 s in chunks of 1,024 and 2.1 s at once (activations out of the caches); on a GPU,
# larger chunks are faster.
EVAL_CHUNK = {"cpu": 128, "cuda": 4096}

STUDY = """
[study]
name = "recipe_bench"
question = "benchmark: a small ResNet on CIFAR-shaped data with flip and crop"
seeds = 2

[data]
name = "cifar10"
root = "data"

[model]
name = "resnet"
widths = [16, 32, 64]
blocks = 1

[train]
epochs = {epochs}
batch_size = {batch}
optimizer = "sgd"
lr = {lr}
momentum = {momentum}
schedule = "cosine"
device = "{device}"
stack = "{stack}"

[factors.norm]
kind = "norm"
levels = ["batchnorm"]

[factors.flip]
kind = "augmentation"
levels = ["flip"]

[factors.crop]
kind = "augmentation"
levels = ["crop"]
crop = {{ padding = 4 }}

[factors.clip]
kind = "regularizer"
levels = ["grad_clip"]
grad_clip = {{ max_norm = {clip} }}
"""


def write_cifar(root: Path, images: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """CIFAR-10's python batches (5 training batches, a test batch of images / 4):
    random pixels with a class-coloured corner, so accuracy means something."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    arrays = []
    for name, n in [(f"data_batch_{i}", images // 5) for i in range(1, 6)] + [("test_batch", images // 4)]:
        y = np.arange(n) % 10
        x = rng.integers(0, 200, (n, 3, 32, 32), dtype=np.uint8)
        x[:, :, :6, :6] = (y * 25)[:, None, None, None].astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x.reshape(n, -1), "labels": [int(v) for v in y]}, f)
        arrays.append((x, y))
    x = np.concatenate([a[0] for a in arrays[:-1]])
    y = np.concatenate([a[1] for a in arrays[:-1]])
    return x, y, arrays[-1][0], arrays[-1][1]


# --- the plain loop ---------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.short(x) + out)


def small_resnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        Block(16, 16, 1),
        Block(16, 32, 2),
        Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def plain_data(arrays: tuple[np.ndarray, ...], device: torch.device) -> list[torch.Tensor]:
    """Train/validation (stratified 80/20)/test, standardised per channel with training statistics."""
    from sklearn.model_selection import train_test_split

    x, y, x_test, y_test = arrays
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    as_x = lambda a: torch.tensor(a, dtype=torch.float32, device=device) / 255
    xs = [as_x(a) for a in (x_tr, x_val, x_test)]
    mean, std = xs[0].mean((0, 2, 3), keepdim=True), xs[0].std((0, 2, 3), keepdim=True)
    ys = [torch.tensor(a, dtype=torch.long, device=device) for a in (y_tr, y_val, y_test)]
    return [t for pair in zip([(v - mean) / std for v in xs], ys) for t in pair]


def flip_and_crop(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    n, c, h, w = x.shape
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    return padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(c, device=x.device)[None, :, None, None],
        rows,
        cols,
    ]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    loss, correct, chunk = 0.0, 0, EVAL_CHUNK[x.device.type]
    for s in range(0, len(x), chunk):
        logits = model(x[s : s + chunk])
        loss += F.cross_entropy(logits, y[s : s + chunk], reduction="sum").item()
        correct += int((logits.argmax(1) == y[s : s + chunk]).sum())
    model.train()
    return loss / len(x), correct / len(x)


def plain_run(data: list[torch.Tensor], seed: int, epochs: int, device: torch.device) -> tuple[float, float]:
    """(seconds per epoch, test accuracy) of one run."""
    start = time.perf_counter()
    x_tr, y_tr, x_val, y_val, x_te, y_te = data
    torch.manual_seed(seed)
    model = small_resnet().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    steps = epochs * -(-len(x_tr) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps - 1, 1))
    gen = torch.Generator(device=device).manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x_tr), generator=gen, device=device)
        for s in range(0, len(x_tr), BATCH):
            idx = order[s : s + BATCH]
            loss = F.cross_entropy(model(flip_and_crop(x_tr[idx], gen)), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            schedule.step()
        evaluate(model, x_tr, y_tr), evaluate(model, x_val, y_val)  # what ablate records each epoch
    final = [evaluate(model, x, y) for x, y in ((x_tr, y_tr), (x_val, y_val), (x_te, y_te))]
    return (time.perf_counter() - start) / epochs, final[2][1]


# --- ablate ---------------------------------------------------------------------------


def ablate_pass(folder: Path, stack: str, epochs: int, device: str) -> tuple[float, float, float, float]:
    """(seconds per epoch inside runs, whole command's wall seconds, its CPU seconds, mean test accuracy)."""
    import pandas as pd

    from ablate.cli import main as ablate_main

    study = folder / f"stack_{stack}.toml"
    text = STUDY.format(epochs=epochs, batch=BATCH, lr=LR, momentum=MOMENTUM, clip=CLIP, device=device, stack=stack)
    study.write_text(text)
    out = folder / f"out_{stack}_{time.monotonic_ns()}"
    start, cpu = time.perf_counter(), time.process_time()
    if ablate_main(["run", str(study), "--out", str(out)]) != 0:
        raise SystemExit(f"ablate run failed (stack = {stack!r})")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    table = pd.read_csv(out / "results.csv")
    per_epoch = float(table["seconds"].sum() / table["epochs"].sum())
    return per_epoch, wall, cpu, float(table["test_accuracy"].mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--images", type=int, default=2000, help="training images (the test split is a quarter)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the thread count ablate sets in its training processes
    device = torch.device(args.device)
    rows: dict[str, list[float]] = {"plain": [], "stack off": [], "stacked": [], "plain cpu": [], "off cpu": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        arrays = write_cifar(folder / "data", args.images)
        data = plain_data(arrays, device)
        print(f"{args.images} training images 3x32x32, {args.epochs} epochs, seeds {SEEDS}, {device}, 1 thread")
        plain_run([t[:256] for t in data], 0, 1, device)  # warm-up, not timed: torch's first calls set kernels up
        for r in range(args.repeat):
            passes = ["off", "plain", "auto"]
            for name in passes[r % 3 :] + passes[: r % 3]:  # each pass first once in three repeats
                if name == "plain":
                    cpu = time.process_time()
                    plain = [plain_run(data, s, args.epochs, device) for s in SEEDS]
                    rows["plain cpu"].append(time.process_time() - cpu)
                    rows["plain"].append(statistics.mean(p[0] for p in plain))
                elif name == "off":
                    off, off_wall, off_cpu, off_acc = ablate_pass(folder, "off", args.epochs, args.device)
                    rows["stack off"].append(off)
                    rows["off cpu"].append(off_cpu)
                else:
                    auto, auto_wall, _, auto_acc = ablate_pass(folder, "auto", args.epochs, args.device)
                    rows["stacked"].append(auto)
            print(
                f"repeat {r + 1}: plain {rows['plain'][-1]:.3f} s/epoch (test accuracy "
                f"{statistics.mean(p[1] for p in plain):.3f}); stack off {off:.3f} s/epoch ({off_wall:.1f} s "
                f"whole command, {off_cpu:.1f} s CPU against the plain runs' {rows['plain cpu'][-1]:.1f} s, "
                f"accuracy {off_acc:.3f}); stacked {auto:.3f} s/epoch a run ({auto_wall:.1f} s, "
                f"accuracy {auto_acc:.3f})"
            )
    plain, off, stacked = (statistics.median(rows[k]) for k in ("plain", "stack off", "stacked"))
    print(f"median seconds per epoch of a run: plain {plain:.3f}, stack off {off:.3f}, stacked {stacked:.3f}")
    cpu_ratio = statistics.median(rows["off cpu"]) / statistics.median(rows["plain cpu"])
    print(f"CPU seconds, whole ablate command (storage and report included) / plain runs: {cpu_ratio:.2f}x")
    print(f"stacked / plain: {stacked / plain:.2f}x")
    print(f"stack off / plain: {off / plain:.2f}x")


if __name__ == "__main__":
    main()
