"""facekit: video face recognition research toolkit.

Data flow (one subpackage per stage): video -> detect -> track -> align -> curate -> manifests -> pipeline,
with ``cli`` on top. Nothing here does work at import time.
"""

__version__ = "0.1.0"
