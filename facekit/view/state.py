"""The viewer's state: its roots (given, then those their lineage names), the locked DuckDB connection, the review
marks of each root, and the crops a page has named (served without asking the manifests again)."""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from facekit.manifests.review import add_mark, current_marks
from facekit.view import catalog, queries
from facekit.view.catalog import Root


class Viewer:
    def __init__(self, paths: list[Path], reviewer: str | None = None) -> None:
        given = [Path(os.path.realpath(p)) for p in catalog.expand(paths)]
        extra = [a for p in given for a in catalog.lineage_ancestors(p) if a not in given]
        self.roots = [catalog.describe(i, p) for i, p in enumerate(dict.fromkeys(given + extra))]
        self.given = len(dict.fromkeys(given))
        self.con = catalog.connect(self.roots)
        self.reviewer = reviewer
        self.lock = threading.Lock()
        self.marks = {r.index: self._load_marks(r) for r in self.roots if r.kind != "report"}
        self.named: OrderedDict[tuple[int, str], None] = OrderedDict()  # (root, rel) crops pages have named

    def cursor(self):
        return self.con.cursor()

    @staticmethod
    def _load_marks(root: Root) -> dict[tuple[str, str], dict]:
        marks = current_marks(root.path)
        return {(m["item_kind"], m["item_id"]): m for m in marks.to_dict("records")}

    def root(self, index: int) -> Root:
        if not 0 <= index < len(self.roots):
            raise KeyError(index)
        return self.roots[index]

    # -- files --------------------------------------------------------------------------------------------------
    def crop_url(self, root: Root, crop_path: str | None) -> str | None:
        """The URL of a crop named (relative to ``root``) by a manifest row: ``/crop/<j>/<path under root j>``
        for the viewer root j holding it; None when no root holds it."""
        if not crop_path:
            return None
        full = os.path.normpath(os.path.join(root.path, crop_path))
        for r in self.roots:
            base = str(r.path) + os.sep
            if full.startswith(base):
                rel = full[len(base):]
                with self.lock:
                    self.named[(r.index, rel)] = None
                    while len(self.named) > 200_000:
                        self.named.popitem(last=False)
                return f"/crop/{r.index}/{quote(rel)}"  # a name with '#', '?' or spaces stays one path
        return None

    def servable(self, index: int, rel: str) -> Path | None:
        """The file of ``/crop/<index>/<rel>`` when a manifest names it and it lies inside root ``index`` (its real
        path: a symlink out of the root is refused); else None."""
        if index < 0 or index >= len(self.roots) or not rel or "\\" in rel or "\0" in rel or rel.startswith("/") \
                or any(part in ("", ".", "..") for part in rel.split("/")):
            return None
        root = self.roots[index]
        named = (index, rel) in self.named or any(
            r.kind != "report" and queries.names_file(self.cursor(), r, os.path.relpath(root.path / rel, r.path))
            for r in self.roots)
        if not named:
            return None
        real = os.path.realpath(root.path / rel)
        if not real.startswith(str(root.path) + os.sep) or not os.path.isfile(real):
            return None
        return Path(real)

    # -- review -------------------------------------------------------------------------------------------------
    def mark(self, root: Root, item_kind: str, item_id: str, decision: str, reason: str | None) -> dict:
        row = add_mark(root.path, item_kind, item_id, decision, reason, self.reviewer)
        with self.lock:
            self.marks[root.index][(item_kind, item_id)] = row
        return row

    def rejected(self, root: Root, item_kind: str) -> list[str]:
        return sorted(i for (k, i), m in self.marks[root.index].items() if k == item_kind and m["decision"] ==
                      "rejected")

    def mark_of(self, root: Root, item_kind: str, item_id: str) -> dict | None:
        m = self.marks[root.index].get((item_kind, str(item_id)))
        return m if m and m["decision"] == "rejected" else None

    def counts(self, root: Root) -> dict[str, int]:
        cur = self.cursor()
        return {t: int(cur.execute(f"SELECT count(*) FROM {root.view(t)}").fetchone()[0]) for t in root.tables}

    def curation(self, root: Root) -> tuple[dict, pd.DataFrame]:
        """A curated root's report (curation_report.json) and its decisions as a table."""
        data = json.loads(root.curation.read_text())
        return data, pd.DataFrame(data.pop("decisions", []))
