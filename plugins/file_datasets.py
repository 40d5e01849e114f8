"""Data sets read from files a user has: arrays in a NumPy ``.npz`` file,
CIFAR-100 and SVHN in their official formats, and a torchvision-style image
folder (one sub-folder per class). None touches the network unless asked to
(``download = true``).

Every path is relative to the study file and its contents are hashed into the
run's identity (ablate.data.datafiles, ablate.data.datahash). Official test splits are
kept; validation is carved from the training split, stratified and seeded;
images are standardised per channel with the training split's statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ablate.plugins.datasets import (
    CIFAR10,
    IMAGE_PARAMS,
    SPLIT_PARAMS,
    VAL_FRACTION,
    _file_exists,
    image_splits,
    subsample,
)

from ablate import Param, UserError, hookimpl, make_splits
from ablate.errors import did_you_mean


def _read_error(name: str, path: Any, exc: Exception, key: str = "data.path") -> UserError:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return UserError(f"data set {name!r}: cannot read {path}: {type(exc).__name__}: {first}", key=key)


class NPZ:
    """Arrays from a NumPy ``.npz`` file (``np.savez``): ``x`` (N, ...) and ``y`` (N,),
    optionally ``x_test`` and ``y_test``, kept as the test split. Labels may be any
    values: the classes are the sorted distinct labels of y and y_test together.
    x of 3 or more dims (N, C, L) or (N, C, H, W) is standardised per channel, of 2
    dims per feature, with the training split's statistics."""

    def __init__(self, path: str, val_fraction: float, test_fraction: float):
        self.path, self.val_fraction, self.test_fraction = path, val_fraction, test_fraction

    def _arrays(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if not hasattr(f, "files"):
                    raise ValueError("a single array (.npy), not an archive of named arrays (.npz)")
                return {k: f[k] for k in f.files}
        except Exception as exc:
            raise _read_error("npz", self.path, exc) from None

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        have = ", ".join(sorted(arrays)) or "no arrays"
        for need in ("x", "y"):
            if need not in arrays:
                raise UserError(
                    f"data set 'npz': {self.path} has no array {need!r} (it has {have})",
                    key="data.path",
                    expected="arrays named x and y, optionally x_test and y_test (np.savez(path, x=..., y=...))",
                    hint=did_you_mean(need, list(arrays))
                    or next((f"did you mean {k!r}?" for k in arrays if k.lower() == need), None),
                )
        if ("x_test" in arrays) != ("y_test" in arrays):
            raise UserError(
                f"data set 'npz': {self.path} has one of x_test and y_test without the other",
                key="data.path",
                expected="both x_test and y_test, or neither (then the test split is carved from x)",
            )
        for xs, ys in (("x", "y"), ("x_test", "y_test")):
            if xs not in arrays:
                continue
            x, y = arrays[xs], arrays[ys]
            if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
                raise UserError(
                    f"data set 'npz': {xs} {x.shape} and {ys} {y.shape} in {self.path} do not fit",
                    key="data.path",
                    expected=f"{xs} of shape (N, ...) with 2 or more dims and {ys} of shape (N,)",
                )
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
                raise UserError(f"data set 'npz': {xs} in {self.path} is not numeric ({x.dtype})", key="data.path")
        if "x_test" in arrays and arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
            raise UserError(
                f"data set 'npz': x_test's samples {arrays['x_test'].shape[1:]} differ from x's "
                f"{arrays['x'].shape[1:]} in {self.path}",
                key="data.path",
            )

    def load(self, split_seed: int):
        arrays = self._arrays()
        self._check(arrays)
        x = arrays["x"].astype(np.float32)
        test = "x_test" in arrays
        labels = np.concatenate([arrays["y"], arrays["y_test"]]) if test else arrays["y"]
        _, codes = np.unique(labels, return_inverse=True)
        y, y_test = codes[: len(x)], codes[len(x) :] if test else None
        x_test = arrays["x_test"].astype(np.float32) if test else None
        split = image_splits if x.ndim >= 3 else make_splits
        return split(
            x,
            y,
            x_test=x_test,
            y_test=y_test,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction if not test else 0.0,
            seed=split_seed,
            name="npz",
            size_key="data.path",
        )


class CIFAR100(CIFAR10):
    """CIFAR-100: 50,000 train / 10,000 test 32x32 colour images, 100 fine classes
    (or the 20 coarse superclasses), as (3, 32, 32), from the python pickle files
    ROOT/cifar-100-python/train and test."""

    FOLDER = "cifar-100-python"
    TRAIN = ("train",)
    TEST = "test"
    NAME, ARCHIVE = "cifar100", "cifar-100-python.tar.gz"

    def __init__(self, root: str, download: bool, val_fraction: float, train_samples: int, labels: str):
        super().__init__(root, download, val_fraction, train_samples)
        self.labels = labels

    def read_batch(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        import pickle

        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(entry[f"{self.labels}_labels"], dtype=np.int64)

    def fetch(self) -> None:
        import torchvision.datasets as tvd

        tvd.CIFAR100(self.root, train=True, download=True)


class SVHN:
    """SVHN (Netzer et al., 2011), cropped digits: 73,257 train / 26,032 test 32x32
    colour images, 10 classes, as (3, 32, 32), from the official MATLAB files
    ROOT/train_32x32.mat and test_32x32.mat (``extra``: ROOT/extra_32x32.mat's
    531,131 easier images join the training split). Label 10 is the digit 0."""

    input_shape, num_classes = (3, 32, 32), 10
    normalisation = "per channel, training-split mean and std"

    def __init__(self, root: str, download: bool, val_fraction: float, train_samples: int, extra: bool):
        self.root, self.download, self.val_fraction = root, download, val_fraction
        self.train_samples, self.extra = train_samples, extra

    def _files(self) -> list[str]:
        return ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if self.extra else [])

    def _fetch_missing(self) -> None:
        missing = [f for f in self._files() if not (Path(self.root) / f).is_file()]
        if missing and self.download:
            import torchvision.datasets as tvd

            try:
                for f in missing:
                    tvd.SVHN(self.root, split=f.split("_")[0], download=True)
            except Exception as exc:
                raise UserError(
                    f"data set 'svhn': download failed: {type(exc).__name__}: {exc}",
                    key="data.download",
                    hint=f"fetch {', '.join(missing)} from http://ufldl.stanford.edu/housenumbers/ into {self.root}/",
                ) from None
            missing = [f for f in self._files() if not (Path(self.root) / f).is_file()]
        if missing:
            raise UserError(
                f"data set 'svhn': {', '.join(missing)} not found in {self.root}/",
                key="data.root",
                expected=f"the MATLAB files {', '.join(self._files())} in {self.root}/",
                hint="set download = true under [data] to fetch them once, or copy them there",
            )

    def _read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        import scipy.io

        path = Path(self.root) / name
        try:
            mat = scipy.io.loadmat(path)
            x = np.transpose(mat["X"], (3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
            y = np.asarray(mat["y"], dtype=np.int64).reshape(-1) % 10  # 10 is the digit 0
        except Exception as exc:
            raise _read_error("svhn", path, exc, key="data.root") from None
        return x, y

    def load(self, split_seed: int):
        self._fetch_missing()
        parts = [self._read(f) for f in self._files() if f != "test_32x32.mat"]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        x_test, y_test = self._read("test_32x32.mat")
        x, y = subsample(x, y, self.train_samples, split_seed)
        return image_splits(
            x.astype(np.float32) / 255.0,
            y,
            x_test=x_test.astype(np.float32) / 255.0,
            y_test=y_test,
            seed=split_seed,
            name="svhn",
            val_fraction=self.val_fraction,
            size_key="data.train_samples",
        )


class ImageFolder:
    """A torchvision-style image folder: ROOT/CLASS/IMAGE (classes are the sorted
    sub-folder names; torchvision's image extensions). Each image is resized to
    ``size`` x ``size`` (bilinear) in RGB, or grey with ``grey``, as (C, size,
    size). With ``test_root`` another such folder (the same classes) is the test
    split; else it is carved from ROOT, stratified and seeded."""

    def __init__(self, root: str, test_root: str, size: int, grey: bool, val_fraction: float, test_fraction: float):
        self.root, self.test_root, self.size, self.grey = root, test_root, size, grey
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def _read(self, root: str, key: str, classes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        from PIL import Image
        from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

        try:
            found, index = find_classes(root)
            if classes is not None and found != classes:
                raise UserError(
                    f"data set 'image_folder': the classes of {root} ({', '.join(found)}) differ from "
                    f"those of {self.root} ({', '.join(classes)})",
                    key=key,
                    expected="the same class sub-folders in both",
                )
            samples = make_dataset(root, index, extensions=IMG_EXTENSIONS)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise UserError(
                f"data set 'image_folder': {exc}",
                key=key,
                expected="a folder with one sub-folder of images per class (ROOT/CLASS/IMAGE.png)",
            ) from None
        mode = "L" if self.grey else "RGB"
        images = []
        for path, _ in samples:
            try:
                with Image.open(path) as img:
                    resized = img.convert(mode).resize((self.size, self.size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(resized, dtype=np.uint8))
            except Exception as exc:
                raise _read_error("image_folder", path, exc, key=key) from None
        x = np.stack(images)
        x = x[:, None] if self.grey else x.transpose(0, 3, 1, 2)
        return x, np.asarray([c for _, c in samples], dtype=np.int64), found

    def load(self, split_seed: int):
        if not self.root:
            raise UserError(
                "data set 'image_folder' needs a folder",
                key="data.root",
                expected="root = the folder of class sub-folders, relative to the study file",
            )
        x, y, classes = self._read(self.root, "data.root")
        x_test = y_test = None
        if self.test_root:
            x_test, y_test, _ = self._read(self.test_root, "data.test_root", classes)
            x_test = x_test.astype(np.float32) / 255.0
        return image_splits(
            x.astype(np.float32) / 255.0,
            y,
            x_test=x_test,
            y_test=y_test,
            seed=split_seed,
            name="image_folder",
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            size_key="data.root",
        )


@hookimpl
def ablate_register_datasets(registry):
    registry.add(
        "npz",
        NPZ,
        help="a NumPy .npz file: arrays x and y, optionally x_test and y_test",
        params={
            "path": Param("", validator=_file_exists, help="the .npz file (relative to the study file)"),
            **SPLIT_PARAMS,
        },
    )
    registry.add(
        "cifar100",
        CIFAR100,
        help="CIFAR-100 32x32 colour from ROOT/cifar-100-python/ (50k train, 10k test)",
        params={
            **IMAGE_PARAMS,
            "labels": Param("fine", choices=("fine", "coarse"), help="the 100 fine classes or the 20 superclasses"),
        },
    )
    registry.add(
        "svhn",
        SVHN,
        help="SVHN 32x32 colour digits from ROOT/train_32x32.mat, test_32x32.mat (73k train, 26k test)",
        params={**IMAGE_PARAMS, "extra": Param(False, help="add extra_32x32.mat's 531k images to training")},
    )
    registry.add(
        "image_folder",
        ImageFolder,
        help="a class-per-folder image tree (ROOT/CLASS/IMAGE), resized to size x size",
        params={
            "root": Param("", help="the folder of class sub-folders (relative to the study file)"),
            "test_root": Param("", help="another such folder as the test split (default: carved from root)"),
            "size": Param(32, low=1, high=4096, help="images are resized to size x size"),
            "grey": Param(False, help="one grey channel instead of RGB"),
            "val_fraction": VAL_FRACTION,
            "test_fraction": SPLIT_PARAMS["test_fraction"],
        },
    )
