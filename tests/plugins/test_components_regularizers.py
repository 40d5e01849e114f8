"""The new regularizers do what they claim: penalty values, constraints held at
every step, soft targets with the right mass, per-sample or per-channel drops."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from support import make

from ablate.components import Batch
from ablate.plugin.manager import trial_manager
from ablate.train.optimizers import make_optimizer, set_lr


def test_l1_penalty_is_coef_times_sum_of_absolute_weights_without_biases_or_norms(registry):
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.GroupNorm(1, 3), nn.Flatten(), nn.Linear(12, 2))
    l1 = make(registry, "regularizer", "l1", coef=0.01)
    expected = 0.01 * (model[0].weight.abs().sum() + model[3].weight.abs().sum())
    assert torch.allclose(l1.ablate_loss_penalty(model=model), expected)
    everything = make(registry, "regularizer", "l1", coef=0.01, include_biases=True)
    assert torch.allclose(
        everything.ablate_loss_penalty(model=model), 0.01 * sum(p.abs().sum() for p in model.parameters())
    )


def test_max_norm_holds_the_bound_after_every_step(registry):
    """A huge learning rate pushes the weights far out; every step must end inside."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8, 3))
    rule = make(registry, "regularizer", "max_norm", max_norm=0.5)
    opt, _ = make_optimizer(model, {"optimizer": "sgd", "lr": 5.0, "momentum": 0.9}, {})
    x, y = torch.randn(32, 1, 10), torch.randint(0, 3, (32,))
    norms = []
    for _ in range(10):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        before = model[3].weight.detach().norm(dim=1).max().item()
        rule.ablate_after_step(model=model)
        rows = model[3].weight.norm(dim=1)
        filters = model[0].weight.flatten(1).norm(dim=1)
        assert rows.max() <= 0.5 + 1e-5 and filters.max() <= 0.5 + 1e-5
        norms.append(before)
    assert max(norms) > 0.5  # the constraint had work to do
    # units already inside the bound are left alone
    small = nn.Linear(3, 2)
    with torch.no_grad():
        small.weight.fill_(0.1)
    make(registry, "regularizer", "max_norm", max_norm=0.5).ablate_after_step(model=small)
    assert torch.allclose(small.weight, torch.full((2, 3), 0.1))


def test_label_smoothing_targets_sum_to_one_with_one_minus_eps_plus_eps_over_k_on_the_truth(registry):
    smooth = make(registry, "regularizer", "label_smoothing", eps=0.2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5))
    tpm = trial_manager({"s": smooth})
    tpm.hook.ablate_configure_model(model=model)  # how it learns the class count: 5 outputs
    y = torch.tensor([0, 3, 4, 3])
    batch = Batch(torch.randn(4, 4), y.clone(), torch.Generator().manual_seed(0))
    tpm.hook.ablate_transform_batch(batch=batch)
    assert batch.y.shape == (4, 5)
    assert torch.allclose(batch.y.sum(1), torch.ones(4))
    assert torch.allclose(batch.y[torch.arange(4), y], torch.full((4,), 0.8 + 0.2 / 5))
    assert torch.allclose(batch.y[0, 1:], torch.full((4,), 0.2 / 5))
    # a fixed class count works without the model
    fixed = make(registry, "regularizer", "label_smoothing", eps=0.1, classes=3)
    b2 = Batch(torch.randn(2, 4), torch.tensor([2, 0]), torch.Generator())
    fixed.ablate_transform_batch(batch=b2)
    assert torch.allclose(b2.y[0], torch.tensor([0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]))


@pytest.mark.parametrize("dims,cls", [(0, nn.Dropout), (1, nn.Dropout1d), (2, nn.Dropout2d)])
def test_dropout2d_drops_whole_channels_after_convolutions(registry, dims, cls):
    layer = make(registry, "regularizer", "dropout2d", rate=0.5).ablate_make_layer(
        slot="dropout", features=64, dims=dims
    )
    assert type(layer) is cls
    if dims == 2:
        out = layer(torch.ones(4, 64, 5, 5)).flatten(2)
        per_channel = (out == 0).all(-1) | (out != 0).all(-1)
        assert per_channel.all() and 0.3 < (out[..., 0] == 0).float().mean() < 0.7
        layer.eval()
        assert torch.equal(layer(torch.ones(2, 64, 5, 5)), torch.ones(2, 64, 5, 5))


