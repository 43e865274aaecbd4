"""Read Parquet for the quality gate without loading more than the gate will check.

Great Expectations on pandas holds the whole batch in memory (and copies columns
while computing metrics), so partitions above ``max_rows`` are checked on a
uniform random sample. The sample is drawn by row index across all files and row
groups and read one row group at a time, so peak memory is the sample plus one
row group, not the partition.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.fs as pafs

    from include.mlops.lake.store import Lake

DEFAULT_MAX_ROWS = 500_000


def read_for_quality(
    lake_or_fs: Lake | pafs.FileSystem,
    path: str,
    columns: list[str] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
) -> tuple[pd.DataFrame, int]:
    """Read a Parquet file or folder of files, sampling uniformly above ``max_rows``.

    Args:
        lake_or_fs: A :class:`Lake` (``path`` is then a lake key) or a pyarrow
            filesystem (``path`` is a path in it).
        path: A ``.parquet`` file, or a folder (e.g. a ``dt=`` partition) whose
            ``.parquet`` files are read in name order.
        columns: Columns to read; all when None.
        max_rows: Read everything up to this many rows, else a sample of this size.
        seed: Seed of the sample, so a rerun checks the same rows.

    Returns:
        The rows (in file order) and the total row count of the file(s).

    Raises:
        FileNotFoundError: Nothing to read at ``path``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.mlops.lake.store import Lake

    if isinstance(lake_or_fs, Lake):
        fs, full_path = lake_or_fs.fs, lake_or_fs.path(path)
    else:
        fs, full_path = lake_or_fs, path

    files = _parquet_files(fs, full_path)
    handles = [pq.ParquetFile(fs.open_input_file(f)) for f in files]
    try:
        # (handle, row group, global first row, rows) for every row group, in order.
        groups: list[tuple[pq.ParquetFile, int, int, int]] = []
        offset = 0
        for handle in handles:
            for rg in range(handle.metadata.num_row_groups):
                n = handle.metadata.row_group(rg).num_rows
                groups.append((handle, rg, offset, n))
                offset += n
        total = offset

        wanted = None
        if total > max_rows:
            rng = np.random.default_rng(seed)
            wanted = np.sort(rng.choice(total, size=max_rows, replace=False))

        tables: list[pa.Table] = []
        for handle, rg, first, n in groups:
            if wanted is None:
                tables.append(handle.read_row_group(rg, columns=columns))
                continue
            lo, hi = np.searchsorted(wanted, [first, first + n])
            if lo == hi:
                continue  # no sampled row here: never read this row group
            table = handle.read_row_group(rg, columns=columns)
            tables.append(table.take(pa.array(wanted[lo:hi] - first)))
        if not tables:
            schema = handles[0].schema_arrow
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns])
            return schema.empty_table().to_pandas(), total
        return pa.concat_tables(tables, promote_options="default").to_pandas(), total
    finally:
        for handle in handles:
            handle.close()


def _parquet_files(fs: pafs.FileSystem, path: str) -> list[str]:
    import pyarrow.fs as pafs

    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [path]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no Parquet data at {path}")
    selector = pafs.FileSelector(path, recursive=True)
    files = sorted(
        f.path
        for f in fs.get_file_info(selector)
        if f.type == pafs.FileType.File
        and f.path.endswith(".parquet")
        # Hidden and _staging objects are half-written or not data (e.g. _SUCCESS).
        and not any(
            part.startswith((".", "_")) for part in posixpath.relpath(f.path, path).split("/")
        )
    )
    if not files:
        raise FileNotFoundError(f"no .parquet files under {path}")
    return files
