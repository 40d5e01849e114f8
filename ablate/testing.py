"""Helpers for testing a plugin: run a tiny real study around one component in
seconds and get its results table.

    from ablate.testing import run_tiny_study

    def test_my_regularizer(tmp_path):
        table = run_tiny_study("regularizer", "my_reg", {"coef": 0.1}, tmp_path)
        assert (table["status"] == "complete").all()

The study trains a small MLP on scikit-learn's bundled digits (no network) for
a few epochs: for a norm, regularizer, augmentation or stopping rule, two arms
(``baseline`` with the component off, and one named after it), one seed each;
for a data set or a model, one arm using it. The component must be known to
ablate: installed (an entry point) or in ``plugin_file``. Its name may be
qualified (``"my-package:my_reg"``), as it must be where another plugin registers
the same short name.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.cli import main
from ablate.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

SWITCHABLE = ("norm", "regularizer", "augmentation", "stopping")


def toml_value(value: Any) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists, flat tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def slug(name: str) -> str:
    """A component's name as part of a study or file name: 'my-package:scalenorm' -> 'my-package_scalenorm'."""
    return name.replace(":", "_")


def tiny_study(
    kind: str,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    plugin_file: str | Path | None = None,
    epochs: int = 3,
    seeds: int = 1,
    hidden: list[int] | None = None,
) -> str:
    """The study file's text: digits, a small MLP, the component on (and off)."""
    params = dict(params or {})
    plugins = f"plugins = [{toml_value(str(Path(plugin_file).resolve()))}]\n" if plugin_file else ""
    # ablate's own by qualified name: never ambiguous, whatever else registers digits or mlp
    data = {"name": "ablate:digits"}
    model: dict[str, Any] = {"name": "ablate:mlp", "hidden": hidden if hidden is not None else [32]}
    factor = ""
    if kind == "dataset":
        data = {"name": name, **params}
    elif kind == "model":
        model = {"name": name, **params}
    elif kind in SWITCHABLE:
        sub = f"{toml_value(name)} = {toml_value(params)}\n" if params else ""
        factor = f'[factors.{kind}]\nkind = "{kind}"\nlevels = ["none", {toml_value(name)}]\n{sub}'
    else:
        raise UserError(
            f"unknown component kind {kind!r}", expected="norm, regularizer, augmentation, stopping, dataset or model"
        )

    def table(d: dict[str, Any]) -> str:
        return "".join(f"{k} = {toml_value(v)}\n" for k, v in d.items())

    return (
        f'[study]\nname = "tiny_{kind}_{slug(name)}"\nseeds = {seeds}\n{plugins}\n[data]\n{table(data)}\n'
        f"[model]\n{table(model)}\n[train]\nepochs = {epochs}\nbatch_size = 128\n\n{factor}"
    )


def run_tiny_study(
    kind: str,
    name: str,
    params: dict[str, Any] | None,
    tmp_path: str | Path,
    *,
    plugin_file: str | Path | None = None,
    epochs: int = 3,
    seeds: int = 1,
    allow_failed: bool = False,
) -> pd.DataFrame:
    """Run the tiny study with ``ablate run`` in this process; return results.csv.

    Raises AssertionError with ablate's own message when the study is refused
    (a bad parameter, the component unknown) or, unless ``allow_failed``, when
    a run failed (with the failure reasons).
    """
    import pandas as pd

    folder = Path(tmp_path)
    study = folder / f"tiny_{kind}_{slug(name)}.toml"
    study.write_text(tiny_study(kind, name, params, plugin_file=plugin_file, epochs=epochs, seeds=seeds))
    out = folder / f"tiny_{kind}_{slug(name)}_out"
    shutil.rmtree(out, ignore_errors=True)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", str(study), "--out", str(out)])
    results = out / "results.csv"
    if code not in (0, 3) or not results.is_file():
        raise AssertionError(f"ablate run exited with {code}:\n{stderr.getvalue()}{stdout.getvalue()[-2000:]}")
    table = pd.read_csv(results)
    failed = table[table["status"] == "failed"]
    if len(failed) and not allow_failed:
        reasons = "\n".join(f"  {r.arm} seed {r.seed}: {r.failure}" for r in failed.itertuples())
        raise AssertionError(f"{len(failed)} run(s) failed:\n{reasons}")
    return table
