"""Data sets that need no network: scikit-learn's bundled digits and MNIST-1D,
generated offline."""

from __future__ import annotations

from ablate import Param, hookimpl, make_splits

SPLIT_PARAMS = {
    "val_fraction": Param(0.2, low=0.0, high=0.5, low_open=True, help="share of data for validation"),
    "test_fraction": Param(0.2, low=0.0, high=0.5, low_open=True, help="share of data for test"),
}


class Digits:
    """8x8 handwritten digits, 1,797 samples, 10 classes (scikit-learn's bundled copy)."""

    def __init__(self, val_fraction: float, test_fraction: float):
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def load(self, split_seed: int):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return make_splits(x / 16.0, y, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
                           seed=split_seed, name="digits")


class MNIST1D:
    """MNIST-1D (Greydanus, 2020): 40-point signals, 10 classes; generated offline
    with the canonical arguments, its own 4,000/1,000 train/test split kept."""

    def __init__(self, val_fraction: float, num_samples: int, seed: int):
        self.val_fraction, self.num_samples, self.seed = val_fraction, num_samples, seed

    def load(self, split_seed: int):
        import numpy as np
        import random
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed = self.num_samples, self.seed
        state = (random.getstate(), np.random.get_state())
        try:
            data = make_dataset(args)  # never get_dataset: that one tries the network
        finally:  # make_dataset reseeds the global generators; put them back
            random.setstate(state[0])
            np.random.set_state(state[1])
        return make_splits(data["x"], data["y"], x_test=data["x_test"], y_test=data["y_test"],
                           val_fraction=self.val_fraction, test_fraction=0.0, seed=split_seed,
                           name="mnist1d")


@hookimpl
def ablate_register_datasets(registry):
    registry.add("digits", Digits, params=dict(SPLIT_PARAMS),
                 help="scikit-learn's bundled 8x8 digits (1,797 samples, 10 classes)")
    registry.add("mnist1d", MNIST1D, help="MNIST-1D generated offline (canonical arguments)",
                 params={"val_fraction": SPLIT_PARAMS["val_fraction"],
                         "num_samples": Param(5000, low=100, high=1_000_000,
                                              help="samples generated; 80% train, 20% test"),
                         "seed": Param(42, low=0, help="generator seed (42 is canonical)")})
