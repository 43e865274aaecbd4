"""The Parquet lake: one bucket, zones as prefixes (see docs/design.md, "Lake layout")."""

from include.mlops.lake.store import Lake, LakeUnavailableError, filesystem_for_uri

__all__ = ["Lake", "LakeUnavailableError", "filesystem_for_uri"]
