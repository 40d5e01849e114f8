"""Each stacked form computes, for every seed, what that seed's own layer computes
(forward in train and eval mode, and every gradient); random layers draw their
own masks per seed at the right rate; a stack drops seeds cleanly; the flat
optimizer takes torch's steps bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from ablate.plugins._networks import BasicBlock, Reshape
from ablate.plugins._norm_layers import ChannelRMSNorm
from ablate.plugins._regularizer_layers import DropPathLayer

from ablate.train.optimizers import (
    FlatOptimizer,
    OptimizerRecipe,
    flat_from_recipe,
    make_optimizer,
    optimizer_recipe,
    pre_step_of,
)
from ablate.train.stacked.forms import SeedStreams
from ablate.train.stacked.layers import StackedConv
from ablate.train.stacked.model import copy_in, copy_out, select_seeds, stack_models, uses_generic

S = 3


def streams(seed: int = 0) -> SeedStreams:
    return SeedStreams([torch.Generator().manual_seed(seed + i) for i in range(S)])


def randomised(layer: nn.Module, seed: int) -> nn.Module:
    """A copy with random parameters and buffers (so every seed's layer differs)."""
    layer = copy.deepcopy(layer)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*layer.parameters(), *(b for b in layer.buffers() if b.is_floating_point())]:
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    return layer


def _norm_slot(slot: str, features: int, dims: int) -> nn.Module:
    return nn.BatchNorm2d(features) if slot == "norm" else nn.Identity()


