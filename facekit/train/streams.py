"""Deterministic sample streams: which item is read at a given position, as a pure function of (seed, position).

A source of ``n`` items is read in epochs; epoch ``e`` is a permutation seeded by (seed, source, e). Position
``p`` (the p-th sample ever drawn from the source) maps to item ``perm_e[p mod n]`` with ``e = p // n``. Batches
are ranges of positions, so resume and DDP (each rank a slice of the global batch) see exactly what one
uninterrupted process would.
"""

from __future__ import annotations

import numpy as np


class EpochStream:
    def __init__(self, n_items: int, seed: int, source: int = 0) -> None:
        self.n, self.seed, self.source = n_items, seed, source
        self._epoch, self._perm = -1, np.zeros(0, np.int64)

    def __getitem__(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch != self._epoch:  # one epoch's permutation is kept (positions only move forward)
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, self.source, epoch]).permutation(self.n)
        return int(self._perm[offset])


def sample_seed(seed: int, source: int, position: int) -> int:
    """Seed of the random choices (augmentation, set members) of one sample, distinct per source and position."""
    return (seed * 1_000_003 + position) * 8 + source
