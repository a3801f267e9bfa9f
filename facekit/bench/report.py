"""Reproducible benchmark reports: ``reports/<bench>-<UTC time>/`` with ``report.json`` (every metric, the full
config, versions, git revision, model and data fingerprints, seed, timings), ``report.md`` and PNG plots."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from facekit.fsutil import atomic_path, write_json
from facekit.provenance import git_revision, versions
from facekit.report.plots import pyplot, save_figure


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


FALLBACK_WARN = 0.01  # a share of fallback crops above this is warned about on the terminal and in report.md


def crops_markdown(crops: dict) -> str:
    """The report's "Face crops" section: how this run's images were cropped, the fallbacks by kind."""
    if not crops.get("images_cropped"):
        return "\n## Face crops\n\nNo image was cropped in this run (aligned inputs, a features file or the cache).\n"
    kinds = ", ".join(f"{k} {v}" for k, v in crops["by_kind"].items())
    fb = ", ".join(f"{k} {v}" for k, v in crops["fallbacks"].items()) or "none"
    warn = (f"\n\n**Warning: {crops['fallback_share']:.1%} of the crops are fallbacks (above "
            f"{FALLBACK_WARN:.0%}): the protocol's face was not found where it was given.**"
            if crops["fallback_share"] > FALLBACK_WARN else "")
    return (f"\n## Face crops\n\n{crops['images_cropped']} images cropped in this run: {kinds}. Fallbacks: {fb} "
            f"({crops['fallback_share']:.2%}).{warn}\n")


def write_report(out: Path, bench: str, metrics: dict, config: dict, fingerprints: dict, timings: dict,
                 markdown: str, demo_data: bool = False, crops: dict | None = None, worst: dict | None = None) -> None:
    """``report.json`` and ``report.md``; ``demo_data`` (the protocol files are the demo's) is recorded in the JSON
    and opens the Markdown with ``DEMO_BANNER``; ``crops`` (``facekit.embed.features.crop_report``) goes into the
    metrics and a "Face crops" section; ``worst`` (``facekit.bench.common.worst_pairs``) is kept for the viewer."""
    if crops is not None:
        metrics = {**metrics, "crops": crops}
        markdown = markdown.rstrip("\n") + "\n" + crops_markdown(crops)
    report = {"bench": bench, "demo_data": demo_data, "metrics": metrics, "config": config,
              "fingerprints": fingerprints, "timings_sec": timings, "versions": versions(),
              "git_revision": git_revision(), "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if worst:
        report["worst"] = worst
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


def compare(reports: list[Path]) -> str:
    """Several report.json side by side: one row per scalar metric, one column per report."""
    loaded = []
    for r in reports:
        p = r / "report.json" if r.is_dir() else r
        loaded.append((p.parent.name, json.loads(p.read_text())))
    keys: list[str] = []
    flat = []
    for _, rep in loaded:
        f = flatten_metrics(rep["metrics"])
        flat.append(f)
        keys += [k for k in f if k not in keys]
    header = ["metric"] + [name for name, _ in loaded]
    runs = [describe_run(rep) for _, rep in loaded]
    rows = [[k] + [r[k] for r in runs] for k in RUN_FIELDS]
    return md_table(header, rows + [[k] + [f.get(k) for f in flat] for k in keys])


RUN_FIELDS = ("protocol", "method", "model", "threshold / TAR rule", "flip", "fallback share")


def describe_run(report: dict) -> dict[str, str]:
    """What a run was, for ``bench compare``: protocol, method (avg / aggregator; N, n_avg), model, the threshold
    or TAR rule, flip (from the features' fingerprint), the share of fallback crops."""
    c, m = report.get("config", {}), report.get("metrics", {})
    protocol = report.get("bench", "?") + (f" {c['protocol']}" if c.get("protocol") else "") + \
        (f" {c['layout']}" if c.get("layout") else "") + (f" {m['set']}" if m.get("set") else "") + \
        (f" blur {c['blur']}" if c.get("blur") else "")
    method = c.get("method", "-") + (f" N={c['n']} n_avg={c['n_avg']}" if c.get("n") else "")
    features = str(c.get("features", "-"))
    share = m.get("crops", {}).get("fallback_share")
    return {"protocol": protocol, "method": method, "model": features.removesuffix("-flip"),
            "threshold / TAR rule": c.get("threshold") or c.get("tar_rule") or "-",
            "flip": "-" if features.startswith("features-") else ("on" if features.endswith("-flip") else "off"),
            "fallback share": "-" if share is None else f"{share:.2%}"}


def flatten_metrics(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_metrics(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out
