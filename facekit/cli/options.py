"""Options shared by several commands, so each has one name, default and help text everywhere."""

from __future__ import annotations

import typer

DEVICE = typer.Option("auto", "--device", help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N; under "
                      "torchrun each rank takes its own GPU.")
