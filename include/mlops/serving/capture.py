"""Data capture: sampled requests and predictions, written to the lake off the request path.

The endpoint hands every sampled request to a :class:`CaptureWriter`. :meth:`~CaptureWriter.offer`
only appends a reference to a bounded in-memory buffer under a lock and returns; a
background thread owns all conversion and I/O. It flushes when ``flush_rows`` rows are
waiting or every ``flush_seconds``, groups rows by their hour, and writes one Parquet file
per hour partition::

    capture/<endpoint>/dt=YYYY-MM-DD/hour=HH/<replica>-<first-ts>-<uuid8>.parquet

Files are written through :meth:`Lake.atomic_output`, so a reader sees a whole file or
none. When the store is down, rows stay in memory (within ``max_buffer_rows``) and the
write is retried with exponential backoff; rows that do not fit are dropped and counted,
never blocking or failing a request. :meth:`~CaptureWriter.close` (graceful shutdown)
writes everything still held before it returns.

Columns of a capture file: ``inference_id`` (string), ``captured_at`` (timestamp[us, UTC]),
``endpoint`` (string), ``model_version`` (int64), ``variant`` (string), ``prediction``
(string for classifiers, in the drift baseline's ``category_name`` form, float64 for
regression), ``probability`` (float64, null for regression), then ``feature.<name>`` per
input column as received after type coercion. Files of different model versions may carry
different feature columns; :func:`read_capture` returns their union (missing → null).
"""

from __future__ import annotations

import atexit
import logging
import posixpath
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

CAPTURE_PREFIX = "capture"
FEATURE_PREFIX = "feature."
VARIANTS = ("champion", "canary", "shadow")
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
    ]
)
META_COLUMNS = tuple(META_SCHEMA.names)

_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_HOUR_KEY = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")
_DROP_LOG_SECONDS = 30.0
_LIST_DAYS_DIRECTLY = 3
_FRAME_META = frozenset(
    ("inference_id", "model_version", "variant", "prediction", "probability", "captured_at")
)
_CLOSE_GRACE_SECONDS = 15.0
_ROWS = "__capture_rows__"  # placeholder column of a featureless segment, never written


def should_capture(percent: float, rng: random.Random) -> bool:
    """Whether to capture one request, sampled at ``percent`` (0–100).

    Args:
        percent: Share of requests to capture; ``>= 100`` always, ``<= 0`` never.
        rng: The caller's random source (one per app, seedable in tests).

    Returns:
        True when this request should be captured.
    """
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    return rng.random() * 100.0 < percent


@dataclass(slots=True)
class CaptureRecord:
    """One captured inference (one row).

    Attributes:
        inference_id: The id returned to the client for this row.
        model_version: The registered version that produced the prediction.
        variant: ``champion``, ``canary`` or ``shadow``.
        features: Input values by column name, after type coercion (stored as
            ``feature.<name>``).
        prediction: Predicted label (classifiers; stored as text, e.g. ``"1"``) or value
            (regression; stored as float64).
        probability: Classifiers: the probability reported with the prediction; ``None``
            for regression.
        captured_at: When the request was answered; ``None`` means the time of
            :meth:`CaptureWriter.offer`. Naive datetimes are taken as UTC.
    """

    inference_id: str
    model_version: int
    variant: str
    features: Mapping[str, Any]
    prediction: Any
    probability: float | None = None
    captured_at: datetime | None = None


@dataclass(slots=True)
class _RecordsChunk:
    records: Sequence[CaptureRecord]
    stamped_us: int


@dataclass(slots=True)
class _FrameChunk:
    frame: pd.DataFrame | Columns
    stamped_us: int
    # None: the meta columns are inside the frame; else given to offer() as arguments.
    meta: dict[str, Any] | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True)
class Columns:
    """Feature columns as lists, the way a parsed request holds them.

    The cheapest form to offer: the flush thread extends lists instead of concatenating
    one small DataFrame per request (pandas' per-frame cost dominated capture at
    thousands of requests a second).

    Attributes:
        data: Column name → one value per row.
        n_rows: Rows (every list has this length).
    """

    data: Mapping[str, Sequence[Any]]
    n_rows: int

    def __len__(self) -> int:
        return self.n_rows

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(self.data)


@dataclass
class _PendingFile:
    key: str
    table: pa.Table
    failures: int = 0


