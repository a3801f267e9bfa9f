"""``facekit train seqface`` and ``facekit export``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facekit.cli.options import DEVICE
from facekit.errors import InputError

train_app = typer.Typer(rich_markup_mode=None, help="Train models from manifests (recipes in recipes/).",
                        no_args_is_help=True)


RECIPE = typer.Option(None, "--recipe", "-r", help="YAML recipe: recipes/seqface_*.yaml or recipes/aggregator_*.yaml "
                      "(required for a new run; --set changes single settings).")
EXAMPLES = {"seqface": "facekit train seqface -r recipes/seqface_small_real.yaml --out runs/small",
            "aggregator": "facekit train aggregator -r recipes/aggregator_small_real.yaml --out runs/agg"}
SET = typer.Option(None, "--set", help="Override a setting: key.sub=value (repeatable).")
OUT = typer.Option(None, "--out", "-o", help="Run directory. [default: runs/<trainer>-<UTC time>]")
RESUME = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
DETERMINISTIC = typer.Option(False, "--deterministic", help="torch's deterministic algorithms: repeatable runs and "
                             "resumes on CUDA too (slower). On CPU training is bit-exact without it.")


def _train(name: str, recipe: Optional[Path], set_: Optional[List[str]], out: Optional[Path], resume: bool,
           device: str, quiet: bool, deterministic: bool) -> None:
    import os

    from facekit.device import resolve_device
    from facekit.train.run import deterministic_algorithms, prepare_run

    if recipe is None and not resume:
        raise InputError(f"a new run needs a recipe: -r {_recipe_list(name)} (--set changes single settings); "
                         f"e.g. {EXAMPLES[name]}")
    if name == "seqface":
        from facekit.train.seqface import train_seqface as trainer
        from facekit.train.seqface_config import SeqFaceConfig as config
    else:
        from facekit.train.aggregator import train_aggregator as trainer
        from facekit.train.aggregator_config import AggregatorConfig as config
    cfg, run_dir = prepare_run(config, name, recipe, set_ or [], out, resume)
    with deterministic_algorithms(deterministic):
        result = trainer(cfg, run_dir, resolve_device(device), resume=resume, progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        for line in result.lines():
            typer.echo(line)


def _recipe_list(name: str) -> str:
    """The recipes of trainer ``name`` in ./recipes (or the source checkout's), as one string."""
    for folder in (Path("recipes"), Path(__file__).resolve().parents[2] / "recipes"):
        found = sorted(folder.glob(f"{name}_*.yaml"))
        if found:
            return " | ".join(str(p) for p in found)
    return f"recipes/{name}_*.yaml"


@train_app.command("seqface")
def seqface_cmd(recipe: Optional[Path] = RECIPE, set_: Optional[List[str]] = SET, out: Optional[Path] = OUT,
                resume: bool = RESUME, device: str = DEVICE, quiet: bool = QUIET,
                deterministic: bool = DETERMINISTIC) -> None:
    """Train a SeqFace model (LSR chief loss + DSA) on an identity manifest and a sequence manifest.

    Example: facekit train seqface -r recipes/seqface_small_real.yaml --out runs/small

    Runs unchanged under torchrun --nproc_per_node=K (DistributedDataParallel; optim.batch_size is global)."""
    _train("seqface", recipe, set_, out, resume, device, quiet, deterministic)


@train_app.command("aggregator")
def aggregator_cmd(recipe: Optional[Path] = RECIPE, set_: Optional[List[str]] = SET, out: Optional[Path] = OUT,
                   resume: bool = RESUME, device: str = DEVICE, quiet: bool = QUIET,
                   deterministic: bool = DETERMINISTIC) -> None:
    """Train the Face Aggregation Network (GAN with a frozen feature extractor) on an extract-frames manifest.

    Example: facekit train aggregator -r recipes/aggregator_small_real.yaml --out runs/agg

    Runs unchanged under torchrun --nproc_per_node=K (DistributedDataParallel; optim.batch_size is global)."""
    _train("aggregator", recipe, set_, out, resume, device, quiet, deterministic)


def export_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help="facekit model.pt, a training run directory, or an "
        "extractor spec "
                                          "(dlib-torch:default, iresnet50:backbone.pth)."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o",
        help="Output file (.pt for a state_dict, .onnx for ONNX). [default: out/model.pt, out/model.onnx with --format "
             "onnx]"),
    fmt: Optional[str] = typer.Option(None, "--format", "-f",
                                      help="state_dict or onnx. [default: from --out's suffix, else state_dict]"),
) -> None:
    """Export a feature extractor to a plain state_dict or to ONNX (input (x - 127.5) / 127.5 RGB, alignment in
    the metadata, read back by --model onnx:FILE); checks the outputs match the original."""
    from facekit.embed.export import export_model

    fmt = fmt or ("onnx" if out is not None and out.suffix == ".onnx" else "state_dict")
    out = out or Path("out/model.onnx" if fmt == "onnx" else "out/model.pt")
    if fmt not in ("state_dict", "onnx"):
        raise InputError(f"--format {fmt!r}: choose state_dict or onnx")
    diff = export_model(model, out, fmt)
    typer.echo(f"wrote {out} ({fmt}); max |difference| to the original on random faces: {diff:.2e}")
