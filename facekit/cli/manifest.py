"""``facekit manifest ...``: query, stats, schema, split, sample, merge, check and compact of manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from facekit.errors import InputError

manifest_app = typer.Typer(rich_markup_mode=None, help="Query, inspect, split, sample and merge Parquet manifests "
    "(DuckDB).", no_args_is_help=True)


@manifest_app.command("query")
def query_cmd(
    sql: str = typer.Argument(..., metavar="SQL", help='SQL over the tables by name, e.g. "SELECT count(*) FROM '
        'faces".'),
    root: Path = typer.Option(Path("out/sequences"), "--root", "-r", help="Output root holding manifests/."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    limit: int = typer.Option(50, "--limit", min=0, help="Rows to print in table format (0: all)."),
) -> None:
    """Run SQL over the manifests of an output root (tables: videos, sequences, faces, ...)."""
    from facekit.manifests.query import run_query

    df = run_query(root, sql)
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(df.to_json(orient="records", lines=True), nl=False)
    elif fmt == "table":
        shown = df if limit <= 0 else df.head(limit)
        typer.echo(shown.to_string(index=False) if len(df) else "(no rows)")
        if len(shown) < len(df):
            typer.echo(f"... {len(df)} rows, {len(shown)} shown (--limit 0 for all)")
    else:
        raise InputError(f"--format {fmt!r}: choose table, csv or json")


@manifest_app.command("stats")
def stats_cmd(
    root: Path = typer.Option(Path("out/sequences"), "--root", "-r", help="Output root holding manifests/."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Rows per table, videos by status, dropped faces by reason, sequence lengths."""
    from facekit.manifests.query import manifest_stats

    stats = manifest_stats(root)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    for name, t in stats["tables"].items():
        typer.echo(f"{name:<12} {t['rows']:>10} rows  {t['files']:>5} files  {t['bytes'] / 1e6:8.2f} MB")
    for key in ("videos_by_status", "dropped_faces", "sequence_length"):
        if key in stats:
            typer.echo(f"{key}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in stats[key].items()))


@manifest_app.command("schema")
def schema_cmd(
    table: str = typer.Argument(None, metavar="TABLE", help="One table; all when omitted."),
    markdown: bool = typer.Option(False, "--markdown", help="Markdown, as in manifests/README.md."),
) -> None:
    """Print the schema of the manifest tables (columns, types, meaning, version)."""
    from facekit.manifests.schemas import SCHEMAS

    names = [table] if table else list(SCHEMAS)
    for name in names:
        if name not in SCHEMAS:
            raise InputError(f"unknown manifest table {name!r}: choose from {', '.join(SCHEMAS)}")
        s = SCHEMAS[name]
        if markdown:
            typer.echo(s.markdown())
        else:
            typer.echo(f"{s.name} (v{s.version}): {s.doc}")
            for c in s.columns:
                typer.echo(f"  {c.name:<24} {str(c.type):<22} {c.doc}")


@manifest_app.command("split")
def split_cmd(root: Path = typer.Argument(..., metavar="ROOT",
                                          help="Output root to split (sequences, identities or frames)."),
              out: Path = typer.Option(Path("out/split"), "--out", "-o", help="Writes OUT/train and OUT/val."),
              val: float = typer.Option(0.1, "--val", min=0.0, max=1.0, help="Share of the groups that go to val."),
              by: Optional[str] = typer.Option(None, "--by", help="Grouping column. [default: identity, or "
                                                                   "sequence_id for sequence roots]"),
              seed: int = typer.Option(0, "--seed", help="Seed of the assignment.")) -> None:
    """Deterministic train/val split by group (a group never changes side when the data grows)."""
    from facekit.manifests.ops import split

    counts = split(root, out, val, seed, by)
    typer.echo(f"train: {counts['train']} groups -> {out / 'train'}; val: {counts['val']} groups -> {out / 'val'}")


@manifest_app.command("sample")
def sample_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Output root."),
               out: Path = typer.Option(Path("out/sample.png"), "--out", "-o", help="PNG to write."),
               n: int = typer.Option(8, "--num", "-n", min=1, help="Groups (sequences, identities, videos) to show."),
               seed: int = typer.Option(0, "--seed", help="Seed of the choice.")) -> None:
    """A PNG grid of N random sequences / identities / videos, one row each."""
    from facekit.manifests.ops import sample_grid

    path = sample_grid(root, out, n, seed)
    typer.echo(f"wrote {path}" if path else "nothing to show (no crops)")


@manifest_app.command("merge")
def merge_cmd(roots: List[Path] = typer.Argument(..., metavar="ROOTS...",
                                                 help="Roots of one kind (e.g. shards written apart)."),
              out: Path = typer.Option(Path("out/merged"), "--out", "-o",
                                       help="Merged root (crops stay where they are).")) -> None:
    """Merge roots into one; refuses overlapping sequences / images / utterances."""
    from facekit.manifests.ops import merge

    counts = merge(list(roots), out)
    typer.echo(", ".join(f"{t}: {n} rows" for t, n in counts.items()) + f" -> {out}")


@manifest_app.command("check")
def check_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Output root to check."),
              repair: bool = typer.Option(False, "--repair", help="Remove each damaged flush group from every table "
                                                                  "(rerun the command that made the root to redo "
                                                                  "exactly those inputs).")) -> None:
    """Find unreadable, orphaned or missing part files (a disk error, a half-copied root, a killed run).
    Exit 0 when the root is whole (or was repaired), 1 when damage is found and left."""
    from facekit.manifests.check import check_root, repair_root
    from facekit.manifests.owner import root_maker

    damage = check_root(root)
    for d in damage:
        typer.echo(f"{d.part}: {d.problem}")
    if not damage:
        typer.echo(f"{root}: every part file reads and every flush group is whole")
        return
    groups = sorted({d.group for d in damage})
    if not repair:
        typer.echo(f"{len(damage)} damaged part files in {len(groups)} flush groups; "
                   f"facekit manifest check {root} --repair removes those groups")
        raise typer.Exit(1)
    removed = repair_root(root, damage)
    maker = root_maker(root) or "the command that made it"
    typer.echo(f"repaired: removed {len(removed)} part files of {len(groups)} flush groups ({', '.join(groups)}); "
               f"rerun 'facekit {maker}' with the same settings to redo their inputs")


@manifest_app.command("compact")
def compact_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Output root holding manifests/."),
                rows: int = typer.Option(2_000_000, "--rows-per-part", min=1,
                                         help="Rows (of a group's largest table) per compacted part at most.")) -> None:
    """Rewrite ROOT's many small part files into few large ones (safe against a kill; refused while a writer
    holds the root). Resume, shards and every reader work on the result as before."""
    import time

    from facekit.manifests.compact import compact

    t = time.perf_counter()
    res = compact(root, rows)
    typer.echo(f"{root}: {res['files_before']} part files -> {res['files_after']} ({res['groups_merged']} flush "
               f"groups merged) in {time.perf_counter() - t:.1f} s")
