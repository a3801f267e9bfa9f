"""The Ray engine: one actor per worker slot keeps the builder's state (detector, embedder) loaded; the driver
gives each idle actor one job at a time and yields results in job order (a window of ``2 x actors`` jobs ahead
of the oldest unfinished one bounds what waits in memory) or, for the extractors, as they finish.

Faults: an actor that dies (killed, native crash, its node lost) costs its job one retry on a fresh actor; if
that one dies too, ``crashed(job, reason)`` is the job's result and the run goes on. An exception raised by
``fn`` itself is the builder's bug and stops the run, as on the local engine. An address that does not answer
is a one-line error before Ray is asked to connect (Ray itself waits minutes for a missing head node).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from typing import Any, Callable, Iterator

from facekit.engine.workers import guarded
from facekit.errors import InputError

CONNECT_TIMEOUT_S = 5.0


class Slot:
    """A Ray actor (wrapped with ``ray.remote`` at run time): ``init`` once, then ``fn(job)`` per call."""

    def __init__(self, init: Callable, initargs: tuple, threads: int) -> None:
        from facekit.engine.local import threaded_init

        self.error = None
        try:
            threaded_init(init, initargs, threads)
        except Exception as err:  # reported by ready(): an actor that cannot start is a setup error, not a crash
            self.error = f"{type(err).__name__}: {err}"

    def ready(self) -> str | None:
        return self.error

    def run(self, fn: Callable, job: Any) -> tuple[str, Any]:
        import ray

        return ray.get_runtime_context().get_node_id(), guarded(fn, job)


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'facekit[ray]'") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of an address ``ray.init`` takes (``ray://host:port`` too); None for ``auto``/``local``."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray-address {address!r}: expected host:port, ray://host:port, auto or local")
    return host, int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as err:
        raise InputError(f"--ray-address {address}: no Ray head answers there ({err.strerror or err}); "
                         "start one with `ray start --head` or check the address") from None


def connect(address: str | None) -> bool:
    """Connect this driver to Ray (unless it already is); True when this call started or joined a session that
    the run must shut down again."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address)
    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray's start-up notices would break the progress bar
    env = {k: v for k, v in os.environ.items() if k.startswith("FACEKIT_")}  # fault injection reaches the workers
    try:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()
        raise InputError(f"--ray-address {address or 'auto'}: cannot connect to Ray "
                         f"({first[0][:160] if first else type(err).__name__})") from None
    return True


def run_ray(jobs: list, fn: Callable, init: Callable, initargs: tuple, crashed: Callable[[Any, str], Any],
            engine, ordered: bool = True) -> Iterator:
    """Connect and start the actors now (a bad address or a worker that cannot start fails before any
    progress bar), then return the stream of results."""
    if not jobs:
        return iter(())
    actors = Actors(engine, init, initargs, most=len(jobs))
    return actors.stream(jobs, fn, crashed, ordered)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class Actors:
    """Started actors (``engine.workers``, or one per cluster CPU; at most ``most``), their replacements, and
    the Ray session when this run opened it."""

    def __init__(self, engine, init: Callable, initargs: tuple, most: int) -> None:
        ray = import_ray()
        self.ray, self.engine, self.init, self.initargs = ray, engine, init, initargs
        self.started = connect(engine.address)
        engine.stats.nodes.clear()  # the figures of this run
        engine.stats.workers = 0
        self.slot = ray.remote(num_cpus=1, num_gpus=engine.gpus_per_worker or 0, max_restarts=0,
                               max_task_retries=0)(Slot)
        self.everyone: list = []
        try:
            self.idle = deque(self.new() for _ in range(min(engine.workers or cluster_cpus(), most)))
            try:
                errors = ray.get([a.ready.remote() for a in self.idle])
            except ray.exceptions.RayActorError as err:
                raise InputError(f"a Ray worker died while starting: {_first_line(err)}") from None
            if any(errors):
                raise InputError(f"a Ray worker could not start: {next(e for e in errors if e)}")
        except BaseException:
            self.close()
            raise

    def new(self):
        self.engine.stats.workers += 1
        self.everyone.append(self.slot.remote(self.init, self.initargs, 1))  # one CPU, one torch thread each
        return self.everyone[-1]

    def close(self) -> None:
        for a in self.everyone:
            try:
                self.ray.kill(a)
            except Exception:
                pass
        if self.started:
            self.ray.shutdown()
            self.started = False

    def stream(self, jobs: list, fn: Callable, crashed: Callable[[Any, str], Any], ordered: bool = True) -> Iterator:
        ray, idle = self.ray, self.idle
        from ray.exceptions import RayActorError, RayTaskError

        pending: dict = {}  # ObjectRef -> (index, job, actor, attempt)
        done: dict[int, Any] = {}
        todo = iter(enumerate(jobs))
        next_out, submitted, window = 0, 0, 2 * len(idle)  # next_out: results yielded (in order: the next index)

        def submit(index: int, job: Any, attempt: int) -> None:
            actor = idle.popleft()
            pending[actor.run.remote(fn, job)] = (index, job, actor, attempt)

        try:
            while next_out < len(jobs):
                while idle and submitted < len(jobs) and submitted - next_out < window:
                    submit(*next(todo), 0)
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index, job, actor, attempt = pending.pop(ref)
                    try:
                        node, done[index] = ray.get(ref)
                        self.engine.stats.nodes.add(node)
                        idle.append(actor)
                    except RayTaskError as err:
                        raise err.as_instanceof_cause() from None
                    except RayActorError as err:
                        idle.append(self.new())
                        if attempt == 0:
                            submit(index, job, 1)
                        else:
                            done[index] = crashed(job, "Ray worker died while processing it (native crash, "
                                                       f"killed, or its node was lost): {_first_line(err)}")
                while done and (not ordered or next_out in done):
                    yield done.pop(next_out if ordered else next(iter(done)))
                    next_out += 1
        finally:
            self.close()


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:160] if lines else type(err).__name__
