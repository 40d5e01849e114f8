"""Augmentation policies for training batches (never validation or test), applied
on the batch's device through ``ablate_transform_batch``.

Every policy randomises per sample. A batched torchvision v2 transform draws one
parameter set per call (the whole batch flipped or not), so the image policies
either use vectorised masked ops driven by ``batch.generator`` (flip, crop,
shift, noise, mixup, cutmix) or apply a v2 transform to each sample in a loop
(autoaugment, randaugment, trivialaugment, random_erasing). v2 draws from
torch's global RNG; those loops run under a forked global RNG seeded from
``batch.generator``, so augmentation is reproducible from the run's seed alone
and leaves the global RNG untouched.

Images here are standardised float tensors (N, C, H, W). The automatic policies
(AutoAugment, RandAugment, TrivialAugment) are defined on uint8 images: the
batch is mapped to uint8 with one affine map for the whole batch (its min ->
0, its max -> 255; relative intensities across samples are kept), augmented
per sample, and mapped back with the inverse map (quantisation error <= range/510).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ablate.plugins._shared import SoftTargets, global_rng_from

from ablate import DataInfo, Param, UserError, hookimpl

if TYPE_CHECKING:  # torch is imported where a batch is transformed: the plugin loads without it
    import torch


def _uniform(n: int, batch, low=0.0, high=1.0) -> torch.Tensor:
    import torch

    return low + (high - low) * torch.rand(n, generator=batch.generator, device=batch.x.device)


def _need_images(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(
            f"augmentation {name!r} needs images (N, C, H, W), got shape "
            f"{tuple(x.shape)}; for 1-D signals use 'shift' or 'gaussian_noise'"
        )


class ImagesOnly:
    """Mixin for policies defined on images: rejects other data before training."""

    name = ""

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        if len(info.input_shape) != 3:
            raise UserError(
                f"it needs images (C, H, W), and each sample here has shape {info.input_shape}",
                hint="for 1-D signals use 'shift', 'gaussian_noise' or 'flip'; digits can "
                "be images with [data] image = true",
            )


class Flip:
    """Horizontal flip (last axis) of each sample with probability p."""

    def __init__(self, p: float):
        self.p = p

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        x = batch.x
        mask = (_uniform(len(x), batch) < self.p).view((-1,) + (1,) * (x.dim() - 1))
        batch.x = torch.where(mask, x.flip(-1), x)


class Crop(ImagesOnly):
    """Pad each image by ``padding`` (zeros = the standardised mean, or reflect) and
    crop it back to its size at a random offset per sample."""

    def __init__(self, padding: int, mode: str):
        self.padding, self.mode = padding, mode

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        x = batch.x
        _need_images(x, "crop")
        n, c, h, w = x.shape
        p = self.padding
        padded = torch.nn.functional.pad(x, (p, p, p, p), mode="constant" if self.mode == "zeros" else "reflect")
        dy = torch.randint(0, 2 * p + 1, (n,), generator=batch.generator, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=batch.generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        ni = torch.arange(n, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        batch.x = padded[ni, ci, rows, cols]


class _PerSampleV2(ImagesOnly):
    """Apply a torchvision v2 transform to each sample (one random draw per sample)."""

    name = ""
    uint8 = True

    def make(self):
        raise NotImplementedError

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        x = batch.x
        _need_images(x, self.name)
        if not hasattr(self, "_t"):
            self._t = self.make()
        with global_rng_from(batch.generator):
            if not self.uint8:
                batch.x = torch.stack([self._t(img) for img in x])
                return
            lo, hi = x.min(), x.max()
            scale = (hi - lo).clamp_min(1e-12) / 255.0
            u8 = ((x - lo) / scale).round().clamp(0, 255).to(torch.uint8)
            out = torch.stack([self._t(img) for img in u8])
        batch.x = out.to(x.dtype) * scale + lo


class AutoAugment(_PerSampleV2):
    """AutoAugment (Cubuk et al., 2019) with a learned policy (imagenet, cifar10 or svhn)."""

    name = "autoaugment"

    def __init__(self, policy: str):
        self.policy = policy

    def make(self):
        from torchvision.transforms import v2

        return v2.AutoAugment(getattr(v2.AutoAugmentPolicy, self.policy.upper()))


class RandAugment(_PerSampleV2):
    """RandAugment (Cubuk et al., 2020): ``num_ops`` random ops at ``magnitude``."""

    name = "randaugment"

    def __init__(self, num_ops: int, magnitude: int):
        self.num_ops, self.magnitude = num_ops, magnitude

    def make(self):
        from torchvision.transforms import v2

        return v2.RandAugment(num_ops=self.num_ops, magnitude=self.magnitude)


class TrivialAugment(_PerSampleV2):
    """TrivialAugment (Müller & Hutter, 2021): one random op at a random magnitude."""

    name = "trivialaugment"

    def __init__(self):
        pass

    def make(self):
        from torchvision.transforms import v2

        return v2.TrivialAugmentWide()


class RandomErasing(_PerSampleV2):
    """Random erasing (Zhong et al., 2020): with probability p, a random rectangle
    of each sample is set to 0, the standardised data's mean."""

    name = "random_erasing"
    uint8 = False

    def __init__(self, p: float, scale_low: float, scale_high: float):
        self.p, self.scale = p, (scale_low, min(1.0, max(scale_low, scale_high)))

    def make(self):
        from torchvision.transforms import v2

        return v2.RandomErasing(p=self.p, scale=self.scale, value=0)


