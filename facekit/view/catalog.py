"""What ``facekit view`` shows: the roots it was given (manifest roots, curated roots, benchmark reports), their
lineage, the folders whose files it may serve, and one DuckDB connection over their manifests that can read
nothing else (external access off, configuration locked once the views exist)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from facekit.errors import InputError
from facekit.manifests.lineage import read_lineage
from facekit.manifests.ops import root_tables

REPORT_IMAGES = ("roc.png", "det.png", "cmc.png")


@dataclass
class Root:
    index: int
    path: Path  # resolved
    kind: str  # sequences | identities | frames | report
    tables: list[str] = field(default_factory=list)
    lineage: dict = field(default_factory=dict)
    curation: Path | None = None  # curation_report.json of a curated root

    @property
    def name(self) -> str:
        return self.path.name

    def view(self, table: str) -> str:
        """The DuckDB view of one of its tables."""
        return f'"r{self.index}_{table}"'


def expand(paths: list[Path]) -> list[Path]:
    """The roots under ``paths``: a folder of benchmark reports (``reports/``) stands for each report in it."""
    out = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise InputError(f"{p}: not a folder (give facekit roots: sequences, frames, identities, curated, "
                             f"reports)")
        if not (p / "manifests").is_dir() and not (p / "report.json").is_file():
            reports = sorted(c for c in p.iterdir() if (c / "report.json").is_file())
            if not reports:
                raise InputError(f"{p}: neither a facekit root (no manifests/) nor a benchmark report (no "
                                 f"report.json)")
            out += reports
        else:
            out.append(p)
    return out


def describe(index: int, path: Path) -> Root:
    path = path.resolve()
    if (path / "report.json").is_file():
        return Root(index, path, "report")
    kind, _, _ = root_tables(path)
    tables = sorted(d.name for d in (path / "manifests").iterdir() if d.is_dir() and any(d.glob("*.parquet")))
    curation = path / "curation_report.json"
    return Root(index, path, kind, tables, read_lineage(path), curation if curation.is_file() else None)


def lineage_ancestors(root: Path) -> list[Path]:
    """Every root ``root``'s lineage names, recursively, resolved (a derived root's crops live in its inputs).
    An input recorded as a relative path is looked up from the current folder, then from the root's parents."""
    found: list[Path] = []
    todo = [Path(os.path.realpath(root))]
    while todo:
        here = todo.pop()
        for item in read_lineage(here).get("inputs", []):
            rel = Path(item.get("root", ""))
            for base in (Path.cwd(), *here.parents):
                cand = Path(os.path.realpath(base / rel))
                if (cand / "manifests").is_dir():
                    if cand not in found and cand != Path(os.path.realpath(root)):
                        found.append(cand)
                        todo.append(cand)
                    break
    return found


def connect(roots: list[Root]) -> duckdb.DuckDBPyConnection:
    """One view ``r<i>_<table>`` per manifest table of each root, over the table's part files (a glob, so parts
    written while the viewer runs are seen); then the connection is shut off from every other file, URL,
    extension and setting."""
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    allowed = [str(r.path / "manifests") + os.sep for r in roots if r.kind != "report"]
    for r in roots:
        for t in r.tables:
            glob = str(r.path / "manifests" / t / "*.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW {r.view(t)} AS SELECT * FROM read_parquet('{glob}', union_by_name=true)")
    con.execute("SET allowed_directories = ?", [allowed])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def report_summary(root: Root) -> dict:
    return json.loads((root.path / "report.json").read_text())
