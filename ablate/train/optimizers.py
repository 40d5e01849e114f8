"""A run's optimizer: which one its settings and components ask for (the
recipe), and the flat optimizer that carries it out wherever it can.

The flat optimizer keeps every trainable parameter in one flat buffer
(parameters, gradients and moments are views into flat tensors), so a step is a
handful of operations on one tensor instead of several per parameter, whether
the parameters are one run's or a whole stack's. Each element gets the
operations of torch's single-tensor Adam, AdamW or SGD with the same constants,
so a run's weights are bit for bit those torch's optimizer gives, and a seed in
a stack gets exactly the steps of its run alone. (Torch's fused Adam kernel is
faster, but not position-independent: the same element gave a different result
at another place in the buffer, and Adam turns such differences in a bias
before batch norm into steps of the full learning rate.) Anything the flat
optimizer does not reproduce (amsgrad, maximize, another optimizer class) gets
torch's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

PreStep = Callable[[], None]


@dataclass(frozen=True)
class OptimizerRecipe:
    """Which torch optimizer a run makes and with what keyword arguments; ``shrink``
    is SGD's decoupled weight decay (lr * wd), applied before each step, or 0."""

    kind: type[torch.optim.Optimizer]
    kwargs: dict[str, Any]
    shrink: float = 0.0


def optimizer_recipe(train: dict[str, Any], options: dict[str, Any]) -> OptimizerRecipe:
    options = dict(options)
    decoupled = options.pop("decoupled_weight_decay", False)
    lr = train["lr"]
    if train["optimizer"] == "adam":
        if decoupled:
            options.setdefault("weight_decay", 0.0)
            return OptimizerRecipe(torch.optim.AdamW, {"lr": lr, **options})
        return OptimizerRecipe(torch.optim.Adam, {"lr": lr, **options})
    wd = options.pop("weight_decay", 0.0) if decoupled else 0.0
    return OptimizerRecipe(torch.optim.SGD, {"lr": lr, "momentum": train["momentum"], **options}, lr * wd)


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def pre_step_of(params: list[torch.nn.Parameter], recipe: OptimizerRecipe) -> PreStep | None:
    return _shrinker(params, recipe.shrink) if recipe.shrink else None


def make_optimizer(
    model: torch.nn.Module, train: dict[str, Any], options: dict[str, Any]
) -> tuple[Optimizer, PreStep | None]:
    """The optimizer (flat where it can be: one run's, or a stack's) plus a pre-step
    action (decoupled weight decay for SGD), or None. Making torch's own optimizer
    the first time imports torch._dynamo (seconds per process); the flat one does not."""
    recipe, params = optimizer_recipe(train, options), trainable(model)
    optimizer: Optimizer = flat_from_recipe(params, recipe) or recipe.kind(params, **recipe.kwargs)
    return optimizer, pre_step_of(params, recipe)


def _shrinker(params: list[torch.nn.Parameter], factor: float) -> PreStep:
    @torch.no_grad()
    def shrink() -> None:  # SGDW: shrink weights by lr * wd, outside the gradient
        for p in params:
            if p.grad is not None:
                p.mul_(1 - factor)

    return shrink


class FlatBuffers:
    """Tensors shaped like the parameters, stored in one flat tensor per role."""

    def __init__(self, params: Sequence[torch.nn.Parameter]):
        self.params = list(params)
        self.flat: dict[str, torch.Tensor] = {}

    def views(self, role: str) -> list[torch.Tensor]:
        out, offset, flat = [], 0, self.flat[role]
        for p in self.params:
            out.append(flat[offset : offset + p.numel()].view(p.shape))
            offset += p.numel()
        return out

    def gather(self, tensors: Sequence[torch.Tensor], role: str) -> None:
        """Make ``role``'s flat tensor from per-parameter tensors (parameters' own shapes)."""
        self.flat[role] = torch.cat([t.detach().reshape(-1) for t in tensors])

    def attach(self) -> None:
        """Point every parameter's data and gradient at its slice of the flat tensors."""
        for p, data, grad in zip(self.params, self.views("param"), self.views("grad"), strict=True):
            p.data = data
            p.grad = grad


