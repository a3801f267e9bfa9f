"""Give freed heap memory back to the operating system between batches.

glibc keeps memory that Python, NumPy and torch free inside its heaps; with buffers of varying sizes (frames,
pyramids, detector batches whose size depends on how many faces a batch has) the heaps fragment and a long
video's resident memory creeps up by hundreds of MB although nothing is kept. ``malloc_trim(0)`` returns the free
pages; it costs about a millisecond a call on a quiet heap, several while other threads allocate. A no-op where
there is no glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
