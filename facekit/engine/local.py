"""Where the per-item work of a dataset builder runs: this process, a local process pool, or a Ray cluster.

Every builder (``extract-sequences``, ``extract-frames``, ``build identities``, ``embed``) is written as

- ``init(*initargs)``: load what a worker keeps (the detector, the embedder) into module state;
- ``fn(job) -> result``: the library function for one item (a video, an utterance, an image, a batch of crops);
- ``crashed(job, reason) -> result``: the result recorded when the process running ``fn(job)`` died;

and hands them to :meth:`Engine.map`, which yields one result per job, whatever ran it: in job order, or as
each finishes (``ordered=False``: the extractors, so one long video never idles the other workers). The driver
alone commits results (atomic part files), so resume, ``--shard`` and ``--flush-every`` are the same on every
engine, and the manifests hold the same rows (sorted by their keys, equal row for row).

Worker processes (pool or Ray actor) get ``torch.set_num_threads(cores // workers)`` (at least 1) before
``init``, so ``--workers N`` on an N-core machine does not oversubscribe the cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from facekit.registry import Registry

# name -> runner(jobs, fn, init, initargs, crashed, engine, ordered) -> iterator of results
ENGINES: Registry[Callable[..., Iterator]] = Registry("engine")


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def threaded_init(init: Callable, initargs: tuple, threads: int) -> None:
    """A worker's initializer: torch's intra-op threads first, then the builder's own ``init``."""
    import torch

    torch.set_num_threads(max(1, threads))
    init(*initargs)


@dataclass
class EngineStats:
    """Who ran the work: Ray node ids that finished at least one item, and worker processes started."""
    nodes: set = field(default_factory=set)
    workers: int = 0

    def line(self) -> str:
        return f"ray: {len(self.nodes)} nodes, {self.workers} workers"


@dataclass(frozen=True)
class Engine:
    """``local`` (``workers`` 0: this process; N: a pool of N processes) or ``ray`` (``workers`` actors, 0: one
    per CPU of the cluster; ``gpus_per_worker`` GPUs each; ``address`` as ``ray.init`` takes it, None: Ray's
    own resolution, i.e. ``RAY_ADDRESS`` or a local Ray started for the run)."""
    name: str = "local"
    workers: int = 0
    address: str | None = None
    gpus_per_worker: float = 0.0
    stats: EngineStats = field(default_factory=EngineStats, compare=False)

    def __post_init__(self) -> None:
        from facekit.errors import InputError

        ENGINES.check(self.name, "--engine")
        if self.name != "ray" and (self.address or self.gpus_per_worker):
            raise InputError("--ray-address and --gpus-per-worker need --engine ray")

    def summary_lines(self) -> list[str]:
        return [self.stats.line()] if self.name == "ray" else []

    def map(self, jobs: Iterable, fn: Callable[[Any], Any], init: Callable, initargs: tuple,
            crashed: Callable[[Any, str], Any], ordered: bool = True) -> Iterator:
        """``fn(job)`` for every job: in job order, or (``ordered=False``) as each finishes (see the module
        docstring)."""
        return ENGINES.get(self.name)(list(jobs), fn, init, initargs, crashed, self, ordered=ordered)


@ENGINES.register("local")
def run_local(jobs: list, fn: Callable, init: Callable, initargs: tuple, crashed: Callable, engine: Engine,
              ordered: bool = True) -> Iterator:
    """This process (``workers`` 0, or one job), or a pool of ``workers`` processes (devices round-robin: see
    ``facekit.device.resolve_device``)."""
    if engine.workers > 0 and len(jobs) > 1:
        from facekit.engine.workers import run_jobs

        threads = max(1, cores() // engine.workers)
        return run_jobs(jobs, fn, engine.workers, threaded_init, (init, initargs, threads), crashed, ordered=ordered)
    return _inline(jobs, fn, init, initargs)


@ENGINES.register("ray")
def run_on_ray(jobs: list, fn: Callable, init: Callable, initargs: tuple, crashed: Callable,
               engine: Engine, ordered: bool = True) -> Iterator:
    """Ray actors (``facekit.engine.ray_engine``; needs ``pip install 'facekit[ray]'``)."""
    from facekit.engine.ray_engine import run_ray

    return run_ray(jobs, fn, init, initargs, crashed, engine, ordered)


def _inline(jobs: list, fn: Callable, init: Callable, initargs: tuple) -> Iterator:
    if jobs:
        init(*initargs)
    for job in jobs:
        yield fn(job)
