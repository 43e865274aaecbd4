"""The capture zone of the lake: its layout, its columns, and how to read it.

The endpoint's capture writer (:mod:`include.mlops.serving.capture`) writes here and the
monitor (:mod:`include.mlops.monitoring.monitor`) reads here; both import this module, so
the zone's contract lives in one place and monitoring needs nothing from serving. One
Parquet file per writer flush and hour partition::

    capture/<endpoint>/dt=YYYY-MM-DD/hour=HH/<replica>-<first-ts>-<uuid8>.parquet

Columns of a capture file: ``inference_id`` (string), ``captured_at`` (timestamp[us, UTC]),
``endpoint`` (string), ``model_version`` (int64), ``variant`` (string), ``prediction``
(string for classifiers, in the drift baseline's ``category_name`` form, float64 for
regression), ``probability`` (float64, null for regression), then ``feature.<name>`` per
input column as received after type coercion. Files of different model versions may carry
different feature columns; :func:`read_capture` returns their union (missing → null).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

CAPTURE_PREFIX = "capture"
FEATURE_PREFIX = "feature."
TIMESTAMP = pa.timestamp("us", tz="UTC")
#: The fixed leading columns of every capture file, in order.
META_SCHEMA = pa.schema(
    [
        ("inference_id", pa.string()),
        ("captured_at", TIMESTAMP),
        ("endpoint", pa.string()),
        ("model_version", pa.int64()),
        ("variant", pa.string()),
        ("prediction", pa.string()),
        ("probability", pa.float64()),
        # The name of the API key the request came with (never the key); files written
        # before keys existed have no such column: it reads as null.
        ("caller", pa.string()),
    ]
)
META_COLUMNS = tuple(META_SCHEMA.names)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)

_HOUR_KEY = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")
_LIST_DAYS_DIRECTLY = 3


# -- layout ----------------------------------------------------------------------------
def hour_start(hour_index: int) -> datetime:
    """Start (UTC) of an hour counted from the epoch."""
    return EPOCH + timedelta(hours=hour_index)


def partition_key(endpoint: str, when: datetime) -> str:
    """Lake key of the hour partition holding ``when``: ``capture/<endpoint>/dt=…/hour=…``."""
    when = _as_utc(when)
    return f"{CAPTURE_PREFIX}/{endpoint}/dt={when:%Y-%m-%d}/hour={when:%H}"


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _hour_floor(when: datetime) -> datetime:
    return _as_utc(when).replace(minute=0, second=0, microsecond=0)


# -- reading ---------------------------------------------------------------------------
def capture_files(lake: Lake, endpoint: str, start: datetime, end: datetime) -> list[str]:
    """Lake keys of the capture files in the hour partitions overlapping ``[start, end)``.

    Args:
        lake: The lake.
        endpoint: Endpoint (registered model) name.
        start: Window start (naive = UTC).
        end: Window end, exclusive.

    Returns:
        Sorted keys (a file may hold rows outside the window; :func:`read_capture` filters).
    """
    start, end = _as_utc(start), _as_utc(end)
    if end <= start:
        return []
    first_hour, last_hour = _hour_floor(start), _hour_floor(end - ONE_US)
    keys: list[str] = []
    for day in _capture_days(lake, endpoint, first_hour, last_hour):
        prefix = f"{CAPTURE_PREFIX}/{endpoint}/dt={day:%Y-%m-%d}"
        for key in lake.list_files(prefix, suffix=".parquet"):
            found = _HOUR_KEY.search(key)
            if found is None:
                continue
            hour = datetime.strptime(f"{found[1]} {found[2]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
            if first_hour <= hour <= last_hour:
                keys.append(key)
    return sorted(keys)


def _capture_days(lake: Lake, endpoint: str, first: datetime, last: datetime) -> list[datetime]:
    """The ``dt=`` days to list: every day of a short window, else the days that exist."""
    first_day = first.replace(hour=0)
    days = (last - first_day).days + 1
    if days <= _LIST_DAYS_DIRECTLY:
        return [first_day + timedelta(days=i) for i in range(days)]
    # A long window (a month of monitoring): one listing of the day folders, not one
    # request per calendar day.
    selector = pafs.FileSelector(
        lake.path(CAPTURE_PREFIX, endpoint), recursive=False, allow_not_found=True
    )
    found = []
    for info in lake.fs.get_file_info(selector):
        name = posixpath.basename(info.path.rstrip("/"))
        if info.type != pafs.FileType.Directory or not name.startswith("dt="):
            continue
        try:
            day = datetime.strptime(name[3:], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            continue
        if first_day <= day <= last:
            found.append(day)
    return sorted(found)


def capture_partitions(lake: Lake, endpoint: str, start: datetime, end: datetime) -> list[str]:
    """Lake keys of the existing hour partitions overlapping ``[start, end)``.

    Returns:
        Sorted prefixes like ``capture/churn/dt=2026-11-01/hour=13``.
    """
    return sorted({posixpath.dirname(k) for k in capture_files(lake, endpoint, start, end)})


def read_capture(
    lake: Lake,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    variant: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Captured rows with ``start <= captured_at < end``, oldest first.

    Files with different feature columns (another model version) are combined by the
    union of their columns, missing values null; a column whose type differs between
    files is widened (int → float) or read as text.

    Args:
        lake: The lake.
        endpoint: Endpoint (registered model) name.
        start: Window start (naive = UTC).
        end: Window end, exclusive.
        variant: Keep only ``champion``, ``canary`` or ``shadow`` rows.
        columns: Columns to return (meta names or ``feature.<name>``); default all.
            A requested column no file has comes back all null.

    Returns:
        The rows; an empty frame with the meta columns when nothing was captured.
    """
    start, end = _as_utc(start), _as_utc(end)
    keys = capture_files(lake, endpoint, start, end)
    wanted = list(columns) if columns is not None else None
    low = pa.scalar(int((start - EPOCH) // ONE_US), pa.int64()).cast(TIMESTAMP)
    high = pa.scalar(int((end - EPOCH) // ONE_US), pa.int64()).cast(TIMESTAMP)

    def read_one(key: str) -> pa.Table:
        with lake.fs.open_input_file(lake.path(key)) as f:
            parquet = pq.ParquetFile(f)
            present = parquet.schema_arrow.names
            needed = None
            if wanted is not None:
                needed = [c for c in present if c in wanted or c in ("captured_at", "variant")]
            table = parquet.read(columns=needed)
        mask = pc.and_(
            pc.greater_equal(table["captured_at"], low), pc.less(table["captured_at"], high)
        )
        if variant is not None:
            mask = pc.and_(mask, pc.equal(table["variant"], variant))
        return table.filter(mask)

    if keys:
        with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
            tables = [t for t in pool.map(read_one, keys) if t.num_rows]
    else:
        tables = []
    table = unify_tables(tables) if tables else META_SCHEMA.empty_table()
    if table.num_rows:
        table = table.sort_by([("captured_at", "ascending")])
    order = wanted if wanted is not None else _column_order(table.column_names)
    for name in order:
        if name not in table.column_names:
            kind = META_SCHEMA.field(name).type if name in META_COLUMNS else pa.null()
            table = table.append_column(name, pa.nulls(table.num_rows, kind))
    log.info(
        "read %d capture rows of %s from %d files (%s .. %s%s)",
        table.num_rows,
        endpoint,
        len(keys),
        start.isoformat(),
        end.isoformat(),
        f", variant={variant}" if variant else "",
    )
    return table.select(order).to_pandas()


def _column_order(names: Sequence[str]) -> list[str]:
    meta = [c for c in META_COLUMNS if c in names]
    return meta + [c for c in names if c not in META_COLUMNS]


def unify_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables by column name: union of columns, missing → null.

    Numeric types widen (int64 + float64 → float64); a column whose types cannot be
    promoted (text in one table, numbers in another) becomes text everywhere.
    """
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    kinds: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for fld in table.schema:
            if not pa.types.is_null(fld.type):
                kinds.setdefault(fld.name, set()).add(fld.type)
    as_text = set()
    for name, types in kinds.items():
        if len(types) > 1:
            try:
                pa.unify_schemas(
                    [pa.schema([(name, t)]) for t in types], promote_options="permissive"
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                as_text.add(name)
    fixed = []
    for table in tables:
        for name in as_text & set(table.column_names):
            i = table.column_names.index(name)
            table = table.set_column(i, name, _column_as_text(table[name]))
        fixed.append(table)
    return pa.concat_tables(fixed, promote_options="permissive")


def _column_as_text(column: pa.ChunkedArray) -> pa.Array:
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
