"""Inputs in error, for the end-of-run summaries of ``extract-sequences``, ``extract-frames`` and ``build
identities``, and the stop on Ctrl-C."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from facekit.errors import InputError, InputsFailed, Interrupted


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
        if self.listed:
            path, reason = self.listed[0]
            raise_if_too_many(len(self.listed), total, allowed, f"{self.unit} failed", f"{path}: {reason}")


def raise_if_too_many(failed: int, total: int, allowed: float, what: str, first: str) -> None:
    """``InputsFailed`` (exit 3) when ``failed`` of ``total`` inputs is more than the ``allowed`` share."""
    if failed and failed > allowed * total:
        raise InputsFailed(f"{failed} of {total} {what} (first: {first}); every other result is committed; "
                           f"--allow-failures {failed / total:.3g} accepts this share")


def stop_after_commit(parts, saved_before: int, handed: int, total: int, unit: str,
                      shard: tuple[int, int]) -> Interrupted:
    """Ctrl-C in a writer's loop: commit every input handed back so far (each is whole), return the error that
    says how many of the shard's inputs are saved."""
    parts.flush()
    return Interrupted(f"interrupted: {saved_before + handed} of {total} {unit} of shard {shard[0]}/{shard[1]} are "
                       f"saved ({handed} in this run); rerun the same command to resume")
