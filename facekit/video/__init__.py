"""Video input: streaming decode (decord) and shot-cut detection."""

from pathlib import Path


def sample_video() -> Path:
    """The embedded sample clip shipped with facekit (see facekit/assets/README.md)."""
    from importlib import resources

    return Path(str(resources.files("facekit") / "assets" / "sample.mp4"))
