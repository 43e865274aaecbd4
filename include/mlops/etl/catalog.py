"""The dataset catalog (the Glue Data Catalog's role): ``catalog/<dataset>/schema.json``.

One JSON object per dataset holds its schema, every curated partition with its row
counts, rejection reasons, content hash and quality score, and the dataset-level
``snapshot_id``: a hash over all partitions' content hashes that a model records to
name exactly the data it was trained on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from include.mlops.etl.naming import (
    catalog_key,
    curated_key,
    validate_dataset_name,
    validate_partition,
)
from include.mlops.etl.schema import DatasetSchema
from include.mlops.lake.store import Lake

if TYPE_CHECKING:
    from include.mlops.etl.result import IngestResult


def load_catalog(lake: Lake, dataset: str) -> dict[str, Any] | None:
    """A dataset's catalog entry, or ``None`` before its first recorded ingest.

    Args:
        lake: The lake.
        dataset: Dataset name.

    Returns:
        The parsed ``schema.json``, or None.
    """
    key = catalog_key(validate_dataset_name(dataset))
    if not lake.exists(key):
        return None
    catalog: dict[str, Any] = lake.read_json(key)
    return catalog


def catalog_schema(catalog: dict[str, Any] | None) -> DatasetSchema | None:
    """The schema recorded in a catalog entry."""
    if not catalog or not catalog.get("schema"):
        return None
    return DatasetSchema.from_dict(catalog["schema"])


def snapshot_id(catalog: dict[str, Any]) -> str:
    """The dataset-level data snapshot id: sha256 over every partition's content hash.

    It changes when any partition is added, rewritten with different rows, or removed,
    and only then; a model that records it names its exact training data.

    Args:
        catalog: A catalog entry (only its ``partitions`` are read).

    Returns:
        A hex digest.
    """
    digest = hashlib.sha256()
    for partition, entry in sorted((catalog.get("partitions") or {}).items()):
        digest.update(f"{partition}={entry['content_hash']}\n".encode())
    return digest.hexdigest()


def record_partition(
    lake: Lake,
    dataset: str,
    schema: DatasetSchema | dict[str, Any],
    result: IngestResult | dict[str, Any],
    quality_score: float | None = None,
    quality_report_uri: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record a published partition in the catalog (and the schema it was loaded with).

    The schema version is bumped only when the schema's structure (columns, types,
    rules, key) differs from the catalogued one.

    Args:
        lake: The lake.
        dataset: Dataset name.
        schema: The schema the partition was loaded with (``IngestResult.schema``).
        result: The ingest's result (object or its ``to_dict()``).
        quality_score: The quality gate's score, if one ran.
        quality_report_uri: Where the quality report is.
        now: Time of recording (default: now, UTC); a parameter so tests are exact.

    Returns:
        The catalog entry as written.
    """
    validate_dataset_name(dataset)
    if isinstance(schema, dict):
        schema = DatasetSchema.from_dict(schema)
    data = result if isinstance(result, dict) else result.to_dict()
    partition = validate_partition(data["partition"])
    if data["dataset"] != dataset:
        raise ValueError(f"result is for dataset {data['dataset']!r}, not {dataset!r}")
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat()

    catalog = load_catalog(lake, dataset) or {"dataset": dataset, "partitions": {}}
    recorded = catalog_schema(catalog)
    if recorded is not None:
        if not schema.same_structure(recorded) and schema.version <= recorded.version:
            schema = DatasetSchema.from_dict({**schema.to_dict(), "version": recorded.version + 1})
        elif schema.same_structure(recorded):
            schema = DatasetSchema.from_dict({**schema.to_dict(), "version": recorded.version})
    partitions = dict(catalog.get("partitions") or {})
    partitions[partition] = {
        "rows": data["rows_curated"],
        "quarantined": data["rows_quarantined"],
        "reasons": dict(data.get("reasons") or {}),
        "content_hash": data["content_hash"],
        "bytes": data["bytes"],
        "ingested_at": stamp,
        "run_id": data["run_id"],
        "schema_version": schema.version,
        "quality_score": quality_score,
        "quality_report": quality_report_uri,
    }
    entry: dict[str, Any] = {
        "dataset": dataset,
        "schema": schema.to_dict(),
        "partitions": dict(sorted(partitions.items())),
        "total_rows": sum(p["rows"] for p in partitions.values()),
        "updated_at": stamp,
    }
    entry["snapshot_id"] = snapshot_id(entry)
    lake.write_json(catalog_key(dataset), entry)
    return entry


def curated_paths(lake: Lake, dataset: str, partitions: Iterable[str] | None = None) -> list[str]:
    """Filesystem paths (in ``lake.fs``) of a dataset's catalogued curated partitions.

    Args:
        lake: The lake.
        dataset: Dataset name.
        partitions: The partitions wanted (``YYYY-MM-DD``); default all catalogued ones.

    Returns:
        Paths sorted by partition, ready for ``pyarrow.parquet.read_table(paths,
        filesystem=lake.fs)`` or ``pyarrow.dataset``.

    Raises:
        ValueError: When the dataset has no catalog or a wanted partition is not in it.
    """
    catalog = load_catalog(lake, dataset)
    if catalog is None:
        raise ValueError(f"dataset {dataset!r} has no catalog entry: ingest it first")
    known = sorted(catalog.get("partitions") or {})
    wanted = known if partitions is None else sorted(validate_partition(p) for p in partitions)
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise ValueError(
            f"dataset {dataset!r} has no catalogued partition(s) {unknown}; known: {known}"
        )
    return [lake.path(curated_key(dataset, p)) for p in wanted]
