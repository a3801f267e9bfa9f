"""Options shared by several commands, so each has one name, default and help text everywhere."""

from __future__ import annotations

import typer
import typer.core


def _usage_name(self) -> str:
    """click's usage convention, ``NAME`` for a required argument and ``[NAME]`` for an optional one (typer 0.2x
    writes ``{NAME}``, which reads as a placeholder left unfilled)."""
    name = self.display_name_raw
    name = name if self.nargs == 1 or name.endswith("...") else name + "..."
    return name if self.required else f"[{name}]"


if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _usage_name

DEVICE = typer.Option("auto", "--device", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or a list "
                      "cuda:0,cuda:1; with --workers, cuda (or auto) spreads the workers over the node's GPUs "
                      "round-robin, a list hands its entries out in turn; under torchrun each rank takes its own "
                      "GPU.")

WORKERS = typer.Option(0, "--workers", "-j", min=0, help="Worker processes (local engine; 0: in this process) or "
                       "Ray actors (ray engine; 0: one per CPU of the cluster).")
ALLOW_FAILURES = typer.Option(0.0, "--allow-failures", min=0.0, max=1.0,
                              help="Share of inputs that may fail (unreadable files) with exit 0; above it the run "
                                   "still commits everything, then exits 3. Try 0.01 on large corpora.")
ENGINE = typer.Option("local", "--engine", help="local (this machine) or ray (a Ray cluster: pip install "
                      "'facekit[ray]'; see the README).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster address (host:port, ray://host:port or auto). "
                           "[default: $RAY_ADDRESS, else a local Ray started for the run]")
GPUS_PER_WORKER = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs each Ray actor reserves (fractions "
                               "share a GPU); ray engine only.")


def make_engine(engine: str, workers: int, ray_address: str | None, gpus_per_worker: float):
    """The :class:`~facekit.engine.local.Engine` the options name."""
    from facekit.engine.local import Engine

    return Engine(engine, workers, ray_address, gpus_per_worker)


def worker_device(engine, device: str) -> str:
    """The device the workers are given: resolved here for the local engine (a bad name fails at once), as
    written for Ray (an actor resolves ``auto`` to the GPUs Ray gave it, which this driver may not have)."""
    if engine.name == "ray":
        return device
    from facekit.device import resolve_device

    return str(resolve_device(device))
