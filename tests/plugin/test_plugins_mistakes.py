"""A plugin author's common mistakes are caught when the plugin loads, before
anything trains: exit 2 with a message naming the plugin, the hook or parameter
and the nearest valid name; the runs a study already stored are kept."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import optuna
import pytest
from support import TINY

STUDY = TINY.replace("seeds = 2", "seeds = 1").replace("epochs = 4", "epochs = 2")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A study with two completed runs in its storage (trained once for the module)."""
    from ablate.cli import main

    folder = tmp_path_factory.mktemp("stored")
    study = folder / "study.toml"
    study.write_text(STUDY.replace('levels = ["none", "dropout"]\ndropout = { rate = 0.2 }\n', 'levels = ["none"]\n'))
    assert main(["run", str(study), "--out", str(folder / "out")]) == 0
    return folder / "out"


def completed_runs(out: Path) -> int:
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def run_with_plugin(stored, tmp_path, run_cli, plugin: str, factor: str):
    """Run the stored study again with a plugin file and a factor using it."""
    out = tmp_path / "out"
    shutil.copytree(stored, out)
    (tmp_path / "plugin.py").write_text(textwrap.dedent(plugin))
    text = STUDY.replace("seeds = 1", 'seeds = 1\nplugins = ["plugin.py"]')
    text = text.replace(
        '[factors.dropout]\nkind = "regularizer"\nlevels = ["none", "dropout"]\ndropout = { rate = 0.2 }\n',
        textwrap.dedent(factor),
    )
    (tmp_path / "study.toml").write_text(text)
    code, stdout, stderr = run_cli("run", tmp_path / "study.toml", "--out", out)
    assert completed_runs(out) == 2, "a stored run was lost"
    assert "seed=" not in stdout, "something trained"
    return code, stderr


FOO = '[factors.foo]\nkind = "regularizer"\nlevels = ["none", "foo"]\n'


def test_misspelt_registration_hook_names_the_hook_and_the_nearest(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        class Foo:
            def __init__(self):
                pass
        @hookimpl
        def ablate_register_regularizer(registry):
            registry.add("foo", Foo)
        """,
        FOO,
    )
    assert code == 2
    assert "plugin 'file:plugin.py'" in err and "ablate_register_regularizer is not an ablate hook" in err
    assert "did you mean 'ablate_register_regularizers'?" in err


def test_misspelt_trial_hook_on_a_component_fails_at_load(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        class Foo:
            def __init__(self):
                pass
            @hookimpl
            def ablate_epoch_ended(self, state):
                return "stop"
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo)
        """,
        FOO,
    )
    assert code == 2
    assert "regularizer 'foo' (Foo): ablate_epoch_ended is not an ablate hook" in err
    assert "did you mean 'ablate_epoch_end'?" in err and "file:plugin.py" in err


def test_wrong_argument_name_of_a_trial_hook_fails_at_load_not_at_run(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        class Foo:
            def __init__(self):
                pass
            @hookimpl
            def ablate_loss_penalty(self, modle):
                return modle.weight.sum()
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo)
        """,
        FOO,
    )
    assert code == 2
    assert "argument 'modle' of hook ablate_loss_penalty" in err
    assert "ablate_loss_penalty(model)" in err and "did you mean 'model'?" in err


def test_wrong_argument_name_of_a_registration_hook(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        @hookimpl
        def ablate_register_regularizers(registrar):
            pass
        """,
        FOO,
    )
    assert code == 2 and "argument 'registrar' of hook ablate_register_regularizers" in err
    assert "did you mean 'registry'?" in err


def test_a_hook_method_without_the_marker_would_never_run(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        class Foo:
            def __init__(self):
                pass
            def ablate_after_step(self, model):
                raise AssertionError("never called")
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo)
        """,
        FOO,
    )
    assert code == 2 and "ablate_after_step is not marked with @hookimpl" in err


def test_a_trial_hook_on_the_plugin_module_is_refused(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        class Foo:
            def __init__(self):
                pass
        @hookimpl
        def ablate_epoch_end(state):
            return "stop"
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo)
        """,
        FOO,
    )
    assert code == 2 and "ablate_epoch_end is never called here" in err
    assert "method of the component class" in err


def test_param_default_outside_its_own_range(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import Param, hookimpl
        class Foo:
            def __init__(self, rate):
                self.rate = rate
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo, params={"rate": Param(1.5, low=0.0, high=1.0, high_open=True)})
        """,
        FOO,
    )
    assert code == 2
    assert "regularizer 'foo': the default of parameter 'rate' (1.5) is outside its own range" in err
    assert "a number in [0, 1)" in err


def test_param_default_not_among_its_choices(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import Param, hookimpl
        class Foo:
            def __init__(self, mode):
                self.mode = mode
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo, params={"mode": Param("fast", choices=("slow", "exact"))})
        """,
        FOO,
    )
    assert code == 2 and "parameter 'mode' ('fast') is not one of its own choices" in err