class Mixup(SoftTargets):
    """Mixup (Zhang et al., 2018): each sample is mixed with a random partner,
    lam * x_i + (1 - lam) * x_j with lam ~ Beta(alpha, alpha) drawn per sample;
    targets mixed the same way (soft targets)."""

    def __init__(self, alpha: float, classes: int):
        self.alpha, self.classes = alpha, classes

    def _lam(self, batch) -> torch.Tensor:
        import torch

        with global_rng_from(batch.generator):
            a = torch.tensor(self.alpha)
            lam = torch.distributions.Beta(a, a).sample((len(batch.x),))
        return lam.to(batch.x.device, batch.x.dtype)

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        y = self.soft_targets(batch)
        x = batch.x
        perm = torch.randperm(len(x), generator=batch.generator, device=x.device)
        lam = self._lam(batch)
        batch.x = lam.view((-1,) + (1,) * (x.dim() - 1)) * x + (1 - lam.view((-1,) + (1,) * (x.dim() - 1))) * x[perm]
        batch.y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]


class CutMix(ImagesOnly, Mixup):
    """CutMix (Yun et al., 2019): a random box of each image (area 1 - lam,
    lam ~ Beta(alpha, alpha) per sample) is pasted from a random partner; the
    targets are mixed by the pasted area actually used (after clipping at the border)."""

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        x = batch.x
        _need_images(x, "cutmix")
        y = self.soft_targets(batch)
        n, _, h, w = x.shape
        perm = torch.randperm(n, generator=batch.generator, device=x.device)
        cut = (1 - self._lam(batch)).sqrt()
        ch, cw = (cut * h).round(), (cut * w).round()
        cy, cx = _uniform(n, batch, 0, h).floor(), _uniform(n, batch, 0, w).floor()
        y0, y1 = (cy - ch / 2).round().clamp(0, h), (cy + ch / 2).round().clamp(0, h)
        x0, x1 = (cx - cw / 2).round().clamp(0, w), (cx + cw / 2).round().clamp(0, w)
        rows = torch.arange(h, device=x.device, dtype=x.dtype)
        cols = torch.arange(w, device=x.device, dtype=x.dtype)
        inside = ((rows[None, :] >= y0[:, None]) & (rows[None, :] < y1[:, None]))[:, :, None] & (
            (cols[None, :] >= x0[:, None]) & (cols[None, :] < x1[:, None])
        )[:, None, :]
        batch.x = torch.where(inside[:, None], x[perm], x)
        pasted = inside.flatten(1).to(x.dtype).mean(1)
        batch.y = (1 - pasted[:, None]) * y + pasted[:, None] * y[perm]


class GaussianNoise:
    """Add N(0, std^2) noise to every input value (inputs are standardised, so std
    is in units of a feature's standard deviation)."""

    def __init__(self, std: float):
        self.std = std

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        noise = torch.randn(batch.x.shape, generator=batch.generator, device=batch.x.device)
        batch.x = batch.x + self.std * noise.to(batch.x.dtype)


