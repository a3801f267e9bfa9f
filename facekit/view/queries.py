"""The viewer's questions to DuckDB: a page of items (sequences, identities, utterances) with their first, middle
and last faces, one item's faces, and whether a file is named by a manifest. Every query reads only the columns
and rows it shows; a user's filter is one SQL expression, checked to be one SELECT before it runs."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from facekit.view.catalog import Root


@dataclass(frozen=True)
class Unit:
    noun: str  # what a grid cell is
    item_kind: str  # its kind in the review table
    key: str
    source: str  # SQL of the item rows; {table} stands for the root's view of it
    members: str  # SQL of its faces (each with crop_path)
    order: str  # faces' order inside an item
    fields: tuple[str, ...]  # item fields shown, sortable and filterable (numbers)
    labels: tuple[str, ...]  # item fields shown as text
    face_fields: tuple[str, ...]


UNITS = {
    "sequences": Unit("sequences", "sequence", "sequence_id", "SELECT * FROM {sequences}", "SELECT * FROM {faces}",
                      "frame_index", ("num_faces", "first_sec", "last_sec", "mean_score", "mean_blur", "min_blur",
                                      "mean_face_px", "mean_abs_yaw"), ("video_id", "shot_index"),
                      ("frame_index", "timestamp_sec", "score", "blur", "yaw", "roll_deg", "tracked")),
    "identities": Unit("identities", "identity", "identity",
                       "SELECT identity, min(class_index) AS class_index, count(*) AS num_faces, avg(score) AS "
                       "mean_score, avg(blur) AS mean_blur, avg(face_px) AS mean_face_px FROM {identities} WHERE "
                       "status = 'ok' GROUP BY identity", "SELECT * FROM {identities} WHERE status = 'ok'",
                       "source_path", ("num_faces", "mean_score", "mean_blur", "mean_face_px"), ("class_index",),
                       ("source_path", "num_faces", "score", "face_px", "blur")),
    "frames": Unit("utterances", "utterance", "utterance_id", "SELECT * FROM {utterances} WHERE frames_kept > 0",
                   "SELECT * FROM {frames}", "frame_index", ("frames_kept", "num_frames", "fps"),
                   ("identity", "video", "split"), ("frame_index", "timestamp_sec", "score", "blur")),
}


class FilterError(ValueError):
    """A user's filter or sort that cannot run: the message is shown on the page."""


class _Views(dict):
    def __init__(self, root: Root) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, table: str) -> str:
        return self.root.view(table)


def _sql(template: str, root: Root) -> str:
    """``template`` with each ``{table}`` replaced by ``root``'s view of it."""
    return template.format_map(_Views(root))


def check_expression(expr: str) -> str:
    """``expr`` when it is one SQL expression (no statement separator, nothing after it); else ``FilterError``."""
    expr = expr.strip()
    if not expr:
        return "TRUE"
    try:
        statements = duckdb.extract_statements(f"SELECT 1 WHERE ({expr})")
    except duckdb.Error as err:
        raise FilterError(f"filter: {str(err).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise FilterError("filter: give one expression (a WHERE clause's condition), not statements")
    return expr


def where_clause(unit: Unit, expr: str, ranges: dict[str, tuple[float | None, float | None]]) -> tuple[str, list]:
    """The WHERE of a grid: the user's expression and each field's [min, max], as SQL and its parameters."""
    parts, params = [f"({check_expression(expr)})"], []
    for name, (lo, hi) in ranges.items():
        if name not in unit.fields:
            raise FilterError(f"filter: unknown field {name!r}")
        for bound, op in ((lo, ">="), (hi, "<=")):
            if bound is not None:
                parts.append(f'"{name}" {op} ?')
                params.append(bound)
    return " AND ".join(parts), params


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    try:
        return con.execute(sql, params).fetchdf()
    except duckdb.Error as err:
        raise FilterError("filter: " + str(err).strip().splitlines()[0][:300]) from None


def page(con: duckdb.DuckDBPyConnection, root: Root, expr: str = "", ranges: dict | None = None,
         sort: str | None = None, descending: bool = False, page_no: int = 0, per_page: int = 48,
         only: list[str] | None = None) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """(matching item count, the page's items, their first / middle / last faces: key, position, crop_path)."""
    unit = UNITS[root.kind]
    where, params = where_clause(unit, expr, ranges or {})
    if only is not None:
        where += f' AND "{unit.key}" IN (SELECT unnest(?::VARCHAR[]))'
        params.append(only)
    if sort not in (None, "", unit.key, *unit.fields, *unit.labels):
        raise FilterError(f"sort: unknown field {sort!r}")
    order = f'"{sort or unit.key}" {"DESC" if descending else "ASC"} NULLS LAST, "{unit.key}"'
    source = _sql(unit.source, root)
    total = int(_run(con, f"SELECT count(*) AS n FROM ({source}) WHERE {where}", params)["n"][0])
    items = _run(con, f"SELECT * FROM ({source}) WHERE {where} ORDER BY {order} LIMIT {int(per_page)} "
                      f"OFFSET {int(page_no) * int(per_page)}", params)
    keys = items[unit.key].tolist()
    faces = _run(con, f"""
        WITH m AS (SELECT "{unit.key}" AS k, crop_path,
                          row_number() OVER (PARTITION BY "{unit.key}" ORDER BY "{unit.order}") AS i,
                          count(*) OVER (PARTITION BY "{unit.key}") AS n
                   FROM ({_sql(unit.members, root)}) WHERE "{unit.key}" IN (SELECT unnest(?::VARCHAR[])))
        SELECT k, i, n, crop_path FROM m WHERE i = 1 OR i = n OR i = (n + 1) // 2 ORDER BY k, i""", [keys])
    return total, items, faces


def item(con: duckdb.DuckDBPyConnection, root: Root, key: str, page_no: int = 0,
         per_page: int = 200) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """(the item's row, its face count, a page of its faces in order)."""
    unit = UNITS[root.kind]
    row = _run(con, f'SELECT * FROM ({_sql(unit.source, root)}) WHERE "{unit.key}" = ?', [key])
    members = _sql(unit.members, root)
    n = int(_run(con, f'SELECT count(*) AS n FROM ({members}) WHERE "{unit.key}" = ?', [key])["n"][0])
    faces = _run(con, f'SELECT * FROM ({members}) WHERE "{unit.key}" = ? ORDER BY "{unit.order}" '
                      f'LIMIT {int(per_page)} OFFSET {int(page_no) * int(per_page)}', [key])
    return row, n, faces


def names_file(con: duckdb.DuckDBPyConnection, root: Root, rel: str) -> bool:
    """Whether one of ``root``'s manifests names ``rel`` (a path relative to the root) as a crop or an image."""
    for table, column in (("faces", "crop_path"), ("frames", "crop_path"), ("identities", "crop_path"),
                          ("aggregates", "image_path")):
        if table in root.tables:
            hit = con.execute(f'SELECT 1 FROM {root.view(table)} WHERE "{column}" = ? LIMIT 1', [rel]).fetchall()
            if hit:
                return True
    return False
