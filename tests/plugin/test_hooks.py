"""Every hook is documented in the plugin guide and exercised by a test; trial
hooks run only for active components, training batches only."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from support import TINY

from ablate import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("ablate_"))


def test_every_hook_is_documented_and_tested():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_hooks.py")
    tests += "\n".join(p.read_text() for p in (ROOT / "tests" / "fixtures").rglob("*.py"))
    assert len(HOOKS) == 19
    for hook in HOOKS:
        assert f"`{hook}(" in guide, f"{hook} is missing from docs/plugins.md"
        assert re.search(rf"\b{hook}\b", tests) or hook in RECORDER, f"{hook} has no test"


RECORDER = '''
import torch
from ablate import hookimpl

CALLS = []

class Record:
    """Adds per-sample noise to training batches and records what it saw."""
    def __init__(self):
        pass

    @hookimpl
    def ablate_transform_batch(self, batch):
        noise = torch.randn(batch.x.shape, generator=batch.generator, device=batch.x.device)
        CALLS.append(len(batch.x))
        batch.x = batch.x + 0.1 * noise

@hookimpl
def ablate_register_augmentations(registry):
    registry.add("record", Record)
'''


@pytest.mark.slow
def test_augmentation_sees_every_training_batch_and_nothing_else(write_study, run_cli, tmp_path):
    import sys

    (tmp_path / "recorder.py").write_text(RECORDER)
    text = TINY.replace("seeds = 2", 'seeds = 1\nplugins = ["recorder.py"]') + (
        '\n[factors.aug]\nkind = "augmentation"\nlevels = ["none", "record"]\n'
    )
    code, _, stderr = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, stderr
    module = next(m for name, m in sys.modules.items() if name.startswith("ablate_local_plugin_recorder"))
    # 4 arms with the augmentation on, 1,077 training samples in batches of 128, 4 epochs
    assert len(module.CALLS) == 4 * 4 * 9
    assert sum(module.CALLS) == 4 * 4 * 1077
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(table) == 8 and set(table["aug"]) == {"none", "record"}
