"""Small files in each data set's standard format, written by the tests (never
the network): CIFAR-10/100 python pickle batches, SVHN MATLAB files, a PNG
class-per-folder tree and NumPy .npz archives. Each image carries a trace of
its label (a brighter top-left corner), so a model can learn it in one epoch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def images(n: int, classes: int, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, size, size) uint8 images and their labels 0..classes-1, balanced."""
    labels = np.arange(n) % classes
    x = rng.integers(0, 128, (n, 3, size, size), dtype=np.uint8)
    x[:, :, :4, :4] = (128 + labels * (127 // max(classes - 1, 1)))[:, None, None, None].astype(np.uint8)
    return x, labels


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 30, seed: int = 0) -> Path:
    """cifar-10-batches-py/: data_batch_1..5 and test_batch, dicts of 'data' (n, 3072) and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        x, y = images(n, 10, rng)
        entry = {"batch_label": name, "labels": [int(v) for v in y], "data": x.reshape(n, -1)}
        entry["filenames"] = [f"{i}.png" for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return folder


def write_cifar100(root: Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """cifar-100-python/: train and test, dicts of 'data', 'fine_labels' (0-99), 'coarse_labels' (0-19)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", n_train), ("test", n_test)):
        x, fine = images(n, 100, rng)
        entry = {
            "filenames": [f"{i}.png" for i in range(n)],
            "batch_label": name,
            "fine_labels": [int(v) for v in fine],
            "coarse_labels": [int(v) // 5 for v in fine],
            "data": x.reshape(n, -1),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return folder


def write_svhn(root: Path, n_train: int = 100, n_test: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """train_32x32.mat and test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x, digits = images(n, 10, rng)
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / f"{name}_32x32.mat", {"X": np.transpose(x, (2, 3, 1, 0)), "y": y})
        made[name] = x
    return made


def write_image_folder(root: Path, classes=("cat", "dog", "emu"), per_class: int = 12, size: int = 20, seed=0) -> Path:
    """ROOT/CLASS/i.png, RGB PNGs of size x size (not the size a study asks for)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        x, _ = images(per_class, 1, rng, size=size)
        for i, img in enumerate(x):
            img[:, :4, :4] = 60 + 90 * c
            Image.fromarray(img.transpose(1, 2, 0)).save(root / name / f"{i}.png")
    (root / "emu" / "notes.txt").write_text("not an image")  # skipped, as torchvision skips it
    return root


def write_npz(
    path: Path, n: int = 120, shape=(40,), test: int = 0, labels=None, seed: int = 0
) -> dict[str, np.ndarray]:
    """x (n, *shape) float and y (n,) over 3 classes (or ``labels``' values), optionally x_test/y_test."""
    rng = np.random.default_rng(seed)
    names = np.asarray(labels if labels is not None else [0, 1, 2])
    arrays = {}
    for xs, ys, m in (("x", "y", n), ("x_test", "y_test", test)):
        if not m:
            continue
        codes = np.arange(m) % len(names)
        x = rng.normal(size=(m, *shape)).astype(np.float32)
        x.reshape(m, -1)[:, 0] += 3 * codes
        arrays[xs], arrays[ys] = x, names[codes]
    np.savez(path, **arrays)
    return arrays
