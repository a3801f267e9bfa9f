"""Manifest versions, fingerprints and lineage.

Every output root a facekit command writes carries ``lineage.json``: the command, its settings, facekit's
version and git revision, and each input with its content fingerprint. A root's *content fingerprint* is a
hash over its manifest part files (names and bytes), so two roots with equal fingerprints hold the same rows.
Derived roots (curation, splits, merges) keep their parents' crops where they are and point at them with
paths relative to the new root, so a derived root costs only its manifests.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd

from facekit.align.templates import Template, get_template
from facekit.errors import InputError
from facekit.fsutil import write_json
from facekit.manifests.io import write_part
from facekit.manifests.owner import claim_root
from facekit.manifests.schemas import SCHEMAS
from facekit.provenance import __version__, fingerprint_files, git_revision

LINEAGE = "lineage.json"


def content_fingerprint(root: str | Path) -> str:
    """sha256 (16 hex digits) over every manifest part file under ``<root>/manifests`` (relative names + bytes)."""
    base = Path(root) / "manifests"
    return fingerprint_files(list(base.rglob("*.parquet")) if base.is_dir() else [], base)


def write_lineage(out: Path, command: str, settings: dict, inputs: list[Path] = ()) -> None:
    write_json(out / LINEAGE, {
        "command": command, "settings": settings, "facekit_version": __version__, "git_revision": git_revision(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": [{"root": str(p), "fingerprint": content_fingerprint(p)} for p in inputs],
        "fingerprint": content_fingerprint(out)})


def read_lineage(root: Path) -> dict:
    path = Path(root) / LINEAGE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InputError(f"{path}: not valid JSON") from None


def crop_template(root: Path) -> Template:
    """The template the crops under ``root`` were aligned to: from lineage.json or extract_config.json; crops
    of a derived root inherit their first input's."""
    root = Path(root)
    lin = read_lineage(root)
    s = lin.get("settings", {})
    if "template" in s:
        return get_template(s["template"], s.get("crop_size") or s.get("size"))
    cfg = root / "extract_config.json"
    if cfg.is_file():
        c = json.loads(cfg.read_text())["config"]
        return get_template(c["template"], c["crop_size"])
    if lin.get("inputs"):
        return crop_template(Path(lin["inputs"][0]["root"]))
    raise InputError(f"{root}: cannot tell which template its crops are aligned to (no lineage.json or "
                     f"extract_config.json)")


def check_output_root(out: Path, inputs: list[Path], command: str) -> None:
    """Claim ``out`` for the derived root ``command`` writes (``claim_root``: never a root another command made).
    A derived root (one ``part-000000`` per table) may replace an earlier derived root, never an input root or
    a root written another way (extraction parts): the error names ``out``."""
    if any(Path(out).resolve() == Path(i).resolve() for i in inputs):
        raise InputError(f"--out {out}: is an input root; choose another folder")
    other = [p for p in Path(out).glob("manifests/*/*.parquet") if p.stem != "part-000000"]
    if other:
        raise InputError(f"--out {out}: already holds other manifests ({other[0]}); choose another folder or remove it")
    claim_root(out, command)


def write_derived(src: Path, out: Path, tables: dict[str, pd.DataFrame], command: str, settings: dict,
                  inputs: list[Path] | None = None) -> None:
    """Write ``tables`` (rows of ``src``'s tables) as a new root ``out``: crop paths rewritten relative to ``out``
    (the crops stay where they are), one part file per table, and lineage.json."""
    check_output_root(out, inputs or [src], command)
    for name, df in tables.items():
        write_part(out, SCHEMAS[name], "part-000000", rebase_crops(df, src, out))
    write_lineage(out, command, settings, inputs or [src])


def rebase_crops(df: pd.DataFrame, src: Path, out: Path) -> pd.DataFrame:
    """``df`` with its ``crop_path`` (relative to ``src``, or null) made relative to ``out``; unchanged when it
    has no crop column."""
    if "crop_path" not in df.columns:
        return df
    rel = os.path.relpath(Path(src).resolve(), Path(out).resolve())
    return df.assign(crop_path=[None if p is None else os.path.normpath(os.path.join(rel, p)) for p in df["crop_path"]])
