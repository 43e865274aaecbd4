"""Load: write curated rows to a staged Parquet file and rejected rows to quarantine.

The curated file is written to a hidden staging key and only moved into
``curated/<dataset>/dt=<partition>/part-00000.parquet`` by :func:`publish_partition`,
after the quality gate passed; readers therefore see the previous partition or the
new one, never a half-written or ungated one. Rejected rows are published right
away: a rejected row is rejected whatever the gate says.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from include.mlops.etl.extract import RejectedRecord
from include.mlops.etl.naming import PART_FILE
from include.mlops.etl.transform import to_strings
from include.mlops.lake.store import STAGING_PREFIX, Lake

if TYPE_CHECKING:
    from include.mlops.etl.result import IngestResult

#: zstd: about a third smaller than snappy on typical tabular data at a similar
#: write speed, and the lake pays for every byte on each read by training,
#: batch transform and monitoring.
COMPRESSION = "zstd"
#: 256k rows per row group (~10-20 MB uncompressed for a dozen columns): big enough
#: for good compression and useful min/max statistics, small enough that a reader
#: decoding one row group at a time (feature builds, batch transform) stays
#: memory-flat and can split a partition across workers.
ROW_GROUP_ROWS = 262_144
#: Quarantine files are small and read by people: fewer, smaller row groups suffice.
QUARANTINE_ROW_GROUP_ROWS = 65_536

QUARANTINE_META_COLUMNS: tuple[str, ...] = (
    "_raw",
    "_reason",
    "_source_file",
    "_row_number",
    "_ingest_run_id",
)


class _HashingSink:
    """A write-only stream that forwards to ``out`` and hashes every byte on the way,
    so the content hash needs no second read of the file (which on S3 is a download)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if self.aborted:  # the file is being thrown away: don't touch ``out`` again
            return view.nbytes
        self.sha256.update(view)
        self.out.write(view)
        self.bytes += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        """Nothing to flush: ``out`` is flushed when closed."""

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class ParquetSink:
    """A Parquet file written batch by batch, in row groups of a fixed size.

    Buffering to a fixed row-group size makes the file's layout, hence its bytes
    and content hash, depend only on the rows, not on how they were batched.

    Args:
        out: An open output stream (closed by :meth:`close`).
        schema: The file's Arrow schema.
        row_group_rows: Rows per row group.
    """

    def __init__(
        self,
        out: Any,
        schema: pa.Schema,
        row_group_rows: int,
        dictionary_columns: Sequence[str] | None = None,
    ) -> None:
        self.out = out
        self.sink = _HashingSink(out)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.rows = 0
        self.closed = False
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(
            self.sink,
            schema,
            compression=COMPRESSION,
            # Statistics let readers skip row groups; dictionary pages shrink categories.
            write_statistics=True,
            use_dictionary=True if dictionary_columns is None else list(dictionary_columns),
        )

    def write(self, batch: pa.RecordBatch) -> None:
        """Append rows (flushed in whole row groups)."""
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        whole = (table.num_rows // self.row_group_rows) * self.row_group_rows
        cut = table.num_rows if final else whole
        if cut:
            self._writer.write_table(table.slice(0, cut), row_group_size=self.row_group_rows)
        rest = table.slice(cut)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self, close_stream: bool = True) -> tuple[str, int]:
        """Finish the file; returns its sha256 (hex) and size in bytes.

        Args:
            close_stream: Also close the output stream (not when its owner, e.g.
                ``Lake.atomic_output``, closes and publishes it).
        """
        self._flush(final=True)
        self._writer.close()
        self.closed = True
        if close_stream:
            self.out.close()
        return self.sink.sha256.hexdigest(), self.sink.bytes

    def abort(self, close_stream: bool = True) -> None:
        """Stop writing after a failure (the caller deletes the file); no-op once closed."""
        if self.closed:
            return
        self.closed = True
        self.sink.aborted = True
        with contextlib.suppress(Exception):
            self._writer.close()
        if close_stream:
            with contextlib.suppress(Exception):
                self.out.close()


def staged_curated_path(lake: Lake) -> str:
    """A fresh hidden path for a curated file awaiting the quality gate."""
    return lake.path(STAGING_PREFIX, f"ingest-{uuid.uuid4().hex}", PART_FILE)


def open_staged(
    lake: Lake, path: str, schema: pa.Schema, unique_columns: Sequence[str] = ()
) -> ParquetSink:
    """Open the staged curated Parquet file.

    Args:
        lake: The lake.
        path: The staged path (see :func:`staged_curated_path`).
        schema: The curated Arrow schema.
        unique_columns: Columns with (nearly) one value per row, such as the key and
            hashed PII: a dictionary page would only cost time there.
    """
    if lake.scheme == "file":
        lake.fs.create_dir(posixpath.dirname(path), recursive=True)
    dictionary = [n for n in schema.names if n not in set(unique_columns)]
    return ParquetSink(lake.fs.open_output_stream(path), schema, ROW_GROUP_ROWS, dictionary)