LAYERS = {
    "linear": (lambda: nn.Linear(6, 5), (7, 6)),
    "linear 3-d": (lambda: nn.Linear(6, 5), (7, 4, 6)),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1), (5, 2, 9)),
    "conv2d stride": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (5, 2, 8, 8)),
    "batchnorm1d": (lambda: nn.BatchNorm1d(4), (9, 4)),
    "batchnorm1d 3-d": (lambda: nn.BatchNorm1d(4), (9, 4, 5)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(3), (6, 3, 4, 4)),
    "layernorm": (lambda: nn.LayerNorm(5), (7, 5)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), (6, 4, 5)),
    "instancenorm2d": (lambda: nn.InstanceNorm2d(3, affine=True), (6, 3, 4, 4)),
    "rmsnorm": (lambda: nn.RMSNorm(5), (7, 5)),
    "channel rmsnorm": (lambda: ChannelRMSNorm(3, 1e-5), (6, 3, 4, 4)),
    "flatten": (lambda: nn.Flatten(), (5, 2, 3, 3)),
    "maxpool": (lambda: nn.MaxPool2d(2), (5, 2, 4, 4)),
    "adaptive avgpool": (lambda: nn.AdaptiveAvgPool1d(1), (5, 2, 6)),
    "reshape": (lambda: Reshape((1, 2, 3)), (5, 6)),
    "basic block": (lambda: BasicBlock(2, 2, 4, 2, "relu", _norm_slot), (4, 2, 6, 6)),
    "sequential": (lambda: nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 2)), (5, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("generic", [False, True])
def test_a_stacked_layer_computes_each_seeds_outputs_and_gradients(name, generic):
    make, shape = LAYERS[name]
    layers = [randomised(make(), seed) for seed in range(S)]
    model, ctx = stack_models(layers, streams(), generic=generic)
    assert uses_generic(model) == generic
    x = torch.randn(S, *shape, generator=torch.Generator().manual_seed(1))
    for training in (True, False):
        model.train(training)
        for layer in layers:
            layer.train(training)
        xs = x.clone().requires_grad_()
        out = model(xs)
        out.backward(torch.ones_like(out) * torch.arange(out.numel()).view(out.shape).sin())
        for s, layer in enumerate(layers):
            xi = x[s].clone().requires_grad_()
            ref = layer(xi)
            ref.backward(torch.ones_like(ref) * torch.arange(out.numel()).view(out.shape)[s].sin())
            torch.testing.assert_close(out[s], ref, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(xs.grad[s], xi.grad, rtol=1e-3, atol=1e-4)
        _same_state(ctx, layers)
        model.zero_grad()


def _same_state(ctx, layers):
    """Every parameter's gradient and every running statistic match each seed's own."""
    for stacked, per_seed in ctx.pairs:
        for s, own in enumerate(per_seed):
            if isinstance(stacked, nn.Parameter) and own.grad is not None:
                # float32 rounding: a per-seed layer is as far from float64 as the stacked one
                torch.testing.assert_close(stacked.grad[s], own.grad, rtol=1e-3, atol=1e-4)
            elif not isinstance(stacked, nn.Parameter) and stacked.is_floating_point():
                torch.testing.assert_close(stacked[s], own, rtol=1e-5, atol=1e-6)
    for layer in layers:
        layer.zero_grad()


def test_grouped_convolution_computes_what_per_seed_convolutions_compute():
    convs = [randomised(nn.Conv2d(2, 4, 3, padding=1), seed) for seed in range(S)]
    model, _ = stack_models(convs, streams())
    assert isinstance(model, StackedConv)
    x = torch.randn(S, 5, 2, 6, 6)
    per_seed = model(x)
    model.grouped = True
    torch.testing.assert_close(model(x), per_seed, rtol=1e-5, atol=1e-5)


RANDOM = {
    "dropout": (lambda: nn.Dropout(0.3), (400, 50), "element"),
    "dropout2d": (lambda: nn.Dropout2d(0.3), (400, 8, 3, 3), "channel"),
    "dropout1d": (lambda: nn.Dropout1d(0.3), (400, 8, 5), "channel"),
    "drop_path": (lambda: DropPathLayer(0.3), (400, 4, 3, 3), "sample"),
}


@pytest.mark.parametrize("name", RANDOM)
def test_random_layers_drop_at_their_rate_with_each_seeds_own_masks(name):
    make, shape, unit = RANDOM[name]
    model, _ = stack_models([make() for _ in range(S)], streams())
    x = torch.ones(S, *shape)
    out = model(x)
    kept = out != 0
    units = kept
    if unit != "element":  # a dropped unit (a channel, a sample) is dropped whole
        start = 3 if unit == "channel" else 2
        units = kept.flatten(start).any(start)
        assert torch.equal(units, kept.flatten(start).all(start))
    rate = 1 - units.float().mean().item()
    assert abs(rate - 0.3) < 0.02, rate
    assert torch.allclose(out[kept], torch.tensor(1 / 0.7))  # kept values are scaled up
    assert not torch.equal(units[0], units[1])  # seeds draw differently
    again, _ = stack_models([make() for _ in range(S)], streams())
    assert torch.equal(again(x), out)  # the same streams draw the same masks
    model.eval()
    assert torch.equal(model(x), x)


def test_alpha_dropout_keeps_zero_mean_and_unit_variance():
    model, _ = stack_models([nn.AlphaDropout(0.2) for _ in range(S)], streams())
    out = model(torch.randn(S, 2000, 50))
    assert abs(out.mean().item()) < 0.02 and abs(out.std().item() - 1) < 0.02


def test_dropping_a_seed_keeps_the_others_weights_buffers_and_optimizer_state():
    layers = [randomised(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), seed) for seed in range(S)]
    model, _ = stack_models(layers, streams())
    for flat in (True, False):
        net = copy.deepcopy(model)
        adam = {"optimizer": "adam", "lr": 0.1}
        optimizer = make_optimizer(net, adam, {})[0] if flat else torch.optim.Adam(net.parameters(), lr=0.1)
        assert isinstance(optimizer, FlatOptimizer) == flat
        net(torch.randn(S, 8, 3)).sum().backward()
        optimizer.step()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        moments = [t.clone() for t in _moments(optimizer, net)]
        select_seeds(net, optimizer, [0, 2])
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[k][[0, 2]]), k
        for m, old in zip(_moments(optimizer, net), moments, strict=True):
            assert torch.equal(m, old[[0, 2]])
        net(torch.randn(2, 8, 3)).sum().backward()  # and it still trains
        optimizer.step()


def _moments(optimizer, net):
    if hasattr(optimizer, "buffers"):
        return optimizer.buffers.views("exp_avg")
    return [optimizer.state[p]["exp_avg"] for p in net.parameters()]


