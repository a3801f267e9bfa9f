"""Progress bars that suit where they are written: tqdm's live bar on a terminal; in a log (stderr is a file or
a pipe) whole lines, at most one every ``LOG_EVERY`` seconds and the final state, with no carriage returns or
cursor moves."""

from __future__ import annotations

import re
import sys
from typing import Any

from tqdm import tqdm

LOG_EVERY = 30.0  # seconds between progress lines in a log
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")


class LogStream:
    """A text stream for tqdm that turns each status write into one plain line."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = _CONTROL.sub("", text).strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Any = None, **kw) -> tqdm:
    """``tqdm(iterable, **kw)`` on a terminal; plain, rate-limited lines otherwise."""
    if not kw.get("disable") and not sys.stderr.isatty():
        kw.update(file=LogStream(sys.stderr), mininterval=LOG_EVERY, dynamic_ncols=False, ncols=100)
    return tqdm(iterable, **kw)
