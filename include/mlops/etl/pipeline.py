"""The ingest behind the ``lake_ingest`` DAG: extract → validate → transform → load.

``ingest_partition`` streams a source through the checks and leaves a staged
curated file for the quality gate; ``publish_partition`` makes it visible;
``record_partition`` (catalog) records it. Each step is a plain function so the DAG
task bodies stay one call each.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, TypeVar

import pyarrow.fs as pafs

from include.mlops.etl.catalog import catalog_schema, load_catalog
from include.mlops.etl.declared import declared_schema
from include.mlops.etl.extract import (
    DEFAULT_BATCH_ROWS,
    EmptySourceError,
    RawBatch,
    read_batches,
)
from include.mlops.etl.load import (
    QUARANTINE_ROW_GROUP_ROWS,
    ParquetSink,
    discard_staged,
    open_staged,
    publish_partition,
    quarantine_records,
    quarantine_rows,
    quarantine_schema,
    remove_staged,
    staged_curated_path,
)
from include.mlops.etl.naming import (
    curated_key,
    quality_report_prefix,
    quarantine_key,
    validate_dataset_name,
    validate_format,
    validate_partition,
)
from include.mlops.etl.result import IngestResult
from include.mlops.etl.schema import (
    DatasetSchema,
    SchemaDrift,
    SchemaDriftError,
    compare_schema,
    infer_schema,
    observe_schema,
)
from include.mlops.etl.validate import KeyRegistry, validate_batch
from include.mlops.lake.store import Lake
from include.mlops.settings import DEFAULT_MISSING_TOKENS

__all__ = [
    "EmptySourceError",
    "IngestResult",
    "SchemaDriftError",
    "discard_staged",
    "expected_schema",
    "ingest_partition",
    "publish_partition",
]

log = logging.getLogger(__name__)

#: Progress lines at most this often (plus the first batch and the summary), so a
#: long ingest is never silent and a short one is not noisy.
PROGRESS_EVERY_SECONDS = 5.0

T = TypeVar("T")


def _prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """Produce ``items`` on a helper thread, ``depth`` ahead of the consumer.

    CSV parsing and Parquet decoding run in Arrow without the GIL, so reading the
    next batch overlaps with validating this one; ``depth`` bounds the memory to a
    few batches. Close the returned generator to stop the thread early.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def expected_schema(dataset: str, catalog: dict[str, Any] | None) -> DatasetSchema | None:
    """The schema incoming data must follow: declared in code, else catalogued.

    A declared schema that differs from the catalogued one gets the next version.

    Args:
        dataset: Dataset name.
        catalog: The dataset's catalog entry, if any.

    Returns:
        The schema, or ``None`` when it must be inferred (first ingest, nothing declared).
    """
    declared = declared_schema(dataset)
    recorded = catalog_schema(catalog)
    if declared is None or recorded is None:
        return declared or recorded
    declared.version = (
        recorded.version if declared.same_structure(recorded) else recorded.version + 1
    )
    return declared


def _check_drift(
    lake: Lake,
    raw: RawBatch,
    schema: DatasetSchema,
    missing_tokens: Sequence[str],
    *,
    run_id: str,
    partition: str,
) -> None:
    if raw.first_of_file:
        drift = compare_schema(
            schema, observe_schema(raw.data, schema, missing_tokens), source=raw.source_file
        )
    else:
        # Later batches of a file: only JSON lines can grow new keys mid-file.
        added = [n for n in raw.data.schema.names if n not in schema.names]
        drift = SchemaDrift(
            schema.dataset, added=added, source=raw.source_file, expected_version=schema.version
        )
    if not drift.is_drift:
        return
    report = {
        **drift.to_dict(),
        "run_id": run_id,
        "partition": partition,
        "expected_schema": schema.to_dict(),
        "observed_columns": list(raw.data.schema.names),
    }
    uri = lake.write_json(
        f"{quality_report_prefix(schema.dataset, run_id)}/schema_drift.json", report
    )
    raise SchemaDriftError(drift, uri)