def test_alpha_dropout_keeps_mean_and_variance_and_is_off_in_eval(registry):
    torch.manual_seed(0)
    layer = make(registry, "regularizer", "alpha_dropout", rate=0.3).ablate_make_layer(
        slot="dropout", features=10, dims=0
    )
    x = torch.randn(20000, 10)
    y = layer(x)
    assert (y != x).float().mean() > 0.25  # it does drop
    assert y.mean().abs() < 0.05 and (y.std() - 1).abs() < 0.05  # self-normalising
    layer.eval()
    assert torch.equal(layer(x), x)


def test_drop_path_drops_whole_samples_of_the_branch_and_only_in_the_drop_path_slot(registry):
    comp = make(registry, "regularizer", "drop_path", rate=0.5)
    assert comp.ablate_make_layer(slot="dropout", features=8, dims=2) is None
    layer = comp.ablate_make_layer(slot="drop_path", features=8, dims=2)
    torch.manual_seed(0)
    out = layer(torch.ones(200, 8, 3, 3)).flatten(1)
    dropped = (out == 0).all(1)
    assert ((out == 0).all(1) | (out == 2.0).all(1)).all()  # per sample, kept ones scaled by 1/(1-p)
    assert 0.35 < dropped.float().mean() < 0.65
    layer.eval()
    assert torch.equal(layer(torch.ones(3, 8, 3, 3)), torch.ones(3, 8, 3, 3))


def _one_adam_step(registry, component):
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    tpm = trial_manager({"c": component})
    options = {}
    for o in tpm.hook.ablate_optimizer_options(model=model):
        options.update(o or {})
    opt, pre = make_optimizer(model, {"optimizer": "adam", "lr": 0.1, "momentum": 0.9}, options)
    loss = nn.functional.cross_entropy(model(x), y)
    for p in tpm.hook.ablate_loss_penalty(model=model):
        loss = loss + p
    loss.backward()
    assert pre is None  # under Adam the optimizer itself applies (decoupled) decay
    opt.step()
    return model.weight.detach().clone(), opt


def test_dropout_drops_in_training_and_is_off_in_eval(registry):
    layer = make(registry, "regularizer", "dropout", rate=0.5).ablate_make_layer(slot="dropout", features=100, dims=0)
    x = torch.ones(10, 100)
    layer.train()
    zeros = (layer(x) == 0).float().mean().item()
    assert 0.4 < zeros < 0.6
    layer.eval()
    assert torch.equal(layer(x), x)


def test_l2_penalty_is_coef_times_sum_of_squared_weights_without_biases_or_norms(registry):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    l2 = make(registry, "regularizer", "l2", coef=0.01)
    expected = 0.01 * (model[0].weight.pow(2).sum() + model[2].weight.pow(2).sum())
    assert torch.allclose(l2.ablate_loss_penalty(model=model), expected)
    with_biases = make(registry, "regularizer", "l2", coef=0.01, include_biases=True)
    everything = 0.01 * sum(p.pow(2).sum() for p in model.parameters())
    assert torch.allclose(with_biases.ablate_loss_penalty(model=model), everything)


def test_coupled_l2_and_decoupled_weight_decay_differ_under_adam(registry):
    coupled, opt_c = _one_adam_step(registry, make(registry, "regularizer", "l2", coef=0.05))
    decoupled, opt_d = _one_adam_step(registry, make(registry, "regularizer", "weight_decay", decay=0.1))
    assert opt_d.hp["decoupled_weight_decay"] and opt_d.hp["weight_decay"] == 0.1  # AdamW's decay
    assert not opt_c.hp["decoupled_weight_decay"] and opt_c.hp["weight_decay"] == 0  # L2 is in the loss
    assert not torch.allclose(coupled, decoupled, atol=1e-4)


def test_decoupled_weight_decay_under_sgd_shrinks_weights_outside_the_gradient(registry):
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt, pre = make_optimizer(
        model, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0}, {"weight_decay": 0.5, "decoupled_weight_decay": True}
    )
    model.weight.grad.zero_()
    assert pre is None  # the flat SGD shrinks the weights itself, by the learning rate of the step
    opt.step()
    assert torch.allclose(model.weight, torch.full((2, 2), 1 - 0.1 * 0.5))
    set_lr(opt, 0.2)
    opt.step()
    assert torch.allclose(model.weight, torch.full((2, 2), (1 - 0.1 * 0.5) * (1 - 0.2 * 0.5)))
