"""Training metrics: CSV (always) and TensorBoard event files (``<run>/tb``), written by rank 0 only.

On resume, CSV rows past the checkpoint's step are dropped first, so the file reads as one uninterrupted run."""

from __future__ import annotations

import csv
from pathlib import Path

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
