"""Helpers shared by the standard plugins (not a plugin itself: no entry point).

Soft targets need the number of classes, which a training batch does not
carry. ``SoftTargets`` takes it from a ``classes`` parameter or, when that is
0, from the model's output: it keeps the model it is shown once before
training (``ablate_configure_model``) and runs one sample through it in eval
mode at the first batch. That works for any model
whose output is (n, classes), third-party ones included.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ablate import hookimpl

if TYPE_CHECKING:  # torch is imported where it is used: the plugins load without it
    import torch


class SoftTargets:
    """Mixin: ``soft_targets(batch)`` is ``batch.y`` as (n, classes) float probabilities."""

    classes: int = 0
    _model: torch.nn.Module | None = None

    @hookimpl
    def ablate_configure_model(self, model: torch.nn.Module) -> None:
        self._model = model  # only to count its outputs; the model is left as it is

    def num_classes(self, batch) -> int:
        if batch.y.dtype.is_floating_point:
            return batch.y.shape[1]
        if not self.classes:
            if self._model is None:
                raise ValueError(
                    f"{type(self).__name__}: cannot tell the number of classes; set its 'classes' parameter"
                )
            import torch

            was = self._model.training
            self._model.eval()
            with torch.no_grad():
                self.classes = int(self._model(batch.x[:1]).shape[1])
            self._model.train(was)
        return self.classes

    def soft_targets(self, batch) -> torch.Tensor:
        import torch

        k = self.num_classes(batch)
        if batch.y.dtype.is_floating_point:
            return batch.y
        if int(batch.y.max()) >= k:
            raise ValueError(f"{type(self).__name__}: label {int(batch.y.max())} but only {k} classes")
        return torch.nn.functional.one_hot(batch.y, k).to(batch.x.dtype)


def draw_seed(generator: torch.Generator) -> int:
    import torch

    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())


@contextlib.contextmanager
def global_rng_from(generator: torch.Generator):
    """Run code that draws from torch's global CPU RNG (torchvision v2 transforms,
    Beta sampling) with a seed drawn from the run's generator, leaving the global
    RNG as it was: augmentation is reproducible from the run's seed alone."""
    import torch

    seed = draw_seed(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
