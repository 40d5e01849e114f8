"""``[train] compile = true``: the training forward pass through ``torch.compile``.

Compiling changes where a run executes, not what it computes, so it is not part
of a run's identity: inductor draws random numbers as eager does
(``fallback_random``), and on the digits MLP a compiled run's per-epoch losses
equal eager's within EPOCH_TOLERANCE (tests/train/test_compile.py). A
component whose effect compile would not keep (a layer that acts only when not
compiling, say) is caught on the first batch: its eager and compiled forwards
are compared from the same weights, buffers and random state, and where they
differ by more than the tolerance the run trains eager and its record says why.
Evaluation runs eager; a stack is not compiled (its seeds train alone, compiled).
Each run compiles afresh (``torch.compiler.reset``): dynamo keeps at most 8 graphs
per function and would otherwise run the ninth architecture of a study eager while
its record said compiled (inductor's on-disk cache keeps a repeated graph cheap).
"""

from __future__ import annotations

from typing import Any

import torch

# Largest relative difference (max |compiled - eager| / max |eager|) of the first
# batch's logits, per precision. Measured on the digits MLP with batch norm on a
# CPU: fp32 4e-7, bf16 0, fp16 2e-4; the autocast dtypes round each op (bf16 to
# 8 bits of mantissa), and inductor may fuse some of them in fp32.
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "fp16": 1e-2}
# What "the same numbers" means for a compiled run: each epoch's losses within
# EPOCH_TOLERANCE[precision] (relative) of eager's, accuracies within
# ACCURACY_TOLERANCE (absolute: a sample near a tie may flip). Compiled kernels
# sum in another order (and under autocast keep some intermediates in fp32), and
# training carries the rounding on. Measured on digits on a CPU
# (benchmarks/compile_vs_eager.py): fp32 MLP with dropout, 5 epochs at lr 1e-2,
# 8e-8; with batch norm and dropout, 5 epochs at lr 1e-3, 1.4e-4 (eval-mode
# losses: batch norm's running statistics round differently compiled) and one
# sample classified differently; the CNN, 3 epochs, 3.1e-5; fp16 MLP, 3 epochs,
# 9.1e-4; bf16, 0. Two seeds of the MLP run differ by 1e-2 to 5e-2.
EPOCH_TOLERANCE = {"fp32": 1e-3, "bf16": 1e-2, "fp16": 1e-2}
ACCURACY_TOLERANCE = 5e-3


class TrainingForward:
    """The training forward pass: the model itself, or its compiled form once the
    first batch shows it computes what the model computes. ``status`` is what the
    run record says: "" (not asked), "compiled", or "eager: <why>"."""

    def __init__(self, model: torch.nn.Module, compile: bool = False, tolerance: float = TOLERANCE["fp32"]):
        self.model, self.tolerance = model, tolerance
        if compile:  # each run compiles its own: past dynamo's recompile limit (8 graphs) it would run eager, unsaid
            torch.compiler.reset()
        self.compiled: Any = torch.compile(model, options={"fallback_random": True}) if compile else None
        self.status = "compiled" if compile else ""
        self.checked = not compile

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is None:
            return self.model(x)
        if not self.checked:
            return self._first(x)
        return self.compiled(x)

    def _first(self, x: torch.Tensor) -> torch.Tensor:
        """The first batch: eager (no gradient) and compiled from one state; the
        compiled output where they agree, else the state put back and eager's."""
        self.checked = True
        state = {k: v.clone() for k, v in self.model.state_dict().items()}
        rng = _rng_state(x.device)
        with torch.no_grad():
            expected = self.model(x)
        self._restore(state, rng)
        out, why = self._compare(x, expected)
        if out is not None and why is None:
            return out
        self.status, self.compiled = f"eager: {why}", None
        self._restore(state, rng)
        return self.model(x)

    def _compare(self, x: torch.Tensor, expected: torch.Tensor) -> tuple[torch.Tensor | None, str | None]:
        """The compiled forward of ``x``, and why it cannot stand for eager's (None where it can)."""
        try:
            out: torch.Tensor = self.compiled(x)
        except Exception as exc:  # inductor could not compile it: eager, and say so
            return None, f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]})"
        difference = _relative(out.detach(), expected)
        return out, None if difference <= self.tolerance else _differs(difference, self.tolerance)

    def _restore(self, state: dict[str, torch.Tensor], rng: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                value.copy_(state[key])
        _set_rng_state(rng)


def _differs(difference: float, tolerance: float) -> str:
    return (
        f"the compiled forward differs from eager by {difference:.2g} (relative) on the first batch, "
        f"more than {tolerance:g}: a component's effect would not be kept compiled"
    )


def _relative(out: torch.Tensor, expected: torch.Tensor) -> float:
    scale = float(expected.abs().max()) or 1.0
    return float((out.float() - expected.float()).abs().max()) / scale


def _rng_state(device: torch.device) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def _set_rng_state(states: list[torch.Tensor]) -> None:
    torch.set_rng_state(states[0])
    if len(states) > 1:
        torch.cuda.set_rng_state(states[1])
