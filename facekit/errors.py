"""One exception hierarchy. The CLI prints ``str(err)`` as one line and exits non-zero.

Set ``FACEKIT_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations


class FacekitError(Exception):
    """Base class of every error facekit reports to a user."""

    exit_code = 1


class InputError(FacekitError):
    """A file or argument given by the user cannot be used (names the file and the problem)."""

    exit_code = 2


class ManifestError(InputError):
    """A manifest file does not match its schema (names the file and the column)."""


class InputsFailed(FacekitError):
    """The run finished and committed every result, but some inputs failed (listed in the summary and in the
    manifest with ``status = 'error'``): exit 3, so a script can tell."""

    exit_code = 3


class Interrupted(FacekitError):
    """Ctrl-C during a long run, after the finished inputs were committed: says how many are saved (exit 130)."""

    exit_code = 130


class VideoError(FacekitError):
    """A video cannot be decoded; recorded in the ``videos`` manifest and skipped, never fatal to a run."""
