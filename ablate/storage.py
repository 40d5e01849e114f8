"""Optuna storage and study set-up: where trials live, which sampler and
pruner a design uses. Separate from the engine so reports and commands that
only read never import the training code."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import optuna

from ablate.config import StudyConfig
from ablate.errors import UserError

OBJECTIVE = "val_accuracy"


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, so a killed worker's trial is noticed and rerun."""
    local = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if local else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                              heartbeat_interval=2 if local else 10,
                                              grace_period=8 if local else 40)
    except Exception as exc:
        raise UserError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}".splitlines()[0],
                        key="--storage", expected="sqlite:///PATH or postgresql://USER@HOST/DB") from None


def optuna_study_name(config: StudyConfig) -> str:
    """Two objectives need a study of their own: Optuna fixes directions per study."""
    return f"{config.name}-pareto" if config.design.kind == "pareto" else config.name


def fail_stale(study: optuna.Study) -> None:
    """Mark trials whose worker stopped sending heartbeats as failed (so they rerun)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def make_sampler(config: StudyConfig) -> optuna.samplers.BaseSampler:
    d = config.design
    if d.sampler == "tpe":  # Optuna 5 changed defaults: say them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=d.search_seed, multivariate=True, group=True,
                                              constant_liar=True)
    if d.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=d.search_seed)
    # enumerated designs enqueue every trial; the sampler is never consulted for them
    return optuna.samplers.RandomSampler(seed=d.search_seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    if config.design.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if config.design.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def metric_names(config: StudyConfig) -> list[str]:
    return [OBJECTIVE, "train_val_gap"] if config.design.kind == "pareto" else [OBJECTIVE]


def open_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """The study in its storage, created on first use, its objectives named."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own progress lines say what happened
    directions: list[Literal["minimize", "maximize"]] = (
        ["maximize", "minimize"] if config.design.kind == "pareto" else ["maximize"])
    try:
        study = optuna.create_study(storage=storage, study_name=optuna_study_name(config),
                                    directions=directions, sampler=make_sampler(config),
                                    pruner=make_pruner(config), load_if_exists=True)
    except Exception as exc:
        raise UserError(f"cannot open the study in its storage: {type(exc).__name__}: {exc}",
                        key="--storage") from None
    if study.metric_names != metric_names(config):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names(config))
    return study
