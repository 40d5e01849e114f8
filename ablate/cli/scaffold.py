"""`ablate new-plugin NAME`: write a plugin package that installs and passes its
own test as generated: a pyproject naming the module in the ``ablate``
entry-point group, one regularizer, a test built on ``ablate.testing``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ablate.errors import UserError

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ablate-{slug}"
version = "0.1.0"
description = "An ablate plugin: the {name} regularizer."
requires-python = ">=3.11"
# ablate, torch and pytest come from the environment ablate is installed in.
dependencies = []

[tool.setuptools]
packages = ["{module}"]

# This line makes ablate load the module: `ablate plugins` lists its components.
[project.entry-points.ablate]
{name} = "{module}"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

MODULE = '''"""The {name} regularizer: after every optimizer step, each weight is multiplied
by (1 - amount), pulling the network towards zero (a decoupled decay, applied
by hand). Edit it into your own component: `ablate plugins {name}` shows it."""

from __future__ import annotations

import torch

from ablate import DataInfo, Param, Registrar, UserError, hookimpl


class {cls}:
    """Shrink every weight by a factor (1 - amount) after each optimizer step."""

    def __init__(self, amount: float) -> None:  # keyword arguments = the declared params
        self.amount = amount

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        """Runs before anything trains: reject data this component cannot handle."""
        if info.train_size == 0:
            raise UserError("{name} needs training data")

    @hookimpl
    def ablate_after_step(self, model: torch.nn.Module) -> None:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0 - self.amount)


@hookimpl
def ablate_register_regularizers(registry: Registrar) -> None:
    registry.add("{name}", {cls}, help="shrink every weight by (1 - amount) after each step",
                 params={{"amount": Param(0.01, low=0.0, high=1.0, high_open=True,
                                         help="share of each weight removed per step")}})
'''

TEST = '''"""The {name} regularizer trains in a tiny real study and has the effect it claims."""

from ablate.testing import run_tiny_study


def test_{module}_runs_and_shrinks_the_network(tmp_path):
    table = run_tiny_study("regularizer", "{name}", {{"amount": 0.5}}, tmp_path)
    assert (table["status"] == "complete").all()
    train = table.set_index("arm")["train_accuracy"]
    # halving every weight at every step cripples the network: the effect is real
    assert train["{name}"] < train["baseline"] - 0.2
'''

README = """# ablate-{slug}

An [ablate](https://github.com/) plugin adding the `{name}` regularizer.

```bash
pip install -e .          # ablate now lists it: ablate plugins {name}
python -m pytest          # its test trains a tiny study with it (seconds)
```

Use it in a study:

```toml
[factors.{module}]
kind = "regularizer"
levels = ["none", "{name}"]
{name} = {{ amount = [0.001, 0.01] }}
```
"""


DIR_EXPECTED = "a folder you can write, or a path where one can be created (default: here)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `new-plugin` sub-command's arguments."""
    p = sub.add_parser("new-plugin", help="write a plugin package skeleton that installs and passes its test")
    p.add_argument("name", help="the component's name (letters, digits, '_'), e.g. demo")
    p.add_argument(
        "--dir", type=Path, default=Path("."), help="where to create the package folder ablate-NAME (default: here)"
    )


def files(name: str) -> dict[str, str]:
    """The package's files, path -> text, for a component called ``name``."""
    module = f"ablate_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) or "Component"
    fields = {"name": name, "slug": name.replace("_", "-"), "module": module, "cls": cls}
    return {
        "pyproject.toml": PYPROJECT.format(**fields),
        f"{module}/__init__.py": MODULE.format(**fields),
        f"tests/test_{module}.py": TEST.format(**fields),
        "README.md": README.format(**fields),
    }


def run(args: argparse.Namespace) -> int:
    """Write the package; refuse a bad name or an existing, non-empty folder."""
    name = args.name.strip().lower().replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name) or name == "none":
        raise UserError(
            f"{args.name!r} is not a usable component name",
            key="NAME",
            expected="a lower-case name of letters, digits and '_' starting with a letter ('none' is reserved)",
        )
    root = args.dir / f"ablate-{name.replace('_', '-')}"
    try:
        _check_dir(args.dir)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise UserError(f"{root} already exists", key="NAME", expected="a new folder name")
        for rel, text in files(name).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:  # a folder that cannot be made, read or written
        where = f": {exc.filename}" if exc.filename else ""
        raise UserError(
            f"cannot write the package under {str(args.dir)!r}{where}: {exc.strerror or exc}",
            key="--dir",
            expected=DIR_EXPECTED,
        ) from None
    print(
        f"wrote {root}/: pyproject.toml (entry point ablate:{name}), ablate_{name}/__init__.py, "
        f"tests/test_ablate_{name}.py\nnext: pip install -e {root} && python -m pytest {root}"
    )
    return 0


def _check_dir(given: Path) -> None:
    """``--dir`` (or a folder above it) must not be a file."""
    blocking = next((p for p in (given, *given.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        what = "is a file" if blocking == given else f"is inside {str(blocking)!r}, which is a file"
        raise UserError(f"{str(given)!r} {what}, not a folder", key="--dir", expected=DIR_EXPECTED)
