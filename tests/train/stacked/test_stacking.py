"""Stacked training gives each seed the run it would have had alone.

Components without randomness (and augmentations, which draw from each seed's
own generator exactly as its unstacked run does): the same per-epoch losses to
1e-4 relative. Dropout-like layers draw their masks from each seed's own stream
by a faster method than torch's: the same distribution, not the same draws, so
over 12 seeds the stacked and unstacked final test accuracies agree in mean.
"""

from __future__ import annotations

import statistics

import pytest
from scipy import stats
from stacking_support import alone, assert_same_run, make_spec, seeds_of, stacked

DETERMINISTIC = {
    "plain": [],
    "batchnorm": [("norm", "batchnorm", {})],
    "layernorm": [("norm", "layernorm", {})],
    "groupnorm": [("norm", "groupnorm", {"groups": 4})],
    "instancenorm": [("norm", "instancenorm", {})],
    "rmsnorm": [("norm", "rmsnorm", {})],
    "l1+l2": [("regularizer", "l1", {"coef": 1e-4}), ("regularizer", "l2", {"coef": 1e-3})],
    "weight_decay": [("regularizer", "weight_decay", {"decay": 0.1})],
    "max_norm": [("regularizer", "max_norm", {"max_norm": 0.5})],
    "label_smoothing": [("regularizer", "label_smoothing", {"eps": 0.1})],
    "plateau+max_epochs": [
        ("stopping", "plateau", {"patience": 1, "min_delta": 0.3}),
        ("stopping", "max_epochs", {"epochs": 3}),
    ],
}


@pytest.mark.parametrize("arm", DETERMINISTIC)
def test_stacked_seeds_have_the_per_epoch_losses_of_runs_alone(registry, arm):
    specs = seeds_of(make_spec(registry, *DETERMINISTIC[arm], epochs=3), range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert b.stack == 3
        assert_same_run(a, b)


@pytest.mark.parametrize("optimizer", [{"optimizer": "sgd", "lr": 0.05}, {"optimizer": "adam", "lr": 3e-3}])
def test_both_optimizers_with_batch_norm_and_decoupled_weight_decay(registry, optimizer):
    spec = make_spec(registry, ("norm", "batchnorm", {}), ("regularizer", "weight_decay", {"decay": 0.05}), **optimizer)
    specs = seeds_of(spec, range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert_same_run(a, b)


CONV = {
    "cnn batchnorm": ("cnn", {"channels": [4, 8]}, [("norm", "batchnorm", {})]),
    "cnn rmsnorm": ("cnn", {"channels": [4, 8], "slots": "conv>act>norm"}, [("norm", "rmsnorm", {})]),
    "cnn groupnorm": ("cnn", {"channels": [4, 8]}, [("norm", "groupnorm", {"groups": 2})]),
    "resnet instancenorm": ("resnet", {"widths": [4, 8]}, [("norm", "instancenorm", {})]),
    "resnet batchnorm max_norm": (
        "resnet",
        {"widths": [4, 8]},
        [("norm", "batchnorm", {}), ("regularizer", "max_norm", {"max_norm": 1})],
    ),
}


@pytest.mark.parametrize("arm", CONV)
def test_convolutional_models_stack(registry, arm):
    model, params, components = CONV[arm]
    specs = seeds_of(
        make_spec(registry, *components, model=model, image=True, epochs=3, batch_size=128, **params), range(2)
    )
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert b.stack == 2
        assert_same_run(a, b)


AUGMENT = {
    "vectors": (
        "mlp",
        False,
        [
            ("augmentation", "gaussian_noise", {"std": 0.3}),
            ("augmentation", "mixup", {"alpha": 0.4}),
            ("augmentation", "shift", {"max_shift": 2}),
        ],
    ),
    "images": (
        "cnn",
        True,
        [
            ("augmentation", "flip", {}),
            ("augmentation", "crop", {"padding": 1}),
            ("augmentation", "cutmix", {}),
            ("augmentation", "random_erasing", {}),
        ],
    ),
}


@pytest.mark.parametrize("arm", AUGMENT)
def test_augmentations_draw_from_each_seeds_generator_exactly_as_alone(registry, arm):
    model, image, components = AUGMENT[arm]
    params = {"channels": [4]} if model == "cnn" else {}
    specs = seeds_of(
        make_spec(registry, *components, model=model, image=image, epochs=2, batch_size=128, **params), range(2)
    )
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert_same_run(a, b)


def paired_interval(a: list[float], b: list[float]) -> tuple[float, float]:
    """95% confidence interval of the mean of the paired differences a - b."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return statistics.mean(diffs) - half, statistics.mean(diffs) + half


@pytest.mark.parametrize("layer", ["dropout", "alpha_dropout"])
def test_dropout_stacked_and_alone_agree_in_mean_test_accuracy_over_12_seeds(registry, layer):
    spec = make_spec(registry, ("regularizer", layer, {"rate": 0.3}), epochs=6, batch_size=128)
    specs = seeds_of(spec, range(12))
    alone_acc = [r.metrics["test_accuracy"] for r in alone(specs, registry)]
    stacked_results = stacked(specs, registry)
    stacked_acc = [r.metrics["test_accuracy"] for r in stacked_results]
    assert all(r.stack == 12 for r in stacked_results)
    assert alone_acc != stacked_acc  # the masks are drawn differently: not a vacuous comparison
    low, high = paired_interval(stacked_acc, alone_acc)
    assert low <= 0.0 <= high, (low, high)
    assert high - low < 0.05  # and the interval is narrow enough to mean something


def test_the_paired_interval_matches_scipy():
    a, b = [0.9, 0.8, 0.85, 0.95, 0.7], [0.88, 0.82, 0.8, 0.9, 0.71]
    low, high = paired_interval(a, b)
    expected = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert low == pytest.approx(expected.low) and high == pytest.approx(expected.high)


@pytest.mark.parametrize("batched", [True, False])
def test_weight_gradients_batched_or_per_seed_give_each_seed_its_run_alone(registry, monkeypatch, batched):
    """grad_w is one batched matmul where that is exact on this machine, else one mm per seed."""
    from ablate.train.stacked import layers as stacked_layers

    monkeypatch.setattr(stacked_layers, "_bmm_is_exact", lambda *shapes: batched)
    specs = seeds_of(make_spec(registry, ("norm", "batchnorm", {}), ("regularizer", "l2", {}), epochs=3), range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert_same_run(a, b)
