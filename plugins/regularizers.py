"""Regularizers: layers for the "dropout"/"drop_path" slots (dropout, channel
dropout, alpha dropout, stochastic depth); loss penalties (L1, coupled L2);
decoupled weight decay, applied by the optimizer (AdamW/SGDW style); a max-norm
constraint after each step; spectral normalisation of the weights, which
re-parametrises the built model (``ablate_configure_model``); label smoothing
of the training targets.

Torch is imported where it is used, not when the plugin loads: a study is loaded
and checked without it (the layers of its own live in ``_regularizer_layers``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ablate.plugins._shared import SoftTargets
from ablate.plugins.recipes import swa_anneal

from ablate import Param, SlotComponent, hookimpl, stacked_component

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


class _Rate(SlotComponent):
    """A layer for one slot, parameterised by a drop rate. Torch's dropout layers
    stack with a rate per seed (rate 0 for an arm without one), so arms that differ
    only in these share a stack."""

    slot = "dropout"
    shares_stacks = True

    def __init__(self, rate: float):
        self.rate = rate


class Dropout(_Rate):
    def layer(self, features, dims):
        from torch import nn

        return nn.Dropout(self.rate)


class Dropout2d(_Rate):
    """Channel dropout (Tompson et al., 2015): after a convolution whole feature
    maps are dropped (nn.Dropout1d/2d by ``dims``); after a linear layer, plain dropout."""

    def layer(self, features, dims):
        from torch import nn

        return {0: nn.Dropout, 1: nn.Dropout1d, 2: nn.Dropout2d}[dims](self.rate)


class AlphaDropout(_Rate):
    """Alpha dropout (Klambauer et al., 2017): keeps zero mean and unit variance of
    SELU-like activations; element-wise after a linear layer, per channel
    (nn.FeatureAlphaDropout) after a convolution."""

    shares_stacks = False  # its stacked form takes one rate for every seed

    def layer(self, features, dims):
        from torch import nn

        return nn.AlphaDropout(self.rate) if dims == 0 else nn.FeatureAlphaDropout(self.rate)


class DropPath(_Rate):
    """Stochastic depth (Huang et al., 2016), per sample, on the residual branch:
    fills the slot "drop_path", which only residual models (resnet) have."""

    slot = "drop_path"
    shares_stacks = False  # its layer's stacked form needs every seed to have it

    def layer(self, features, dims):
        from ablate.plugins._regularizer_layers import (
            DropPathLayer,  # torch: when a model is built, not when the plugin registers
        )

        return DropPathLayer(self.rate)


def penalised_parameters(model: nn.Module, include_biases: bool) -> Iterator[nn.Parameter]:
    """Weights of linear/conv layers; biases and norm parameters only when asked."""
    from torch import nn

    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
    for module in model.modules():
        is_norm = isinstance(module, norm_types) or "Norm" in type(module).__name__
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if include_biases or (name == "weight" and not is_norm):
                yield p


class _WeightPenalty:
    """coef * sum of term(w) over the weights (biases and norm parameters only when asked).
    Arms that differ only in ``coef`` share a stack, each seed penalised with its own."""

    per_seat = ("coef",)

    def __init__(self, coef: float, include_biases: bool):
        self.coef, self.include_biases = coef, include_biases
        self._params: list[torch.Tensor] | None = None

    @staticmethod
    def term(p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @hookimpl
    def ablate_loss_penalty(self, model):
        if self._params is None:
            self._params = list(penalised_parameters(model, self.include_biases))
        return self.coef * sum(self.term(p).sum() for p in self._params)


class L2(_WeightPenalty):
    """Coupled L2: adds coef * sum(w^2) to the loss, so it passes through the optimizer."""

    term = staticmethod(lambda p: p * p)


class L1(_WeightPenalty):
    """L1 penalty coef * sum|w| added to the loss (sparsity-inducing)."""

    term = staticmethod(lambda p: p.abs())


class WeightDecay:
    """Decoupled weight decay: the optimizer shrinks weights by lr * decay each step.
    Arms that differ only in it (or its absence) share a stack: the flat Adam holds a
    decay per seat (SGD's decoupled decay cannot: its arms stack apart)."""

    shares_stacks = True

    def __init__(self, decay: float):
        self.decay = decay

    @hookimpl
    def ablate_optimizer_options(self, model):
        return {"weight_decay": self.decay, "decoupled_weight_decay": True}


class MaxNorm:
    """Max-norm constraint (Srivastava et al., 2014): after every optimizer step the
    incoming weight vector of each unit (a row of a Linear weight, an output filter
    of a convolution) is rescaled to L2 norm at most ``max_norm``."""

    def __init__(self, max_norm: float):
        self.max_norm = max_norm
        self._weights: list[torch.Tensor] | None = None

    @hookimpl
    def ablate_after_step(self, model):
        import torch

        if self._weights is None:
            self._weights = [m.weight for m in model.modules() if isinstance(m, weighted_types())]
        with torch.no_grad():
            for w in self._weights:
                w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.max_norm))


