"""Augmentation policies randomise per sample, are reproducible from the run's
seed, make proper soft targets, and touch training batches only."""

from __future__ import annotations

import pytest
import torch
from support import make, run_arm

from ablate.components import Batch
from ablate.plugin.manager import trial_manager

IMAGE_POLICIES = [
    "flip",
    "crop",
    "randaugment",
    "trivialaugment",
    "autoaugment",
    "random_erasing",
    "mixup",
    "cutmix",
    "gaussian_noise",
    "shift",
]


def image_batch(n=32, seed=0, copies=True):
    """n copies of one asymmetric standardised 3x12x12 image (or n distinct ones)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn((1 if copies else n, 3, 12, 12), generator=g)
    x = base.expand(n, -1, -1, -1).clone() if copies else base
    return Batch(x, torch.arange(n) % 4, torch.Generator().manual_seed(seed))


MODEL = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 12 * 12, 4))  # 4 classes


def apply(registry, name, batch, **params):
    comp = make(registry, "augmentation", name, **params)
    tpm = trial_manager({"a": comp})
    tpm.hook.ablate_configure_model(model=MODEL)  # mixup/cutmix count its outputs
    if name in ("mixup", "cutmix"):  # mixing identical images changes nothing: give distinct ones
        batch = image_batch(copies=False, seed=batch.generator.initial_seed())
    tpm.hook.ablate_transform_batch(batch=batch)
    return batch


@pytest.mark.parametrize("name", IMAGE_POLICIES)
def test_identical_samples_in_one_batch_come_out_different(registry, name):
    """A batched v2 transform would treat the whole batch alike: each policy must not."""
    batch = apply(registry, name, image_batch())
    distinct = {tuple(v.round(decimals=4).flatten().tolist()) for v in batch.x}
    assert len(distinct) >= (2 if name == "flip" else 5), f"{name} treated the whole batch alike"
    assert batch.x.shape == (32, 3, 12, 12) and batch.x.dtype == torch.float32


@pytest.mark.parametrize("name", IMAGE_POLICIES)
def test_same_seed_gives_the_same_augmented_batch_and_leaves_the_global_rng_alone(registry, name):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = apply(registry, name, image_batch(seed=5))
    assert torch.rand(1) == before  # drew only from the batch's generator
    torch.manual_seed(999)  # a different global state must not matter
    b = apply(registry, name, image_batch(seed=5))
    c = apply(registry, name, image_batch(seed=6))
    assert torch.equal(a.x, b.x) and torch.equal(torch.as_tensor(a.y), torch.as_tensor(b.y))
    assert not torch.equal(a.x, c.x)


def test_autoaugment_keeps_the_value_range_through_the_uint8_round_trip(registry):
    batch = image_batch()
    lo, hi = batch.x.min(), batch.x.max()
    out = apply(registry, "autoaugment", batch).x
    assert out.min() >= lo - 1e-4 and out.max() <= hi + 1e-4
    same = apply(registry, "randaugment", image_batch(), magnitude=0, num_ops=1).x
    # identity-strength ops: only the quantisation error remains for many samples
    assert ((same - image_batch().x).abs().amax((1, 2, 3)) <= (hi - lo) / 255).any()


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_gives_soft_targets_that_sum_to_one_and_match_the_mix(registry, name):
    batch = apply(registry, name, image_batch(), alpha=1.0)
    y = batch.y
    assert y.shape == (32, 4) and y.dtype.is_floating_point
    assert torch.allclose(y.sum(1), torch.ones(32)) and (y >= 0).all()
    assert ((y > 0).sum(1) >= 2).any()  # mixed, not one-hot
    if name == "cutmix":  # the target keeps the share of the image's own pixels
        original = image_batch(copies=False, seed=0).x
        own = (batch.x == original).flatten(1).float().mean(1)
        truth = y[torch.arange(32), torch.arange(32) % 4]
        # own share, or 1 when the partner has the same class
        assert (torch.isclose(truth, own, atol=1e-5) | torch.isclose(truth, torch.ones(()))).all()
        assert (own < 0.95).any() and (own > 0.05).any()


def test_flip_and_crop_move_pixels_without_inventing_values(registry):
    x = image_batch().x
    flipped = apply(registry, "flip", image_batch(), p=0.5).x
    each = [(torch.equal(f, x[0]) or torch.equal(f, x[0].flip(-1))) for f in flipped]
    assert all(each)
    cropped = apply(registry, "crop", image_batch(), padding=2).x
    # every crop is the image shifted by at most 2 pixels, zeros coming in
    padded = torch.nn.functional.pad(x[0], (2, 2, 2, 2))
    windows = {(dy, dx) for dy in range(5) for dx in range(5)}
    for out in cropped:
        assert any(torch.equal(out, padded[:, dy : dy + 12, dx : dx + 12]) for dy, dx in windows)


@pytest.mark.parametrize("circular", [True, False])
def test_shift_moves_each_1d_signal_by_a_random_whole_step(registry, circular):
    sig = torch.arange(1.0, 41.0).expand(64, 40).clone()  # MNIST-1D shape (N, 40)
    batch = Batch(sig, torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(0))
    make(registry, "augmentation", "shift", max_shift=3, circular=circular).ablate_transform_batch(batch=batch)
    shifts = set()
    for row in batch.x:
        s = next(
            s
            for s in range(-3, 4)
            if torch.equal(
                row,
                torch.roll(sig[0], s)
                if circular
                else torch.roll(sig[0], s) * ((torch.arange(40) - s >= 0) & (torch.arange(40) - s < 40)),
            )
        )
        shifts.add(s)
    assert len(shifts) >= 5


def test_image_policies_refuse_1d_signals_with_a_clear_reason(registry):
    batch = Batch(torch.randn(4, 40), torch.zeros(4, dtype=torch.long), torch.Generator())
    with pytest.raises(ValueError, match="shift"):
        make(registry, "augmentation", "crop").ablate_transform_batch(batch=batch)


def test_validation_and_test_batches_are_never_augmented(registry, write_study):
    """Every training image mirrored: the model fits its (mirrored) training batches, but
    is measured on the unmirrored splits -- had evaluation been augmented too, every
    split would score as high as the training batches."""
    path = write_study("""
        [study]
        name = "aug"
        seeds = 1
        [data]
        name = "digits"
        image = true
        [model]
        name = "mlp"
        hidden = [64]
        [train]
        epochs = 8
        batch_size = 64
        lr = 0.003
        """)
    result = run_arm(path, registry, ("augmentation", "flip", {"p": 1.0}))
    assert result.history[-1]["running_accuracy"] > 0.9  # on the augmented training batches
    for split in ("train", "val", "test"):
        assert result.metrics[f"{split}_accuracy"] < 0.7
