"""study.toml -> a validated StudyConfig. Every mistake becomes a UserError
naming the file, the key path, what was expected and the nearest valid name."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.data.datafiles import FILE_PARAMS, located
from ablate.data.seeds import MAX_SEED
from ablate.errors import UserError, did_you_mean
from ablate.params import Param
from ablate.plugin.naming import normalise, tidy
from ablate.plugin.registry import OFF, SWITCHABLE, Registry
from ablate.spec import EXECUTION_SETTINGS, RECIPE_KINDS, ComponentSpec, Option
from ablate.study.level_tables import level_tables
from ablate.study.study_file import as_table, read_toml

STUDY_PARAMS = {
    "name": Param("", help="study name; default: the file's stem"),
    "question": Param("", help="the question this study answers, shown in the report"),
    "seeds": Param(
        3,
        low=1,
        help="number of seeds (0..n-1), a list of seeds, or { min, max }: seeds added while comparisons are open",
    ),
    "margin": Param(
        1.0,
        low=0.0,
        low_open=True,
        high=100.0,
        high_open=True,
        help="adaptive seeds: the smallest difference that matters, in points of test accuracy",
    ),
    "plugins": Param([""], help="plugin .py files, relative to the study file"),
    "baseline": Param("", help="the arm others are compared with; default: the all-off arm"),
}

DATA_KEYS = {
    "name": Param("", help="data set component"),
    "split_seed": Param(
        0, low=0, high=MAX_SEED, help="seed of the train/validation/test split (fixed across run seeds)"
    ),
    "resplit": Param(
        False,
        help="draw a new train/validation/test split for each seed (split seed = split_seed + seed), "
        "so intervals cover the split's variance too",
    ),
}

TRAIN_PARAMS = {
    "epochs": Param(30, low=1, high=100_000, help="maximum epochs per run"),
    "batch_size": Param(64, low=1, help="training batch size"),
    "optimizer": Param(
        "adam", help='optimizer: a name ("adam", "sgd", "adamw", "rmsprop", ...) or { name = ..., its params }'
    ),
    "schedule": Param(
        "constant", help='learning-rate schedule: a name ("constant", "step", "cosine", "onecycle", ...) or a table'
    ),
    "lr": Param(1e-3, low=0.0, low_open=True, high=10.0, help="learning rate"),
    "momentum": Param(0.9, low=0.0, high=1.0, high_open=True, help="SGD momentum"),
    "precision": Param(
        "fp32",
        choices=("fp32", "bf16", "fp16"),
        help="bf16/fp16: training forward passes under autocast (CPU or GPU); fp16 with a gradient scaler",
    ),
    "compile": Param(
        False,
        help="true: the training forward pass through torch.compile (not part of a run's identity: its numbers "
        "match eager's within a stated tolerance; each seed trains alone)",
    ),
    "device": Param("auto", choices=("auto", "cpu", "cuda"), help="auto picks CUDA when present"),
    "threads": Param(1, low=0, help="torch CPU threads per worker process; 0 keeps torch's default"),
    "stack": Param(
        "auto",
        choices=("auto", "off"),
        help="auto trains the seeds of an arm as one stacked model where supported and where it fits",
    ),
}

DESIGN_KINDS = ("factorial", "leave_one_out", "add_one_in", "orderings", "search", "pareto")
DESIGN_PARAMS = {
    "kind": Param("factorial", choices=DESIGN_KINDS, help="how the factors become arms"),
    "budget": Param(20, low=1, high=100_000, help="search/pareto: arms the sampler may try"),
    "sampler": Param(
        "",
        choices=("", "tpe", "random", "nsga2", "exhaustive"),
        help="search: tpe (default) or random; pareto: exhaustive (default) or nsga2",
    ),
    "confirm_top": Param(0, low=0, help="search: re-run the best K arms over the study's seeds"),
    "pruner": Param(
        "none",
        choices=("none", "median", "successive_halving"),
        help="search only: stop poor runs early on validation accuracy",
    ),
    # Optuna's samplers seed NumPy's 32-bit generator with it
    "search_seed": Param(10_000, low=0, high=2**32 - 1, help="search/pareto sampling: the seed of every sampled run"),
}
SAMPLED = ("search", "pareto")

SECTIONS = ("study", "data", "model", "train", "factors", "design")
SETTING_SECTIONS = ("model", "train", "data")
FACTOR_KINDS = (*SWITCHABLE, *RECIPE_KINDS)
# The shorthand every study had before optimizers and schedules were components:
# these names with no params add no component (their runs keep their identity).
SHORTHAND = {"optimizer": ("adam", "sgd"), "schedule": ("constant",)}
RECIPE_ONLY = ("schedule",)  # [train] keys a run's identity holds as a component only
# [train] keys a run's identity holds only where they differ from this default, so
# runs stored before the key existed keep their identity
IDENTITY_DEFAULTS = {"precision": "fp32"}


def identity_train(train: dict[str, Any]) -> dict[str, Any]:
    """The [train] settings that are part of a run's identity."""
    return {
        k: v
        for k, v in train.items()
        if k not in EXECUTION_SETTINGS and k not in RECIPE_ONLY and IDENTITY_DEFAULTS.get(k, ...) != v
    }


