"""``facekit manifest check``: find every unreadable or orphaned part file of a root, and repair it.

Writers flush rows in *groups*: one part file per table with the same name (``<shard>-<k>``), the commit table
(``videos``, ``utterances``) written last. A group is whole when every table of the root's kind has its part and
each part reads. Repair removes each damaged group from every table, so the writer's resume sees exactly those
inputs as not done and redoes them (their crops are rewritten: a rerun starts each input clean)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from facekit.errors import ManifestError
from facekit.manifests.io import table_dir, validate_file
from facekit.manifests.schemas import SCHEMAS

# commit table -> the tables flushed with it (the commit table is written last)
GROUPS = {"videos": ("faces", "sequences"), "utterances": ("frames",)}


@dataclass(frozen=True)
class Damage:
    part: Path  # the damaged part file (or, for a missing part, the path it should have)
    problem: str  # one line: unreadable (why), orphaned (no commit part), incomplete (a table's part missing)

    @property
    def group(self) -> str:
        return self.part.stem


def _unreadable(path: Path, table: str) -> str | None:
    """Why ``path`` cannot be read as ``table`` (schema and every row), or None."""
    try:
        if table in SCHEMAS:
            validate_file(path, SCHEMAS[table])
        pq.read_table(path)
    except ManifestError as err:
        return str(err).removeprefix(f"{path}: ")
    except Exception as err:  # pyarrow's errors for truncated or garbled files
        return f"not a readable Parquet file ({str(err).splitlines()[0][:120]})"
    return None


def check_root(root: str | Path) -> list[Damage]:
    """Every damaged part under ``<root>/manifests``: unreadable parts of any table, parts of a flush group whose
    commit part is missing (a killed run's leftovers), commit parts whose group lacks a table's part."""
    base = Path(root) / "manifests"
    if not base.is_dir():
        raise ManifestError(f"{root}: no manifests/ folder (not a facekit root)")
    tables = sorted(p.name for p in base.iterdir() if p.is_dir())
    damage = [Damage(p, f"unreadable: {why}") for t in tables for p in sorted(table_dir(root, t).glob("*.parquet"))
              if not p.name.startswith(".") and (why := _unreadable(p, t))]
    damage += [Damage(p,
                      "unfinished temporary file") for t in tables for p in sorted(table_dir(root, t).glob(".*.tmp"))]
    for commit, others in GROUPS.items():
        if commit not in tables:
            continue
        stems = {t: {p.stem for p in table_dir(root, t).glob("*.parquet") if not p.name.startswith(".")}
                 for t in (commit, *others)}
        for t in others:
            damage += [Damage(table_dir(root, t) / f"{s}.parquet", f"orphaned: no {commit} part {s} (a killed run's "
                              f"leftover)") for s in sorted(stems[t] - stems[commit])]
            damage += [Damage(table_dir(root, t) / f"{s}.parquet", f"missing: the {commit} part {s} says its "
                              f"inputs are done") for s in sorted(stems[commit] - stems[t])]
    return damage


def repair_root(root: str | Path, damage: list[Damage]) -> list[Path]:
    """Remove every part of each damaged group from every table of the root (and unfinished temporary files);
    returns the files removed. Rerunning the writer then redoes exactly the inputs of those groups."""
    base = Path(root) / "manifests"
    groups = {d.group for d in damage if not d.part.name.startswith(".")}
    removed = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        for p in sorted(folder.iterdir()):
            if p.suffix == ".parquet" and p.stem in groups or p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()
                removed.append(p)
    return removed
