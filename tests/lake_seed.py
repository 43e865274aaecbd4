"""Seed a test lake: a local file ingested as one curated partition, as ``lake_ingest`` would.

The DAG runs the three steps as separate tasks (ingest, publish, catalog); tests that only
need curated data do them in one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyarrow import fs as pafs

from include.mlops.etl.catalog import record_partition
from include.mlops.etl.load import publish_partition
from include.mlops.etl.pipeline import ingest_partition
from include.mlops.lake import Lake


def ingest_file(
    lake: Lake,
    dataset: str,
    path: Path | str,
    partition: str,
    *,
    run_id: str | None = None,
    pii_salt: str = "s",
) -> Any:
    """Ingest ``path`` into ``dataset``'s ``partition``, publish it and catalogue it.

    Returns:
        The ingest result (curated and quarantined rows, schema).
    """
    result = ingest_partition(
        lake, dataset=dataset, source_fs=pafs.LocalFileSystem(), source_paths=[str(path)],
        partition=partition, run_id=run_id or f"seed_{dataset}_{partition}", pii_salt=pii_salt,
    )  # fmt: skip
    publish_partition(lake, result)
    record_partition(lake, dataset, result.schema, result)
    return result
