"""Runs stored before components had qualified names keep their identity: the
quickstart's run keys are the ones the code before qualified names computed
(copied here with the study as it was), so its stored runs are reused, not trained
again; writing a built-in's qualified name ("ablate:dropout") changes no key."""

from __future__ import annotations

import re

from support import one_epoch_study

from ablate.engine.planned import study_arms
from ablate.study.config import load_study
from ablate.study.design import run_spec

QUICKSTART = """
[study]
name = "quickstart"
question = "Which of batch norm, layer norm, dropout and early stopping help a small MLP on digits?"
seeds = 3

[data]
name = "digits"

[model]
name = "mlp"
hidden = [128, 128]
slots = "linear>norm>act>dropout"

[train]
epochs = 40
batch_size = 64
optimizer = "adam"
lr = 0.001

[factors.norm]
kind = "norm"
levels = ["none", "batchnorm", "layernorm"]

[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = 0.3 }

[factors.early_stopping]
kind = "stopping"
levels = ["none", "early_stopping"]
early_stopping = { monitor = "val_loss", patience = 5 }
"""

# arm -> run keys of seeds 0, 1, 2, as computed before qualified names existed
KEYS_BEFORE = {
    "baseline": ["86802cc4225cbee2", "3889933d26de6309", "08ff6a35a2439e08"],
    "early_stopping": ["161f703aa37d5a27", "2993098e2ae7ac3f", "9dabf209d37b363e"],
    "dropout": ["4e9e4b761f71c111", "32ded42dffd89688", "f3b9123577659825"],
    "dropout + early_stopping": ["7d226194900b7425", "4fd22a42ddf1c119", "d49f4797dab3fd6b"],
    "batchnorm": ["c4b240c3d9fc875e", "47399937c6ef6015", "cf7339e48baff9dc"],
    "batchnorm + early_stopping": ["426abc734f18b116", "1dff70496a668661", "c21ebe1406e3048e"],
    "batchnorm + dropout": ["b03e29de03547ff8", "d5ce08598bb8c02a", "d8a629f1a2e1c2d6"],
    "batchnorm + dropout + early_stopping": ["5363ebfa1de49097", "43dd167a02c6b010", "02f0bd6f30e62f8d"],
    "layernorm": ["66803c03713d92f8", "3458b4e3b22aeb2c", "ffe2d4e41726c3f0"],
    "layernorm + early_stopping": ["c33f13c32f665c42", "5fb64a9a583817cc", "4b3a3e75d4b4810d"],
    "layernorm + dropout": ["7d9fcab1777c0781", "3835ea0a38208697", "baeb2b5bf768ad15"],
    "layernorm + dropout + early_stopping": ["1ee6145fae8b796f", "60f44cfc3b0d9b11", "f9f3d8207d27b7f6"],
}


def keys(registry, path) -> dict[str, list[str]]:
    config = load_study(path, registry)
    return {arm.name: [run_spec(config, arm, s).key for s in config.seeds] for arm in study_arms(config, registry)}


def test_the_quickstart_keeps_its_run_keys(registry, write_study):
    assert keys(registry, write_study(QUICKSTART)) == KEYS_BEFORE


def test_qualified_built_in_names_give_the_same_runs(registry, write_study):
    qualified = re.sub(r'"(batchnorm|layernorm|dropout|early_stopping|digits|mlp)"', r'"ablate:\1"', QUICKSTART)
    assert qualified.count('"ablate:') == 6
    # a parameter table keyed by the qualified name, as well as by the short one
    qualified = qualified.replace("early_stopping = {", '"ablate:early_stopping" = {')
    config = load_study(write_study(qualified), registry)
    assert config.data.name == "digits" and config.model.name == "mlp"
    runs = {run_spec(config, arm, s).key for arm in study_arms(config, registry) for s in config.seeds}
    assert runs == {k for ks in KEYS_BEFORE.values() for k in ks}


def test_stored_runs_are_reused_when_a_study_qualifies_its_names(write_study, run_cli, tmp_path):
    text = one_epoch_study() + '[factors.dropout]\nkind = "regularizer"\nlevels = ["none", "dropout"]\n'
    code, stdout, stderr = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, stderr
    qualified = text.replace('"dropout"]', '"ablate:dropout"]').replace('"digits"', '"ablate:digits"')
    code, stdout, stderr = run_cli("run", write_study(qualified), "--out", tmp_path / "out")
    assert code == 0, stderr
    assert "2 of 2 runs already stored; 0 to train" in stdout