def test_a_seeds_weights_copy_out_to_its_own_model_and_back():
    layers = [randomised(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), seed) for seed in range(S)]
    originals = [copy.deepcopy(layer.state_dict()) for layer in layers]
    model, ctx = stack_models(layers, streams())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    copy_out(ctx, 1, 1)
    assert torch.equal(layers[1][0].weight, originals[1]["0.weight"] + 1)
    assert torch.equal(layers[0][0].weight, originals[0]["0.weight"])  # the others untouched
    with torch.no_grad():
        layers[1][0].weight.zero_()
    copy_in(ctx, 1, 1)
    assert torch.equal(model[0].weight[1], torch.zeros(4, 3))


OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"lr": 0.01}),
    "adam coupled decay": (torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    "adamw": (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    "sgd": (torch.optim.SGD, {"lr": 0.1}),
    "sgd momentum decay": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    "sgd nesterov": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "sgd dampening": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_flat_optimizer_takes_torchs_steps_bit_for_bit(name):
    """Adam, AdamW and SGD as torch's single-tensor path computes them, on parameters
    split over several tensors, in one flat buffer."""
    cls, options = OPTIMIZERS[name]
    torch.manual_seed(0)
    shapes = [(S, 10, 7), (S, 10), (S, 3)]
    reference = [nn.Parameter(torch.randn(shape)) for shape in shapes]
    ours = [nn.Parameter(p.detach().clone()) for p in reference]
    torch_opt = cls(reference, **options, foreach=False)
    flat = flat_from_recipe(ours, OptimizerRecipe(cls, options))
    assert flat is not None
    for _ in range(6):
        grads = [torch.randn(shape) for shape in shapes]
        for p, q, g in zip(reference, ours, grads, strict=True):
            p.grad = g.clone()
            q.grad.copy_(g)
        torch_opt.step()
        flat.step()
        flat.zero_grad()
    for p, q in zip(reference, ours, strict=True):
        assert torch.equal(p, q)


def test_an_optimizer_the_flat_one_cannot_reproduce_is_torchs_own():
    model = nn.Linear(3, 2)
    adam = {"optimizer": "adam", "lr": 0.01}
    assert isinstance(make_optimizer(model, adam, {"amsgrad": True})[0], torch.optim.Adam)
    assert isinstance(make_optimizer(model, adam, {})[0], FlatOptimizer)


RECIPES = [
    ({"optimizer": "adam", "lr": 0.01}, {}),
    ({"optimizer": "adam", "lr": 0.01}, {"weight_decay": 0.1, "betas": (0.8, 0.99)}),
    ({"optimizer": "adam", "lr": 0.01}, {"decoupled_weight_decay": True}),
    ({"optimizer": "adam", "lr": 0.01}, {"decoupled_weight_decay": True, "weight_decay": 0.05, "eps": 1e-6}),
    ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}, {"nesterov": True, "weight_decay": 0.01}),
    ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.0}, {"decoupled_weight_decay": True, "weight_decay": 0.01}),
]


@pytest.mark.parametrize("train, options", RECIPES)
def test_a_run_alone_steps_as_torchs_optimizer_for_its_recipe(train, options):
    """What a recipe asks for, made flat, takes the steps of the torch optimizer the
    recipe names, decoupled SGD decay included."""
    torch.manual_seed(0)
    ours, theirs = nn.Linear(4, 3), nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    flat, flat_pre = make_optimizer(ours, train, options)
    recipe = optimizer_recipe(train, options)
    torch_opt = recipe.kind(list(theirs.parameters()), **recipe.kwargs, foreach=False)
    torch_pre = pre_step_of(list(theirs.parameters()), recipe)
    assert isinstance(flat, FlatOptimizer)
    x = torch.randn(8, 4)
    for _ in range(5):
        for model, opt, pre in ((ours, flat, flat_pre), (theirs, torch_opt, torch_pre)):
            opt.zero_grad()
            model(x).square().sum().backward()
            if pre is not None:
                pre()
            opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_recipe_the_flat_optimizer_cannot_reproduce_makes_none():
    params = list(nn.Linear(4, 3).parameters())
    assert flat_from_recipe(params, optimizer_recipe({"optimizer": "adam", "lr": 0.01}, {"amsgrad": True})) is None
    sgd = {"optimizer": "sgd", "lr": 0.1, "momentum": 0}
    assert flat_from_recipe(params, optimizer_recipe(sgd, {"maximize": True})) is None
