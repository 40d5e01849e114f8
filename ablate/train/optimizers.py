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
    """Which torch optimizer a run makes and with what keyword arguments;
    ``decoupled`` is SGD's decoupled weight decay (per unit learning rate: each
    step shrinks the weights by lr * decoupled before it), or 0."""

    kind: type[torch.optim.Optimizer]
    kwargs: dict[str, Any]
    decoupled: float = 0.0


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
    return OptimizerRecipe(torch.optim.SGD, {"lr": lr, "momentum": train["momentum"], **options}, wd)


def component_recipe(component: Any, lr: float, options: dict[str, Any]) -> OptimizerRecipe:
    """The recipe of an optimizer component (ablate.OptimizerComponent with a
    ``torch_class``) at learning rate ``lr``, merged with the components' optimizer
    options; an option it does not take, or weight decay set twice, is an error."""
    options = dict(options)
    name = type(component).__name__
    extra = sorted(set(options) - set(component.accepts))
    if extra:
        takes = ", ".join(component.accepts) or "none"
        raise ValueError(f"optimizer {name} takes no option {extra[0]!r} (from a component); it takes: {takes}")
    settings = dict(component.settings())
    decoupled = options.pop("decoupled_weight_decay", False)
    if "weight_decay" in options and settings.get("weight_decay", 0.0) != 0:
        raise ValueError(f"weight decay is set twice: by optimizer {name} and by a component")
    kind = getattr(torch.optim, component.torch_class)
    if decoupled and kind is torch.optim.Adam:
        return OptimizerRecipe(torch.optim.AdamW, {"lr": lr, **settings, **options})
    if decoupled and kind is torch.optim.SGD:
        return OptimizerRecipe(kind, {"lr": lr, **settings}, options.get("weight_decay", 0.0))
    return OptimizerRecipe(kind, {"lr": lr, **settings, **options})


def make_component_optimizer(
    model: torch.nn.Module, component: Any, lr: float, options: dict[str, Any]
) -> tuple[Optimizer, PreStep | None]:
    """The optimizer of an optimizer component: the flat one for ablate's own
    (``torch_class`` set), else the component's ``make``."""
    params = trainable(model)
    if not component.torch_class:
        if options:
            raise ValueError(
                f"optimizer {type(component).__name__} takes no options from components: {sorted(options)}"
            )
        return component.make(params, lr), None
    return _made(params, component_recipe(component, lr, options))


def recipe_of(train: dict[str, Any], component: Any, options: dict[str, Any]) -> OptimizerRecipe | None:
    """The recipe a run's optimizer is made from ([train] shorthand or an optimizer
    component); None for a component that makes its own (``make``)."""
    if component is None:
        return optimizer_recipe(train, options)
    if not component.torch_class:
        return None
    return component_recipe(component, float(train["lr"]), options)


def _made(params: list[torch.nn.Parameter], recipe: OptimizerRecipe) -> tuple[Optimizer, PreStep | None]:
    """The flat optimizer (which applies SGD's decoupled decay itself), else
    torch's own with the decay as a pre-step by the learning rate of the step."""
    flat = flat_from_recipe(params, recipe)
    if flat is not None:
        return flat, None
    optimizer = recipe.kind(params, **recipe.kwargs)
    if not recipe.decoupled:
        return optimizer, None
    wd = recipe.decoupled
    return optimizer, _shrinker(params, lambda: current_lr(optimizer) * wd)


def current_lr(optimizer: Optimizer) -> float:
    if isinstance(optimizer, FlatOptimizer):
        if optimizer.seed_lrs is not None:
            raise ValueError("one learning rate asked of a stack with one per seed")
        return float(optimizer.hp["lr"])
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: Optimizer, lr: float | Sequence[float]) -> None:
    """The learning rate of the next step (a schedule's); a sequence gives each
    seed of a stack its own (the flat optimizer only)."""
    if isinstance(optimizer, FlatOptimizer):
        optimizer.set_lr(lr)
        return
    if not isinstance(lr, (int, float)):
        raise TypeError("only the flat optimizer takes a learning rate per seed")
    for group in optimizer.param_groups:
        group["lr"] = lr


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def pre_step_of(params: list[torch.nn.Parameter], recipe: OptimizerRecipe) -> PreStep | None:
    """SGD's decoupled decay at the recipe's learning rate, for torch's own SGD (a reference)."""
    return _shrinker(params, recipe.kwargs["lr"] * recipe.decoupled) if recipe.decoupled else None


def make_optimizer(
    model: torch.nn.Module, train: dict[str, Any], options: dict[str, Any]
) -> tuple[Optimizer, PreStep | None]:
    """The optimizer (flat where it can be: one run's, or a stack's) plus a pre-step
    action (decoupled weight decay for SGD), or None. Making torch's own optimizer
    the first time imports torch._dynamo (seconds per process); the flat one does not."""
    return _made(trainable(model), optimizer_recipe(train, options))


