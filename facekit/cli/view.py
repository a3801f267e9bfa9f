"""``facekit view``: browse roots, curation and benchmark reports in a local web page."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facekit.errors import InputError


def view_cmd(roots: List[Path] = typer.Argument(..., metavar="ROOT...", help="facekit roots (sequences, frames, "
                                                "identities, curated) and benchmark reports (or a reports/ folder)."),
             host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 shows the pages "
                                                                  "to your network: they can mark items)."),
             port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0: a free one)."),
             reviewer: Optional[str] = typer.Option(None, "--reviewer", help="Name written with each review mark "
                                                    "[default: user@host of this session]."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No request log.")) -> None:
    """Start a local web server over ROOTs: grids of sequences / identities / utterances (sorted, filtered by
    fields or a DuckDB WHERE expression), one item's faces, curation and benchmark reports; marks rejected items
    into the root's review table (apply them with 'facekit curate review'). Ctrl-C stops it."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise InputError(f"facekit view needs its web extra ({err.name} is missing): pip install 'facekit[view]'") \
            from None
    from facekit.view.server import make_app, serve_socket
    from facekit.view.state import Viewer

    viewer = Viewer(roots, reviewer)
    sock = serve_socket(host, port)
    shown = "localhost" if host == "127.0.0.1" else host
    typer.echo(f"facekit view: {len(viewer.roots)} roots ({viewer.given} given) at "
               f"http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C stops)", err=False)
    config = uvicorn.Config(make_app(viewer), log_level="warning", access_log=not quiet)
    uvicorn.Server(config).run(sockets=[sock])
