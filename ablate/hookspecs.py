"""Every hook ablate calls: the plugin manual.

Two layers. Registration hooks (``ablate_register_*``) are called once when a
plugin manager is built; each receives a registrar for one kind of component
and adds named factories to it. Trial hooks are called during one training run
on a per-run plugin manager holding only the component instances that run
uses, so a component that is off never runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ablate import hookspec

if TYPE_CHECKING:  # annotations only: plugins register without torch
    from collections.abc import Callable

    import torch

    from ablate.components import Batch, DataInfo, DataSplits, EpochState, StepState
    from ablate.plugin.registry import Registrar

# --- registration hooks --------------------------------------------------


@hookspec
def ablate_register_norms(registry: Registrar) -> None:
    """Add normalization layers.

    Called once per plugin manager. ``registry.add(name, factory, params=...,
    help=...)``; the factory's keyword arguments are the declared params and it
    returns an object implementing ``ablate_make_layer`` for the slot "norm".
    """


@hookspec
def ablate_register_regularizers(registry: Registrar) -> None:
    """Add regularizers (loss penalties, optimizer options, layers, constraints).

    Called once per plugin manager. The factory returns an object implementing
    any of the trial hooks below.
    """


@hookspec
def ablate_register_augmentations(registry: Registrar) -> None:
    """Add augmentation policies; their instances implement ``ablate_transform_batch``."""


@hookspec
def ablate_register_stopping_rules(registry: Registrar) -> None:
    """Add stopping rules; their instances implement ``ablate_epoch_end`` (and
    optionally ``ablate_train_end``)."""


@hookspec
def ablate_register_datasets(registry: Registrar) -> None:
    """Add data sets. The factory returns an ``ablate.DatasetLoader``: an object
    with ``load(split_seed: int) -> DataSplits``; it must not touch the network
    unless asked to."""


@hookspec
def ablate_register_models(registry: Registrar) -> None:
    """Add models. The factory returns an ``ablate.ModelBuilder``: an object with
    ``build(input_shape, num_classes, make_layer) -> torch.nn.Module``, where
    ``make_layer(slot, features, dims)`` returns the active component's layer for
    a slot, or ``torch.nn.Identity()`` when the slot is empty."""


@hookspec
def ablate_register_optimizers(registry: Registrar) -> None:
    """Add optimizers. The factory's keyword arguments are the declared params
    (not the learning rate: that is ``[train] lr``, scaled by the schedule); it
    returns an ``ablate.OptimizerComponent``: an object with ``make(params, lr)
    -> torch.optim.Optimizer``. Its arm trains stacked only where the class says
    ``elementwise = True`` (each element's step depends on that element alone)."""


@hookspec
def ablate_register_schedules(registry: Registrar) -> None:
    """Add learning-rate schedules. The factory returns an ``ablate.ScheduleComponent``:
    an object with ``lr(step, base_lr, steps_per_epoch, total_steps) -> float``, the
    learning rate of optimizer step ``step`` (0-based), asked before that step."""


# --- trial hooks -----------------------------------------------------------


@hookspec
def ablate_check_data(info: DataInfo) -> None:
    """Reject a study whose data this component cannot work with, before anything trains.

    Called while the study is validated (``ablate run`` and ``ablate plan``),
    once for each distinct configuration of the component the study uses and
    each data setting it runs on, on an instance made for the check only (not
    the one a run uses). ``info`` gives the data set's name, one sample's shape,
    the number of classes and the split sizes. Raise ``ablate.UserError`` to
    reject the study (exit 2, the component named); return None to accept.
    Also called on the model builder, so a model can reject input shapes.
    """


@hookspec(firstresult=True)
def ablate_make_layer(slot: str, features: int, dims: int) -> torch.nn.Module | None:
    """Fill a named slot of a model block with a layer.

    Called while the model is built, once per slot per block. ``slot`` is e.g.
    "norm" or "dropout"; ``features`` the channel/feature count at that point;
    ``dims`` 0 after a linear layer, 1 or 2 after a 1-D or 2-D convolution.
    Return a module, or None if this component does not fill that slot.
    Stops at the first non-None result.
    """


@hookspec
def ablate_configure_model(model: torch.nn.Module) -> None:
    """Modify or wrap the model's submodules in place (e.g. spectral norm).

    Called once per run, after the model is built and moved to the device and
    before the optimizer is made (so new or re-parametrised weights are
    optimised). Return None.
    """


@hookspec
def ablate_optimizer_options(model: torch.nn.Module) -> dict[str, Any] | None:
    """Options merged into the optimizer's constructor, e.g. ``{"weight_decay": 1e-4}``.

    Called once, before the optimizer is made. Two components giving the same
    option is an error.
    """


@hookspec
def ablate_loss_penalty(model: torch.nn.Module) -> torch.Tensor | None:
    """A scalar added to the training loss at every step (e.g. an L2 penalty).

    Called once per training step after the forward pass; all results are summed.
    """


@hookspec
def ablate_transform_batch(batch: Batch) -> None:
    """Transform a training batch in place (replace ``batch.x``/``batch.y``).

    Called for training batches only, never for validation or test, after the
    batch is on the device. Randomise per sample, drawing from ``batch.generator``.
    """


@hookspec
def ablate_before_step(model: torch.nn.Module, state: StepState) -> None:
    """Act on the gradients after backward, before the optimizer step (clipping,
    gradient noise). Called once per step; ``state`` says which step of how many.
    In a stack it runs through the component's stacked form (the seeds' gradients
    are slices of the stacked model's); a component without one trains alone.
    Under fp16 the gradients are unscaled first (true gradients, as clipping needs)."""


@hookspec(firstresult=True)
def ablate_learning_rate(state: StepState, scheduled: Callable[[int], float]) -> float | None:
    """The learning rate of one step instead of the run's schedule's, or None to keep it.

    ``state.lr`` is the schedule's rate for ``state.step``; ``scheduled(step)`` gives
    the schedule's rate at any step of the run. A pure function of the step: it may
    be called more than once per step and for the epoch's record (the swa
    regularizer anneals to its ``swa_lr`` here). Stops at the first non-None result.
    In a stack each seed's own instance gives that seed's rate."""


@hookspec
def ablate_after_step(model: torch.nn.Module) -> None:
    """Act on the weights after each optimizer step (e.g. a max-norm constraint)."""


@hookspec
def ablate_epoch_end(state: EpochState) -> str | None:
    """Decide at the end of each epoch whether the run stops.

    Every active rule is called (so each can track its own state); return a
    short stop reason such as "early_stopping" to stop, else None. When several
    rules fire, the first result in call order is the run's ``stop_reason``.
    """


@hookspec
def ablate_train_end(model: torch.nn.Module, stop_reason: str, data: DataSplits) -> None:
    """Called once after the last epoch, before the final measurement; e.g.
    early stopping restores the best weights here. ``data`` is the run's splits
    (``data.x_train``: batch-norm statistics can be recomputed on them). Called in
    hook order: a component that must see the restored weights marks its
    implementation ``@hookimpl(trylast=True)``."""