def _shrinker(params: list[torch.nn.Parameter], factor: float | Callable[[], float]) -> PreStep:
    @torch.no_grad()
    def shrink() -> None:  # SGDW: shrink weights by lr * wd, outside the gradient
        f = factor() if callable(factor) else factor
        for p in params:
            if p.grad is not None:
                p.mul_(1 - f)

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
    """Adam (coupled or decoupled weight decay), SGD (momentum, dampening,
    nesterov, coupled or decoupled weight decay) or RMSprop on flat buffers; see
    the module docstring. Over a stack's parameters (each with a leading seed
    dimension) it holds SEAT_VALUES per seat where the seeds' runs differ in them
    (``set_lr``, ``set_seat_values``): each element then gets its seed's number."""

    def __init__(self, params: Sequence[torch.nn.Parameter], kind: str, hp: dict[str, Any]):
        self.kind, self.hp, self.steps = kind, hp, 0
        self.fixed = seat_values(kind, hp)  # the run's SEAT_VALUES: only its lr changes (set_lr)
        self.buffers = FlatBuffers(params)
        self.state: dict[Any, Any] = {}  # torch's optimizers keep per-parameter state here; this keeps none
        roles = {
            "adam": ("exp_avg", "exp_avg_sq"),
            "sgd": ("momentum",),
            "rmsprop": ("square_avg", "momentum", "grad_avg"),
        }[kind]
        self.buffers.gather(params, "param")
        self.buffers.gather([torch.zeros_like(p) for p in params], "grad")
        for role in roles:
            self.buffers.gather([torch.zeros_like(p) for p in params], role)
        self.roles = ("param", "grad", *roles)
        self.buffers.attach()
        self._scratch: torch.Tensor | None = None  # Adam's denominator, kept between steps
        self.seat: dict[str, list[float]] = {}  # SEAT_VALUES that differ between a stack's seeds, by seed
        self._elements: dict[str, torch.Tensor] = {}  # those, per element (the fixed ones, made once)
        self._memo: dict[tuple[float, ...], torch.Tensor] = {}  # per-element tensors by their seeds' values

    @property
    def seed_lrs(self) -> list[float] | None:
        """A stack's learning rate per seed, when they differ (else None)."""
        return self.seat.get("lr")

    def set_lr(self, lr: float | Sequence[float]) -> None:
        """One learning rate, or one per seed of a stack (each parameter's leading
        dimension): then every element gets its seed's, as a tensor."""
        if isinstance(lr, (int, float)):
            self.hp["lr"] = lr
            self.seat.pop("lr", None)
            return
        self.set_seat_values("lr", lr)
        self.hp["lr"] = self.seat["lr"][0]

    def set_seat_values(self, name: str, values: Sequence[float]) -> None:
        """One value of ``name`` (a key of SEAT_VALUES) per seed of a stack, as
        ``seat_values`` reads them from each seed's own settings."""
        if name not in SEAT_VALUES[self.kind]:
            raise ValueError(f"the flat {self.kind} holds no {name!r} per seed (it holds: {SEAT_VALUES[self.kind]})")
        seeds = {p.shape[0] if p.dim() else 0 for p in self.buffers.params}
        if seeds != {len(values)}:
            raise ValueError(
                f"{len(values)} values of {name} for parameters whose leading dimensions are {sorted(seeds)}"
            )
        self.seat[name] = [float(v) for v in values]
        self._elements.pop(name, None)

    def set_decoupled_decays(self, decays: Sequence[float]) -> None:
        """A decoupled weight decay per seed of a stack (0: none)."""
        self.set_seat_values("decoupled", decays)

    def _value(self, name: str) -> float | torch.Tensor:
        """A SEAT_VALUES value for the step: a number, or each element's seed's."""
        if name not in self.seat:
            return float(self.hp["lr"]) if name == "lr" else self.fixed[name]
        if name == "lr":
            return self._per_element(self.seat["lr"])
        if name not in self._elements:
            self._elements[name] = self._per_element(self.seat[name])
        return self._elements[name]

    def _decay_factor(self) -> float | torch.Tensor:
        """1 - lr * decay, the decoupled decay's factor (computed in double, as
        torch's scalar arguments are, then rounded once): per element where seeds differ."""
        if "decoupled" not in self.seat:
            decay = self.fixed["decoupled"]
            return self._of_lr(lambda lr: 1 - lr * decay)
        lrs = self.seat.get("lr") or [self.hp["lr"]] * len(self.seat["decoupled"])
        return self._per_element([1 - lr * d for lr, d in zip(lrs, self.seat["decoupled"], strict=True)])

    def _per_element(self, values: Sequence[float]) -> torch.Tensor:
        """Each element's seed's value (each a double, rounded once to the buffers' dtype);
        the last few kept (a constant learning rate needs no new tensor each step)."""
        key = tuple(values)
        if key not in self._memo:
            if len(self._memo) >= 3:  # a schedule's values change every step; each is a copy of the weights' size
                self._memo.clear()
            self._memo[key] = self._spread(key)
        return self._memo[key]

    def _spread(self, values: Sequence[float]) -> torch.Tensor:
        """A flat tensor holding, in each parameter's block (seed-major: the leading
        dimension), each seed's value over its slice: a broadcast copy per parameter."""
        flat = self.buffers.flat["param"]
        seeds = torch.tensor(list(values), dtype=flat.dtype, device=flat.device).view(-1, 1)
        out, offset = torch.empty_like(flat), 0
        for p in self.buffers.params:
            block = out[offset : offset + p.numel()].view(len(seeds), -1)
            block.copy_(seeds.expand_as(block))
            offset += p.numel()
        return out

    def _of_lr(self, scalar: Callable[[float], float]) -> float | torch.Tensor:
        """``scalar(lr)`` for the step: a number, or with a learning rate per seed,
        each element's seed's value (each computed in double, as torch's scalar
        arguments are, then rounded once: the run alone's number)."""
        if "lr" not in self.seat:
            return scalar(self.hp["lr"])
        return self._per_element([scalar(v) for v in self.seat["lr"]])

    def _decayed(self, param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Weight decay, as torch applies it: decoupled, the weights shrunk by
        lr * decay; coupled, decay * weights added to the gradient (returned)."""
        if any(self.seat.get("decoupled", [self.fixed["decoupled"]])):
            param.mul_(self._decay_factor())
        coupled = self._value("weight_decay")
        return _plus(grad, param, coupled) if _nonzero(coupled) else grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient (gradients stay views; backward adds into them in place)."""
        self.buffers.flat["grad"].zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.kind == "adam":
            self._adam()
        elif self.kind == "rmsprop":
            self._rmsprop()
        else:
            self._sgd()

    def _adam(self) -> None:
        hp, flat = self.hp, self.buffers.flat
        param, exp_avg, exp_avg_sq = flat["param"], flat["exp_avg"], flat["exp_avg_sq"]
        (beta1, beta2) = hp["betas"]
        grad = self._decayed(param, flat["grad"])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self._of_lr(lambda lr: -lr / bias_correction1)
        if self._scratch is None:
            self._scratch = torch.empty_like(exp_avg_sq)  # the same operations, in place: no allocation a step
        denom = torch.sqrt(exp_avg_sq, out=self._scratch).div_(bias_correction2**0.5).add_(hp["eps"])
        _addcdiv(param, exp_avg, denom, step_size)

    def _sgd(self) -> None:
        """torch's single-tensor SGD (SGDW's decoupled decay first, where set); a
        seed whose momentum is 0 in a stack with momentum gets exactly no momentum
        (its buffer is its gradient: SEAT_VALUES needs dampening 0 there)."""
        hp, flat = self.hp, self.buffers.flat
        param = flat["param"]
        grad = self._decayed(param, flat["grad"])
        momentum = self._value("momentum")
        if _nonzero(momentum):
            buf = flat["momentum"]
            if self.steps == 1:
                buf.copy_(grad)
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - hp["dampening"])
            grad = _plus(grad, buf, momentum) if hp["nesterov"] else buf
        _add(param, grad, self._of_lr(lambda lr: -lr))

    def _rmsprop(self) -> None:
        """torch's single-tensor RMSprop, operation for operation."""
        hp, flat = self.hp, self.buffers.flat
        param, square_avg = flat["param"], flat["square_avg"]
        alpha = hp["alpha"]
        grad = self._decayed(param, flat["grad"])
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if hp["centered"]:
            grad_avg = flat["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(hp["eps"])
        if hp["momentum"] > 0:
            buf = flat["momentum"]
            buf.mul_(hp["momentum"]).addcdiv_(grad, avg)
            _add(param, buf, self._of_lr(lambda lr: -lr))
        else:
            _addcdiv(param, grad, avg, self._of_lr(lambda lr: -lr))

    @torch.no_grad()
    def select(self, keep: Sequence[int]) -> None:
        """Keep the seeds at these stack positions in every flat tensor (and their values)."""
        index = torch.as_tensor(list(keep), device=self.buffers.flat["param"].device)
        per_role = {role: [v[index] for v in self.buffers.views(role)] for role in self.roles}
        for p, data in zip(self.buffers.params, per_role["param"], strict=True):
            p.grad = None
            p.data = data
        for role, tensors in per_role.items():
            self.buffers.gather(tensors, role)
        self.buffers.attach()
        self.seat = {name: [values[i] for i in keep] for name, values in self.seat.items()}
        self._scratch, self._elements, self._memo = None, {}, {}


# What the flat optimizer holds per seat of a stack, by rule: the learning rate,
# the coupled ("weight_decay") and decoupled decays, SGD's momentum.
SEAT_VALUES = {
    "adam": ("lr", "weight_decay", "decoupled"),
    "sgd": ("lr", "weight_decay", "decoupled", "momentum"),
    "rmsprop": ("lr", "weight_decay"),
}


def seat_values(kind: str, hp: dict[str, Any]) -> dict[str, float]:
    """A run's SEAT_VALUES from its flat optimizer's settings (0: none)."""
    decoupled = bool(hp.get("decoupled_weight_decay", False))
    values = {
        "lr": float(hp["lr"]),
        "weight_decay": 0.0 if decoupled else float(hp["weight_decay"]),
        "decoupled": float(hp["weight_decay"]) if decoupled else 0.0,
    }
    if kind == "sgd":
        values["momentum"] = float(hp["momentum"])
    return values


def _nonzero(value: float | torch.Tensor) -> bool:
    """Whether a step applies the value (a per-seed tensor always: some seed's is not 0)."""
    return torch.is_tensor(value) or value != 0


def _plus(t: torch.Tensor, other: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """t + scale * other, a new tensor, the scale a number or one per element."""
    if torch.is_tensor(scale):
        return torch.addcmul(t, other, scale)
    return t.add(other, alpha=scale)


def _add(param: torch.Tensor, t: torch.Tensor, scale: float | torch.Tensor) -> None:
    """param += scale * t, the scale a number or one per element (per-seed lrs)."""
    if torch.is_tensor(scale):
        param.addcmul_(t, scale)  # rounds as add_(alpha=) does (t * scale, then add, does not)
    else:
        param.add_(t, alpha=scale)


def _addcdiv(param: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, scale: float | torch.Tensor) -> None:
    """param += scale * t1 / t2 in addcdiv's order ((scale * t1) / t2), the scale a number or per element."""
    if torch.is_tensor(scale):
        param.add_(t1.mul(scale).div_(t2))
    else:
        param.addcdiv_(t1, t2, value=scale)


Optimizer = FlatOptimizer | torch.optim.Optimizer

_ADAM_KEYS: tuple[str, ...] = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
_SGD_KEYS = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
_RMSPROP_KEYS = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")


def flat_from_recipe(params: Sequence[torch.nn.Parameter], recipe: OptimizerRecipe) -> FlatOptimizer | None:
    """The flat optimizer for the recipe's settings (torch's defaults where it sets
    none), or None when the recipe asks for anything it does not reproduce."""
    settings = flat_settings(recipe)
    if settings is None or not _one_kind(params):
        return None
    return FlatOptimizer(params, *settings)


def flat_settings(recipe: OptimizerRecipe) -> tuple[str, dict[str, Any]] | None:
    """The flat optimizer's rule and settings for a recipe, or None when it does
    not reproduce what the recipe asks for (known before any parameter exists)."""
    if recipe.kind in (torch.optim.Adam, torch.optim.AdamW):
        kind, keys = "adam", _ADAM_KEYS
    elif recipe.kind is torch.optim.SGD:
        kind, keys = "sgd", _SGD_KEYS
    elif recipe.kind is torch.optim.RMSprop:
        kind, keys = "rmsprop", _RMSPROP_KEYS
    else:
        return None
    signature = inspect.signature(recipe.kind.__init__).parameters
    if not set(recipe.kwargs) <= set(keys) or not set(keys) - {"decoupled_weight_decay"} <= set(signature):
        return None
    hp = _hp({**{k: p.default for k, p in signature.items()}, **recipe.kwargs}, keys)
    if recipe.kind is torch.optim.AdamW:  # AdamW is Adam with this set, not an argument
        hp["decoupled_weight_decay"] = True
    if recipe.decoupled:  # SGDW: SGD's decoupled decay (never set with its coupled one)
        if kind != "sgd" or hp["weight_decay"]:
            return None
        hp.update(weight_decay=recipe.decoupled, decoupled_weight_decay=True)
    return kind, hp


def _one_kind(params: Sequence[torch.nn.Parameter]) -> bool:
    """One flat tensor holds them: at least one, all of one dtype on one device."""
    return bool(params) and all(p.dtype == params[0].dtype and p.device == params[0].device for p in params)


def _hp(group: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: group.get(k, False) for k in keys}
    if "lr" in out and torch.is_tensor(out["lr"]):
        out["lr"] = float(out["lr"])
    return out
