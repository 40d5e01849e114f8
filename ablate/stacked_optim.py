"""The stack's optimizer: Adam, AdamW and SGD computed exactly as torch's
single-tensor path computes them, on every parameter of the stack held in one
flat buffer (parameters, gradients and moments are views into flat tensors).

Each element gets the same operations with the same constants as in torch's
per-parameter loop, so a seed's weights stay bit-for-bit those of its unstacked
run, but a step is a handful of operations on one tensor instead of several per
parameter. Anything this does not reproduce (amsgrad, maximize, a fused or
capturable optimizer, another optimizer class) keeps torch's own optimizer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from ablate.build import OptimizerRecipe, PreStep, optimizer_recipe, pre_step_of, trainable


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


_ADAM_KEYS = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
_SGD_KEYS = ("lr", "momentum", "dampening", "nesterov", "weight_decay")


def stack_optimizer(
    model: torch.nn.Module, train: dict[str, Any], options: dict[str, Any]
) -> tuple[FlatOptimizer | torch.optim.Optimizer, PreStep | None]:
    """The stack's optimizer: the flat one straight from the recipe where it can,
    else torch's own (converted to flat where that is possible)."""
    recipe, params = optimizer_recipe(train, options), trainable(model)
    optimizer: FlatOptimizer | torch.optim.Optimizer | None = flat_from_recipe(params, recipe)
    if optimizer is None:
        made = recipe.kind(params, **recipe.kwargs)
        optimizer = flat_optimizer(made) or made
    return optimizer, pre_step_of(params, recipe)


def flat_from_recipe(params: Sequence[torch.nn.Parameter], recipe: OptimizerRecipe) -> FlatOptimizer | None:
    """What ``flat_optimizer`` would make of the recipe's torch optimizer, without
    making that (torch's first optimizer imports torch._dynamo: seconds per worker),
    or None when the recipe asks for anything else. Defaults are torch's own."""
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


def flat_optimizer(optimizer: torch.optim.Optimizer) -> FlatOptimizer | None:
    """The flat equivalent of a freshly made torch optimizer, or None when it has none."""
    if len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    params = group["params"]
    plain = not any(group.get(k) for k in ("maximize", "capturable", "differentiable", "fused", "foreach"))
    if not plain or not _one_kind(params):
        return None
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW) and not group["amsgrad"]:
        return FlatOptimizer(params, "adam", _hp(group, _ADAM_KEYS))
    if type(optimizer) is torch.optim.SGD:
        return FlatOptimizer(params, "sgd", _hp(group, _SGD_KEYS))
    return None


def _one_kind(params: Sequence[torch.nn.Parameter]) -> bool:
    """One flat tensor holds them: at least one, all of one dtype on one device."""
    return bool(params) and all(p.dtype == params[0].dtype and p.device == params[0].device for p in params)


def _hp(group: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: group.get(k, False) for k in keys}
    if "lr" in out and torch.is_tensor(out["lr"]):
        out["lr"] = float(out["lr"])
    return out