class FlatOptimizer:
    """Adam (coupled or decoupled weight decay) or SGD (momentum, dampening,
    nesterov, weight decay) on flat buffers; see the module docstring."""

    def __init__(self, params: Sequence[torch.nn.Parameter], kind: str, hp: dict[str, Any]):
        self.kind, self.hp, self.steps = kind, hp, 0
        self.buffers = FlatBuffers(params)
        self.state: dict[Any, Any] = {}  # torch's optimizers keep per-parameter state here; this keeps none
        roles = ("exp_avg", "exp_avg_sq") if kind == "adam" else ("momentum",)
        self.buffers.gather(params, "param")
        self.buffers.gather([torch.zeros_like(p) for p in params], "grad")
        for role in roles:
            self.buffers.gather([torch.zeros_like(p) for p in params], role)
        self.roles = ("param", "grad", *roles)
        self.buffers.attach()
        self._scratch: torch.Tensor | None = None  # Adam's denominator, kept between steps

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient (gradients stay views; backward adds into them in place)."""
        self.buffers.flat["grad"].zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.kind == "adam":
            self._adam()
        else:
            self._sgd()

    def _adam(self) -> None:
        hp, flat = self.hp, self.buffers.flat
        param, grad, exp_avg, exp_avg_sq = flat["param"], flat["grad"], flat["exp_avg"], flat["exp_avg_sq"]
        lr, (beta1, beta2), wd = hp["lr"], hp["betas"], hp["weight_decay"]
        if wd != 0:
            if hp["decoupled_weight_decay"]:
                param.mul_(1 - lr * wd)
            else:
                grad = grad.add(param, alpha=wd)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        if self._scratch is None:
            self._scratch = torch.empty_like(exp_avg_sq)  # the same operations, in place: no allocation a step
        denom = torch.sqrt(exp_avg_sq, out=self._scratch).div_(bias_correction2**0.5).add_(hp["eps"])
        param.addcdiv_(exp_avg, denom, value=-step_size)

    def _sgd(self) -> None:
        hp, flat = self.hp, self.buffers.flat
        param, grad = flat["param"], flat["grad"]
        if hp["weight_decay"] != 0:
            grad = grad.add(param, alpha=hp["weight_decay"])
        momentum = hp["momentum"]
        if momentum != 0:
            buf = flat["momentum"]
            if self.steps == 1:
                buf.copy_(grad)
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - hp["dampening"])
            grad = grad.add(buf, alpha=momentum) if hp["nesterov"] else buf
        param.add_(grad, alpha=-hp["lr"])

    @torch.no_grad()
    def select(self, keep: Sequence[int]) -> None:
        """Keep the seeds at these stack positions in every flat tensor."""
        index = torch.as_tensor(list(keep), device=self.buffers.flat["param"].device)
        per_role = {role: [v[index] for v in self.buffers.views(role)] for role in self.roles}
        for p, data in zip(self.buffers.params, per_role["param"], strict=True):
            p.grad = None
            p.data = data
        for role, tensors in per_role.items():
            self.buffers.gather(tensors, role)
        self.buffers.attach()
        self._scratch = None


Optimizer = FlatOptimizer | torch.optim.Optimizer

_ADAM_KEYS = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
_SGD_KEYS = ("lr", "momentum", "dampening", "nesterov", "weight_decay")


def flat_from_recipe(params: Sequence[torch.nn.Parameter], recipe: OptimizerRecipe) -> FlatOptimizer | None:
    """The flat optimizer for the recipe's settings (torch's defaults where it sets
    none), or None when the recipe asks for anything it does not reproduce."""
    if recipe.kind in (torch.optim.Adam, torch.optim.AdamW):
        kind, keys = "adam", _ADAM_KEYS
    elif recipe.kind is torch.optim.SGD:
        kind, keys = "sgd", _SGD_KEYS
    else:
        return None
    signature = inspect.signature(recipe.kind.__init__).parameters
    if not set(recipe.kwargs) <= set(keys) or not set(keys) - {"decoupled_weight_decay"} <= set(signature):
        return None
    if not _one_kind(params):
        return None
    hp = _hp({**{k: p.default for k, p in signature.items()}, **recipe.kwargs}, keys)
    if recipe.kind is torch.optim.AdamW:  # AdamW is Adam with this set, not an argument
        hp["decoupled_weight_decay"] = True
    return FlatOptimizer(params, kind, hp)


def _one_kind(params: Sequence[torch.nn.Parameter]) -> bool:
    """One flat tensor holds them: at least one, all of one dtype on one device."""
    return bool(params) and all(p.dtype == params[0].dtype and p.device == params[0].device for p in params)


def _hp(group: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: group.get(k, False) for k in keys}
    if "lr" in out and torch.is_tensor(out["lr"]):
        out["lr"] = float(out["lr"])
    return out
