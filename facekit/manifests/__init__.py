"""Parquet manifests: the only contract between facekit stages. Schemas live in ``schemas.py``."""

from facekit.manifests.io import read_manifest, table_files, write_part
from facekit.manifests.schemas import SCHEMAS, TableSchema

__all__ = ["read_manifest", "table_files", "write_part", "SCHEMAS", "TableSchema"]
