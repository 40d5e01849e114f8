"""Data sets read the genuine on-disk formats (files written here, never the
network), keep official test splits, split stratified and seeded, and report a
missing file as a clean user error naming what is expected where."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from support import make

from ablate.errors import UserError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(folder, n_train=200, n_test=50, seed=0):
    """MNIST's idx-ubyte format: big-endian magic (0x0803 images, 0x0801 labels) and sizes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    made = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels * 20  # a readable trace of the label
        img_name, lab_name = MNIST_FILES[split]
        (folder / img_name).write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + images.tobytes())
        (folder / lab_name).write_bytes(struct.pack(">II", 0x0801, n) + labels.tobytes())
        made[split] = (images, labels)
    return made


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_sets_read_idx_files_keep_the_test_split_and_carve_validation(registry, tmp_path, name, folder):
    made = write_idx(tmp_path / folder / "raw")
    data = make(registry, "dataset", name, root=str(tmp_path), val_fraction=0.2).load(0)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (160, 40, 50)
    assert torch.equal(data.y_test, torch.as_tensor(made["t10k"][1]).long())  # official test split, in order
    assert torch.bincount(data.y_val, minlength=10).tolist() == [4] * 10  # stratified
    # per-channel standardised with training statistics; the label trace survives
    assert abs(data.x_train.mean()) < 1e-4 and abs(data.x_train.std() - 1) < 1e-2
    corner = data.x_test[:, 0, 0, 0]
    assert torch.equal(corner.argsort(stable=True)[:5], (data.y_test == 0).nonzero().flatten())
    again, other = (make(registry, "dataset", name, root=str(tmp_path)).load(s) for s in (0, 1))
    assert torch.equal(again.x_val, data.x_val) and not torch.equal(other.x_val, data.x_val)
    few = make(registry, "dataset", name, root=str(tmp_path), train_samples=100).load(0)
    assert len(few.x_train) + len(few.x_val) == 100 and len(few.x_test) == 50


def test_mnist_without_files_is_a_user_error_naming_the_files_and_folder(registry, tmp_path):
    with pytest.raises(UserError) as err:
        make(registry, "dataset", "mnist", root=str(tmp_path)).load(0)
    text = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in text and "train-images-idx3-ubyte" in text
    assert "download = true" in text


