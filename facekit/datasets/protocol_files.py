"""Strict line readers shared by the protocol parsers: a line that does not parse is an ``InputError`` naming
the file and the line number. CRLF endings, a missing final newline and blank lines are accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facekit.errors import InputError


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, line


def bad_line(path: str | Path, number: int, what: str) -> InputError:
    return InputError(f"{path}:{number}: {what}")


def to_int(path: str | Path, number: int, value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise bad_line(path, number, f"{name} must be an integer, got {value!r}") from None
