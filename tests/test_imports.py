"""The package has no import cycle, function-level imports included; every import
keeps to the layer table; and `import ablate` stays light: the core can be read
(and imported) in any order."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ablate

ROOT = Path(ablate.__file__).resolve().parent.parent
PACKAGES = {"ablate": ROOT / "ablate", "ablate.plugins": ROOT / "plugins"}


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of ablate and its standard plugins."""
    out = {}
    for prefix, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            if prefix == "ablate" and parts[:1] == ["plugins"]:
                continue
            out[name] = path
    return out


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports at run time, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [node.module])
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# The layers, top to bottom, and what each may import besides itself (README "Layout").
# `study` and `train` never import each other: both read the root's `spec`.
LAYER_OF = {  # module prefix -> layer; the longest matching prefix wins
    "ablate.__main__": "entry",
    "ablate.testing": "entry",
    "ablate.cli": "cli",
    "ablate.report": "report",
    "ablate.engine.store": "store",
    "ablate.engine": "engine",
    "ablate.study": "study",
    "ablate.train": "train",
    "ablate.plugin": "plugin",
    "ablate.data": "data",
    "ablate.plugins": "plugins",
    "ablate": "root",
}
MAY_IMPORT = {
    "entry": {"cli", "report", "engine", "store", "study", "train", "plugin", "data", "root"},
    "cli": {"report", "engine", "store", "study", "train", "plugin", "data", "root"},
    "report": {"store", "root"},
    "engine": {"store", "study", "train", "plugin", "data", "root"},
    "store": {"root"},
    "study": {"plugin", "data", "root"},
    "train": {"plugin", "data", "root"},
    "plugin": {"root"},
    "data": {"root"},
    "plugins": {"root"},  # the standard components use only ablate's public names
    "root": set(),
}


def layer_of(module: str) -> str:
    prefix = max((p for p in LAYER_OF if module == p or module.startswith(p + ".")), key=len)
    return LAYER_OF[prefix]


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    """Each import that goes against the layer table, as 'importer (layer) -> imported (layer)'."""
    found = []
    for name, targets in sorted(graph.items()):
        mine = layer_of(name)
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs != mine and theirs not in MAY_IMPORT[mine]:
                found.append(f"{name} ({mine}) -> {target} ({theirs})")
    return found


def test_the_layer_check_finds_a_planted_breach():
    planted = {
        "ablate.study.config": {"ablate.engine.runner", "ablate.spec"},
        "ablate.train.training": {"ablate.study.design"},
        "ablate.report.page": {"ablate.engine.store.record"},
    }
    assert layer_breaches(planted) == [
        "ablate.study.config (study) -> ablate.engine.runner (engine)",
        "ablate.train.training (train) -> ablate.study.design (study)",
    ]


def test_every_import_keeps_to_the_layer_table():
    files = module_files()
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}
    assert layer_breaches(graph) == []


def test_the_package_shows_its_layers():
    """At most 12 modules at the top, each concern in a subpackage of its own."""
    top = ROOT / "ablate"
    assert len(list(top.glob("*.py"))) <= 12
    assert {p.name for p in top.iterdir() if (p / "__init__.py").exists()} >= {
        "cli",
        "report",
        "engine",
        "study",
        "train",
        "plugin",
        "data",
    }


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_back():
    files = module_files()
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(n for n in module_files() if not n.endswith("__main__"))  # __main__ runs the CLI
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    for order in (names, names[::-1]):
        done = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]


def test_import_ablate_loads_no_heavy_library():
    code = (
        "import sys, ablate\nheavy = {'torch', 'sklearn', 'optuna', 'matplotlib', 'pandas', 'scipy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_worker_pool_starts_without_torch():
    """The command line starts workers before the engine's imports: only if ablate.engine.pool is light."""
    loaded = loaded_after("import ablate.engine.pool, ablate.study.study_file")
    assert not {"torch", "optuna", "sklearn", "numpy"} & loaded


def test_the_report_reads_stored_runs_without_torch_or_scipy_stats():
    """`ablate report` took 9-10 s when these came in; it needs neither."""
    loaded = loaded_after(
        "import ablate.cli.report_commands, ablate.report.outputs, ablate.engine.store.storage, ablate.report"
    )
    assert not {"torch", "sklearn", "scipy.stats", "scipy.optimize"} & loaded


def test_reading_a_storage_loads_no_alembic(tmp_path):
    """Optuna's schema migrations (alembic, 0.3 s of imports) are for setting a database up, not reading it."""
    db = tmp_path / "study.db"
    setup = f"import optuna; optuna.create_study(storage='sqlite:///{db}', study_name='s')"
    subprocess.run([sys.executable, "-c", setup], check=True, capture_output=True)
    read = f"from ablate.engine.store.storage import open_for_reading\nassert open_for_reading('sqlite:///{db}').get_all_studies()"
    assert "alembic" not in loaded_after(read)


def test_runs_stacked_and_alone_train_without_torch_dynamo():
    """Making torch's first optimizer imports torch._dynamo (seconds in every worker);
    stacked groups and runs alone make the flat optimizer without one."""
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from stacking_support import alone, make_spec, seeds_of, stacked, plugin_registry\n"
        "registry = plugin_registry()\n"
        "spec = make_spec(registry, ('norm', 'batchnorm', {}), ('regularizer', 'dropout', {'rate': 0.1}), epochs=1)\n"
        "results = stacked(seeds_of(spec, range(2)), registry)\n"
        "assert all(r.stack == 2 for r in results), results\n"
        "sgd = make_spec(registry, ('regularizer', 'weight_decay', {'decay': 0.1}), optimizer='sgd', epochs=1)\n"
        "assert all(r.stack == 1 for r in alone([spec, sgd], registry))\n"
    )
    loaded = loaded_after(code)
    assert "torch" in loaded and "torch._dynamo" not in loaded


def test_the_workers_preload_neither_optuna_nor_scikit_learn():
    """A worker's start-up is on the critical path of `--jobs N`: it imports torch and
    the training code only (Optuna is the coordinator's; digits load without scikit-learn)."""
    from ablate.engine.pool import PRELOAD

    code = (
        f"import importlib\nfor name in {PRELOAD!r}:\n    importlib.import_module(name)\n"
        "from ablate.train.build import load_data\n"
        "from ablate.plugin.manager import build_registry, make_plugin_manager\n"
        "from ablate.spec import ComponentSpec, RunSpec\nimport torch\n"
        "spec = RunSpec(data=ComponentSpec('dataset', 'digits', {'val_fraction': 0.2, 'test_fraction': 0.2, "
        "'image': False}), split_seed=0, model=ComponentSpec('model', 'mlp', {}), train={}, components=(), seed=0)\n"
        "load_data(spec, build_registry(make_plugin_manager()), torch.device('cpu'))"
    )
    loaded = loaded_after(code)
    assert "torch" in loaded and not {"optuna", "sklearn", "scipy"} & loaded


def test_every_function_level_import_says_why():
    """An ablate module imported inside a function is there to keep a heavy library (torch,
    optuna, matplotlib, ...) off a start-up path; the line says which, or it belongs at the top."""
    silent = []
    for name, path in module_files().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ablate"):
                    here = lines[node.lineno - 1 : node.end_lineno]
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    if not any("#" in line for line in here) and not above.startswith("#"):
                        silent.append(f"{name}:{node.lineno}")
    assert silent == []