def test_factory_signature_must_match_the_declared_params(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import Param, hookimpl
        class Foo:
            def __init__(self, rat, beta):
                pass
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.add("foo", Foo, params={"rate": Param(0.5, low=0.0, high=1.0)})
        """,
        FOO,
    )
    assert code == 2
    assert "Foo(rat, beta) does not accept declared parameter(s) 'rate'" in err
    assert "needs 'rat', 'beta', which no Param declares" in err and "did you mean 'rat'?" in err


def test_an_exception_in_a_registration_hook_names_the_file_and_line(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import hookimpl
        @hookimpl
        def ablate_register_regularizers(registry):
            registry.ad("foo", object)
        """,
        FOO,
    )
    assert code == 2 and "ablate_register_regularizers raised AttributeError" in err
    assert "plugin.py:5" in err and "Traceback" not in err  # the line of registry.ad


def test_image_augmentation_on_1d_data_is_rejected_before_training(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored, tmp_path, run_cli, "# no plugin\n", '[factors.aug]\nkind = "augmentation"\nlevels = ["none", "crop"]\n'
    )
    assert code == 2
    assert "factors.aug: augmentation 'crop' rejects data set 'digits' (input 64" in err
    assert "needs images (C, H, W)" in err and "Traceback" not in err


def test_a_third_party_check_data_hook_rejects_the_study(stored, tmp_path, run_cli):
    code, err = run_with_plugin(
        stored,
        tmp_path,
        run_cli,
        """
        from ablate import UserError, hookimpl
        class Cutout:
            def __init__(self):
                pass
            @hookimpl
            def ablate_check_data(self, info):
                if len(info.input_shape) != 3:
                    raise UserError(f"cutout cuts boxes out of images; {info.name} has {info.num_classes} "
                                    f"classes of shape {info.input_shape}")
        @hookimpl
        def ablate_register_augmentations(registry):
            registry.add("cutout", Cutout)
        """,
        '[factors.aug]\nkind = "augmentation"\nlevels = ["none", "cutout"]\n',
    )
    assert code == 2
    assert "augmentation 'cutout' rejects data set 'digits'" in err
    assert "digits has 10 classes of shape (64,)" in err


def test_early_stopping_without_a_validation_split_names_the_component(write_study, run_cli):
    text = STUDY.replace('name = "digits"', 'name = "digits"\nval_fraction = 0.0') + (
        '\n[factors.stop]\nkind = "stopping"\nlevels = ["none", "early_stopping"]\n'
    )
    code, _, err = run_cli("plan", write_study(text), "--no-calibrate")
    assert code == 2
    assert "stopping 'early_stopping' rejects data set 'digits'" in err and "0/" in err
    assert "data.val_fraction" in err and "plateau" in err


@pytest.mark.parametrize(
    "path, words",
    [
        (".", "is a folder"),
        ("../" * 30 + "etc/passwd", "is not a .py file"),
        ("study.toml", "is not a .py file"),
        ("missing.py", "does not exist"),
    ],
)
def test_a_plugin_path_that_is_not_a_readable_py_file_is_a_user_error(write_study, run_cli, path, words):
    study = write_study(STUDY.replace("seeds = 1", f'seeds = 1\nplugins = ["{path}"]'))
    code, _, err = run_cli("plan", study, "--no-calibrate")
    assert code == 2 and words in err and "study.plugins" in err and "Traceback" not in err


def test_an_empty_plugin_list_is_accepted(write_study, run_cli):
    code, out, err = run_cli(
        "plan", write_study(STUDY.replace("seeds = 1", "seeds = 1\nplugins = []")), "--no-calibrate"
    )
    assert code == 0, err
    assert "runs: 4 arms x 1 seeds" in out


def test_a_model_builder_receives_only_the_data_check(write_study, run_cli, tmp_path):
    (tmp_path / "plugin.py").write_text(
        textwrap.dedent("""
        import torch.nn as nn
        from ablate import hookimpl
        class Tiny:
            def __init__(self):
                pass
            def build(self, input_shape, num_classes, make_layer):
                return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
            @hookimpl
            def ablate_configure_model(self, model):
                raise AssertionError("a model builder is not registered in a run: never called")
        @hookimpl
        def ablate_register_models(registry):
            registry.add("tiny", Tiny)
        """)
    )
    text = STUDY.replace("seeds = 1", 'seeds = 1\nplugins = ["plugin.py"]').replace('name = "mlp"', 'name = "tiny"')
    code, _, err = run_cli("plan", write_study(text.replace("hidden = [32]\n", "")), "--no-calibrate")
    assert code == 2 and "model 'tiny' (Tiny): ablate_configure_model is never called here" in err
    assert "a model's instance receives ablate_check_data" in err
