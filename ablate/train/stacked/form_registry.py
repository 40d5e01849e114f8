"""Which stacked form each layer or component type has (docs/stacking.md): the
declarations, kept apart from the forms' torch code so that a plugin declares
its forms when it loads, and a study is loaded and checked without torch.

- ``stacked_layer(LayerType)`` registers a function ``form(layers, ctx) ->
  nn.Module`` that turns the S per-seed copies of a layer into one module taking
  (S, N, ...) inputs; ``absent=True`` says it also takes None for a seed whose
  network lacks the layer, and per-seed settings (dropout's rate).
- ``stacked_component(ComponentType)`` registers ``form(instances, ctx) ->
  object`` for a component's per-step hooks that see the whole model.

Lookups use the exact type: a subclass may change ``forward``, so it declares its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ablate.train.stacked.forms import StackContext

LayerForm = Callable[[list[Any], "StackContext"], "nn.Module | None"]
ComponentForm = Callable[[list[Any], "StackContext"], object]

_LAYER_FORMS: dict[type, LayerForm] = {}
_TAKES_ABSENT: set[type] = set()
_COMPONENT_FORMS: dict[type, ComponentForm] = {}


def stacked_layer(*types: type, absent: bool = False) -> Callable[[LayerForm], LayerForm]:
    """Decorator: ``form`` stacks layers of these exact types (with ``absent``,
    also seeds without the layer, given as None, and per-seed settings)."""

    def register(form: LayerForm) -> LayerForm:
        for t in types:
            _LAYER_FORMS[t] = form
            if absent:
                _TAKES_ABSENT.add(t)
            else:
                _TAKES_ABSENT.discard(t)
        return form

    return register


def takes_absent(layer_type: type) -> bool:
    """Whether this layer type's stacked form takes seeds without it (and per-seed settings)."""
    return layer_type in _TAKES_ABSENT


def stacked_component(*types: type) -> Callable[[ComponentForm], ComponentForm]:
    """Decorator: ``form`` gives the stacked per-step hooks of components of these exact types."""

    def register(form: ComponentForm) -> ComponentForm:
        for t in types:
            _COMPONENT_FORMS[t] = form
        return form

    return register


def layer_form(layer_type: type) -> LayerForm | None:
    return _LAYER_FORMS.get(layer_type)


def component_form(component_type: type) -> ComponentForm | None:
    return _COMPONENT_FORMS.get(component_type)
