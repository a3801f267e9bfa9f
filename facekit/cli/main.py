"""``facekit`` entry point. Known errors print one line and exit non-zero; FACEKIT_DEBUG=1 shows tracebacks."""

from __future__ import annotations

import os
import sys

import typer

from facekit.cli.aggregate import aggregate_cmd
from facekit.cli.bench import bench_app
from facekit.cli.build import build_app, pack_cmd
from facekit.cli.curate import curate_app, embed_cmd
from facekit.cli.extract import extract_frames_cmd, extract_sequences_cmd
from facekit.cli.manifest import manifest_app
from facekit.cli.train import export_cmd, train_app
from facekit.cli.view import view_cmd
from facekit.errors import FacekitError, Interrupted
from facekit.provenance import __version__

EXAMPLES = """Examples:

  facekit extract-sequences --out out/sequences        (no input: the embedded sample clip)

  facekit manifest query "SELECT count(*) FROM faces" --root out/sequences

  facekit train seqface -r recipes/seqface_small_real.yaml --out runs/small

  facekit bench ytf --root YTF/aligned_images_DB --splits YTF/splits.txt --N 10 --navg 4 --model dlib-torch:default
"""

app = typer.Typer(rich_markup_mode=None, name="facekit", help="Video face recognition research toolkit.",
                  no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, epilog=EXAMPLES)


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
app.command("pack")(pack_cmd)
app.add_typer(curate_app, name="curate")
app.command("view")(view_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code. Usage errors and facekit's errors print one ``facekit: error:`` line
    (exit 2 for usage, the error's own code otherwise); Ctrl-C prints how to resume (exit 130)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        from facekit.registry import load_plugins

        load_plugins()  # FACEKIT_PLUGINS: modules whose @REG.register lines add components
        code = app(args=args, prog_name="facekit", standalone_mode=False)
        if code == 130:  # Typer turns Ctrl-C inside a command into a silent exit 130
            return _interrupted()
        return code if isinstance(code, int) else 0
    except Interrupted as err:
        print(f"\nfacekit: {err}", file=sys.stderr)
        return err.exit_code
    except FacekitError as err:
        if os.environ.get("FACEKIT_DEBUG"):
            raise
        print(f"facekit: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as err:  # Click's (vendored by Typer): matched by class name, not by a private import
        kinds = {c.__name__ for c in type(err).__mro__}
        if "Abort" in kinds:  # Click turns Ctrl-C into Abort
            return _interrupted()
        if "NoArgsIsHelpError" in kinds:  # help was printed
            return 2
        if "UsageError" in kinds:
            print(f"facekit: error: {_usage_message(err, args)}", file=sys.stderr)
            return 2
        raise


def _interrupted() -> int:
    print("\nfacekit: interrupted; rerun the same command to resume", file=sys.stderr)
    return 130


def _usage_message(err: Exception, args: list[str]) -> str:
    """One line; a missing required option names every required option not given, not only the first."""
    ctx = getattr(err, "ctx", None)
    hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    if type(err).__name__ == "MissingParameter" and ctx is not None:
        missing = [p for p in ctx.command.params if p.required and getattr(p, "param_type_name", "") == "option"
                   and not any(a == o or a.startswith(o + "=") for a in args for o in p.opts)]
        if missing and getattr(err, "param", None) in missing:
            names = ", ".join(max(p.opts, key=len) for p in missing)
            return f"missing option{'s' if len(missing) > 1 else ''} {names}{hint}"
    message = " ".join(err.format_message().split())
    return message[0].lower() + message[1:] + hint if message else f"usage error{hint}"


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