class Shift:
    """Shift each signal along its last axis by a random whole number of steps in
    [-max_shift, max_shift], per sample; ``circular`` wraps around, else the
    vacated positions are zero (the standardised mean). For 1-D signals (MNIST-1D)."""

    def __init__(self, max_shift: int, circular: bool):
        self.max_shift, self.circular = max_shift, circular

    @hookimpl
    def ablate_transform_batch(self, batch):
        import torch

        x = batch.x
        n, length = len(x), x.shape[-1]
        s = torch.randint(-self.max_shift, self.max_shift + 1, (n,), generator=batch.generator, device=x.device)
        src = torch.arange(length, device=x.device)[None, :] - s[:, None]  # out[i] = x[i - s]
        valid = (src >= 0) & (src < length)
        src = src % length
        shape = (n,) + (1,) * (x.dim() - 2) + (length,)
        idx = src.view(shape).expand(x.shape)
        out = torch.gather(x, -1, idx)
        if not self.circular:
            out = out * valid.view(shape).to(x.dtype)
        batch.x = out


ALPHA = Param(1.0, low=0.0, low_open=True, high=100.0, help="Beta(alpha, alpha) of the mixing weight")
CLASSES = Param(0, low=0, help="number of classes; 0 takes it from the model's output")
PROB = Param(0.5, low=0.0, high=1.0, help="probability per sample")


@hookimpl
def ablate_register_augmentations(registry):
    _register_transforms(registry)
    _register_mixing_and_noise(registry)


def _register_transforms(registry: Any) -> None:
    """Per-sample transforms of images and signals."""
    registry.add("flip", Flip, help="horizontal flip per sample", params={"p": PROB})
    registry.add(
        "crop",
        Crop,
        help="pad and random crop per sample (images)",
        params={
            "padding": Param(2, low=1, high=64, help="pixels of padding on each side"),
            "mode": Param("zeros", choices=("zeros", "reflect"), help="padding fill"),
        },
    )
    registry.add(
        "autoaugment",
        AutoAugment,
        help="AutoAugment per sample (images, via uint8)",
        params={"policy": Param("cifar10", choices=("cifar10", "imagenet", "svhn"), help="learned policy")},
    )
    registry.add(
        "randaugment",
        RandAugment,
        help="RandAugment per sample (images, via uint8)",
        params={
            "num_ops": Param(2, low=1, high=10, help="ops per sample"),
            "magnitude": Param(9, low=0, high=30, help="op strength (of 31 bins)"),
        },
    )
    registry.add("trivialaugment", TrivialAugment, help="TrivialAugmentWide per sample (images, via uint8)")
    registry.add(
        "random_erasing",
        RandomErasing,
        help="erase a random rectangle per sample (images)",
        params={
            "p": PROB,
            "scale_low": Param(0.02, low=0.0, high=1.0, low_open=True, help="smallest erased area fraction"),
            "scale_high": Param(0.33, low=0.0, high=1.0, low_open=True, help="largest erased area fraction"),
        },
    )


def _register_mixing_and_noise(registry: Any) -> None:
    """Augmentations that mix samples or add noise: mixup, cutmix, Gaussian noise, shift."""
    registry.add(
        "mixup",
        Mixup,
        help="mix random pairs of samples and their targets",
        params={"alpha": ALPHA, "classes": CLASSES},
    )
    registry.add(
        "cutmix",
        CutMix,
        help="paste a random box from a partner image, targets by area",
        params={"alpha": ALPHA, "classes": CLASSES},
    )
    registry.add(
        "gaussian_noise",
        GaussianNoise,
        help="add Gaussian noise to inputs",
        params={"std": Param(0.1, low=0.0, low_open=True, high=100.0, help="noise standard deviation")},
    )
    registry.add(
        "shift",
        Shift,
        help="random shift of 1-D signals along the last axis, per sample",
        params={
            "max_shift": Param(4, low=1, high=10_000, help="largest shift in steps"),
            "circular": Param(True, help="wrap around (else zero fill)"),
        },
    )
