"""Reading and writing manifest tables: atomic part files, schema validation on read."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from facekit.errors import ManifestError
from facekit.fsutil import atomic_path
from facekit.manifests.schemas import SCHEMAS, TableSchema


def table_dir(root: str | Path, table: str) -> Path:
    """``<root>/manifests/<table>``: the folder holding the table's part files."""
    return Path(root) / "manifests" / table


def table_files(location: str | Path, table: str | None = None) -> list[Path]:
    """Part files of a table. ``location`` is an output root (``<root>/manifests/<table>``), a folder of table
    folders (``<location>/<table>``), a table folder, or one Parquet file."""
    loc = Path(location)
    candidates = [loc] if table is None else [table_dir(loc, table), loc / table, loc]
    for folder in candidates:
        if folder.is_file():
            return [folder]
        if folder.is_dir() and (table is None or folder != loc or any(folder.glob("*.parquet"))):
            return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    raise ManifestError(f"{candidates[0]}: manifest not found")


def write_part(root: str | Path, schema: TableSchema, part_name: str, rows: pd.DataFrame | list[dict]) -> Path:
    """Write one part file ``<root>/manifests/<table>/<part_name>.parquet`` atomically, cast to ``schema``."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=[c.name for c in schema.columns])
    try:
        table = pa.Table.from_pandas(df[[c.name for c in schema.columns]], schema=schema.arrow, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as err:
        raise ManifestError(f"{schema.name}: rows do not match the schema: {err}") from None
    target = table_dir(root, schema.name) / f"{part_name}.parquet"
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


class PartWriter:
    """Rows of several tables, buffered and written as one numbered part file per table with the ``commit`` table
    (the last schema) written last: a part of the commit table means the same part of every other table is
    complete, so resume and readers trust only committed parts (``clean_leftovers`` removes the rest). Part names
    ``<tag>-<k>`` continue after the committed parts already in ``root``."""

    def __init__(self, root: str | Path, tag: str, schemas: list[TableSchema]) -> None:
        self.root, self.tag, self.schemas = Path(root), tag, schemas
        done = table_dir(root, schemas[-1].name).glob(f"{tag}-*.parquet")
        self.next_part = 1 + max((int(p.stem.rsplit("-", 1)[1]) for p in done), default=-1)
        self.rows: dict[str, list[dict]] = {s.name: [] for s in schemas}

    def add(self, table: str, rows: Iterable[dict]) -> None:
        self.rows[table].extend(rows)

    @property
    def pending(self) -> int:
        """Rows of the commit table not written yet."""
        return len(self.rows[self.schemas[-1].name])

    def flush(self) -> None:
        if not self.pending:
            return
        name = f"{self.tag}-{self.next_part:06d}"
        for schema in self.schemas:  # the commit table last
            write_part(self.root, schema, name, self.rows[schema.name])
        self.next_part += 1
        for rows in self.rows.values():
            rows.clear()


def validate_file(path: Path, schema: TableSchema) -> None:
    """Raise ``ManifestError`` naming the file and column unless the file carries ``schema``'s columns."""
    try:
        found = pq.read_schema(path)
    except Exception as err:
        raise ManifestError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:120]})") from None
    meta = found.metadata or {}
    table = meta.get(b"facekit.table", b"").decode()
    if table and table != schema.name:
        raise ManifestError(f"{path}: holds manifest table '{table}', expected '{schema.name}'")
    version = meta.get(b"facekit.schema_version")
    if version is not None and int(version) > schema.version:
        raise ManifestError(f"{path}: {schema.name} schema version {int(version)} is newer than this facekit "
                            f"supports ({schema.version}); upgrade facekit")
    for col in schema.columns:
        idx = found.get_field_index(col.name)
        if idx < 0:
            raise ManifestError(f"{path}: column '{col.name}' is missing ({schema.name} schema v{schema.version})")
        have = found.field(idx).type
        if have != col.type and not _compatible(have, col.type):
            raise ManifestError(f"{path}: column '{col.name}' has type {have}, expected {col.type}")


def _compatible(have: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_null(have):  # a column of nulls only, as pandas writes it
        return True
    if pa.types.is_integer(want) and pa.types.is_integer(have):
        return True
    if pa.types.is_floating(want) and (pa.types.is_floating(have) or pa.types.is_integer(have)):
        return True
    if pa.types.is_string(want) and (pa.types.is_large_string(have) or pa.types.is_string(have)):
        return True
    if pa.types.is_list(want) or pa.types.is_fixed_size_list(want):
        return (pa.types.is_list(have) or pa.types.is_fixed_size_list(have) or pa.types.is_large_list(have)) and \
            _compatible(have.value_type, want.value_type) or have == want
    return False


def read_manifest(location: str | Path, table: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """All rows of a table as a DataFrame, every part validated first. Empty table -> empty frame with columns."""
    schema = SCHEMAS[table]
    files = table_files(location, table)
    for f in files:
        validate_file(f, schema)
    cols = list(columns) if columns is not None else [c.name for c in schema.columns]
    if not files:
        return pd.DataFrame(columns=cols)
    return pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pandas()
