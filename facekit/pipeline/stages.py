"""Where one video's extraction spends its time: a clock per stage (decode wait, shot cuts, detection, tracking,
alignment, filters, writing), off unless a benchmark turns it on (``benchmarks/extract_speed.py``)."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import Iterator

STAGES = ("decode", "shot cuts", "detection", "tracking", "alignment", "filters", "writing")


class StageClock:
    def __init__(self) -> None:
        self.enabled = False
        self.seconds: Counter = Counter()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t

    def timed_iter(self, iterable, stage: str) -> Iterator:
        """``iterable``'s items, the wait for each counted as ``stage``."""
        it = iter(iterable)
        while True:
            with self(stage):
                item = next(it, StopIteration)
            if item is StopIteration:
                return
            yield item

    def reset(self) -> None:
        self.seconds.clear()


CLOCK = StageClock()