def ingest_partition(
    lake: Lake,
    *,
    dataset: str,
    source_fs: pafs.FileSystem,
    source_paths: Sequence[str],
    fmt: str = "auto",
    partition: str,
    run_id: str,
    missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS,
    pii_salt: str = "",
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> IngestResult:
    """Ingest source files into one partition of a dataset, streaming batch by batch.

    The schema is the declared one, else the catalogued one, else inferred from the
    first batch. Drift against it (new, missing or retyped columns) writes
    ``reports/quality/<dataset>/<run_id>/schema_drift.json`` and raises. Rows that
    pass every check go to a staged curated Parquet file (published later by
    :func:`publish_partition`, after the quality gate); rejected rows go, with all
    their reasons, to ``quarantine/<dataset>/dt=<partition>/part-00000.parquet`` now.
    Progress (batches, rows, rows/s) goes to this module's logger at least every
    :data:`PROGRESS_EVERY_SECONDS`.

    Args:
        lake: The lake.
        dataset: Dataset name (``^[a-z][a-z0-9_]*$``).
        source_fs: The filesystem holding the source files.
        source_paths: The source files (see ``extract.list_source_files``).
        fmt: ``auto``, ``csv``, ``jsonl`` or ``parquet``.
        partition: ``YYYY-MM-DD``.
        run_id: The run (names reports; recorded on quarantined rows).
        missing_tokens: Raw strings that mean "missing" (``settings.missing_tokens``).
        pii_salt: Salt for hashing PII columns (``settings.pii_salt``).
        batch_rows: Target rows per batch.

    Returns:
        The ingest's result.

    Raises:
        EmptySourceError: The source has no records; nothing is written.
        SchemaDriftError: The data does not match the schema; nothing is loaded.
    """
    validate_dataset_name(dataset)
    validate_partition(partition)
    validate_format(fmt)
    quality_report_prefix(dataset, run_id)  # validates run_id before any work
    paths = list(source_paths)
    if not paths:
        raise EmptySourceError(f"no source files given for dataset {dataset!r} dt={partition}")
    started = time.monotonic()
    tokens = list(missing_tokens)
    schema = expected_schema(dataset, load_catalog(lake, dataset))
    log.info(
        "ingest %s dt=%s run %s: %d file(s), format %s, %s", dataset, partition, run_id,
        len(paths), fmt,
        f"schema v{schema.version} ({schema.origin})"
        if schema
        else "no schema yet: inferring one from the first batch",
    )  # fmt: skip
    keys = KeyRegistry()
    reasons: Counter[str] = Counter()
    rows_read = rows_curated = rows_quarantined = batches = 0
    staged = staged_curated_path(lake)
    curated: ParquetSink | None = None
    last_report = 0.0
    try:
        with ExitStack() as stack:
            quarantine: ParquetSink | None = None
            q_schema = None
            source = stack.enter_context(
                contextlib.closing(_prefetched(read_batches(source_fs, paths, fmt, batch_rows)))
            )
            # One writer thread: Parquet encoding and compression (GIL-free) of batch
            # n overlaps validation of batch n+1; waiting for the previous write
            # before queueing the next bounds memory to one batch in flight.
            writer = stack.enter_context(ThreadPoolExecutor(1, "ingest-writer"))
            pending: Future[None] | None = None
            for raw in source:
                if schema is None:
                    schema = infer_schema(raw.data, dataset, tokens)
                    log.info("inferred schema: %s", _describe(schema))
                else:
                    _check_drift(lake, raw, schema, tokens, run_id=run_id, partition=partition)
                if curated is None:
                    curated = open_staged(
                        lake,
                        staged,
                        schema.arrow_schema(),
                        unique_columns=[*schema.key, *(c.name for c in schema.columns if c.pii)],
                    )
                    q_schema = quarantine_schema(schema.names)
                    out = stack.enter_context(
                        lake.atomic_output(quarantine_key(dataset, partition))
                    )
                    quarantine = ParquetSink(out, q_schema, QUARANTINE_ROW_GROUP_ROWS)
                    # On failure, stop the writer before atomic_output drops its file.
                    stack.callback(quarantine.abort, close_stream=False)
                    _warn_unsalted(schema, pii_salt)
                assert quarantine is not None and q_schema is not None

                checked = validate_batch(
                    raw.data, schema, missing_tokens=tokens, pii_salt=pii_salt, keys=keys
                )
                if pending is not None:
                    pending.result()
                pending = writer.submit(curated.write, checked.curated)
                if len(checked.rejected_rows):
                    quarantine.write(
                        quarantine_rows(
                            raw.data,
                            checked.rejected_rows,
                            checked.reasons,
                            raw.row_numbers,
                            schema=q_schema,
                            source_file=raw.source_file,
                            run_id=run_id,
                        )
                    )
                if raw.rejected:
                    quarantine.write(
                        quarantine_records(
                            raw.rejected,
                            schema=q_schema,
                            source_file=raw.source_file,
                            run_id=run_id,
                        )
                    )
                    reasons.update(r.reason for r in raw.rejected)
                reasons.update(checked.reason_counts)
                batches += 1
                rows_read += raw.records
                rows_curated += checked.curated.num_rows
                rows_quarantined += len(checked.rejected_rows) + len(raw.rejected)

                now = time.monotonic()
                if batches == 1 or now - last_report >= PROGRESS_EVERY_SECONDS:
                    last_report = now
                    log.info(
                        "batch %d: %s rows read, %s curated, %s quarantined, %s rows/s",
                        batches, f"{rows_read:,}", f"{rows_curated:,}", f"{rows_quarantined:,}",
                        f"{rows_read / max(now - started, 1e-9):,.0f}",
                    )  # fmt: skip

            if pending is not None:
                pending.result()
            if rows_read == 0 or curated is None or quarantine is None:
                raise EmptySourceError(
                    f"source {', '.join(paths)} has no records (zero bytes or a header "
                    f"only): nothing was written for {dataset} dt={partition}"
                )
            if rows_read != rows_curated + rows_quarantined:
                raise AssertionError(
                    f"row accounting broken: read {rows_read} != curated {rows_curated} "
                    f"+ quarantined {rows_quarantined}"
                )
            content_hash, size = curated.close()
            quarantine.close(close_stream=False)  # atomic_output closes and publishes it
    except BaseException:
        if curated is not None:
            curated.abort()
        remove_staged(lake, staged)
        raise

    assert schema is not None
    seconds = time.monotonic() - started
    result = IngestResult(
        dataset=dataset,
        partition=partition,
        run_id=run_id,
        rows_read=rows_read,
        rows_curated=rows_curated,
        rows_quarantined=rows_quarantined,
        reasons=dict(sorted(reasons.items())),
        staged_path=staged,
        curated_key=curated_key(dataset, partition),
        quarantine_key=quarantine_key(dataset, partition),
        schema_version=schema.version,
        content_hash=content_hash,
        bytes=size,
        seconds=round(seconds, 3),
        schema=schema.to_dict(),
        source_files=paths,
    )
    top = ", ".join(f"{r}={n:,}" for r, n in reasons.most_common(5)) or "none"
    log.info(
        "%s",
        f"ingested {dataset} dt={partition}: {rows_read:,} rows read in {batches} batch(es), "
        f"{rows_curated:,} curated, {rows_quarantined:,} quarantined "
        f"({result.quarantined_share:.2%}; reasons: {top}), {size:,} bytes, "
        f"{seconds:.1f} s ({rows_read / max(seconds, 1e-9):,.0f} rows/s); staged for the "
        f"quality gate at {staged}; rejected rows at {lake.uri(result.quarantine_key)}",
    )
    return result


def _describe(schema: DatasetSchema) -> str:
    parts = []
    for c in schema.columns:
        flags = [
            f
            for f, on in (
                ("required", not c.nullable),
                ("categorical", c.categorical),
                ("pii", c.pii),
            )
            if on
        ]
        parts.append(f"{c.name} {c.type}" + (f" ({', '.join(flags)})" if flags else ""))
    return "; ".join(parts) + (f"; key {schema.key}" if schema.key else "; no key")


def _warn_unsalted(schema: DatasetSchema, salt: str) -> None:
    pii = [c.name for c in schema.columns if c.pii]
    if pii and not salt:
        log.warning(
            "PII column(s) %s are hashed without a salt (MLOPS_PII_SALT is empty): anyone can "
            "confirm a guessed value by hashing it. Set the salt.",
            pii,
        )
