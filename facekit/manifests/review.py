"""A person's marks on a root's items (the ``review`` table): written one atomic part file per mark, read as the
latest decision per item. Only ``facekit view`` writes it; ``facekit curate review`` applies it."""

from __future__ import annotations

import datetime as dt
import getpass
import itertools
import os
import socket
from pathlib import Path

import pandas as pd

from facekit.errors import InputError
from facekit.manifests.io import read_manifest, table_dir, write_part
from facekit.manifests.schemas import REVIEW

ITEM_KINDS = ("sequence", "identity", "utterance", "face")
DECISIONS = ("rejected", "restored")
_COUNTER = itertools.count()


def default_reviewer() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def add_mark(root: str | Path, item_kind: str, item_id: str, decision: str = "rejected", reason: str | None = None,
             reviewer: str | None = None) -> dict:
    """Append one mark to ``<root>/manifests/review`` (its own part file, written atomically); returns the row."""
    if item_kind not in ITEM_KINDS:
        raise InputError(f"review: item kind {item_kind!r} is not one of {', '.join(ITEM_KINDS)}")
    if decision not in DECISIONS:
        raise InputError(f"review: decision {decision!r} is not one of {', '.join(DECISIONS)}")
    now = dt.datetime.now(dt.timezone.utc)
    row = {"item_kind": item_kind, "item_id": str(item_id), "decision": decision, "reason": reason or None,
           "reviewer": reviewer or default_reviewer(), "marked_utc": now.isoformat(timespec="microseconds")}
    name = f"review-{now.strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}-{next(_COUNTER):06d}"
    write_part(root, REVIEW, name, [row])
    return row


def current_marks(root: str | Path) -> pd.DataFrame:
    """The latest mark of every marked item (columns of the review table); empty when nothing was marked."""
    if not table_dir(root, REVIEW.name).is_dir():
        return pd.DataFrame(columns=[c.name for c in REVIEW.columns])
    marks = read_manifest(root, REVIEW.name)
    marks = marks.sort_values("marked_utc", kind="stable")
    return marks.drop_duplicates(["item_kind", "item_id"], keep="last").reset_index(drop=True)

