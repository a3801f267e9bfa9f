"""DuckDB over manifests: every table folder under ``<root>/manifests/`` becomes a view named after it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from facekit.errors import InputError, ManifestError
from facekit.manifests.io import table_files, validate_file
from facekit.manifests.schemas import DROP_REASONS, SCHEMAS


def connect(root: str | Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, list[Path]]]:
    """An in-memory DuckDB connection with one view per manifest table (known tables validated first)."""
    base = Path(root) / "manifests"
    if not base.is_dir():  # also accept a folder holding the table folders directly
        base = Path(root)
    if not base.is_dir():
        raise ManifestError(f"{root}: no manifests folder (expected {Path(root) / 'manifests'})")
    con = duckdb.connect()
    tables: dict[str, list[Path]] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        files = table_files(folder)
        if not files:
            continue
        if folder.name in SCHEMAS:
            for f in files:
                validate_file(f, SCHEMAS[folder.name])
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        con.execute(f'CREATE VIEW "{folder.name}" AS SELECT * FROM read_parquet([{listing}], union_by_name=true)')
        tables[folder.name] = files
    return con, tables


def run_query(root: str | Path, sql: str) -> pd.DataFrame:
    """Run ``sql`` with the manifest tables in scope; errors name the problem in one line."""
    con, tables = connect(root)
    try:
        return con.execute(sql).fetchdf()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0]
        raise InputError(f"query failed: {first} (tables: {', '.join(tables) or 'none'})") from None


def manifest_stats(root: str | Path) -> dict:
    """Row/file/byte counts per table, plus the curation figures when the extract tables are there."""
    con, tables = connect(root)
    out: dict = {"tables": {}}
    for name, files in tables.items():
        rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        out["tables"][name] = {"rows": int(rows), "files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    if "videos" in tables:
        out["videos_by_status"] = dict(con.execute(
            "SELECT status, count(*) FROM videos GROUP BY status ORDER BY status").fetchall())
        drops = ", ".join(f"sum(dropped_{r})" for r in DROP_REASONS)
        out["dropped_faces"] = dict(zip(DROP_REASONS, map(int, con.execute(f"SELECT {drops} FROM videos").fetchone())))
    if "sequences" in tables:
        row = con.execute("SELECT count(*), min(num_faces), median(num_faces), avg(num_faces), max(num_faces) "
                          "FROM sequences").fetchone()
        out["sequence_length"] = dict(zip(("count", "min", "median", "mean", "max"),
                                          [float(x) if x is not None else None for x in row]))
    return out