@dataclass
class _Segment:
    """Converted rows of one flush: meta values as lists, features as one table."""

    inference_id: list[Any] = field(default_factory=list)
    captured_us: list[int] = field(default_factory=list)
    model_version: list[Any] = field(default_factory=list)
    variant: list[Any] = field(default_factory=list)
    prediction: list[Any] = field(default_factory=list)
    probability: list[Any] = field(default_factory=list)
    features: list[pa.Table] = field(default_factory=list)


class CaptureWriter:
    """Buffers captured rows and writes them to the lake from a background thread.

    Two input forms are accepted by :meth:`offer`; either way the writer only keeps a
    reference (do not mutate what you offered) and converts in its own thread::

        writer.offer([CaptureRecord(...), ...])
        writer.offer(frame, inference_ids=ids, model_version=3, variant="champion",
                     predictions=scored.predictions, probabilities=scored.probability)

    Records are the cheapest overall when the caller holds plain values (the request's
    columns as lists): building one is ~1 µs, the flush thread converts ~3 µs a row. A
    DataFrame costs the caller nothing, but the flush thread pays a pandas concat
    (~40–90 µs per offered frame on a busy 2-core machine), so prefer records for
    single-row traffic. A DataFrame offered without the keyword arguments must carry
    the meta columns itself (``inference_id``, ``model_version``, ``variant``,
    ``prediction``, optional ``probability`` and ``captured_at``); every other column
    is a feature (named ``feature.<name>`` unless it already is).

    Counters (read them any time): ``accepted`` rows taken into the buffer, ``captured``
    rows written to the lake, ``dropped`` rows refused (buffer full, writer closed, bad
    input) or given up at close, ``files_written``, ``write_errors``. After
    :meth:`close`: rows offered = ``captured`` + ``dropped``.

    Args:
        lake: Where to write (S3 or a local folder).
        endpoint: Endpoint (registered model) name; the ``capture/<endpoint>/`` prefix.
        replica: This server's id, first part of every file name.
        max_buffer_rows: Rows held in memory at most (waiting + being written); beyond
            it rows are dropped and counted.
        flush_rows: Flush as soon as this many rows wait.
        flush_seconds: Flush rows at least this often.
        max_retry_seconds: Cap of the backoff between failed writes.
        compression: Parquet codec.
    """

    def __init__(
        self,
        lake: Lake,
        endpoint: str,
        *,
        replica: str,
        max_buffer_rows: int = 200_000,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        max_retry_seconds: float = 30.0,
        compression: str = "zstd",
    ) -> None:
        if not endpoint or "/" in endpoint or endpoint.startswith("."):
            raise ValueError(f"capture endpoint name {endpoint!r} is not a valid path segment")
        if max_buffer_rows < 1 or flush_rows < 1 or flush_seconds <= 0:
            raise ValueError(
                "capture buffer settings must be positive: "
                f"max_buffer_rows={max_buffer_rows}, flush_rows={flush_rows}, "
                f"flush_seconds={flush_seconds}"
            )
        _load_category_name()  # now, not in the flush thread at interpreter exit
        self.lake = lake
        self.endpoint = endpoint
        self.replica = _SAFE_NAME.sub("_", replica) or "replica"
        self.max_buffer_rows = max_buffer_rows
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_retry_seconds = max_retry_seconds
        self.compression = compression

        self.accepted = 0
        self.captured = 0
        self.dropped = 0
        self.files_written = 0
        self.write_errors = 0
        self.last_error: str | None = None

        self._cond = threading.Condition(threading.Lock())
        self._io_lock = threading.Lock()
        self._chunks: list[_RecordsChunk | _FrameChunk] = []
        self._buffered = 0  # rows in _chunks
        self._pending_rows = 0  # rows taken out of _chunks, not yet written
        self._pending: dict[int, _PendingFile] = {}  # by hour index (epoch hours)
        self._closed = False
        self._stopping = False
        self._close_deadline = 0.0
        self._flush_wanted = 0
        self._flush_attempted = 0
        self._flush_served = 0
        self._failures = 0
        self._retry_at = 0.0
        self._last_drop_log = -_DROP_LOG_SECONDS
        self._last_bad_input_log = -_DROP_LOG_SECONDS
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"CaptureWriter({self.lake.uri(CAPTURE_PREFIX, self.endpoint)}, "
            f"replica={self.replica!r}, captured={self.captured}, dropped={self.dropped})"
        )

    def __enter__(self) -> CaptureWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties -----------------------------------------------------------------
    @property
    def buffered_rows(self) -> int:
        """Rows held in memory: waiting for a flush or for a failed write's retry."""
        return self._buffered + self._pending_rows

    @property
    def running(self) -> bool:
        """Whether the background flush thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> CaptureWriter:
        """Start the background flush thread (idempotent); returns self.

        The thread is a daemon so a forgotten writer never hangs interpreter exit; an
        ``atexit`` hook still closes it, and the endpoint closes it on shutdown.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed; create a new writer")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(
                target=self._run, name=f"capture-{self.endpoint}", daemon=True
            )
        self._thread.start()
        atexit.register(self.close)
        log.info(
            "capture of %s started: %s (flush every %s rows or %.1f s, buffer %s rows)",
            self.endpoint,
            self.lake.uri(CAPTURE_PREFIX, self.endpoint),
            self.flush_rows,
            self.flush_seconds,
            self.max_buffer_rows,
        )
        return self

    def offer(
        self,
        records: Sequence[CaptureRecord] | pd.DataFrame | Columns,
        *,
        inference_ids: Sequence[str] | np.ndarray | None = None,
        model_version: int | None = None,
        variant: str | None = None,
        predictions: Sequence[Any] | np.ndarray | None = None,
        probabilities: Sequence[float | None] | np.ndarray | None = None,
        captured_at: datetime | None = None,
    ) -> int:
        """Hand rows to the writer without blocking; never raises.

        Args:
            records: A list of :class:`CaptureRecord`, a DataFrame (see the class doc), or
                :class:`Columns` (feature lists; the cheapest, with the same arguments as
                a DataFrame of features).
            inference_ids: With a DataFrame of features: one id per row.
            model_version: With a DataFrame of features: the version that answered.
            variant: With a DataFrame of features: ``champion``, ``canary`` or ``shadow``.
            predictions: With a DataFrame of features: one prediction per row.
            probabilities: With a DataFrame of features: one probability per row, or
                ``None`` (regression).
            captured_at: With a DataFrame: when it was answered (default: now).

        Returns:
            Rows accepted: all of them, or 0 when they do not fit in the buffer, the
            writer is closed or the input is malformed (then they are added to
            :attr:`dropped`; a request's rows are kept or dropped together).
        """
        try:
            rows = len(records)
            stamped_us = time.time_ns() // 1000
            if isinstance(records, pd.DataFrame | Columns):
                meta: dict[str, Any] | None = None
                if isinstance(records, Columns) and inference_ids is None:
                    raise ValueError("Columns need inference_ids, model_version and predictions")
                if inference_ids is not None or predictions is not None:
                    meta = {
                        "inference_id": inference_ids,
                        "model_version": model_version,
                        "variant": variant,
                        "prediction": predictions,
                        "probability": probabilities,
                    }
                    if inference_ids is None or predictions is None or model_version is None:
                        raise ValueError(
                            "a feature DataFrame needs inference_ids, model_version and predictions"
                        )
                    if len(inference_ids) != rows or len(predictions) != rows:
                        raise ValueError(
                            f"{rows} rows but {len(inference_ids)} inference ids and "
                            f"{len(predictions)} predictions"
                        )
                chunk: _RecordsChunk | _FrameChunk = _FrameChunk(
                    records, stamped_us, meta, captured_at
                )
            else:
                chunk = _RecordsChunk(records, stamped_us)
        except Exception as exc:  # the request path must never fail because of capture
            rows = _safe_len(records)
            with self._cond:
                self.dropped += rows
                now = time.monotonic()
                loud = now - self._last_bad_input_log >= _DROP_LOG_SECONDS
                if loud:
                    self._last_bad_input_log = now
            if loud:  # a caller bug: say it, but do not flood the log at every request
                log.error(
                    "capture of %s: %d rows refused, malformed input: %s (%d dropped so far)",
                    self.endpoint,
                    rows,
                    exc,
                    self.dropped,
                )
            return 0
        if rows == 0:
            return 0
        with self._cond:
            if self._closed:
                self.dropped += rows
                return 0
            room = self.max_buffer_rows - self._buffered - self._pending_rows
            if room < rows:
                self.dropped += rows
                self._log_drop(rows)
                return 0
            self._chunks.append(chunk)
            self._buffered += rows
            self.accepted += rows
            if self._buffered >= self.flush_rows and self._buffered - rows < self.flush_rows:
                self._cond.notify_all()
        return rows

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write every row offered so far and wait for it.

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            True when everything offered before the call is in the lake; False when the
            store is still failing at the deadline (rows stay buffered and retried).
        """
        if not self.running:
            with self._io_lock:
                return self._drain()
        with self._cond:
            self._flush_wanted += 1
            wanted = self._flush_wanted
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._flush_served >= wanted or not self.running, timeout
            ) and (self._flush_served >= wanted)

    def close(self, timeout: float = 30.0) -> bool:
        """Stop taking rows, write everything held, stop the thread (graceful shutdown).

        Args:
            timeout: Seconds to keep retrying a failing store; rows still unwritten then
                are logged and counted as dropped.

        Returns:
            True when every accepted row was written.
        """
        with self._cond:
            already = self._closed
            self._closed = True
            self._stopping = True
            self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
            thread = self._thread
        if already and thread is None:
            return self.buffered_rows == 0
        atexit.unregister(self.close)
        if thread is not None:
            # A write already under way when the deadline passes is let finish: pyarrow's
            # own S3 retries bound it (a dead store fails in ~5 s).
            thread.join(timeout + _CLOSE_GRACE_SECONDS)
            if thread.is_alive():
                log.error(
                    "capture of %s: flush thread still busy %.0f s after close(); "
                    "%d rows may be lost",
                    self.endpoint,
                    timeout + _CLOSE_GRACE_SECONDS,
                    self.buffered_rows,
                )
                return False
        else:
            with self._io_lock:
                while not self._drain() and time.monotonic() < self._close_deadline:
                    time.sleep(
                        min(self._backoff(), max(0.0, self._close_deadline - time.monotonic()))
                    )
                self._give_up()
        if not already:
            log.info(
                "capture of %s closed: %d rows in %d files, %d dropped",
                self.endpoint,
                self.captured,
                self.files_written,
                self.dropped,
            )
        return self.buffered_rows == 0 and self.accepted == self.captured

    # -- flush thread ---------------------------------------------------------------
    def _run(self) -> None:
        next_periodic = time.monotonic() + self.flush_seconds
        while True:
            write = True
            with self._cond:
                while True:
                    now = time.monotonic()
                    has_work = bool(self._buffered or self._pending_rows)
                    if not has_work and now >= next_periodic:
                        next_periodic = now + self.flush_seconds
                    if self._stopping and (not has_work or now >= self._close_deadline):
                        break
                    if self._flush_wanted > self._flush_attempted:
                        break
                    due = self._stopping or self._buffered >= self.flush_rows
                    due = due or (has_work and now >= next_periodic)
                    if due and now >= self._retry_at:
                        break
                    if self._buffered and (
                        self._buffered >= self.flush_rows or now >= next_periodic
                    ):
                        # The store is failing and we wait to retry: still turn waiting
                        # requests into compact Arrow rows (a one-row DataFrame is ~6 KB).
                        write = False
                        break
                    wake = next_periodic
                    if self._retry_at > now:
                        wake = max(wake, self._retry_at)
                    if self._stopping:
                        wake = min(max(self._retry_at, now), self._close_deadline)
                    self._cond.wait(max(0.01, wake - now))
                if self._stopping and (
                    not (self._buffered or self._pending_rows)
                    or time.monotonic() >= self._close_deadline
                ):
                    break
                wanted = self._flush_wanted
                if write:
                    self._flush_attempted = wanted
            next_periodic = time.monotonic() + self.flush_seconds
            with self._io_lock:
                ok = self._drain(write=write)
            with self._cond:
                if ok and write:
                    self._flush_served = max(self._flush_served, wanted)
                self._cond.notify_all()
        with self._io_lock:
            self._give_up()
        with self._cond:
            self._cond.notify_all()

    def _drain(self, *, write: bool = True) -> bool:
        """Convert waiting rows and write every pending file; True if all were written."""
        with self._cond:
            chunks, self._chunks = self._chunks, []
            taken, self._buffered = self._buffered, 0
            self._pending_rows += taken
        if chunks:
            try:
                self._add_pending(chunks)
            except Exception:  # keep the thread alive whatever the input was
                with self._cond:
                    self._pending_rows -= taken
                    self.dropped += taken
                log.exception(
                    "capture of %s: %d rows dropped, could not convert them", self.endpoint, taken
                )
        if not write:
            return False
        ok = True
        for hour in sorted(self._pending):
            pending = self._pending[hour]
            try:
                with self.lake.atomic_output(pending.key) as out:
                    pq.write_table(pending.table, out, compression=self.compression)
            except Exception as exc:
                ok = False
                pending.failures += 1
                with self._cond:
                    self.write_errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._failures += 1
                    delay = self._backoff()
                    self._retry_at = time.monotonic() + delay
                log.warning(
                    "capture of %s: writing %d rows to %s failed (%s); %d rows held, "
                    "retry in %.1f s",
                    self.endpoint,
                    pending.table.num_rows,
                    self.lake.uri(pending.key),
                    exc,
                    self.buffered_rows,
                    delay,
                )
                break  # the store is likely down: do not hammer it with the others
            del self._pending[hour]
            with self._cond:
                rows = pending.table.num_rows
                self._pending_rows -= rows
                self.captured += rows
                self.files_written += 1
                if self._failures:
                    log.info(
                        "capture of %s: store reachable again, wrote %s",
                        self.endpoint,
                        self.lake.uri(pending.key),
                    )
                self._failures = 0
                self._retry_at = 0.0
            log.debug("capture of %s: wrote %d rows to %s", self.endpoint, rows, pending.key)
        return ok

    def _backoff(self) -> float:
        return float(min(self.max_retry_seconds, 0.25 * 2 ** max(0, self._failures - 1)))

    def _give_up(self) -> None:
        with self._cond:
            lost = self._buffered + self._pending_rows
            if not lost:
                return
            self.dropped += lost
            self._chunks = []
            self._buffered = 0
            self._pending_rows = 0
            self._pending.clear()
        log.error(
            "capture of %s: %d rows could not be written to %s before close (last error: %s)",
            self.endpoint,
            lost,
            self.lake.uri(CAPTURE_PREFIX, self.endpoint),
            self.last_error,
        )

    def _log_drop(self, rows: int) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_SECONDS:
            self._last_drop_log = now
            log.warning(
                "capture of %s: buffer full (%d rows held, limit %d), dropped %d rows "
                "(%d so far); last write error: %s",
                self.endpoint,
                self._buffered + self._pending_rows,
                self.max_buffer_rows,
                rows,
                self.dropped,
                self.last_error,
            )

    def _add_pending(self, chunks: list[_RecordsChunk | _FrameChunk]) -> None:
        table, bad_rows = _chunks_to_table(chunks, self.endpoint)
        updates: dict[int, _PendingFile] = {}
        for hour, part in _split_by_hour(table):
            pending = self._pending.get(hour)
            if pending is None:
                updates[hour] = _PendingFile(self._file_key(hour, part), part)
            else:  # the store failed before: grow the same file, written once later
                merged = unify_tables([pending.table, part])
                updates[hour] = _PendingFile(pending.key, merged, pending.failures)
        self._pending.update(updates)
        if bad_rows:
            with self._cond:
                self._pending_rows -= bad_rows
                self.dropped += bad_rows

    def _file_key(self, hour: int, table: pa.Table) -> str:
        first = pc.min(table["captured_at"]).as_py() or datetime.fromtimestamp(0, UTC)
        return posixpath.join(
            partition_key(self.endpoint, hour_start(hour)),
            f"{self.replica}-{first:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.parquet",
        )


# -- conversion (flush thread) -----------------------------------------------------------
def _safe_len(obj: Any) -> int:
    try:
        return len(obj)
    except Exception:
        return 1


def _chunks_to_table(
    chunks: list[_RecordsChunk | _FrameChunk], endpoint: str
) -> tuple[pa.Table, int]:
    """One capture table from buffered chunks (in offer order) and the rows rejected."""
    seg = _Segment()
    errors: list[str] = []
    bad_rows = 0
    # Consecutive chunks of one shape are converted together: one Arrow conversion per
    # run, not per request (most requests are a single row).
    frames: list[_FrameChunk] = []
    records: list[_RecordsChunk] = []
    for chunk in chunks:
        if frames and not (isinstance(chunk, _FrameChunk) and _same_layout(frames[0], chunk)):
            bad_rows += _add_frames(seg, frames, errors)
            frames = []
        if records and not isinstance(chunk, _RecordsChunk):
            bad_rows += _add_records(seg, records, errors)
            records = []
        if isinstance(chunk, _FrameChunk):
            frames.append(chunk)
        else:
            records.append(chunk)
    if frames:
        bad_rows += _add_frames(seg, frames, errors)
    if records:
        bad_rows += _add_records(seg, records, errors)
    if errors:
        log.error(
            "capture of %s: %d rows dropped, cannot convert them (%d chunks); first error: %s",
            endpoint,
            bad_rows,
            len(errors),
            errors[0],
        )
    rows = len(seg.inference_id)
    features = unify_tables(seg.features) if seg.features else pa.table({_ROWS: pa.nulls(0)})
    if features.num_rows != rows:
        raise ValueError(f"capture rows misaligned: {rows} rows, {features.num_rows} feature rows")
    columns: dict[str, pa.Array] = {
        "inference_id": pa.array(
            [None if v is None else str(v) for v in seg.inference_id], pa.string()
        ),
        "captured_at": pa.array(seg.captured_us, pa.int64()).cast(TIMESTAMP),
        "endpoint": pa.array([endpoint] * rows, pa.string()),
        "model_version": pa.array(seg.model_version, pa.int64()),
        "variant": pa.array(seg.variant, pa.string()),
        "prediction": _prediction_array(seg.prediction, seg.probability),
        "probability": pa.array(seg.probability, pa.float64(), from_pandas=True),
    }
    for name in features.column_names:
        if name == _ROWS:
            continue
        columns[name] = features[name].combine_chunks()
    return pa.table(columns), bad_rows


def _add_records(seg: _Segment, run: list[_RecordsChunk], errors: list[str]) -> int:
    """Record lists: one column-wise pass and one Arrow table for the whole run."""
    try:
        feats: dict[str, list[Any]] = {}
        ids, stamps, versions, variants, preds, probas = [], [], [], [], [], []
        n = 0
        for chunk in run:
            for rec in chunk.records:
                ids.append(rec.inference_id)
                at = rec.captured_at
                stamps.append(chunk.stamped_us if at is None else _epoch_us(at))
                versions.append(int(rec.model_version))
                variants.append(rec.variant)
                proba = rec.probability
                probas.append(None if proba is None else float(proba))
                preds.append(_prediction_value(rec.prediction, proba is not None))
                for name, value in rec.features.items():
                    column = feats.get(name)
                    if column is None:
                        column = feats[name] = [None] * n
                    elif len(column) < n:
                        column.extend([None] * (n - len(column)))
                    column.append(value)
                n += 1
        for column in feats.values():
            column.extend([None] * (n - len(column)))
        table = pa.table({FEATURE_PREFIX + k: _arrow_column(v) for k, v in feats.items()})
        if not feats:
            table = pa.table({_ROWS: pa.nulls(n)})
    except Exception as exc:
        if len(run) > 1:  # find the culprit: convert one by one
            return sum(_add_records(seg, [chunk], errors) for chunk in run)
        errors.append(f"{type(exc).__name__}: {exc}")
        return _safe_len(run[0].records)
    seg.inference_id += ids
    seg.captured_us += stamps
    seg.model_version += versions
    seg.variant += variants
    seg.prediction += preds
    seg.probability += probas
    seg.features.append(table)
    return 0


def _same_layout(a: _FrameChunk, b: _FrameChunk) -> bool:
    if isinstance(a.frame, Columns) or isinstance(b.frame, Columns):
        return (
            isinstance(a.frame, Columns)
            and isinstance(b.frame, Columns)
            and a.frame.columns == b.frame.columns
        )
    return (a.meta is None) == (b.meta is None) and a.frame.columns.equals(b.frame.columns)


def _add_frames(seg: _Segment, run: list[_FrameChunk], errors: list[str]) -> int:
    """Frames of one column layout: one concat and Arrow conversion for the whole run."""
    try:
        return _add_frames_unchecked(seg, run)
    except Exception as exc:
        if len(run) > 1:  # find the culprit: convert one by one
            return sum(_add_frames(seg, [chunk], errors) for chunk in run)
        errors.append(f"{type(exc).__name__}: {exc}")
        return len(run[0].frame)


def _add_frames_unchecked(seg: _Segment, run: list[_FrameChunk]) -> int:
    # One concat and one Arrow conversion for the whole run: per-frame conversions of
    # single-row requests cost several times more (measured ~40 vs ~80-500 µs a frame).
    merged: dict[str, list[Any]] | None = None
    if isinstance(run[0].frame, Columns):  # lists: extend, no pandas at all
        merged = {name: [] for name in run[0].frame.data}
        for chunk in run:
            data = chunk.frame.data  # type: ignore[union-attr]
            for name, values in merged.items():
                values.extend(data[name])
        big: Any = None
        rows = sum(len(chunk.frame) for chunk in run)
    else:
        frames = [chunk.frame for chunk in run]
        big = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        rows = len(big)
    ids: list[Any] = []
    stamps: list[int] = []
    versions: list[Any] = []
    variants: list[Any] = []
    preds: list[Any] = []
    probas: list[Any] = []
    if run[0].meta is None:  # meta columns inside the frames
        names = [str(c) for c in big.columns]
        missing = [
            c for c in ("inference_id", "model_version", "variant", "prediction") if c not in names
        ]
        if missing:
            raise ValueError(f"capture DataFrame lacks meta columns {missing} (got {names})")
        ids = big["inference_id"].tolist()
        versions = [int(v) for v in big["model_version"].tolist()]
        variants = big["variant"].tolist()
        probas = (
            [_float_or_none(v) for v in big["probability"].tolist()]
            if "probability" in names
            else [None] * rows
        )
        preds = [
            _prediction_value(p, q is not None)
            for p, q in zip(big["prediction"].tolist(), probas, strict=True)
        ]
        times = big["captured_at"].tolist() if "captured_at" in names else None
        offset = 0
        for chunk in run:
            n = len(chunk.frame)
            if times is not None:
                stamps += [
                    _epoch_us(t) if _present(t) else chunk.stamped_us
                    for t in times[offset : offset + n]
                ]
            else:
                given = chunk.captured_at
                stamps += [chunk.stamped_us if given is None else _epoch_us(given)] * n
            offset += n
        big = big.drop(columns=[c for c in big.columns if str(c) in _FRAME_META])
    else:
        for chunk in run:
            meta = chunk.meta
            assert meta is not None
            n = len(chunk.frame)
            ids += _as_list(meta["inference_id"])
            versions += [int(meta["model_version"])] * n
            variants += [meta["variant"]] * n
            proba = meta["probability"]
            chunk_probas = (
                [None] * n if proba is None else [_float_or_none(v) for v in _as_list(proba)]
            )
            probas += chunk_probas
            preds += [
                _prediction_value(p, q is not None)
                for p, q in zip(_as_list(meta["prediction"]), chunk_probas, strict=True)
            ]
            given = chunk.captured_at
            stamps += [chunk.stamped_us if given is None else _epoch_us(given)] * n
    features = _columns_table(merged, rows) if merged is not None else _features_table(big)
    if not (len(ids) == len(stamps) == len(preds) == len(probas) == features.num_rows == rows):
        raise ValueError(f"capture rows misaligned: {len(ids)} ids for {rows} rows")
    seg.inference_id += ids
    seg.captured_us += stamps
    seg.model_version += versions
    seg.variant += variants
    seg.prediction += preds
    seg.probability += probas
    seg.features.append(features)
    return 0


def _features_table(frame: pd.DataFrame) -> pa.Table:
    """Feature columns as Arrow, named ``feature.<name>``, dtypes as the frame has them."""
    names = [
        name if name.startswith(FEATURE_PREFIX) else FEATURE_PREFIX + name
        for name in (str(c) for c in frame.columns)
    ]
    if not names:
        return pa.table({_ROWS: pa.nulls(len(frame))})
    try:
        converted = pa.Table.from_pandas(frame, preserve_index=False)
        arrays = [converted.column(i).combine_chunks() for i in range(converted.num_columns)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # An object column mixing text and numbers: convert column by column.
        arrays = [_arrow_column(frame.iloc[:, i].tolist()) for i in range(frame.shape[1])]
    arrays = [a.cast(pa.string()) if pa.types.is_large_string(a.type) else a for a in arrays]
    return pa.table(dict(zip(names, arrays, strict=True)))


def _columns_table(data: Mapping[str, list[Any]], rows: int) -> pa.Table:
    """Feature lists as Arrow, named ``feature.<name>`` (types inferred per column)."""
    if not data:
        return pa.table({_ROWS: pa.nulls(rows)})
    arrays = [_arrow_column(values) for values in data.values()]
    arrays = [a.cast(pa.string()) if pa.types.is_large_string(a.type) else a for a in arrays]
    names = [n if n.startswith(FEATURE_PREFIX) else FEATURE_PREFIX + n for n in map(str, data)]
    return pa.table(dict(zip(names, arrays, strict=True)))


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        return list(values.tolist())
    return list(values)


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and value != value)
        and value is not pd.NaT
    )


def _float_or_none(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if number != number else number


def category_name(value: Any) -> str:
    """A class label as the drift baseline writes it (``3``, ``3.0``, ``"3"`` → ``"3"``).

    Delegates to :func:`include.mlops.evaluation.baseline.category_name`, loaded by
    :class:`CaptureWriter` when it is built (that module pulls in scikit-learn, which
    readers of capture do not need, and importing at interpreter exit fails).
    """
    return _load_category_name()(value)


_category_name: Callable[[Any], str] | None = None


def _load_category_name() -> Callable[[Any], str]:
    global _category_name
    if _category_name is None:
        from include.mlops.evaluation.baseline import category_name as baseline_category_name

        _category_name = baseline_category_name
    return _category_name


def _prediction_value(value: Any, classifier: bool) -> Any:
    """Classifier labels as the baseline's category text; regression values as floats."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if classifier or isinstance(value, str):
        return category_name(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return category_name(value)


def _prediction_array(values: list[Any], probabilities: list[Any]) -> pa.Array:
    if any(isinstance(v, str) for v in values) or (
        values and all(v is None for v in values) and any(p is not None for p in probabilities)
    ):
        return pa.array([None if v is None else category_name(v) for v in values], pa.string())
    if not values or all(v is None for v in values):
        return pa.array(values, pa.string())
    return pa.array(values, pa.float64())


def _arrow_column(values: Sequence[Any] | np.ndarray) -> pa.Array:
    """Values as received; a column mixing text and numbers is stored as text."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(
            [None if not _present(v) or v is pd.NA else str(v) for v in values], pa.string()
        )


def _epoch_us(value: datetime | pd.Timestamp | np.datetime64 | str) -> int:
    if isinstance(value, np.datetime64 | str):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
        return int(stamp.value // 1000)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_US


def _split_by_hour(table: pa.Table) -> Iterable[tuple[int, pa.Table]]:
    if table.num_rows == 0:
        return
    hours = pc.divide(table["captured_at"].cast(pa.int64()), _HOUR_US)
    low, high = pc.min(hours).as_py(), pc.max(hours).as_py()
    if low == high:
        yield low, table
        return
    for hour in sorted(set(hours.to_pylist())):
        yield hour, table.filter(pc.equal(hours, hour))


# -- layout ----------------------------------------------------------------------------
def hour_start(hour_index: int) -> datetime:
    """Start (UTC) of an hour counted from the epoch."""
    return _EPOCH + timedelta(hours=hour_index)


def partition_key(endpoint: str, when: datetime) -> str:
    """Lake key of the hour partition holding ``when``: ``capture/<endpoint>/dt=…/hour=…``."""
    when = _as_utc(when)
    return f"{CAPTURE_PREFIX}/{endpoint}/dt={when:%Y-%m-%d}/hour={when:%H}"


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _hour_floor(when: datetime) -> datetime:
    return _as_utc(when).replace(minute=0, second=0, microsecond=0)


# -- reading -----------------------------------------------------------------------------
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
    first_hour, last_hour = _hour_floor(start), _hour_floor(end - _ONE_US)
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
    low = pa.scalar(int((start - _EPOCH) // _ONE_US), pa.int64()).cast(TIMESTAMP)
    high = pa.scalar(int((end - _EPOCH) // _ONE_US), pa.int64()).cast(TIMESTAMP)

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