def remove_staged(lake: Lake, path: str | None) -> None:
    """Delete a staged file and its private staging folder; missing is fine."""
    if not path:
        return
    with contextlib.suppress(OSError):
        lake.fs.delete_dir(posixpath.dirname(path))


def quarantine_schema(columns: Sequence[str]) -> pa.Schema:
    """Quarantine rows: every source column as its raw string, then where and why."""
    return pa.schema(
        [pa.field(c, pa.string()) for c in columns]
        + [
            pa.field("_raw", pa.string()),
            pa.field("_reason", pa.string(), nullable=False),
            pa.field("_source_file", pa.string(), nullable=False),
            pa.field("_row_number", pa.int64(), nullable=False),
            pa.field("_ingest_run_id", pa.string(), nullable=False),
        ]
    )


def quarantine_rows(
    data: pa.RecordBatch,
    rows: np.ndarray,
    reasons: Sequence[str],
    row_numbers: np.ndarray,
    *,
    schema: pa.Schema,
    source_file: str,
    run_id: str,
) -> pa.RecordBatch:
    """Rejected rows of a parsed batch, with their original values as strings.

    Args:
        data: The raw batch.
        rows: Indices of the rejected rows in ``data``.
        reasons: Each rejected row's reasons.
        row_numbers: Source row numbers of all rows of ``data``.
        schema: The quarantine schema (see :func:`quarantine_schema`).
        source_file: The file the rows came from.
        run_id: The ingest run.

    Returns:
        A batch in the quarantine schema.
    """
    count = len(rows)
    index = pa.array(rows, pa.int64())
    arrays = []
    for name in schema.names[: -len(QUARANTINE_META_COLUMNS)]:
        if name in data.schema.names:
            arrays.append(to_strings(data.column(name).take(index)))
        else:
            arrays.append(pa.nulls(count, pa.string()))
    arrays += [
        pa.nulls(count, pa.string()),
        pa.array(list(reasons), pa.string()),
        pa.array([source_file] * count, pa.string()),
        pa.array(row_numbers[rows], pa.int64()),
        pa.array([run_id] * count, pa.string()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def quarantine_records(
    records: Sequence[RejectedRecord], *, schema: pa.Schema, source_file: str, run_id: str
) -> pa.RecordBatch:
    """Records that could not be split into columns (``malformed_row``, ``invalid_encoding``)."""
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    value_names = schema.names[: -len(QUARANTINE_META_COLUMNS)]
    for record in records:
        values = record.values or {}
        for name in value_names:
            columns[name].append(values.get(name))
        columns["_raw"].append(record.raw)
        columns["_reason"].append(record.reason)
        columns["_source_file"].append(source_file)
        columns["_row_number"].append(record.row_number)
        columns["_ingest_run_id"].append(run_id)
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def publish_partition(lake: Lake, result: IngestResult) -> str:
    """Make a gated ingest's curated partition visible, atomically and idempotently.

    The staged file replaces ``curated/<dataset>/dt=<partition>/part-00000.parquet``
    in one move, so readers see the old object or the new one, never a mix, and a
    rerun of the same run rewrites the same single object. Calling it again after
    a successful publish (an Airflow retry) is a no-op when the published file is
    the one this ingest wrote.

    Args:
        lake: The lake.
        result: What :func:`~include.mlops.etl.pipeline.ingest_partition` returned.

    Returns:
        The curated partition file's URI.

    Raises:
        FileNotFoundError: When the staged file is gone and the published one is
            not this ingest's (re-run the ingest).
    """
    if lake.fs.get_file_info(result.staged_path).type == pafs.FileType.NotFound:
        if lake.exists(result.curated_key) and (
            hashlib.sha256(lake.read_bytes(result.curated_key)).hexdigest() == result.content_hash
        ):
            return lake.uri(result.curated_key)
        raise FileNotFoundError(
            f"staged curated file {result.staged_path} for {result.dataset} "
            f"dt={result.partition} (run {result.run_id}) no longer exists and "
            f"{lake.uri(result.curated_key)} is not its content: re-run the ingest"
        )
    lake.publish(result.staged_path, result.curated_key)
    return lake.uri(result.curated_key)


def discard_staged(lake: Lake, result: IngestResult) -> None:
    """Drop an ingest's staged curated file (the quality gate failed); the published
    partition, if any, stays as it was."""
    remove_staged(lake, result.staged_path)
