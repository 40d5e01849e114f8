"""How each trial hook runs in a stack, and whether an arm's components allow one.

- Called while a seed's model is built (``build_run``, once per seed):
  ``ablate_make_layer`` (its layers are then stacked), ``ablate_optimizer_options``
  and the other build-time hooks. Nothing to stack.
- Called per seed with that seed's own instance, exactly as its unstacked run
  calls it: ``ablate_transform_batch`` (the seed's slice of the batch and its
  generator), ``ablate_epoch_end`` and ``ablate_train_end`` (the seed's own
  model, holding its weights copied out of the stack), ``ablate_learning_rate``
  (the seed's own learning rate of each step, per seat in the flat optimizer).
- Called once per step with the stacked model: ``ablate_loss_penalty`` and
  ``ablate_after_step``, through the component's stacked form
  (``ablate.train.stacked.forms.stacked_component``). An after-step hook without one
  runs per seed on weights copied out and back (exact, slower); a loss penalty
  without one keeps its arm unstacked.
- Any other hook keeps the arm unstacked: ablate does not know how it stacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
import torch

from ablate.train.stacked.forms import StackContext, component_form

BUILD_HOOKS = frozenset(
    {"ablate_make_layer", "ablate_optimizer_options", "ablate_configure_model", "ablate_check_data"}
)
PER_SEED_HOOKS = frozenset({"ablate_transform_batch", "ablate_epoch_end", "ablate_train_end", "ablate_learning_rate"})
STEP_HOOKS = ("ablate_loss_penalty", "ablate_before_step", "ablate_after_step")
NEEDS_FORM = {"ablate_loss_penalty": "a loss penalty", "ablate_before_step": "a before-step hook (on gradients)"}
GUIDE = "see docs/stacking.md"


def implemented_hooks(hooks: pluggy.HookRelay) -> dict[str, list[Any]]:
    """Component name ("kind:name") -> the trial hooks it implements, in call order."""
    found: dict[str, list[Any]] = {}
    for hook_name, caller in vars(hooks).items():
        if not hook_name.startswith("ablate_"):
            continue
        for impl in reversed(caller.get_hookimpls()):
            found.setdefault(impl.plugin_name, []).append(hook_name)
    return found


def component_problem(hooks: pluggy.HookRelay) -> str | None:
    """Why this run's components cannot train stacked, or None."""
    instances = {
        impl.plugin_name: impl.plugin
        for caller in vars(hooks).values()
        if hasattr(caller, "get_hookimpls")
        for impl in caller.get_hookimpls()
    }
    for name, hook_names in implemented_hooks(hooks).items():
        form = component_form(type(instances[name]))
        for hook in hook_names:
            if hook in BUILD_HOOKS or hook in PER_SEED_HOOKS:
                continue
            if hook == "ablate_after_step" or (hook in NEEDS_FORM and form is not None):
                continue
            what = NEEDS_FORM.get(hook, f"the hook {hook}")
            return f"{_label(name)} implements {what} with no stacked form ({GUIDE})"
    return None


def _label(plugin_name: str) -> str:
    kind, _, name = plugin_name.partition(":")
    return f"{kind} {name!r}"


@dataclass
class StepHook:
    """One component's per-step hook in a stack: its stacked form, or ``None`` to run per seed."""

    name: str
    hook: str
    stacked: Callable[..., Any] | None
    per_seed: list[Callable[..., Any]] = field(default_factory=list)  # by seed index in the group


def step_hooks(hook_relays: Sequence[pluggy.HookRelay], ctx: StackContext, hook: str) -> list[StepHook]:
    """The components' ``hook`` for a stack, in call order, with stacked forms where declared."""
    out: list[StepHook] = []
    for impl in reversed(getattr(hook_relays[0], hook).get_hookimpls()):
        per_seed = [_impl_of(relay, hook, impl.plugin_name) for relay in hook_relays]
        form = component_form(type(impl.plugin))
        stacked_hooks = form([i.plugin for i in per_seed], ctx) if form is not None else None
        stacked = getattr(stacked_hooks, hook, None)
        out.append(StepHook(impl.plugin_name, hook, stacked, [i.function for i in per_seed]))
    return out


def _impl_of(relay: pluggy.HookRelay, hook: str, plugin_name: str) -> Any:
    for impl in getattr(relay, hook).get_hookimpls():
        if impl.plugin_name == plugin_name:
            return impl
    raise LookupError(f"{plugin_name} has no {hook}")


def total_penalty(penalties: Sequence[StepHook], model: torch.nn.Module) -> torch.Tensor | None:
    """The sum over seeds of every component's loss penalty, added in call order."""
    total: torch.Tensor | None = None
    for p in penalties:
        assert p.stacked is not None
        value = p.stacked(model=model)
        if value is not None:
            total = value if total is None else total + value
    return total
