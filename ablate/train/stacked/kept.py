"""Changes a component may make to a seed's model in ``ablate_configure_model``
that a stacked model would not keep: hooks on tensors and modules, a replaced
``forward``, a compiled module. The stack is built from the seeds' layers and
weights, not from their module objects, so such a change would be silently
dropped; an arm whose models carry one trains its seeds alone instead."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as torch_module

MODULE_HOOKS = {
    "_forward_hooks": "a forward hook",
    "_forward_pre_hooks": "a forward pre-hook",
    "_backward_hooks": "a backward hook",
    "_backward_pre_hooks": "a backward pre-hook",
}
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")


def dropped_change(model: nn.Module) -> str | None:
    """What a stack of this model would drop, in words, or None."""
    for name, param in model.named_parameters():
        if param._backward_hooks or getattr(param, "_post_accumulate_grad_hooks", None):
            return f"a gradient hook on parameter {name!r} (Tensor.register_hook)"
    for name, module in model.named_modules():
        where = f"module {name!r}" if name else "the model"
        for attr, what in MODULE_HOOKS.items():
            if getattr(module, attr, None):
                return f"{what} on {where}"
        if "forward" in vars(module):
            return f"a replaced forward on {where}"
        if getattr(module, "_compiled_call_impl", None) is not None or type(module).__name__ == "OptimizedModule":
            return f"{where} is compiled"
    for attr in GLOBAL_HOOKS:
        if getattr(torch_module, attr, None):
            return "a global module hook (torch.nn.modules.module.register_module_*_hook)"
    return None


def change_problem(models: list[nn.Module]) -> str | None:
    """Why these seeds' models cannot be stacked as they are, or None."""
    for model in models:
        change = dropped_change(model)
        if change is not None:
            return f"a component's ablate_configure_model added {change}, which a stacked model would not keep"
    return None
