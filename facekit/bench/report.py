"""Reproducible benchmark reports: ``reports/<bench>-<UTC time>/`` with ``report.json`` (every metric, the full
config, versions, git revision, model and data fingerprints, seed, timings), ``report.md`` and PNG plots."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

import facekit
from facekit.fsutil import atomic_path, write_json


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(facekit.__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch

    return {"facekit": facekit.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__}


def fingerprint_files(paths: list[Path]) -> str:
    """sha256 over the names and bytes of protocol files (the data's identity)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(Path(p).name.encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def fingerprint_strings(items: list[str]) -> str:
    h = hashlib.sha256()
    for s in sorted(items):
        h.update(s.encode() + b"\n")
    return h.hexdigest()[:16]


def new_report_dir(root: Path, bench: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = Path(root) / f"{bench}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path(root) / f"{bench}-{stamp}-{n}"
    out.mkdir(parents=True)
    return out


DEMO_BANNER = ("> **demo data: numbers mean nothing.** These protocol files are those of `facekit build demo` (two "
               "halves of one zoom per person, people shared with the demo's training data): the run shows that the "
               "commands work end to end, not how good a model is. Published numbers are not printed beside them.\n\n")


def write_report(out: Path, bench: str, metrics: dict, config: dict, fingerprints: dict, timings: dict,
                 markdown: str, demo_data: bool = False) -> None:
    """``report.json`` and ``report.md``; ``demo_data`` (the protocol files are the demo's) is recorded in the JSON
    and opens the Markdown with ``DEMO_BANNER``."""
    report = {"bench": bench, "demo_data": demo_data, "metrics": metrics, "config": config,
              "fingerprints": fingerprints, "timings_sec": timings, "versions": versions(),
              "git_revision": git_revision(), "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(out / "report.json", report)
    title, _, rest = markdown.partition("\n\n")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(f"{title}\n\n{DEMO_BANNER}{rest}" if demo_data else markdown)


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (fpr, tpr) in curves.items():
        ax.plot(np.maximum(fpr, 1e-7), tpr, label=name)
    ax.set_xscale("log"), ax.set_xlabel("false accept rate"), ax.set_ylabel("true accept rate")
    ax.set_title(title), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_det(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (fpr, tpr) in curves.items():
        ax.plot(np.maximum(fpr, 1e-7), np.maximum(1 - tpr, 1e-7), label=name)
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("false match rate"), ax.set_ylabel("false non-match rate")
    ax.set_title(title), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_cmc(path: Path, curves: dict[str, np.ndarray], title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, cmc in curves.items():
        ax.plot(np.arange(1, len(cmc) + 1), cmc, marker=".", label=name)
    ax.set_xlabel("rank"), ax.set_ylabel("identification rate"), ax.set_title(title)
    ax.grid(alpha=0.3), ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    pyplot().close(fig)


def compare(reports: list[Path]) -> str:
    """Several report.json side by side: one row per scalar metric, one column per report."""
    loaded = []
    for r in reports:
        p = r / "report.json" if r.is_dir() else r
        loaded.append((p.parent.name, json.loads(p.read_text())))
    keys: list[str] = []
    flat = []
    for _, rep in loaded:
        f = _flatten(rep["metrics"])
        flat.append(f)
        keys += [k for k in f if k not in keys]
    header = ["metric"] + [name for name, _ in loaded]
    return md_table(header, [[k] + [f.get(k) for f in flat] for k in keys])


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out
