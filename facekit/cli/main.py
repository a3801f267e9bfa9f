"""``facekit`` entry point. Known errors print one line and exit non-zero; FACEKIT_DEBUG=1 shows tracebacks."""

from __future__ import annotations

import os
import sys

import typer

from facekit import __version__
from facekit.cli.aggregate import aggregate_cmd
from facekit.cli.bench import bench_app
from facekit.cli.build import build_app
from facekit.cli.curate import curate_app, embed_cmd
from facekit.cli.extract import extract_frames_cmd, extract_sequences_cmd
from facekit.cli.manifest import manifest_app
from facekit.cli.train import export_cmd, train_app
from facekit.errors import FacekitError

app = typer.Typer(name="facekit", help="Video face recognition research toolkit.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """facekit: curate face sequences from video, train SeqFace / aggregation models, run video benchmarks."""


app.command("extract-sequences")(extract_sequences_cmd)
app.command("extract-frames")(extract_frames_cmd)
app.add_typer(manifest_app, name="manifest")
app.add_typer(bench_app, name="bench")
app.add_typer(build_app, name="build")
app.add_typer(train_app, name="train")
app.command("export")(export_cmd)
app.command("aggregate")(aggregate_cmd)
app.command("embed")(embed_cmd)
app.add_typer(curate_app, name="curate")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code. Usage errors are Typer's (exit 2); facekit's errors print one line."""
    try:
        app(args=argv, prog_name="facekit")
        return 0
    except SystemExit as ex:  # Typer's standalone mode ends every run this way
        return ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    except FacekitError as err:
        if os.environ.get("FACEKIT_DEBUG"):
            raise
        print(f"facekit: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("facekit: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
