"""Face alignment: 5-point similarity transform onto a template."""

from facekit.align.similarity import align_faces, umeyama_similarity
from facekit.align.templates import TEMPLATES, Template, get_template

__all__ = ["align_faces", "umeyama_similarity", "TEMPLATES", "Template", "get_template"]
