"""Worker processes that survive a worker's death.

A native crash (a segfault in a decoder, the OOM killer) takes its worker process down; with
``multiprocessing.Pool.imap`` the lost task is never answered and the run waits forever. Here jobs go to a
``ProcessPoolExecutor`` (which notices a dead worker: ``BrokenProcessPool``) through a bounded window, results
come back in job order or as they finish, and when the pool breaks a pending job is rerun alone in a fresh process:
if it kills that one too, ``crashed(job, reason)`` makes its result (an error row), and the other pending jobs
are resubmitted to a new pool. One bad file costs a pool restart, never the run.

``FACEKIT_CRASH_JOB=<id>`` makes the worker handling the job whose id (``job_id``, ``video_id`` or
``utterance_id`` attribute) matches abort, to test this path (on the Ray engine too).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator


def _job_id(job: Any) -> str:
    names = ("job_id", "video_id", "utterance_id")
    return str(next((getattr(job, n) for n in names if getattr(job, n, None)), ""))


def guarded(fn: Callable, job: Any) -> Any:
    """Run ``fn(job)`` in a worker (module-level so it pickles); honours the fault-injection variable."""
    if os.environ.get("FACEKIT_CRASH_JOB") and os.environ["FACEKIT_CRASH_JOB"] == _job_id(job):
        os.abort()
    return fn(job)


def run_jobs(jobs: Iterable, fn: Callable, workers: int, initializer: Callable, initargs: tuple,
             crashed: Callable[[Any, str], Any], window: int | None = None, ordered: bool = True) -> Iterator:
    """Yield ``fn(job)`` for every job from ``workers`` spawned processes (see the module docstring): in job
    order, or (``ordered=False``) as each finishes, so a long job never holds back the others' results. Each
    worker process gets its index (0, 1, ...; a restarted pool goes on counting) for ``facekit.device``."""
    ctx = mp.get_context("spawn")
    window = window or 2 * workers
    counter = ctx.Value("i", 0)

    def new_pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=_indexed,
                                   initargs=(counter, initializer, initargs))

    todo = iter(jobs)
    pool = new_pool(workers)
    pending: deque = deque()  # (job, future) in submission order

    def fill() -> None:
        while len(pending) < window:
            job = next(todo, None)
            if job is None:
                return
            pending.append((job, pool.submit(guarded, fn, job)))

    def next_done() -> tuple[Any, Any]:
        if ordered:
            return pending.popleft()
        wait([f for _, f in pending], return_when=FIRST_COMPLETED)
        k = next(i for i, (_, f) in enumerate(pending) if f.done())
        item = pending[k]
        del pending[k]
        return item

    try:
        fill()
        while pending:
            job, fut = next_done()
            try:
                result = fut.result()
            except BrokenProcessPool:  # the pool is gone: this job is rerun alone, then the others in a new pool
                pool.shutdown(wait=False, cancel_futures=True)
                rest = [j for j, _ in pending]
                pending.clear()
                with new_pool(1) as alone:
                    try:
                        result = alone.submit(guarded, fn, job).result()
                    except BrokenProcessPool:
                        result = crashed(job, "worker process died while processing it (native crash or killed)")
                todo = itertools.chain(rest, todo)
                pool = new_pool(workers)
            yield result
            fill()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _indexed(counter, initializer: Callable, initargs: tuple) -> None:
    """A worker's initializer: take the next worker index, then run the builder's own initializer."""
    from facekit.device import set_worker_index

    with counter.get_lock():
        index = counter.value
        counter.value += 1
    set_worker_index(index)
    initializer(*initargs)
