"""What one ingest did: the hand-off between the ingest steps (a leaf: no ETL imports).

:func:`~include.mlops.etl.pipeline.ingest_partition` returns it,
:func:`~include.mlops.etl.load.publish_partition` publishes its staged file and
:func:`~include.mlops.etl.catalog.record_partition` records it; between Airflow tasks it
travels as ``to_dict()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestResult:
    """What one ingest did; ``to_dict()`` is small and JSON-able (an XCom value).

    Attributes:
        dataset: Dataset name.
        partition: ``YYYY-MM-DD``.
        run_id: The ingest run.
        rows_read: Input records (every record counted once).
        rows_curated: Records accepted into the curated file.
        rows_quarantined: Records rejected to quarantine.
        reasons: Rejected records per single reason (a record may have several).
        staged_path: The curated file awaiting :func:`publish_partition` (a path in
            ``lake.fs``).
        curated_key: Lake key the curated file is published to.
        quarantine_key: Lake key of the (already published) rejected records.
        schema_version: Version of the schema the data was checked against.
        content_hash: sha256 of the curated file's bytes: the partition's data snapshot id.
        bytes: Size of the curated file.
        seconds: Wall time of the ingest.
        schema: The schema used (``DatasetSchema.to_dict()``), for the catalog.
        source_files: The files read.
    """

    dataset: str
    partition: str
    run_id: str
    rows_read: int
    rows_curated: int
    rows_quarantined: int
    reasons: dict[str, int]
    staged_path: str
    curated_key: str
    quarantine_key: str
    schema_version: int
    content_hash: str
    bytes: int
    seconds: float
    schema: dict[str, Any] = field(default_factory=dict)
    source_files: list[str] = field(default_factory=list)

    @property
    def quarantined_share(self) -> float:
        """Share of input records rejected."""
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestResult:
        """Inverse of :meth:`to_dict` (e.g. from an XCom)."""
        return cls(**data)
