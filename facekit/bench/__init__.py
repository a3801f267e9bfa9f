"""Benchmarks: pure metric functions (``metrics``), protocol readers (``ytf``, ``lfw``, ``ijb``), feature
computation with a cache (``features``) and reports (``report``). Typer commands live in ``facekit.cli.bench``."""
