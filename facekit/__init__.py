"""facekit: video face recognition research toolkit.

Data flow (one subpackage per stage): video -> detect -> track -> align -> curate -> manifests -> pipeline,
with ``cli`` on top. Nothing here does work at import time.
"""

from facekit.provenance import __version__ as __version__

_API = ("ExtractConfig", "FeatureExtractor", "RunSummary", "crop_faces", "detect_faces", "extract_sequences",
        "load_extractor", "query", "read_frame", "read_manifest", "sample_video", "verify")


def __getattr__(name: str):
    """``facekit.detect_faces``, ``facekit.read_manifest`` ...: the Python API (facekit.api), imported on first use."""
    if name in _API:
        from facekit import api

        return getattr(api, name)
    raise AttributeError(f"module 'facekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
