"""Seeds from 0 to 2^63 - 1 for every generator a run uses. Python's and
torch's generators take them as they are; NumPy's legacy ones (np.random.seed,
RandomState: the splits, plugins' global draws) take 32 bits, so a larger seed
is given to them as its two 32-bit words. A seed below 2^32 is passed
unchanged: the runs of studies made before train the same numbers."""

from __future__ import annotations

MAX_SEED = 2**63 - 1  # TOML's largest integer, and what torch's and SQLite's integers hold
NUMPY_WORDS = 2**32


def numpy_seed(seed: int) -> int | list[int]:
    """The seed for NumPy's legacy generators: ``seed`` itself below 2^32, else its
    low and high 32-bit words (seeded by array: one stream per seed, none shared
    with a small seed)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0..2^63-1")
    return seed if seed < NUMPY_WORDS else [seed % NUMPY_WORDS, seed // NUMPY_WORDS]
