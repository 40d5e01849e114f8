"""Qualified component names, DIST:NAME, for a study's plugin file (DIST = its file
name) beside the built-ins: usable wherever a short name is, part of the run's
identity, and the way out when two plugins register one short name."""

from __future__ import annotations

import textwrap

import pytest
from support import one_epoch_study

from ablate.engine.planned import study_arms
from ablate.errors import UserError
from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.study.config import load_study
from ablate.study.design import run_spec
from ablate.testing import run_tiny_study

TWIN = """
import torch.nn as nn
from ablate import Param, hookimpl


class Model:
    def __init__(self, width):
        self.width = width

    def build(self, input_shape, num_classes, make_layer):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


class SpectralNorm:
    def __init__(self, include_output):
        self.include_output = include_output

    @hookimpl
    def ablate_configure_model(self, model):
        pass


@hookimpl
def ablate_register_models(registry):
    registry.add("mlp", Model, params={"width": Param(4, low=1)})


@hookimpl
def ablate_register_regularizers(registry):
    registry.add("spectral_norm", SpectralNorm, params={"include_output": Param(False)})
"""

QUALIFIED_MLP = one_epoch_study().replace('"mlp"', '"ablate:mlp"')
SN = '\n[factors.sn]\nkind = "regularizer"\nlevels = {levels}\n'


def study(tmp_path, text: str, plugins: bool = True) -> str:
    (tmp_path / "twin.py").write_text(textwrap.dedent(TWIN))
    path = tmp_path / "study.toml"
    path.write_text(text.replace("seeds = 1", 'seeds = 1\nplugins = ["twin.py"]') if plugins else text)
    return str(path)


def test_a_model_name_two_plugins_register_is_an_error_naming_both(tmp_path, run_cli):
    path = study(tmp_path, one_epoch_study())
    code, stdout, stderr = run_cli("plan", path)
    assert code == 2, stdout
    lines = stderr.strip().splitlines()
    assert lines[0] == f"error: {path}: model.name: model 'mlp' is registered by 2 plugins: ablate:mlp and twin.py:mlp"
    assert "only ablate:mlp accepts the parameters given here (hidden)" in stderr
    assert 'change it to: name = "ablate:mlp"' in stderr
    fixed = study(tmp_path, one_epoch_study().replace('name = "mlp"', 'name = "ablate:mlp"'))
    assert run_cli("plan", fixed)[0] == 0


def test_the_other_provider_by_its_qualified_name(tmp_path, run_cli):
    text = one_epoch_study().replace('name = "mlp"\nhidden = [8]', 'name = "twin.py:mlp"\nwidth = 3')
    code, _, stderr = run_cli("plan", study(tmp_path, text))
    assert code == 0, stderr
    code, _, stderr = run_cli("plan", study(tmp_path, text.replace("width", "hidden")))
    assert code == 2 and "model 'twin.py:mlp' has no parameter 'hidden'" in stderr


def test_each_provider_is_its_own_run_and_ablates_keeps_its_old_key(tmp_path):
    text = one_epoch_study().replace('name = "mlp"', 'name = "ablate:mlp"')
    both = text + SN.format(levels='["none", "ablate:spectral_norm", "twin.py:spectral_norm"]')
    path = study(tmp_path, both)
    registry = build_registry(make_plugin_manager([tmp_path / "twin.py"]))
    config = load_study(path, registry)
    keys = {arm.name: run_spec(config, arm, 0).key for arm in study_arms(config, registry)}
    assert list(keys) == ["baseline", "ablate:spectral_norm", "twin.py:spectral_norm"]
    assert len(set(keys.values())) == 3  # a run with one provider is never reused for the other
    # without the plugin file the bare name is ablate's, and names the same run
    alone = tmp_path / "alone.toml"
    alone.write_text(one_epoch_study() + SN.format(levels='["none", "spectral_norm"]'))
    builtins = build_registry(make_plugin_manager())
    config = load_study(alone, builtins)
    bare = {arm.name: run_spec(config, arm, 0).key for arm in study_arms(config, builtins)}
    assert bare == {"baseline": keys["baseline"], "spectral_norm": keys["ablate:spectral_norm"]}


def test_a_parameter_table_keyed_by_a_short_name_two_levels_share_is_refused(tmp_path, run_cli):
    levels = '["none", "ablate:spectral_norm", "twin.py:spectral_norm"]'
    code, _, stderr = run_cli(
        "plan", study(tmp_path, QUALIFIED_MLP + SN.format(levels=levels) + "spectral_norm = { head = true }\n")
    )
    assert code == 2
    assert "factors.sn.spectral_norm: 'spectral_norm' could be the parameters of any of the levels" in stderr
    assert '"twin.py:spectral_norm" = { ... }' in stderr
    keyed = (
        SN.format(levels=levels)
        + '"ablate:spectral_norm" = { head = true }\n"twin.py:spectral_norm" = { include_output = true }\n'
    )
    code, _, stderr = run_cli("plan", study(tmp_path, QUALIFIED_MLP + keyed))
    assert code == 0, stderr
    twice = (
        SN.format(levels='["none", "twin.py:spectral_norm"]')
        + 'spectral_norm = { include_output = true }\n"twin.py:spectral_norm" = { include_output = false }\n'
    )
    code, _, stderr = run_cli("plan", study(tmp_path, QUALIFIED_MLP + twice))
    assert code == 2 and "both give the parameters of level 'twin.py:spectral_norm'" in stderr


def test_plugins_lists_and_details_both_providers(tmp_path, run_cli):
    path = study(tmp_path, one_epoch_study())
    code, stdout, stderr = run_cli("plugins", "--study", path)
    assert code == 0, stderr
    rows = {r.split()[0]: r.split()[1] for r in stdout.splitlines() if r.startswith("  ") and r[2] != " "}
    assert rows["ablate:spectral_norm"] == "[ablate:regularizers]" and rows["twin.py:spectral_norm"] == "[file:twin.py]"
    assert rows["dropout"] == "[ablate:regularizers]"  # short where no other plugin has the name
    code, stdout, _ = run_cli("plugins", "--study", path, "spectral_norm")
    assert (
        code == 0
        and "qualified name: ablate:spectral_norm" in stdout
        and "qualified name: twin.py:spectral_norm" in stdout
    )
    code, stdout, _ = run_cli("plugins", "--study", path, "regularizer:twin.py:spectral_norm")
    assert code == 0 and "twin.py:spectral_norm" in stdout and "ablate:spectral_norm" not in stdout
    code, _, stderr = run_cli("plugins", "--study", path, "twin.py:spectral_nrm")
    assert code == 2 and "did you mean 'twin.py:spectral_norm'?" in stderr


def test_a_component_name_with_a_colon_is_refused_when_the_plugin_loads(tmp_path):
    hook = "from ablate import hookimpl\n@hookimpl\ndef ablate_register_norms(registry):\n"
    (tmp_path / "bad.py").write_text(hook + "    registry.add('x:y', object)\n")
    with pytest.raises(UserError, match="norm name 'x:y' is not a short name"):
        build_registry(make_plugin_manager([tmp_path / "bad.py"]))


def test_run_tiny_study_takes_a_qualified_name(tmp_path):
    study(tmp_path, "")
    table = run_tiny_study(
        "regularizer", "twin.py:spectral_norm", {"include_output": True}, tmp_path, plugin_file=tmp_path / "twin.py"
    )
    assert list(table["arm"]) == ["baseline", "twin.py:spectral_norm"] and (table["status"] == "complete").all()