FACTOR_KEYS = ("kind", "setting", "levels")
Primitive = str | int | float | bool


@dataclass(frozen=True)
class Choice:
    """A named component with its resolved parameters."""

    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Range:
    """A continuous (or integer) interval a search samples from."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass
class DesignConfig:
    kind: str = "factorial"
    budget: int = 20
    sampler: str = ""
    confirm_top: int = 0
    pruner: str = "none"
    search_seed: int = 10_000

    @property
    def sampled(self) -> bool:
        """Arms chosen by an Optuna sampler rather than enumerated up front."""
        return self.kind == "search" or (self.kind == "pareto" and self.sampler == "nsga2")


@dataclass
class Factor:
    """One varied dimension of the study.

    A component factor (``kind``) chooses among components, ``none`` being
    off; a setting factor (``setting``, e.g. "model.slots") chooses among
    values of one setting. ``options`` are the expanded options: sub-parameters
    given as lists are crossed per level, so a dropout rate exists only where
    dropout is on.
    """

    name: str
    kind: str | None
    setting: str | None
    levels: list[Primitive]
    options: list[Option]
    ranges: dict[Any, dict[str, Range]] = field(default_factory=dict)  # level -> param -> range
    range: Range | None = None  # a setting factor searched over an interval

    @property
    def varied(self) -> bool:
        return len(self.options) > 1


@dataclass
class StudyConfig:
    path: Path
    name: str
    question: str
    seeds: list[int]
    plugin_files: list[Path]
    data: Choice
    split_seed: int
    model: Choice
    train: dict[str, Any]
    factors: list[Factor]
    design: DesignConfig = field(default_factory=DesignConfig)
    baseline: str = ""
    adaptive: tuple[int, int] | None = None  # seeds = { min, max }: (min, max); seeds is then 0..max-1
    margin: float = 1.0  # adaptive seeds: points of test accuracy
    resplit: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    # the [train] optimizer and schedule as components, where they are not the
    # shorthand (adam or sgd with [train] momentum, a constant lr) runs always had
    recipe: tuple[ComponentSpec, ...] = ()

    @property
    def training_settings(self) -> dict[str, Any]:
        """[train] settings that change a run's numbers (device, threads and stack do not)."""
        return identity_train(self.train)

    def fingerprint(self) -> str:
        """Hash of the study's fixed settings: what defines a run apart from its arm and seed."""
        blob = json.dumps(
            {
                "data": [self.data.name, self.data.params, self.split_seed, self.resplit],
                "model": [self.model.name, self.model.params],
                "train": self.training_settings,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def data_dir(self) -> str:
        """The folder the data's relative file paths start at: the study file's."""
        return str(self.path.parent.absolute())


def load_study(path: str | Path, registry: Registry | None = None) -> StudyConfig:
    """Read and validate a study file. Without a registry, plugin files and
    components are not checked (used to find the plugin files first)."""
    path = Path(path)
    raw = read_toml(path)
    try:
        return _parse(path, raw, registry)
    except UserError as err:
        raise err.located(str(path)) from None


def _check_keys(table: dict[str, Any], allowed: Iterable[str], key: str) -> None:
    allowed = list(allowed)
    for k in table:
        if k not in allowed:
            raise UserError(
                f"unknown key {k!r}",
                key=f"{key}.{k}" if key else k,
                expected="one of: " + ", ".join(allowed),
                hint=did_you_mean(k, allowed),
            )


def _check_sections(raw: dict[str, Any]) -> None:
    for section in raw:
        if section not in SECTIONS:
            raise UserError(
                f"unknown section [{section}]",
                key=section,
                expected="sections " + ", ".join(f"[{s}]" for s in SECTIONS),
                hint=did_you_mean(section, SECTIONS),
            )


def _check_seeds(seeds: list[int], split_seed: int, resplit: bool, design: DesignConfig) -> None:
    """Seeds that the generators can take and that do not reuse the search's seed."""
    if resplit and split_seed + max(seeds) > MAX_SEED:
        raise UserError(
            f"resplit draws split seed split_seed + seed, up to {split_seed + max(seeds)}: past 2^63-1",
            key="data.split_seed",
            expected=f"split_seed at most {MAX_SEED - max(seeds)} with these seeds",
        )
    if design.sampled and design.search_seed in seeds:
        raise UserError(
            f"the search seed {design.search_seed} is also a study seed",
            key="design.search_seed",
            expected="a seed outside study.seeds, so confirmed numbers are fresh draws",
        )


def _parse(path: Path, raw: dict[str, Any], registry: Registry | None) -> StudyConfig:
    _check_sections(raw)
    study = as_table(raw.get("study", {}), "study")
    _check_keys(study, STUDY_PARAMS, "study")
    name = _study_name(study, path)
    question = STUDY_PARAMS["question"].check(study.get("question", ""), "study.question")
    seeds, adaptive, margin = _study_seeds(study)
    plugin_files = _plugin_files(study, path)
    data_choice, split_seed, resplit = _data(raw, registry, path.parent)
    model = dict(as_table(raw.get("model", {"name": "mlp"}), "model"))
    model.setdefault("name", "mlp")
    model_choice = _choice(registry, "model", model, "model")
    train, recipe = _train(as_table(raw.get("train", {}), "train"), registry)

    design = _design(as_table(raw.get("design", {}), "design"))
    factors_raw = as_table(raw.get("factors", {}), "factors")
    factors = [
        _factor(registry, fname, as_table(ftable, f"factors.{fname}"), model_choice, data_choice, design, path.parent)
        for fname, ftable in factors_raw.items()
    ]
    _check_factor_overlap(factors)
    _check_design(design, factors)
    _check_momentum_moves(train, factors, recipe)
    _check_optimizer_levels(registry, factors)
    _check_seeds(seeds, split_seed, resplit, design)
    return StudyConfig(
        path=path,
        name=name,
        question=question,
        seeds=seeds,
        plugin_files=plugin_files,
        data=data_choice,
        split_seed=split_seed,
        model=model_choice,
        train=train,
        factors=factors,
        design=design,
        baseline=STUDY_PARAMS["baseline"].check(study.get("baseline", ""), "study.baseline"),
        resplit=resplit,
        raw=raw,
        recipe=recipe,
        adaptive=_adaptive_design(adaptive, design),
        margin=margin,
    )


def _study_name(study: dict[str, Any], path: Path) -> str:
    name: str = STUDY_PARAMS["name"].check(study.get("name", path.stem), "study.name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise UserError(
            f"{name!r} is not a usable study name",
            key="study.name",
            expected="letters, digits, '_', '-', '.' (it names the output folder)",
        )
    return name


def _plugin_files(study: dict[str, Any], path: Path) -> list[Path]:
    """The study's plugin files, relative to the study file (``plugins = []`` is none)."""
    given = study.get("plugins", [])
    if given == []:
        return []
    return [path.parent / f for f in STUDY_PARAMS["plugins"].check(given, "study.plugins") if f]


def _data(raw: dict[str, Any], registry: Registry | None, base: Path) -> tuple[Choice, int, bool]:
    """The [data] table: the data set with its parameters, the split seed, resplit.
    File paths are checked where they point from the study file (``base``) and kept
    as written (ablate.data.datafiles)."""
    data = dict(as_table(raw.get("data", {}), "data"))
    if "name" not in data:
        known = ", ".join(registry.names("dataset")) if registry else "a registered data set"
        raise UserError("missing data set", key="data.name", expected=f"[data] name = one of: {known}")
    split_seed = DATA_KEYS["split_seed"].check(data.pop("split_seed", 0), "data.split_seed")
    resplit = DATA_KEYS["resplit"].check(data.pop("resplit", False), "data.resplit")
    written = {k: data[k] for k in FILE_PARAMS if k in data}
    choice = _choice(registry, "dataset", located(data, base), "data")
    return Choice(choice.name, {**choice.params, **written}), split_seed, resplit


def _train(given: dict[str, Any], registry: Registry | None) -> tuple[dict[str, Any], tuple[ComponentSpec, ...]]:
    """[train]'s settings, and its optimizer and schedule as components where they
    are more than the shorthand (a name and no params: adam, sgd, constant)."""
    _check_keys(given, TRAIN_PARAMS, "train")
    given, tables = dict(given), {}
    for kind in RECIPE_KINDS:
        if isinstance(given.get(kind), dict):
            table = dict(given[kind])
            if "name" not in table:
                raise UserError(f"train.{kind} is a table without a name", key=f"train.{kind}", expected='name = "..."')
            given[kind], tables[kind] = table.pop("name"), table
    train = {k: spec.check(given[k], f"train.{k}") if k in given else spec.default for k, spec in TRAIN_PARAMS.items()}
    recipe = []
    for kind in RECIPE_KINDS:
        params = tables.get(kind, {})
        if kind == "optimizer" and train[kind] == "sgd" and "momentum" not in params:
            params = {**params, "momentum": train["momentum"]} if params else params
        if registry is not None:
            name = registry.find(kind, train[kind], key=f"train.{kind}", given=list(params)).ref
            resolved = registry.resolve_params(kind, name, params, f"train.{kind}") if params else {}
        else:
            name, resolved = normalise(train[kind]), params
        train[kind] = name
        if params or name not in SHORTHAND[kind]:
            if registry is not None and not params:
                resolved = registry.resolve_params(kind, name, _shorthand_params(kind, name, train), f"train.{kind}")
            recipe.append(ComponentSpec(kind, name, resolved))
    return train, tuple(recipe)


def _shorthand_params(kind: str, name: str, train: dict[str, Any]) -> dict[str, Any]:
    return {"momentum": train["momentum"]} if (kind, name) == ("optimizer", "sgd") else {}


def _design(table: dict[str, Any]) -> DesignConfig:
    _check_keys(table, DESIGN_PARAMS, "design")
    values = {k: DESIGN_PARAMS[k].check(v, f"design.{k}") for k, v in table.items()}
    design = DesignConfig(**values)
    if design.kind not in SAMPLED:
        for k in ("budget", "sampler", "search_seed"):
            if k in table:
                raise UserError(
                    f"'{k}' applies to search and pareto designs only",
                    key=f"design.{k}",
                    expected=f'design.kind = "search" or "pareto" (this is {design.kind!r})',
                )
    if design.kind != "search":
        for k in ("confirm_top", "pruner"):
            if k in table and table[k] not in (0, "none"):
                why = " (a pruned arm is a censored arm)" if k == "pruner" else ""
                raise UserError(
                    f"'{k}' applies to the search design only{why}",
                    key=f"design.{k}",
                    expected='design.kind = "search"',
                )
    allowed = {"search": ("", "tpe", "random"), "pareto": ("", "exhaustive", "nsga2")}.get(design.kind, ("",))
    if design.sampler not in allowed:
        raise UserError(
            f"sampler {design.sampler!r} does not fit the {design.kind} design",
            key="design.sampler",
            expected="one of " + ", ".join(a for a in allowed if a),
        )
    design.sampler = design.sampler or {"search": "tpe", "pareto": "exhaustive"}.get(design.kind, "")
    return design


def _range(value: dict[str, Any], spec: Param | None, key: str, design: DesignConfig) -> Range:
    """An inline table {low, high, log} a search samples from."""
    if not design.sampled:
        raise UserError(
            "a range is sampled by a search",
            key=key,
            expected='a value or a list of values here, or design.kind = "search"',
        )
    _check_keys(value, ("low", "high", "log"), key)
    if "low" not in value or "high" not in value:
        raise UserError("a range needs 'low' and 'high'", key=key, expected="{ low = ..., high = ... }")
    low, high = value["low"], value["high"]
    if spec is not None:
        if spec.type not in (int, float):
            raise UserError("only numeric parameters take a range", key=key, expected=spec.describe())
        low, high = spec.check(low, f"{key}.low"), spec.check(high, f"{key}.high")
    log = bool(value.get("log", False))
    if not low < high or (log and low <= 0):
        raise UserError(
            f"bad range [{low}, {high}]" + (" on a log scale" if log else ""),
            key=key,
            expected="low < high" + (", both > 0" if log else ""),
        )
    return Range(
        low,
        high,
        log,
        isinstance(low, int)
        and isinstance(high, int)
        and not isinstance(low, bool)
        and (spec is None or spec.type is int),
    )


def _check_design(design: DesignConfig, factors: list[Factor]) -> None:
    if design.kind in ("leave_one_out", "add_one_in"):
        for f in factors:
            if f.setting and len(f.options) > 1:
                raise UserError(
                    f"{design.kind} adds or removes components; the setting factor "
                    f"{f.name!r} has {len(f.options)} levels",
                    key=f"factors.{f.name}",
                    expected='one level for a setting factor, or design.kind = "factorial"',
                )
            if f.kind and OFF not in f.levels:
                raise UserError(
                    f"{design.kind} switches each component factor on and off; {f.name!r} has no 'none' level",
                    key=f"factors.{f.name}.levels",
                    expected=f'levels = ["none", {f.levels[0]!r}]'.replace("'", '"'),
                )
            on = [o for o in f.options if o.level != OFF]
            if f.kind and len(on) != 1:
                raise UserError(
                    f"{design.kind} needs one 'on' option per component factor; {f.name!r} has {len(on)}",
                    key=f"factors.{f.name}",
                    expected='levels = ["none", NAME] with one value per parameter',
                )
    if design.kind == "orderings" and not any(f.setting == "model.slots" for f in factors):
        raise UserError(
            "the orderings design needs a factor over the block's slot order",
            key="factors",
            expected='[factors.order] setting = "model.slots", levels = "permutations" or a list of orders',
        )


def _study_seeds(study: dict[str, Any]) -> tuple[list[int], tuple[int, int] | None, float]:
    """(seeds, (min, max) for adaptive seeds else None, margin): adaptive seeds are 0..max-1."""
    adaptive = _seed_range(study["seeds"]) if isinstance(study.get("seeds"), dict) else None
    seeds = list(range(adaptive[1])) if adaptive else _seeds(study.get("seeds", 3))
    return seeds, adaptive, _margin(study, adaptive)


def _seed_range(table: dict[str, Any]) -> tuple[int, int]:
    """``seeds = { min = 3, max = 12 }``: min seeds of every arm, then more while comparisons are open."""
    _check_keys(table, ("min", "max"), "study.seeds")
    expected = "seeds = { min = 3, max = 12 }: whole numbers, 2 <= min <= max <= 1000"
    for k in ("min", "max"):
        if k not in table:
            raise UserError(f"the seeds table needs '{k}'", key=f"study.seeds.{k}", expected=expected)
        v = table[k]
        if not isinstance(v, int) or isinstance(v, bool) or not 2 <= v <= 1000:
            raise UserError(f"{v!r} is not valid", key=f"study.seeds.{k}", expected=expected)
    if table["min"] > table["max"]:
        raise UserError(
            f"min {table['min']} is above max {table['max']}",
            key="study.seeds",
            expected=f"min <= max, e.g. {{ min = {table['max']}, max = {table['min']} }}",
        )
    return int(table["min"]), int(table["max"])


def _margin(study: dict[str, Any], adaptive: tuple[int, int] | None) -> float:
    if "margin" not in study:
        return 1.0
    if adaptive is None:
        raise UserError(
            "'margin' applies to adaptive seeds only",
            key="study.margin",
            expected="seeds = { min = 3, max = 12 } with it (a fixed number of seeds has no verdicts to settle)",
        )
    value = study["margin"]
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return float(STUDY_PARAMS["margin"].check(value, "study.margin"))


def _adaptive_design(adaptive: tuple[int, int] | None, design: DesignConfig) -> tuple[int, int] | None:
    if adaptive is not None and design.sampled:
        raise UserError(
            f"adaptive seeds need the arms known in advance; a {design.kind} design samples them",
            key="study.seeds",
            expected="a number of seeds, or a design of kind factorial, leave_one_out, add_one_in or orderings",
        )
    return adaptive


def _seeds(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 1000:
            raise UserError(
                f"{value!r} is not valid",
                key="study.seeds",
                expected="a number of seeds in [1, 1000], or a list of integer seeds",
            )
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value)
    ):
        if len(set(value)) != len(value):
            raise UserError("seeds repeat", key="study.seeds", expected="distinct seeds")
        return list(value)
    raise UserError(
        f"{value!r} is not valid",
        key="study.seeds",
        expected="a number of seeds in [1, 1000], or a non-empty list of integer seeds from 0 to 2^63-1",
    )


def _choice(registry: Registry | None, kind: str, table: dict[str, Any], key: str) -> Choice:
    """[data] or [model]: the component it names (by its ``ref``) with its parameters."""
    name = table["name"]
    params = {k: v for k, v in table.items() if k != "name"}
    if registry is None:
        return Choice(tidy(name), params)
    comp = registry.find(kind, name, key=f"{key}.name", given=params, change=lambda q: f'name = "{q}"')
    return Choice(comp.ref, registry.resolve_params(kind, comp.ref, params, key))


def _factor(
    registry: Registry | None,
    fname: str,
    table: dict[str, Any],
    model: Choice,
    data: Choice,
    design: DesignConfig,
    base: Path,
) -> Factor:
    key = f"factors.{fname}"
    if ("kind" in table) == ("setting" in table):
        raise UserError(
            "a factor needs exactly one of 'kind' (a component kind) or 'setting' (e.g. \"model.slots\")",
            key=key,
            expected="kind = one of " + ", ".join(SWITCHABLE) + ', or setting = "model.PARAM"',
        )
    if "setting" in table and "range" in table:
        _check_keys(table, ("setting", "range"), key)
        return _setting_range(registry, fname, table, model, data, design, key)
    levels = _levels(table, model, design, key)
    if "setting" in table:
        _check_keys(table, ("setting", "levels"), key)
        return _setting_factor(registry, fname, table["setting"], levels, model, data, key, base)
    kind = table["kind"]
    if kind not in FACTOR_KINDS:
        raise UserError(
            f"{kind!r} is not a component kind a factor can vary",
            key=f"{key}.kind",
            expected="one of " + ", ".join(FACTOR_KINDS),
            hint=did_you_mean(str(kind), FACTOR_KINDS),
        )
    names = _component_names(registry, kind, levels, table, key)
    tables = level_tables(registry, kind, table, levels, names, key, FACTOR_KEYS)
    labels = [OFF if ref == OFF else tidy(written) for ref, written in zip(names, levels, strict=True)]
    options: list[Option] = []
    ranges: dict[Any, dict[str, Range]] = {}
    for ref, label in zip(names, labels, strict=True):
        if ref == OFF:
            options.append(Option(OFF))
            continue
        tkey, given = tables.get(ref, (label, {}))
        sub = dict(as_table(given, f"{key}.{tkey}"))
        level_ranges = _ranges_of(registry, kind, ref, sub, design, f"{key}.{tkey}")
        if level_ranges:
            ranges[label] = level_ranges
        options += _component_options(registry, kind, ref, label, sub, f"{key}.{tkey}")
    return Factor(fname, kind, None, list(labels), options, ranges)


def _levels(table: dict[str, Any], model: Choice, design: DesignConfig, key: str) -> list[Any]:
    """A factor's listed levels, or the slot orders that "permutations" stands for."""
    levels = table.get("levels")
    if levels == "permutations":
        if table.get("setting") != "model.slots" or design.kind != "orderings":
            raise UserError(
                'levels = "permutations" generates the orders of the block\'s slots',
                key=f"{key}.levels",
                expected='setting = "model.slots" and design.kind = "orderings"',
            )
        slots = str(model.params.get("slots", "")).split(">")
        levels = [">".join(p) for p in itertools.permutations(slots)]
    if levels is None:
        raise UserError(
            "missing levels",
            key=f"{key}.levels",
            expected='a list of the levels to compare, e.g. levels = ["none", "batchnorm"]',
        )
    if not isinstance(levels, list) or not levels:
        raise UserError(f"{levels!r} is not valid", key=f"{key}.levels", expected="a non-empty list of levels")
    return levels  # distinct once normalised: _component_names and _setting_factor check


def _check_distinct(given: list[Any], meant: list[Any], key: str) -> None:
    """Values that mean the same (``meant``: as checked, e.g. 1 and 1.0 for a float,
    "BatchNorm" and "batchnorm") would make arms that train the same runs, which the
    report would then count as separate results."""
    seen: dict[str, Any] = {}
    for shown, value in zip(given, meant, strict=True):
        text = json.dumps(value, sort_keys=True, default=str)
        if text in seen:
            same = (
                f" ({shown!r} twice)"
                if repr(seen[text]) == repr(shown)
                else f" ({seen[text]!r} and {shown!r} are the same value)"
            )
            what = "levels" if key.endswith(".levels") else "values"
            raise UserError(f"{what} repeat{same}", key=key, expected=f"distinct {what}")
        seen[text] = shown


def _component_names(
    registry: Registry | None, kind: str, levels: list[Any], table: dict[str, Any], key: str
) -> list[str]:
    """The components the levels stand for, by ``Component.ref`` (``none`` kept as off)."""
    names = []
    for i, level in enumerate(levels):
        lkey = f"{key}.levels[{i}]"
        if not isinstance(level, str):
            raise UserError(f"{level!r} is not a {kind} name", key=lkey, expected=f"a string naming a {kind}")
        if normalise(level) == OFF or registry is None:
            names.append(tidy(level))
            continue
        given = next((v for k, v in table.items() if k not in FACTOR_KEYS and tidy(k) == tidy(level)), None)
        line = _levels_line(levels, i, key)
        comp = registry.find(kind, level, lkey, list(given) if isinstance(given, dict) else None, line)
        names.append(comp.ref)
    _check_distinct(levels, names, f"{key}.levels")
    return names


def _levels_line(levels: list[Any], i: int, key: str) -> Callable[[str], str]:
    """The factor's levels line with level ``i`` written as a qualified name."""
    return lambda qualified: "levels = " + json.dumps([qualified if j == i else v for j, v in enumerate(levels)])


def _ranges_of(
    registry: Registry | None, kind: str, level: str, sub: dict[str, Any], design: DesignConfig, key: str
) -> dict[str, Range]:
    """Sub-parameters given as {low, high} ranges; ``sub`` keeps a placeholder value for each."""
    ranges: dict[str, Range] = {}
    for p, v in list(sub.items()):
        if isinstance(v, dict):
            spec = registry.get(kind, level).params.get(p) if registry else None
            if registry is not None and spec is None:
                registry.resolve_params(kind, level, {p: 0}, key)  # names the bad param
            ranges[p] = _range(v, spec, f"{key}.{p}", design)
            sub[p] = spec.default if spec is not None else v["low"]
    return ranges


def _component_options(
    registry: Registry | None, kind: str, level: str, label: str, sub: dict[str, Any], key: str
) -> list[Option]:
    """One option per combination of the sub-parameters given as lists; ``level`` is the
    component's ``ref``, ``label`` the level as the study wrote it."""
    grids = {
        p: (v if isinstance(v, list) and not _is_list_param(registry, kind, level, p) else [v]) for p, v in sub.items()
    }
    for p, values in grids.items():
        if not values:
            raise UserError(
                f"{p} = [] gives the factor no {level} to try",
                key=f"{key}.{p}",
                expected="one value, or a non-empty list of values to cross",
            )
        meant = values if registry is None else [registry.resolve_params(kind, level, {p: v}, key)[p] for v in values]
        _check_distinct(values, meant, f"{key}.{p}")
    options = []
    for combo in _product(grids):
        params = combo if registry is None else registry.resolve_params(kind, level, combo, key)
        varied = {p: combo[p] for p, values in grids.items() if len(values) > 1}
        options.append(Option(label, varied, params, ref=level))
    return options


def _is_list_param(registry: Registry | None, kind: str, name: str, param: str) -> bool:
    """A parameter whose own value is a list (e.g. hidden sizes) is not a grid."""
    if registry is None:
        return False
    spec = registry.get(kind, name).params.get(param)
    return spec is not None and isinstance(spec.default, list)


def _product(grids: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for p, values in grids.items():
        combos = [{**c, p: v} for c in combos for v in values]
    return combos


def _setting_specs(
    registry: Registry | None, setting: Any, model: Choice, data: Choice, key: str
) -> tuple[str, dict[str, Param] | None]:
    parts = setting.split(".") if isinstance(setting, str) else []
    if len(parts) != 2 or parts[0] not in SETTING_SECTIONS or parts[1] == "name":
        raise UserError(
            f"{setting!r} is not a setting a factor can vary",
            key=f"{key}.setting",
            expected='"model.PARAM", "train.PARAM" or "data.PARAM"',
        )
    section, param = parts
    if section == "train" and param in EXECUTION_SETTINGS:
        raise UserError(
            f"{setting!r} says where and how fast runs execute, not what they train: "
            "arms that differ only there would share their runs",
            key=f"{key}.setting",
            expected="a setting that changes results: "
            + ", ".join(f"train.{p}" for p in TRAIN_PARAMS if p not in EXECUTION_SETTINGS),
        )
    if section == "train" and param in RECIPE_ONLY:
        raise UserError(
            f"{setting!r} is a component kind, not a setting a factor varies",
            key=f"{key}.setting",
            expected=f'kind = "{param}" (levels: its names, with a table of params per level)',
        )
    if section == "train":
        specs = TRAIN_PARAMS
    elif registry is None:
        return param, None
    else:
        choice, kind = (model, "model") if section == "model" else (data, "dataset")
        specs = registry.get(kind, choice.name).params
    if param not in specs:
        raise UserError(
            f"no setting {setting!r}",
            key=f"{key}.setting",
            expected=f"a parameter of [{section}]: " + ", ".join(specs),
            hint=did_you_mean(param, specs),
        )
    return param, specs


def _setting_range(
    registry: Registry | None,
    fname: str,
    table: dict[str, Any],
    model: Choice,
    data: Choice,
    design: DesignConfig,
    key: str,
) -> Factor:
    param, specs = _setting_specs(registry, table["setting"], model, data, key)
    value = as_table(table["range"], f"{key}.range")
    rng = _range(value, specs[param] if specs else None, f"{key}.range", design)
    return Factor(fname, None, table["setting"], [], [], range=rng)


def _setting_factor(
    registry: Registry | None,
    fname: str,
    setting: Any,
    levels: list[Any],
    model: Choice,
    data: Choice,
    key: str,
    base: Path,
) -> Factor:
    param, specs = _setting_specs(registry, setting, model, data, key)
    files = setting.startswith("data.") and param in FILE_PARAMS  # checked where they point, kept as written

    def check(i: int, value: Any) -> Any:
        if specs is None:
            return value
        if files:
            return _check_located(specs[param], value, base, f"{key}.levels[{i}]")
        return specs[param].check(value, f"{key}.levels[{i}]")

    checked = [check(i, v) for i, v in enumerate(levels)]
    meant = [">".join(s.strip() for s in v.split(">")) if setting == "model.slots" else v for v in checked]
    _check_distinct(levels, meant, f"{key}.levels")  # slot orders the same but for spaces build one network
    options = [Option(v) for v in checked]
    return Factor(fname, None, setting, checked, options)


def _check_located(spec: Param, value: Any, base: Path, key: str) -> Any:
    """A file path checked where it points from the study file, returned as written."""
    spec.check(located({"path": value}, base)["path"] if isinstance(value, str) else value, key)
    return value


def _check_optimizer_levels(registry: Registry | None, factors: list[Factor]) -> None:
    """A factor over train.optimizer names optimizers (checked here, not when a run builds)."""
    for f in factors:
        if f.setting == "train.optimizer" and registry is not None:
            for i, level in enumerate(f.levels):
                registry.find("optimizer", str(level), key=f"factors.{f.name}.levels[{i}]")


def _check_momentum_moves(train: dict[str, Any], factors: list[Factor], recipe: tuple[ComponentSpec, ...]) -> None:
    """[train] momentum is the shorthand sgd's: under another optimizer, or an
    optimizer component (which has its own momentum), a factor over it makes arms
    that train the same numbers (their run keys differ, so no later check sees it),
    which the report would compare as if they differed."""
    optimizers = {train["optimizer"]}
    for f in factors:
        if f.setting == "train.optimizer":
            optimizers = set(f.levels)
    component = any(c.kind == "optimizer" for c in recipe) or any(f.kind == "optimizer" for f in factors)
    others = sorted(optimizers - {"sgd"}) + (["an optimizer component"] if component else [])
    for f in factors:
        if f.setting == "train.momentum" and (f.range is not None or len(f.options) > 1) and others:
            raise UserError(
                "momentum only moves SGD (the [train] shorthand); arms that train with "
                f"{others[0]} would train the same numbers at each momentum",
                key=f"factors.{f.name}.setting",
                expected='optimizer = "sgd" in [train] (a name, not a table), or momentum as the sgd level\'s param '
                'of a factor with kind = "optimizer"',
            )


def _check_factor_overlap(factors: list[Factor]) -> None:
    """A component or setting may be varied by one factor only."""
    seen: dict[str, str] = {}
    for f in factors:
        refs = dict.fromkeys(o.component for o in f.options if o.level != OFF)
        keys = [f"setting {f.setting}"] if f.setting else [f"{f.kind} {ref}" for ref in refs]
        if f.kind == "norm":
            keys.append("the norm slot")
        for k in keys:
            if k in seen:
                raise UserError(
                    f"{k} is varied by both factors {seen[k]!r} and {f.name!r}",
                    key=f"factors.{f.name}",
                    expected="each component or setting in one factor",
                )
            seen[k] = f.name
