"""Inputs in error, for the end-of-run summaries of ``extract-sequences`` and ``extract-frames``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from facekit.errors import InputError, InputsFailed


@dataclass
class Failures:
    """``now``: inputs of this run in error; ``listed``: (path, reason) of every input in error in the shard's
    manifest table ``table`` (earlier, resumed runs included)."""

    table: str  # the manifest table that records them: videos, utterances
    unit: str  # what an input is called in messages: videos, clips
    listed: list[tuple[str, str]] = field(default_factory=list)
    now: int = 0

    def read(self, rows: pd.DataFrame) -> None:
        """Take the ``status == 'error'`` rows (with ``path`` and ``error``) of the manifest table."""
        bad = rows[rows["status"] == "error"]
        self.listed = list(zip(bad["path"].astype(str), bad["error"].fillna("").astype(str)))

    def lines(self, first: int = 5) -> list[str]:
        """The first few failed inputs with their reasons, then a count."""
        if not self.listed:
            return []
        out = [f"failed: {len(self.listed)}"] + [f"  {path}: {reason}" for path, reason in self.listed[:first]]
        if len(self.listed) > first:
            out.append(f"  ... and {len(self.listed) - first} more (status = 'error' in the {self.table} manifest)")
        return out

    def check(self, processed: int, total: int, allowed: float = 0.0) -> None:
        """After everything is committed: ``InputError`` (exit 2) when every input of this run failed,
        ``InputsFailed`` (exit 3) when more than ``allowed`` (a share, 0..1) of the shard's ``total`` inputs are
        in error, this run's and earlier runs' alike (a rerun that resumes still says so)."""
        if processed and self.now == processed:
            path, reason = self.listed[0]
            raise InputError(f"all {processed} {self.unit} failed (first: {path}: {reason})")
        if self.listed and len(self.listed) > allowed * total:
            path, reason = self.listed[0]
            raise InputsFailed(f"{len(self.listed)} of {total} {self.unit} failed (first: {path}: {reason}); "
                               f"every other result is committed; --allow-failures {len(self.listed) / total:.3g} "
                               f"accepts this share")