def write_cifar(root, per_batch=20, n_test=30, seed=0):
    """CIFAR-10's python pickle batches: dicts with 'data' (n, 3072) uint8 and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        labels = [int(v) for v in np.arange(n) % 10]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump(
                {"batch_label": name, "labels": labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]}, f
            )
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {
                "label_names": [
                    "airplane",
                    "automobile",
                    "bird",
                    "cat",
                    "deer",
                    "dog",
                    "frog",
                    "horse",
                    "ship",
                    "truck",
                ],
                "num_vis": 3072,
            },
            f,
        )
    return folder


def test_cifar10_reads_the_pickle_batches_as_channel_first_images(registry, tmp_path):
    folder = write_cifar(tmp_path)
    data = make(registry, "dataset", "cifar10", root=str(tmp_path), val_fraction=0.2).load(0)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (80, 20, 30)
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    first = raw["data"][0].reshape(3, 32, 32).astype(np.float64) / 255  # red plane first
    x = data.x_test[0].double().numpy()
    corr = [np.corrcoef(x[c].ravel(), first[c].ravel())[0, 1] for c in range(3)]
    assert min(corr) > 0.999  # the same image, channel by channel (up to the standardisation)
    (folder / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3 not found"):
        make(registry, "dataset", "cifar10", root=str(tmp_path)).load(0)


CSV_TEXT_HEADER = "label,p0,p1,p2,p3\n"


def write_csv(path, n=60, header=True, label_first=True, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ["coat", "shirt", "bag"][i % 3]
        pixels = rng.normal(size=4) + (i % 3) * 3
        rows.append([label] + [f"{v:.4f}" for v in pixels] if label_first else [f"{v:.4f}" for v in pixels] + [label])
    text = CSV_TEXT_HEADER if header and label_first else "p0,p1,p2,p3,label\n" if header else ""
    path.write_text(text + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_csv_takes_the_first_column_as_label_and_reshapes_rows(registry, tmp_path):
    path = write_csv(tmp_path / "fashion.csv")
    data = make(registry, "dataset", "csv", path=str(path)).load(0)
    assert data.num_classes == 3 and data.input_shape == (4,)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 60
    # labels are the sorted distinct values: bag=0, coat=1, shirt=2; their means rise with the row index mod 3
    assert torch.bincount(data.y_test).tolist() == [4, 4, 4]
    images = make(registry, "dataset", "csv", path=str(path), shape=[1, 2, 2]).load(0)
    assert images.input_shape == (1, 2, 2)
    last = write_csv(tmp_path / "last.csv", label_first=False)
    by_name = make(registry, "dataset", "csv", path=str(last), label_column="label").load(0)
    by_index = make(registry, "dataset", "csv", path=str(last), label_column=-1).load(0)
    assert torch.equal(by_name.x_train, by_index.x_train) and torch.equal(by_name.y_val, data.y_val)
    bare = write_csv(tmp_path / "bare.csv", header=False)
    assert torch.equal(make(registry, "dataset", "csv", path=str(bare)).load(0).x_train, data.x_train)


def test_csv_mistakes_name_the_file_and_column(registry, tmp_path):
    path = write_csv(tmp_path / "f.csv")
    with pytest.raises(UserError, match="no column 'lable'") as err:
        make(registry, "dataset", "csv", path=str(path), label_column="lable").load(0)
    assert "did you mean 'label'" in str(err.value)
    with pytest.raises(UserError, match="do not fit shape"):
        make(registry, "dataset", "csv", path=str(path), shape=[1, 28, 28]).load(0)
    with pytest.raises(UserError, match="no such file"):  # at validation, before anything trains
        registry.resolve_params("dataset", "csv", {"path": str(tmp_path / "missing.csv")}, key="data")


@pytest.mark.parametrize(
    "name,params,classes,shape",
    [
        ("make_classification", {"n_samples": 300, "n_classes": 3}, 3, (20,)),
        ("make_moons", {"n_samples": 300, "noise": 0.1}, 2, (2,)),
    ],
)
def test_sklearn_sets_are_seeded_stratified_and_standardised(registry, name, params, classes, shape):
    a = make(registry, "dataset", name, **params).load(0)
    b = make(registry, "dataset", name, **params).load(0)
    c = make(registry, "dataset", name, **params, seed=1).load(0)
    assert a.num_classes == classes and a.input_shape == shape
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (180, 60, 60)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    counts = torch.bincount(a.y_test).tolist()
    assert max(counts) - min(counts) <= 2
    assert a.x_train.mean(0).abs().max() < 1e-5


def test_digits_as_images_are_1x8x8_and_standardised_per_channel(registry):
    flat = make(registry, "dataset", "digits").load(0)
    img = make(registry, "dataset", "digits", image=True).load(0)
    assert img.input_shape == (1, 8, 8) and torch.equal(img.y_test, flat.y_test)
    assert abs(img.x_train.mean()) < 1e-5 and abs(img.x_train.std() - 1) < 1e-3
    assert img.x_train[:, 0, 0, 0].std() < 0.5  # one scale for all pixels: the empty corner stays flat


@pytest.mark.parametrize("name,n_train,n_test,shape", [("digits", 1077, 360, (64,)), ("mnist1d", 3200, 1000, (40,))])
def test_datasets_split_three_ways_stratified_and_seeded(registry, name, n_train, n_test, shape):
    ds = make(registry, "dataset", name)
    a, b, c = ds.load(0), ds.load(0), ds.load(1)
    assert len(a.x_train) == n_train and len(a.x_test) == n_test and a.input_shape == shape
    assert a.num_classes == 10 and torch.equal(a.x_val, b.x_val)
    if name == "digits":
        assert not torch.equal(a.x_val, c.x_val)  # the split seed moves the split
    counts = torch.bincount(a.y_val, minlength=10).float()
    assert counts.max() - counts.min() <= 0.15 * counts.mean() + 1  # stratified
    assert a.x_train.mean().abs() < 0.05  # standardised on training statistics


def test_mnist1d_generation_leaves_the_global_rng_alone(registry):
    torch.manual_seed(0)
    import numpy as np

    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    make(registry, "dataset", "mnist1d", num_samples=500).load(0)
    assert np.random.random() == before
