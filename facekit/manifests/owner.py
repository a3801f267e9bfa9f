"""Which command made an output root, and the rule that no command writes into a root another command made.

Every command that writes a root claims it first: ``facekit_root.json`` names the command, written before
anything else, so even a root whose first run was killed says who made it. A rerun of the same command (resume,
or replacing a derived root) is allowed; any other command stops with one line and writes nothing. Roots made
before the mark existed are recognised by their ``lineage.json`` (and a training run by its ``summary.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from facekit.errors import InputError
from facekit.fsutil import write_json

MARK = "facekit_root.json"


def root_maker(root: str | Path) -> str | None:
    """The command that made ``root`` (``extract-sequences``, ``curate clean``, ``train seqface`` ...), or None."""
    root = Path(root)
    for name in (MARK, "lineage.json", "summary.json"):
        path = root / name
        if path.is_file():
            try:
                command = json.loads(path.read_text()).get("command")
            except (ValueError, AttributeError):
                raise InputError(f"{path}: not valid JSON (a damaged root? see facekit manifest check)") from None
            if command:
                return str(command)
    return None


def claim_root(out: str | Path, command: str) -> None:
    """Refuse ``out`` when another command made it (an ``InputError`` naming both); else mark it as ``command``'s."""
    out = Path(out)
    maker = root_maker(out)
    if maker is not None and maker != command:
        raise InputError(f"--out {out}: a root made by 'facekit {maker}'; 'facekit {command}' writes only into "
                         f"its own roots: choose another folder")
    if not (out / MARK).is_file():
        write_json(out / MARK, {"command": command})
