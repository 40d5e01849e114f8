"""An installed plugin that is broken (a misspelt hook, an import that fails)
is a warning naming it and how to switch it off, never a blocked command; it
becomes an error only for a study that needs its components. Plugins can be
switched off by name. `ablate plugins` lists every parameter's range, choices
and help, a study's local plugin files, and one component in detail."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import TINY, ablate, pip_install

from ablate.plugin.manager import build_registry, make_plugin_manager

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STUDY = TINY.replace("seeds = 2", "seeds = 1")


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return pip_install(FIXTURES / "broken_plugin", tmp_path_factory.mktemp("pip"))


def test_broken_installed_plugins_warn_and_the_rest_still_works(broken):
    done = ablate(broken, "plugins")
    assert done.returncode == 0, done.stderr
    assert "batchnorm" in done.stdout  # the built-ins are all there
    err = done.stderr
    assert "warning: plugin 'ablate-broken-plugin:misspelt' failed to load" in err
    assert "ablate_register_norm is not an ablate hook" in err and "'ablate_register_norms'" in err
    assert "warning: plugin 'ablate-broken-plugin:import' failed to load" in err
    assert "ModuleNotFoundError" in err and "a_module_that_is_not_installed" in err
    assert "--disable-plugin ablate-broken-plugin or ABLATE_DISABLE_PLUGINS=ablate-broken-plugin" in err
    assert "not loaded: ablate-broken-plugin:misspelt" in done.stdout


@pytest.mark.slow
def test_a_study_not_using_the_broken_plugin_runs(broken, write_study, tmp_path):
    study = write_study(STUDY.replace("epochs = 4", "epochs = 1"))
    done = ablate(broken, "run", study, "--out", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert "warning: plugin 'ablate-broken-plugin:import'" in done.stderr
    assert (tmp_path / "o" / "results.csv").is_file()


def test_a_study_needing_the_broken_plugin_names_it_in_the_error(broken, write_study):
    study = write_study(STUDY.replace('"batchnorm"]', '"scalenorm2"]'))
    done = ablate(broken, "plan", study, "--no-calibrate")
    assert done.returncode == 2
    assert "unknown norm 'scalenorm2'" in done.stderr
    assert "plugin 'ablate-broken-plugin:misspelt' failed to load, so its components are missing" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_switching_the_broken_package_off_silences_it(broken, how):
    if how == "option":
        done = ablate(broken, "--disable-plugin", "ablate-broken-plugin", "plugins")
    else:
        names = "ablate_broken_plugin:misspelt,ablate-broken-plugin:import"
        done = ablate({**broken, "ABLATE_DISABLE_PLUGINS": names}, "plugins")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert "switched off: ablate-broken-plugin:import" in done.stdout


def test_a_plugin_can_be_switched_off_by_its_entry_point_only(broken):
    done = ablate(
        broken, "--disable-plugin", "ablate-broken-plugin:import", "--disable-plugin", "ablate:stopping", "plugins"
    )
    assert done.returncode == 0
    assert "'ablate-broken-plugin:import'" not in done.stderr
    assert "'ablate-broken-plugin:misspelt'" in done.stderr
    assert "early_stopping" not in done.stdout and "batchnorm" in done.stdout  # a built-in switched off too


def test_an_unknown_name_to_switch_off_is_a_warning_with_the_nearest(capsys):
    pm = make_plugin_manager(disable=["ablate:norm"])
    assert pm.has_plugin("ablate:norms")  # a misspelt name switches nothing off
    assert "no plugin is named 'ablate:norm'; did you mean 'ablate:norms'?" in capsys.readouterr().err
    assert "batchnorm" in build_registry(pm).names("norm")


def test_a_local_plugin_file_can_be_switched_off(tmp_path, capsys):
    (tmp_path / "mine.py").write_text("raise RuntimeError('never imported')\n")
    pm = make_plugin_manager([tmp_path / "mine.py"], disable=["mine"])
    assert pm.disabled == ["file:mine.py"]


def test_plugins_lists_every_parameter_with_range_choices_and_help(run_cli):
    code, out, _ = run_cli("plugins")
    assert code == 0
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.split()[:1] == ["dropout"])
    assert "[ablate:regularizers]" in lines[i]
    assert lines[i + 1].strip() == "rate = 0.5  (a number in [0, 1))  drop probability"
    assert any(
        "monitor = 'val_loss'  (one of 'val_loss', 'val_accuracy')  validation metric to watch" in line
        for line in lines
    )
    assert any("spectral_norm" in line for line in lines)


def test_plugins_with_a_study_lists_its_local_files(write_study, run_cli, tmp_path):
    (tmp_path / "mine.py").write_text(
        "from ablate import Param, hookimpl\nclass Boost:\n    def __init__(self, gain):\n        pass\n"
        "@hookimpl\ndef ablate_register_regularizers(registry):\n"
        "    registry.add('boost', Boost, help='a local one',\n"
        "                 params={'gain': Param(2, low=1, help='how much')})\n"
    )
    study = write_study(STUDY.replace("seeds = 1", 'seeds = 1\nplugins = ["mine.py"]'))
    code, out, _ = run_cli("plugins", "--study", study)
    assert code == 0
    assert "boost" in out and "[file:mine.py]  a local one" in out
    assert "gain = 2  (an integer in [1, inf))  how much" in out
    assert "boost" not in run_cli("plugins")[1]


def test_plugins_name_shows_one_component_in_detail(run_cli):
    code, out, _ = run_cli("plugins", "early_stopping")
    assert code == 0
    assert out.startswith("stopping early_stopping  [ablate:stopping]")
    assert "factory: ablate.plugins.stopping.EarlyStopping" in out
    assert "patience = 5  (an integer in [1, inf))  epochs without improvement before stopping" in out
    assert "hooks: ablate_check_data, ablate_epoch_end, ablate_train_end" in out
    code, out, _ = run_cli("plugins", "norm:batchnorm")
    assert code == 0 and "momentum = 0.1" in out


def test_plugins_unknown_name_is_a_user_error_with_the_nearest(run_cli):
    code, _, err = run_cli("plugins", "erly_stopping")
    assert code == 2 and "no component is named 'erly_stopping'" in err
    assert "did you mean 'early_stopping'?" in err
    code, _, err = run_cli("plugins", "norm:batchnrom")
    assert code == 2 and "did you mean 'batchnorm'?" in err
