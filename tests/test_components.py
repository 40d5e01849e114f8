"""Each standard component does what it claims, not merely runs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from ablate.components import EpochState
from ablate.manager import trial_manager
from ablate.build import make_optimizer


def make(registry, kind, name, **given):
    params = registry.resolve_params(kind, name, given, key=f"test.{name}")
    return registry.create(kind, name, params)


def run_arm(study_path, registry, *components, seed=0):
    """Train one real run of the study with the given (kind, name, params) active."""
    from ablate.config import load_study
    from ablate.design import Arm, run_spec
    from ablate.spec import ComponentSpec, Execution
    from ablate.training import train_run

    config = load_study(study_path, registry)
    resolved = tuple(ComponentSpec(kind, name, registry.resolve_params(kind, name, params, key=name))
                     for kind, name, params in components)
    return train_run(run_spec(config, Arm("arm", {}, resolved, {}), seed), registry, Execution("cpu"))


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval(registry):
    layer = make(registry, "norm", "batchnorm").ablate_make_layer(slot="norm", features=3, dims=0)
    x = torch.randn(64, 3) * 5 + 10
    layer.train()
    out = layer(x)
    assert out.mean(0).abs().max() < 1e-4  # normalised with this batch's mean
    layer.eval()
    out_eval = layer(x)  # running stats moved only 10% towards the batch's
    assert out_eval.mean(0).abs().min() > 1.0
    assert make(registry, "norm", "batchnorm").ablate_make_layer(slot="norm", features=3, dims=2).__class__ \
        is nn.BatchNorm2d
    assert make(registry, "norm", "batchnorm").ablate_make_layer(slot="dropout", features=3, dims=0) is None


def test_layernorm_is_per_sample(registry):
    layer = make(registry, "norm", "layernorm").ablate_make_layer(slot="norm", features=8, dims=0)
    a, others = torch.randn(1, 8), torch.randn(5, 8) * 100
    alone = layer(a)
    in_batch = layer(torch.cat([a, others]))[:1]
    assert torch.allclose(alone, in_batch, atol=1e-6)
    conv = make(registry, "norm", "layernorm").ablate_make_layer(slot="norm", features=4, dims=1)
    y = conv(torch.randn(2, 4, 10) * 3 + 1)
    assert y[0].mean().abs() < 1e-5 and (y[0].std(unbiased=False) - 1).abs() < 1e-3


def test_dropout_drops_in_training_and_is_off_in_eval(registry):
    layer = make(registry, "regularizer", "dropout", rate=0.5).ablate_make_layer(
        slot="dropout", features=100, dims=0)
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


def test_coupled_l2_and_decoupled_weight_decay_differ_under_adam(registry):
    coupled, opt_c = _one_adam_step(registry, make(registry, "regularizer", "l2", coef=0.05))
    decoupled, opt_d = _one_adam_step(registry, make(registry, "regularizer", "weight_decay", decay=0.1))
    assert isinstance(opt_d, torch.optim.AdamW) and type(opt_c) is torch.optim.Adam
    assert not torch.allclose(coupled, decoupled, atol=1e-4)


def test_decoupled_weight_decay_under_sgd_shrinks_weights_outside_the_gradient(registry):
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt, pre = make_optimizer(model, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0},
                              {"weight_decay": 0.5, "decoupled_weight_decay": True})
    model.weight.grad = torch.zeros_like(model.weight)
    assert pre is not None
    pre()
    opt.step()
    assert torch.allclose(model.weight, torch.full((2, 2), 1 - 0.1 * 0.5))


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights(registry):
    rule = make(registry, "stopping", "early_stopping", monitor="val_loss", patience=2)
    model = nn.Linear(2, 2)
    losses = [1.0, 0.5, 0.7, 0.6]
    best = None
    reasons = []
    for epoch, loss in enumerate(losses, 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if loss == 0.5:
            best = copy.deepcopy(model.state_dict())
        reasons.append(rule.ablate_epoch_end(state=EpochState(epoch, 10, model, {"val_loss": loss})))
    assert reasons == [None, None, None, "early_stopping"]
    rule.ablate_train_end(model=model, stop_reason="early_stopping")
    assert torch.equal(model.weight, best["weight"])


def test_early_stopping_on_accuracy_treats_larger_as_better(registry):
    rule = make(registry, "stopping", "early_stopping", monitor="val_accuracy", patience=1,
                restore_best=False)
    model = nn.Linear(1, 1)
    assert rule.ablate_epoch_end(state=EpochState(1, 9, model, {"val_accuracy": 0.5})) is None
    assert rule.ablate_epoch_end(state=EpochState(2, 9, model, {"val_accuracy": 0.6})) is None
    assert rule.ablate_epoch_end(state=EpochState(3, 9, model, {"val_accuracy": 0.55})) == "early_stopping"


@pytest.mark.parametrize("slots,expected", [
    ("linear>norm>act>dropout", [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]),
    ("linear>dropout>norm>act", [nn.Linear, nn.Dropout, nn.BatchNorm1d, nn.ReLU, nn.Linear]),
    ("norm>linear>act", [nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.Linear]),
])
def test_mlp_block_follows_its_slot_order(registry, slots, expected):
    comps = {"n": make(registry, "norm", "batchnorm"), "d": make(registry, "regularizer", "dropout")}
    tpm = trial_manager(comps)
    make_layer = lambda slot, f, d: tpm.hook.ablate_make_layer(slot=slot, features=f, dims=d) or nn.Identity()
    model = make(registry, "model", "mlp", hidden=[16], slots=slots).build((8, 8), 10, make_layer)
    layers = [type(m) for m in model if not isinstance(m, nn.Flatten)]
    assert layers == expected
    assert model(torch.randn(4, 8, 8)).shape == (4, 10)
    assert [m.num_features for m in model if isinstance(m, nn.BatchNorm1d)] == \
        ([64] if slots.startswith("norm") else [16])


@pytest.mark.parametrize("name,n_train,n_test,shape", [("digits", 1077, 360, (64,)),
                                                        ("mnist1d", 3200, 1000, (40,))])
def test_datasets_split_three_ways_stratified_and_seeded(registry, name, n_train, n_test, shape):
    ds = make(registry, "dataset", name)
    a, b, c = ds.load(0), ds.load(0), ds.load(1)
    assert len(a.x_train) == n_train and len(a.x_test) == n_test and a.input_shape == shape
    assert a.num_classes == 10 and torch.equal(a.x_val, b.x_val)
    if name == "digits":
        assert not torch.equal(a.x_val, c.x_val)  # the split seed moves the split
    counts = torch.bincount(a.y_val, minlength=10).float()
    assert counts.max() - counts.min() <= 0.15 * counts.mean() + 1  # stratified
    assert a.x_train.mean().abs() < 0.05  # standardised on training statistics


def test_mnist1d_generation_leaves_the_global_rng_alone(registry):
    torch.manual_seed(0)
    import numpy as np
    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    make(registry, "dataset", "mnist1d", num_samples=500).load(0)
    assert np.random.random() == before
