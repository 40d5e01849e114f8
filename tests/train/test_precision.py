"""[train] precision: bf16 trains under autocast on a CPU too, with numbers of its
own and runs of its own (precision is part of a run's identity; fp32, the
default, leaves the identity of runs stored before the key existed as it was);
fp16 likewise, with a gradient scaler, each seed trained alone."""

from __future__ import annotations

import json

STUDY = """
[study]
name = "precision"
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
batch_size = 256
{precision}
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
"""


def _run(tmp_path, run_cli, precision: str) -> tuple[str, dict]:
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(precision=precision))
    code, out, err = run_cli("run", study, "--out", tmp_path / "out")
    assert code == 0, err
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    return out, {(r["arm"], r["seed"]): r for r in runs}


def test_bf16_on_a_cpu_completes_with_numbers_and_runs_of_its_own(tmp_path, run_cli):
    _, fp32 = _run(tmp_path, run_cli, "")
    out, bf16 = _run(tmp_path, run_cli, 'precision = "bf16"')  # the same storage: fp32's runs are there
    assert len(bf16) == 4 and "4 of 4 runs already stored" not in out  # trained, not fp32's reused
    for key, run in bf16.items():
        assert run["status"] == "complete"
        assert run["config"]["train"]["precision"] == "bf16"
        assert run["test_loss"] != fp32[key]["test_loss"]
    assert "precision" not in fp32[("baseline", 0)]["config"]["train"]  # fp32 keeps old identities
    out, again = _run(tmp_path, run_cli, 'precision = "fp32"')
    assert "4 of 4 runs already stored" in out  # fp32 said out loud is the default's runs
    assert {k: r["test_loss"] for k, r in again.items()} == {k: r["test_loss"] for k, r in fp32.items()}


def test_fp16_on_a_cpu_completes_with_runs_of_its_own_trained_alone(tmp_path, run_cli):
    _, fp32 = _run(tmp_path, run_cli, "")
    out, fp16 = _run(tmp_path, run_cli, 'precision = "fp16"')
    assert len(fp16) == 4 and "4 of 4 runs already stored" not in out
    for key, run in fp16.items():
        assert run["status"] == "complete" and run["config"]["train"]["precision"] == "fp16"
        assert run["test_loss"] != fp32[key]["test_loss"]
        assert "skipped_steps" in run["history"][0]
    code, out, _ = run_cli("plan", tmp_path / "study.toml", "--no-calibrate")
    assert code == 0 and "0 of 2 arms" in out and "precision fp16 trains each seed alone" in out
