"""npz, cifar100, svhn and image_folder read their standard formats (files
written here, never the network); every file path of a study starts at the
study file, and the files' contents, not their location, are the run's identity."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from data_files import write_cifar10, write_cifar100, write_image_folder, write_npz, write_svhn
from support import make, one_epoch_study

from ablate.engine.planned import study_arms
from ablate.errors import UserError
from ablate.study.config import load_study
from ablate.study.design import run_spec


def test_npz_carves_splits_or_keeps_its_test_arrays_and_maps_any_labels(registry, tmp_path):
    write_npz(tmp_path / "a.npz", n=120)
    data = make(registry, "dataset", "npz", path=str(tmp_path / "a.npz")).load(0)
    assert data.input_shape == (40,) and data.num_classes == 3
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (72, 24, 24)
    assert data.x_train.mean(0).abs().max() < 1e-5  # per feature, on training statistics

    made = write_npz(tmp_path / "b.npz", n=90, shape=(2, 5, 5), test=30, labels=["ant", "bee", "cow"])
    data = make(registry, "dataset", "npz", path=str(tmp_path / "b.npz"), val_fraction=0.1).load(0)
    assert data.input_shape == (2, 5, 5) and len(data.x_test) == 30 and len(data.x_train) == 81
    expected = np.searchsorted(["ant", "bee", "cow"], made["y_test"])
    assert torch.equal(data.y_test, torch.as_tensor(expected))  # official test split, in order, labels sorted
    per_channel = data.x_train.transpose(0, 1).flatten(1)
    assert per_channel.mean(1).abs().max() < 1e-4 and (per_channel.std(1) - 1).abs().max() < 1e-3


def test_npz_mistakes_name_the_arrays_it_has(registry, tmp_path):
    np.savez(tmp_path / "c.npz", X=np.zeros((10, 3)), y=np.zeros(10))
    with pytest.raises(UserError, match="no array 'x' \\(it has X, y\\)") as err:
        make(registry, "dataset", "npz", path=str(tmp_path / "c.npz")).load(0)
    assert "did you mean 'X'" in str(err.value) and err.value.key == "data.path"
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 3)), y=np.zeros(9))
    with pytest.raises(UserError, match="do not fit"):
        make(registry, "dataset", "npz", path=str(tmp_path / "d.npz")).load(0)
    np.savez(tmp_path / "e.npz", x=np.zeros((10, 3)), y=np.zeros(10), x_test=np.zeros((4, 3)))
    with pytest.raises(UserError, match="without the other"):
        make(registry, "dataset", "npz", path=str(tmp_path / "e.npz")).load(0)
    (tmp_path / "f.npz").write_text("not a zip")
    with pytest.raises(UserError, match="cannot read"):
        make(registry, "dataset", "npz", path=str(tmp_path / "f.npz")).load(0)


@pytest.mark.parametrize("labels,classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_reads_its_pickles_with_fine_or_coarse_labels(registry, tmp_path, labels, classes):
    folder = write_cifar100(tmp_path)
    data = make(registry, "dataset", "cifar100", root=str(tmp_path), labels=labels).load(0)
    assert data.input_shape == (3, 32, 32) and data.num_classes == classes
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (400, 100, 100)
    with open(folder / "test", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    assert data.y_test.tolist() == raw[f"{labels}_labels"]
    first = raw["data"][0].reshape(3, 32, 32).astype(np.float64)
    corr = [np.corrcoef(data.x_test[0, c].double().numpy().ravel(), first[c].ravel())[0, 1] for c in range(3)]
    assert min(corr) > 0.999  # channel-first, red plane first
    (folder / "test").unlink()
    with pytest.raises(UserError, match="test not found") as err:
        make(registry, "dataset", "cifar100", root=str(tmp_path)).load(0)
    assert "cifar-100-python.tar.gz" in str(err.value)


def test_svhn_reads_the_mat_files_channel_first_with_10_as_the_digit_0(registry, tmp_path):
    made = write_svhn(tmp_path)
    data = make(registry, "dataset", "svhn", root=str(tmp_path)).load(0)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (80, 20, 40)
    assert data.y_test.tolist() == [i % 10 for i in range(40)]  # 10 read as 0
    first = made["test"][0].astype(np.float64)
    corr = [np.corrcoef(data.x_test[0, c].double().numpy().ravel(), first[c].ravel())[0, 1] for c in range(3)]
    assert min(corr) > 0.999
    with pytest.raises(UserError, match=r"extra_32x32\.mat not found") as err:
        make(registry, "dataset", "svhn", root=str(tmp_path), extra=True).load(0)
    assert "download = true" in str(err.value)


def test_image_folder_resizes_each_class_folder_and_takes_a_test_folder(registry, tmp_path):
    write_image_folder(tmp_path / "train", per_class=10, size=20)
    data = make(registry, "dataset", "image_folder", root=str(tmp_path / "train"), size=8).load(0)
    assert data.input_shape == (3, 8, 8) and data.num_classes == 3
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 30  # notes.txt skipped
    grey = make(registry, "dataset", "image_folder", root=str(tmp_path / "train"), size=8, grey=True).load(0)
    assert grey.input_shape == (1, 8, 8)
    # the corner trace rises with the class index (cat < dog < emu: sorted folder names)
    means = [float(data.x_test[data.y_test == c][:, 0, 0, 0].mean()) for c in range(3)]
    assert means == sorted(means)
    write_image_folder(tmp_path / "test", per_class=4, size=30, seed=1)
    kept = make(
        registry, "dataset", "image_folder", root=str(tmp_path / "train"), test_root=str(tmp_path / "test"), size=8
    ).load(0)
    assert len(kept.x_test) == 12 and kept.y_test.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    shutil.rmtree(tmp_path / "test" / "emu")
    with pytest.raises(UserError, match=r"classes of .* differ"):
        make(registry, "dataset", "image_folder", root=str(tmp_path / "train"), test_root=str(tmp_path / "test")).load(
            0
        )
    with pytest.raises(UserError, match="one sub-folder of images per class"):
        make(registry, "dataset", "image_folder", root=str(tmp_path / "nowhere")).load(0)


def _study_with(data: str) -> str:
    return one_epoch_study(name="files", seeds=1, data=data)


FILES = {
    "npz": (lambda d: write_npz(d / "arrays.npz"), 'name = "npz"\npath = "arrays.npz"'),
    "cifar100": (lambda d: write_cifar100(d / "data"), 'name = "cifar100"\nlabels = "coarse"'),
    "svhn": (lambda d: write_svhn(d / "svhn"), 'name = "svhn"\nroot = "svhn"'),
    "image_folder": (lambda d: write_image_folder(d / "pics"), 'name = "image_folder"\nroot = "pics"\nsize = 8'),
    "cifar10": (lambda d: write_cifar10(d / "data"), 'name = "cifar10"'),
}


@pytest.mark.parametrize("name", list(FILES))
def test_a_study_on_each_file_data_set_runs_from_another_folder(name, run_cli, tmp_path, monkeypatch):
    """Paths (and cifar's default root "data") start at the study file, not the working directory."""
    here = tmp_path / "study"
    here.mkdir()
    write, data = FILES[name]
    write(here)
    (here / "study.toml").write_text(_study_with(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli("run", "../study/study.toml", "--out", "out")
    assert code == 0, err
    table = pd.read_csv(elsewhere / "out" / "results.csv")
    assert (table["status"] == "complete").all() and len(table) == 1
    for written in (elsewhere / "out").glob("*.*"):  # where this machine keeps the study stays here
        assert "data_dir" not in written.read_text(encoding="utf-8", errors="replace"), written.name


def test_a_csv_path_is_found_from_the_study_file_and_a_missing_one_named_there(run_cli, tmp_path, monkeypatch):
    (tmp_path / "s" / "tables").mkdir(parents=True)
    rows = [f"{i % 3},{i % 3 + 0.1 * i},{i}" for i in range(60)]
    (tmp_path / "s" / "tables" / "t.csv").write_text("label,a,b\n" + "\n".join(rows) + "\n")
    (tmp_path / "s" / "study.toml").write_text(_study_with('name = "csv"\npath = "tables/t.csv"'))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("run", "s/study.toml", "--out", "o")
    assert code == 0, err
    (tmp_path / "s" / "bad.toml").write_text(_study_with('name = "csv"\npath = "t.csv"'))
    code, _, err = run_cli("run", "s/bad.toml", "--out", "o2")
    assert code == 2 and "data.path" in err and "study file" in err and "Traceback" not in err


def test_run_identity_follows_file_contents_not_the_study_folders_location(registry, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_npz(tmp_path / folder / "x.npz")
        (tmp_path / folder / "study.toml").write_text(_study_with('name = "npz"\npath = "x.npz"'))

    def key(folder: str) -> str:
        config = load_study(tmp_path / folder / "study.toml", registry)
        return run_spec(config, study_arms(config, registry)[0], 0).key

    assert key("a") == key("b")  # a copy elsewhere (another worker's checkout) trains the same runs
    write_npz(tmp_path / "b" / "x.npz", seed=1)
    assert key("a") != key("b")  # new contents make new runs


def test_ablate_plugins_lists_the_new_data_sets_and_models(run_cli):
    code, out, _ = run_cli("plugins")
    assert code == 0
    for name in ("npz", "cifar100", "svhn", "image_folder", "vit", "cifar_resnet"):
        assert f"\n  {name} " in out, name
