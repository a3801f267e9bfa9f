"""Training metrics: CSV (always) and TensorBoard event files (``<run>/tb``), written by rank 0 only.

On resume, CSV rows past the checkpoint's step are dropped first, so the file reads as one uninterrupted run."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from facekit.fsutil import atomic_path


class RunLog:
    def __init__(self, run_dir: Path, resume_step: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.csv"
        self.writer = None
        if not enabled:
            return
        if self.path.exists():
            with self.path.open() as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
            self._rewrite(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step + 1)
        except ImportError:  # tensorboard is a declared dependency; a stripped install still gets the CSV
            self.writer = None

    def _rewrite(self, rows: list[dict]) -> None:
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as fh:
            if rows:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **values}
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            with self.path.open() as fh:
                header = fh.readline().strip().split(",")
            if header != list(row):  # a new column (e.g. the first verification): rewrite with the union
                with self.path.open() as fh:
                    rows = list(csv.DictReader(fh))
                keys = list(dict.fromkeys([*header, *row]))
                self._rewrite([{k: r.get(k, "") for k in keys} for r in rows])
                header = keys
            with self.path.open("a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=header).writerow({k: row.get(k, "") for k in header})
        else:
            self._rewrite([row])
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class MetricWindow:
    """A logging window's sums kept on the device, so that the host never waits for the device between logging
    steps: ``add`` a step's values (left out when the step was skipped), ``read`` their means over the applied
    steps at a logging step (one sync) and start a new window. ``host`` values (e.g. the loader wait, measured on
    the host) are averaged over every step."""

    def __init__(self, names: tuple[str, ...], device: torch.device) -> None:
        self.names, self.device = names, device
        self._reset()

    def _reset(self) -> None:
        self._sum = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        self._steps = torch.zeros((), dtype=torch.float64, device=self.device)
        self._host: dict[str, list[float]] = {}

    def add(self, ok: torch.Tensor, *values: torch.Tensor) -> None:
        step_v = torch.stack([v.detach().double().reshape(()) for v in values])
        self._sum += torch.where(ok, step_v, 0.0)
        self._steps += ok.double()

    def host(self, name: str, value: float) -> None:
        self._host.setdefault(name, []).append(value)

    def read(self) -> dict[str, float]:
        """Means over the window's applied steps (NaN when every step was skipped); the window starts anew."""
        *sums, steps = torch.cat([self._sum, self._steps[None]]).tolist()
        out = {k: s / steps if steps else float("nan") for k, s in zip(self.names, sums)}
        out.update({k: sum(v) / len(v) for k, v in self._host.items()})
        self._reset()
        return out
