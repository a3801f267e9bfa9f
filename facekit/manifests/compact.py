"""Compaction: rewrite a root's many small part files (one flush group each) into few large ones, safely.

A writer (extract-sequences, extract-frames, build identities) holds a shared lock on ``<root>/.facekit.lock``
while it runs; ``compact`` takes it exclusively, so it is refused while any writer runs, and a writer started
during a compaction is refused. Consecutive flush groups of a shard become one group named after its last member
(``<shard>-<k>``): every table keeps the same group names, so resume (``clean_leftovers``), ``manifest check`` and
the next flush number (``PartWriter``) read a compacted root as they read any other.

Safe against a kill: the new parts are written under ``<root>/.compact/`` first, then a plan naming each new
part and the parts it replaces is written atomically (the commit point), then the plan is carried out. A
compaction killed before its plan is simply redone; one killed after it is finished by the next ``compact`` or the
next writer (``finish``), before either does anything else."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from facekit.errors import InputError
from facekit.fsutil import atomic_path, write_json
from facekit.manifests.io import table_dir
from facekit.manifests.owner import claim_root

LOCK = ".facekit.lock"
STAGE = ".compact"


def _lock(root: Path, mode: int, who: str):
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = "a compaction ('facekit manifest compact')" if mode == fcntl.LOCK_SH else "a writer"
        raise InputError(f"{root}: {holder} holds this root; {who} waits for it to end (rerun then)") from None
    return fd


@contextlib.contextmanager
def writing(root: str | Path, command: str) -> Iterator[None]:
    """Held by a writer for its whole run: shared with other writers (shards of one root), refused during a
    compaction. A compaction killed after its commit point is finished first."""
    root = Path(root)
    claim_root(root, command)  # a root another command made is refused before anything is written into it
    fd = _lock(root, fcntl.LOCK_SH, f"'facekit {command}'")
    try:
        finish(root)
        yield
    finally:
        os.close(fd)


def writer(command: str):
    """Decorate a function with an ``out`` argument (a root it writes): it runs ``writing(out, command)``, which
    claims the root for ``command`` first."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            out = inspect.signature(fn).bind(*args, **kwargs).arguments["out"]
            with writing(out, command):
                return fn(*args, **kwargs)
        return run
    return wrap


def _groups(root: Path) -> dict[str, list[tuple[int, str]]]:
    """Flush groups per shard tag: {tag: [(k, stem), ...]} sorted by k, from every table's part names (the parts
    of one group share their name)."""
    tables = [d for d in (root / "manifests").iterdir() if d.is_dir() and d.name != "review"]
    by_tag: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for d in tables:
        for p in d.glob("*.parquet"):
            tag, _, k = p.stem.rpartition("-")
            if tag and k.isdigit() and not p.name.startswith("."):
                by_tag[tag].add((int(k), p.stem))
    return {tag: sorted(v) for tag, v in by_tag.items()}


def plan(root: Path, rows_per_part: int) -> list[dict]:
    """Runs of consecutive groups of one shard to merge, each up to ``rows_per_part`` rows of its largest table;
    runs of one group are left alone."""
    tables = sorted(d.name for d in (root / "manifests").iterdir() if d.is_dir() and d.name != "review")
    steps = []
    for tag, groups in sorted(_groups(root).items()):
        run: list[str] = []
        rows = 0
        for _, stem in groups:
            n = max((pq.read_metadata(p).num_rows for t in tables if (p := table_dir(root, t) / f"{stem}.parquet")
                     .is_file()), default=0)
            if run and rows + n > rows_per_part:
                steps.append(run)
                run, rows = [], 0
            run.append(stem)
            rows += n
        steps.append(run)
    return [{"name": run[-1], "members": run, "tables": tables} for run in steps if len(run) > 1]


def compact(root: str | Path, rows_per_part: int = 2_000_000) -> dict:
    """Rewrite ``root``'s part files into few large ones (see the module doc). Returns files before / after."""
    root = Path(root)
    if not (root / "manifests").is_dir():
        raise InputError(f"{root}: no manifests/ folder (not a facekit root)")
    fd = _lock(root, fcntl.LOCK_EX, "'facekit manifest compact'")
    try:
        finish(root)
        before = sum(1 for _ in (root / "manifests").rglob("*.parquet"))
        shutil.rmtree(root / STAGE, ignore_errors=True)  # a compaction killed before its commit point
        steps = plan(root, rows_per_part)
        for step in steps:
            for t in step["tables"]:
                parts = [p for m in step["members"] if (p := table_dir(root, t) / f"{m}.parquet").is_file()]
                if not parts:
                    continue
                merged = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
                schema = pq.read_schema(parts[0])  # keeps the facekit.table / schema_version metadata
                with atomic_path(root / STAGE / t / f"{step['name']}.parquet") as tmp:
                    pq.write_table(merged.replace_schema_metadata(schema.metadata), tmp, compression="zstd",
                                   row_group_size=256 * 1024)
        write_json(root / STAGE / "plan.json", {"steps": steps})  # the commit point
        finish(root)
        after = sum(1 for _ in (root / "manifests").rglob("*.parquet"))
        return {"files_before": before, "files_after": after, "groups_merged": sum(len(s["members"]) for s in steps)}
    finally:
        os.close(fd)


def finish(root: str | Path) -> None:
    """Carry out a committed compaction plan (idempotent): each staged part replaces its run's last member, the
    other members go; then the staging folder goes."""
    root = Path(root)
    plan_file = root / STAGE / "plan.json"
    if not plan_file.is_file():
        return
    for step in json.loads(plan_file.read_text())["steps"]:
        for t in step["tables"]:
            staged = root / STAGE / t / f"{step['name']}.parquet"
            if staged.is_file():
                os.replace(staged, table_dir(root, t) / f"{step['name']}.parquet")
            for m in step["members"][:-1]:
                with contextlib.suppress(FileNotFoundError):
                    (table_dir(root, t) / f"{m}.parquet").unlink()
    shutil.rmtree(root / STAGE, ignore_errors=True)
