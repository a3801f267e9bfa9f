"""What every training run shares: its directory (recipe.yaml, checkpoints/, metrics, summary.json), atomic
checkpoints with resume, the metrics plot, and the reproducibility record."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

from facekit.errors import InputError
from facekit.fsutil import atomic_path, write_json
from facekit.manifests.owner import claim_root
from facekit.recipes import build, read_recipe, to_dict
from facekit.train import distributed

T = TypeVar("T")


@dataclass
class RunResult:
    """What a trainer returns; ``lines()`` is the summary the command prints."""

    run_dir: Path
    steps: int
    final: dict
    seconds: float
    details: list[str] = field(default_factory=list)  # trainer-specific lines (verification, held-out check)
    result: dict | None = None  # the trainer's headline numbers (verification / held-out), also in summary.json

    def lines(self) -> list[str]:
        return [f"run: {self.run_dir}  ({self.steps} steps, {self.seconds:.0f} s)",
                "final: " + ", ".join(f"{k} {v:.4g}" for k, v in self.final.items()), *self.details]


def prepare_run(cfg_cls: type[T], name: str, recipe: Path | None, overrides: list[str], out: Path | None,
                resume: bool) -> tuple[T, Path]:
    """Settings and run directory for ``facekit train NAME``. A new run saves the resolved recipe as
    ``recipe.yaml``; ``--resume`` reads it back (``--set`` may still change a setting, e.g. more steps)."""
    import yaml

    run_dir = out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    saved = run_dir / "recipe.yaml"
    main_rank = distributed.launch_rank() == 0  # under torchrun or srun only rank 0 checks and writes the run dir
    if resume:
        if out is None:
            raise InputError("--resume needs --out RUN_DIR (the run to continue)")
        if recipe is not None:
            raise InputError("--resume continues with the run's own recipe.yaml; use --set to change a setting")
        if not saved.is_file():
            raise InputError(f"{saved}: not a facekit run directory (no recipe.yaml)")
        source = saved
    else:
        if main_rank and saved.exists():
            raise InputError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out")
        source = recipe
    where = str(source or "settings")
    cfg = build(cfg_cls, read_recipe(source), where)  # the file's own mistakes are the file's
    if overrides:
        cfg = build(cfg_cls, read_recipe(source, overrides), "--set")  # a typo in --set is blamed on --set
    if hasattr(cfg, "check"):
        cfg.check(where)
    if main_rank:
        claim_root(run_dir, f"train {name}")
        with atomic_path(saved) as tmp:
            tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return cfg, run_dir


def save_checkpoint(run_dir: Path, step: int, blob: dict, keep_every: int, d: distributed.Dist,
                    keep: int = 0) -> None:
    """``checkpoints/last.pt`` (atomic), plus a kept copy every ``keep_every`` steps, of which the last ``keep``
    stay (0: all), so a long run does not fill the disk. Rank 0 writes."""
    if d.main:
        ckpt_dir = run_dir / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(ckpt_dir / "last.pt") as tmp:
            torch.save({**blob, "step": step}, tmp)
        if keep_every and step % keep_every == 0:
            with atomic_path(ckpt_dir / f"step_{step:08d}.pt") as tmp:
                shutil.copyfile(ckpt_dir / "last.pt", tmp)
            kept = sorted(ckpt_dir.glob("step_*.pt"))
            for old in kept[:-keep] if keep else []:
                old.unlink()
    distributed.barrier(d)


def _shard_path(run_dir: Path, d: distributed.Dist) -> Path:
    return run_dir / "checkpoints" / f"rank{d.rank:03d}of{d.world:03d}.pt"


def save_shard(run_dir: Path, step: int, state: dict, d: distributed.Dist) -> None:
    """This rank's parts of a model split over the ranks (Partial FC's class weights, the sharded centre table),
    beside ``last.pt``: every rank writes its own file (atomic)."""
    path = _shard_path(run_dir, d)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"step": step, "rank": d.rank, "world": d.world, "state": state}, tmp)


def load_shard(run_dir: Path, step: int, d: distributed.Dist, device: torch.device) -> dict:
    path = _shard_path(run_dir, d)
    if not path.is_file():
        found = sorted(p.name for p in (run_dir / "checkpoints").glob("rank*of*.pt"))
        raise InputError(f"{path}: no shard (class weights, centres) for rank {d.rank} of {d.world} (found: "
                         f"{', '.join(found) or 'none'}); resume with the number of ranks the run was written with")
    blob = torch.load(path, map_location=device, weights_only=True)
    if blob["step"] != step:
        raise InputError(f"{path}: shard of step {blob['step']}, but last.pt is step {step}; the run was killed "
                         f"between the two writes: resume from a kept step_*.pt copy or start anew")
    return blob["state"]


def load_checkpoint(run_dir: Path, fmt: str, device: torch.device, fingerprint: str) -> dict:
    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        raise InputError(f"{last}: no checkpoint to resume from")
    blob = torch.load(last, map_location=device, weights_only=True)
    if blob.get("format") != fmt:
        raise InputError(f"{last}: not a {fmt} checkpoint")
    if blob.get("data_fingerprint") != fingerprint:
        raise InputError(f"{last}: the training manifests changed since this run started "
                         f"(fingerprint {blob.get('data_fingerprint')} -> {fingerprint}); start a new run")
    return blob


def plot_metrics(metrics_csv: Path, target: Path, panels: list[tuple[str, list[str]]]) -> None:
    """One panel per (title, columns) of metrics.csv against the step; columns missing from the file are skipped."""
    if not metrics_csv.exists():
        return
    import pandas as pd

    from facekit.report.plots import pyplot, save_figure

    df = pd.read_csv(metrics_csv)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (title, cols) in zip(axes[0], panels):
        for c in cols:
            if c in df:
                ax.plot(df["step"], df[c], "o-" if df[c].notna().sum() < 20 else "-", label=c, markersize=3)
        ax.set_xlabel("step"), ax.set_title(title), ax.legend(fontsize=8), ax.grid(alpha=0.3)
    save_figure(fig, target)


def write_summary(run_dir: Path, command: str, cfg, steps: int, final: dict, seconds: float, **extra) -> None:
    """``summary.json``: settings, versions, git revision, data fingerprint and the final numbers."""
    from facekit.provenance import git_revision, versions

    write_json(run_dir / "summary.json", {"command": command, "steps": steps, "final": final, **extra,
                                          "deterministic": torch.are_deterministic_algorithms_enabled(),
                                          "config": to_dict(cfg), "versions": versions(),
                                          "git_revision": git_revision(), "seconds": seconds})


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool):
    """``--deterministic``: torch's deterministic algorithms (and cuDNN's) for the duration of a run.

    On CPU facekit's training is bit-exact without it (batches are a pure function of seed and step). On CUDA,
    ``index_add_`` (the centre updates), cuDNN's backward convolutions and atomics make runs and resumes differ in
    the last bits; this makes them repeatable at some speed cost. cuBLAS needs CUBLAS_WORKSPACE_CONFIG, set here
    when the user has not."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


class CostEstimate:
    """After the first steps of a run on a CPU, the time the whole run would take; when that is over a day, one
    line saying so and pointing at the small recipe (a paper-scale recipe is weeks of CPU)."""

    def __init__(self, device: torch.device, start: int, steps: int, small_recipe: str, enabled: bool = True,
                 after: int = 5) -> None:
        self.on = enabled and device.type == "cpu" and steps - start > 10 * after
        self.start, self.steps, self.small, self.after = start, steps, small_recipe, after
        self.t0 = 0.0

    def note(self, step: int) -> str | None:
        """Call after each step; returns the line once (or None)."""
        if not self.on:
            return None
        if step == self.start + 1:  # the first step pays for start-up: timed from its end
            self.t0 = time.perf_counter()
        elif step == self.start + 1 + self.after:
            self.on = False
            per_step = (time.perf_counter() - self.t0) / self.after
            hours = per_step * (self.steps - step) / 3600
            if hours > 24:
                return (f"note: {per_step:.2f} s a step on this CPU: the remaining {self.steps - step:,} steps take "
                        f"about {hours:,.0f} hours; for a run that fits a CPU try -r {self.small}")
        return None