def weighted_types() -> tuple[type, ...]:
    """The layers whose weights spectral norm and max-norm act on."""
    from torch import nn

    return (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SpectralNorm:
    """Spectral normalisation (Miyato et al., 2018): each linear/conv weight W is
    used as W / sigma(W), its largest singular value estimated by power iteration
    (``n_power_iterations`` per training step, the kernel taken as an out x rest
    matrix), so every wrapped layer has spectral norm 1. The classifier (the last
    linear layer) is left alone unless ``head``: normalising it too caps the
    logits' scale. The model is re-parametrised after it is built, before the
    optimizer is made; when training ends the estimate is iterated to
    convergence, so the final weights are normalised exactly."""

    def __init__(self, n_power_iterations: int, head: bool):
        self.n_power_iterations, self.head = n_power_iterations, head
        self._wrapped: list[nn.Module] = []

    def layers(self, model: nn.Module) -> list[nn.Module]:
        """The layers it wraps: every linear/conv layer, less the classifier unless ``head``."""
        from torch import nn

        found = [m for m in model.modules() if isinstance(m, weighted_types())]
        linear = [m for m in found if isinstance(m, nn.Linear)]
        if not self.head and linear:
            found.remove(linear[-1])
        return found

    @hookimpl
    def ablate_configure_model(self, model: nn.Module) -> None:
        from ablate.plugins._regularizer_layers import (
            SpectralNormalised,  # torch: when a model is built, not when the plugin registers
        )
        from torch.nn.utils import parametrize

        self._wrapped = self.layers(model)
        for module in self._wrapped:
            parametrize.register_parametrization(
                module, "weight", SpectralNormalised(module.weight, self.n_power_iterations)
            )

    @hookimpl(trylast=True)  # after any weights are restored (early stopping's best epoch)
    def ablate_train_end(self, model: nn.Module, stop_reason: str) -> None:
        for module in self._wrapped:
            param = module.parametrizations.weight
            param[0].converge(param.original.detach().flatten(1))


class GradClip:
    """Gradient clipping after backward, before the step: the gradients' global L2
    norm scaled down to at most ``max_norm`` (torch.nn.utils.clip_grad_norm_), or,
    ``by_value``, each element clamped to [-max_norm, max_norm] (clip_grad_value_)."""

    per_seat = ("max_norm",)  # a stack clips each seed at its own threshold

    def __init__(self, max_norm: float, by_value: bool):
        self.max_norm, self.by_value = max_norm, by_value

    @hookimpl
    def ablate_before_step(self, model, state):
        from torch.nn.utils import clip_grad_norm_, clip_grad_value_

        params = [p for p in model.parameters() if p.grad is not None]
        if self.by_value:
            clip_grad_value_(params, self.max_norm)
        else:
            clip_grad_norm_(params, self.max_norm)


class Ema:
    """An exponential moving average of the weights (and buffers), updated after
    every optimizer step (torch.optim.swa_utils.AveragedModel with
    get_ema_multi_avg_fn(decay), use_buffers=True); the run is measured with the
    averaged weights (copied into the model at train end, after any early-stopping
    restore). The per-epoch history is of the weights trained. In a stack each seed
    updates its own average on its own weights (exact), with its own decay."""

    per_seat = ("decay",)

    def __init__(self, decay: float):
        self.decay = decay
        self.average: Any = None

    @hookimpl
    def ablate_after_step(self, model):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if self.average is None:
            self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        self.average.update_parameters(model)

    @hookimpl(trylast=True)
    def ablate_train_end(self, model, stop_reason, data):
        if self.average is not None:
            _load_average(model, self.average.module)


class Swa:
    """Stochastic weight averaging (Izmailov et al., 2018): the equal average of the
    weights at the end of each epoch from ``start_epoch`` on (AveragedModel), then
    batch-norm statistics recomputed on the training split (swa_utils.update_bn, in
    batches of UPDATE_BN_BATCH); the run is measured with the averaged weights.
    With ``swa_lr`` (> 0) the learning rate from ``start_epoch`` on is torch's SWALR's,
    made at the start of that epoch on the schedule's rate of its first step and
    stepped at each epoch's end (``anneal_epochs``, ``anneal_strategy``); with 0 the
    run's schedule goes on."""

    def __init__(self, start_epoch: int, swa_lr: float = 0.0, anneal_epochs: int = 10, anneal_strategy: str = "cos"):
        self.start_epoch, self.swa_lr = start_epoch, swa_lr
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        self.average: Any = None

    @hookimpl
    def ablate_learning_rate(self, state, scheduled):
        if not self.swa_lr or state.epoch < self.start_epoch:
            return None
        lr0 = scheduled((self.start_epoch - 1) * state.steps_per_epoch)
        steps = state.epoch - self.start_epoch  # SWALR's steps so far: one per epoch end since it was made
        return swa_anneal(lr0, self.swa_lr, steps, self.anneal_epochs, self.anneal_strategy)

    @hookimpl
    def ablate_epoch_end(self, state):
        from torch.optim.swa_utils import AveragedModel

        if state.epoch >= self.start_epoch:
            if self.average is None:
                self.average = AveragedModel(state.model)
            self.average.update_parameters(state.model)
        return None

    @hookimpl(trylast=True)
    def ablate_train_end(self, model, stop_reason, data):
        from torch.optim.swa_utils import update_bn

        if self.average is None:
            return
        _load_average(model, self.average.module, parameters_only=True)
        update_bn(data.x_train.split(UPDATE_BN_BATCH), model)


UPDATE_BN_BATCH = 128


def _load_average(model, averaged, parameters_only: bool = False) -> None:
    import torch

    with torch.no_grad():
        pairs = list(zip(model.parameters(), averaged.parameters(), strict=True))
        if not parameters_only:
            pairs += list(zip(model.buffers(), averaged.buffers(), strict=True))
        for mine, average in pairs:
            mine.copy_(average)


class LabelSmoothing(SoftTargets):
    """Label smoothing (Szegedy et al., 2016): training targets become
    (1 - eps) on the true class + eps / K on every class. The class count K comes
    from ``classes`` or, when 0, from the model's output. Targets that are
    already soft (mixup, cutmix) are smoothed the same way. In a stack each seed's
    batch is smoothed by its own run's instance, so arms that differ only in
    ``eps`` share a stack."""

    per_seat = ("eps",)

    def __init__(self, eps: float, classes: int):
        self.eps, self.classes = eps, classes

    @hookimpl
    def ablate_transform_batch(self, batch):
        target = self.soft_targets(batch)
        batch.y = target * (1.0 - self.eps) + self.eps / target.shape[1]


RATE = Param(0.5, low=0.0, high=1.0, high_open=True, help="drop probability")


@hookimpl
def ablate_register_regularizers(registry):
    _register_layers(registry)
    _register_penalties_and_constraints(registry)
    _register_gradient_and_averaging(registry)


def _register_layers(registry: Any) -> None:
    """Regularizers that are layers in a block's slots: the dropout family and drop path."""
    registry.add(
        "dropout", Dropout, help="dropout in the block's dropout slot (Srivastava et al., 2014)", params={"rate": RATE}
    )
    registry.add(
        "dropout2d",
        Dropout2d,
        help="channel dropout after convolutions (plain dropout after linear)",
        params={"rate": Param(0.1, low=0.0, high=1.0, high_open=True, help="drop probability")},
    )
    registry.add(
        "alpha_dropout",
        AlphaDropout,
        help="alpha dropout, keeps self-normalising statistics",
        params={"rate": Param(0.1, low=0.0, high=1.0, high_open=True, help="drop probability")},
    )
    registry.add(
        "drop_path",
        DropPath,
        help="stochastic depth on residual branches (resnet's drop_path slot)",
        params={
            "rate": Param(0.1, low=0.0, high=1.0, high_open=True, help="probability of dropping a sample's branch")
        },
    )


def _register_penalties_and_constraints(registry: Any) -> None:
    """Regularizers on the loss, the optimizer or the weights: L1/L2, weight decay,
    max-norm, spectral norm, label smoothing."""
    registry.add(
        "l1",
        L1,
        help="L1 penalty coef * sum|w| added to the loss",
        params={
            "coef": Param(1e-5, low=0.0, help="penalty coefficient"),
            "include_biases": Param(False, help="also penalise biases and norm parameters"),
        },
    )
    registry.add(
        "l2",
        L2,
        help="coupled L2 penalty coef * sum(w^2) added to the loss",
        params={
            "coef": Param(1e-4, low=0.0, help="penalty coefficient"),
            "include_biases": Param(False, help="also penalise biases and norm parameters"),
        },
    )
    registry.add(
        "weight_decay",
        WeightDecay,
        help="decoupled weight decay (Loshchilov & Hutter, 2019)",
        params={"decay": Param(1e-2, low=0.0, high=1.0, help="decay factor per unit learning rate")},
    )
    registry.add(
        "max_norm",
        MaxNorm,
        help="cap each unit's incoming weight norm after every step",
        params={"max_norm": Param(3.0, low=0.0, low_open=True, help="largest L2 norm of a unit's weights")},
    )
    registry.add(
        "spectral_norm",
        SpectralNorm,
        help="every linear/conv weight divided by its largest singular value (Miyato et al., 2018)",
        params={
            "n_power_iterations": Param(1, low=1, high=100, help="power iterations per step"),
            "head": Param(False, help="also normalise the classifier (the last linear layer)"),
        },
    )
    registry.add(
        "label_smoothing",
        LabelSmoothing,
        help="soft training targets (1-eps) + eps/K",
        params={
            "eps": Param(0.1, low=0.0, high=1.0, high_open=True, help="smoothing mass"),
            "classes": Param(0, low=0, help="number of classes; 0 takes it from the model's output"),
        },
    )


def _register_gradient_and_averaging(registry: Any) -> None:
    """Regularizers on the step's gradients and on the weights a run is measured with:
    gradient clipping, EMA and SWA."""
    registry.add(
        "grad_clip",
        GradClip,
        help="clip the gradients' global norm (or each value) before every step",
        params={
            "max_norm": Param(1.0, low=0.0, low_open=True, help="largest global L2 norm (by_value: largest |g|)"),
            "by_value": Param(False, help="clamp each gradient element instead of the norm"),
        },
    )
    registry.add(
        "ema",
        Ema,
        help="measure the run with an exponential moving average of its weights",
        params={"decay": Param(0.999, low=0.0, high=1.0, help="the average's decay per optimizer step")},
    )
    registry.add(
        "swa",
        Swa,
        help="measure the run with the average of its epoch-end weights from start_epoch on (SWA)",
        params={
            "start_epoch": Param(1, low=1, help="the first epoch whose weights are averaged"),
            "swa_lr": Param(
                0.0, low=0.0, high=10.0, help="from start_epoch, anneal the lr to this and hold it (SWALR); 0: off"
            ),
            "anneal_epochs": Param(10, low=0, high=100_000, help="epochs of the anneal to swa_lr (SWALR's)"),
            "anneal_strategy": Param("cos", choices=("cos", "linear"), help="the anneal's shape (SWALR's)"),
        },
    )


# --- stacked forms (issue 10): how these train when the seeds of an arm are one model ---
# Declared as a third-party plugin declares its own (docs/stacking.md).


class StackedWeightPenalty:
    """L1/L2 over stacked weights: summed over the seed axis it is the sum of the
    seeds' own penalties, so each seed's gradient is its own. Where the seeds'
    coefficients differ, each seed's sum is weighted by its own (the gradient of
    a seed's weight is then its coefficient times term', as alone)."""

    def __init__(self, penalties: list[_WeightPenalty], ctx):
        first = penalties[0]
        self.ctx, self.term = ctx, first.term
        self.coefs = [p.coef for p in penalties]
        self.params = [ctx.stacked(p) for p in penalised_parameters(ctx.models[0], first.include_biases)]

    def ablate_loss_penalty(self, model: nn.Module) -> torch.Tensor:
        if len(set(self.coefs)) == 1:
            return self.coefs[0] * sum(self.term(p).sum() for p in self.params)
        seeds = self.params[0].shape[0]
        per_seed = sum(self.term(p).reshape(seeds, -1).sum(1) for p in self.params)
        return (self.ctx.seat_values(self.coefs, self.params[0]) * per_seed).sum()


class StackedMaxNorm:
    """Max-norm per seed and unit: the stacked weight (S, out, ...) renormed as S*out units."""

    def __init__(self, rules: list[MaxNorm], ctx):
        self.max_norm = rules[0].max_norm
        self.weights = [ctx.stacked(m.weight) for m in ctx.models[0].modules() if isinstance(m, weighted_types())]

    def ablate_after_step(self, model: nn.Module) -> None:
        import torch

        with torch.no_grad():
            for w in self.weights:
                w.copy_(torch.renorm(w.flatten(0, 1), p=2, dim=0, maxnorm=self.max_norm).view_as(w))


class StackedGradClip:
    """Gradient clipping per seed: each seed's global norm over its slices of the
    stacked gradients, and its own scale (torch's formula: max_norm / (norm + 1e-6),
    at most 1); by value, the clamp is element-wise already."""

    def __init__(self, rules: list[GradClip], ctx):
        self.ctx, self.by_value = ctx, rules[0].by_value
        self.thresholds = [rule.max_norm for rule in rules]  # each seed's own (per_seat)
        self.params = [ctx.stacked(p) for p in ctx.models[0].parameters() if p.requires_grad]

    def ablate_before_step(self, model: nn.Module, state) -> None:
        import torch

        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return
        with torch.no_grad():
            if self.by_value:
                self._clamp(grads)
                return
            seeds = grads[0].shape[0]
            norms = torch.stack([torch.linalg.vector_norm(g.reshape(seeds, -1), 2, dim=1) for g in grads], dim=1)
            total = torch.linalg.vector_norm(norms, 2, dim=1)
            if len(set(self.thresholds)) == 1:
                scale = torch.clamp(self.thresholds[0] / (total + 1e-6), max=1.0)
            else:  # torch's max_norm / (norm + 1e-6) is reciprocal(norm + 1e-6) * max_norm
                scale = torch.clamp((total + 1e-6).reciprocal() * self.ctx.seat_values(self.thresholds, total), max=1.0)
            for g in grads:
                g.mul_(scale.view(seeds, *([1] * (g.dim() - 1))).to(g.dtype))

    def _clamp(self, grads: list[torch.Tensor]) -> None:
        """clip_grad_value_ per seed: each seed's elements clamped to its own threshold."""
        import torch

        if len(set(self.thresholds)) == 1:
            for g in grads:
                g.clamp_(-self.thresholds[0], self.thresholds[0])
            return
        for g in grads:
            bound = self.ctx.seat_values(self.thresholds, g).view(-1, *([1] * (g.dim() - 1)))
            torch.clamp(g, -bound, bound, out=g)


stacked_component(L1, L2)(StackedWeightPenalty)
stacked_component(GradClip)(StackedGradClip)
stacked_component(MaxNorm)(StackedMaxNorm)
