"""Data capture: sampled requests and predictions, written to the lake off the request path.

The endpoint hands every sampled request's validated rows to a :class:`CaptureWriter`.
:meth:`~CaptureWriter.offer` only appends a reference to a bounded in-memory buffer under
a lock and returns; a background thread owns all conversion
(:mod:`include.mlops.serving.capture_arrow`) and I/O. It flushes when ``flush_rows`` rows
are waiting or every ``flush_seconds``, groups rows by their hour, and writes one Parquet
file per hour partition of the capture zone (layout, columns and the reader:
:mod:`include.mlops.lake.capture`)::

    capture/<endpoint>/dt=YYYY-MM-DD/hour=HH/<replica>-<first-ts>-<uuid8>.parquet

Files are written through :meth:`Lake.atomic_output`, so a reader sees a whole file or
none. When the store is down, rows stay in memory (within ``max_buffer_rows``) and the
write is retried with exponential backoff; rows that do not fit are dropped and counted,
never blocking or failing a request. :meth:`~CaptureWriter.close` (graceful shutdown)
writes everything still held before it returns.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.mlops.lake.capture import CAPTURE_PREFIX, hour_start, partition_key, unify_tables
from include.mlops.lake.store import Lake
from include.mlops.serving.capture_arrow import OfferedRows, load_category_name, offered_to_table
from include.mlops.serving.rows import Rows

log = logging.getLogger(__name__)

_HOUR_US = 3_600_000_000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_DROP_LOG_SECONDS = 30.0
_CLOSE_GRACE_SECONDS = 15.0


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


@dataclass
class _PendingFile:
    key: str
    table: pa.Table
    failures: int = 0


class CaptureWriter:
    """Buffers captured rows and writes them to the lake from a background thread.

    :meth:`offer` takes one request's (or one scored batch's) validated rows, the
    :class:`~include.mlops.serving.rows.Rows` the endpoint already holds, with one score
    per row; the writer only keeps a reference (do not mutate what you offered) and
    converts in its own thread::

        writer.offer(rows, inference_ids=ids, model_version=3, variant="champion",
                     predictions=scored.predictions, probabilities=scored.probability)

    Offering costs the caller ~1 µs; the flush thread extends one list per column for
    consecutive requests with the same columns and converts them to Arrow at once.

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
        load_category_name()  # now, not in the flush thread at interpreter exit
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
        self._offered: list[OfferedRows] = []
        self._buffered = 0  # rows in _offered
        self._pending_rows = 0  # rows taken out of _offered, not yet written
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
        rows: Rows,
        *,
        inference_ids: Sequence[str] | np.ndarray | None = None,
        model_version: int | None = None,
        variant: str | None = None,
        predictions: Sequence[Any] | np.ndarray | None = None,
        probabilities: Sequence[float | None] | np.ndarray | None = None,
        captured_at: datetime | None = None,
        caller: str | None = None,
    ) -> int:
        """Hand rows to the writer without blocking; never raises.

        Args:
            rows: Validated feature rows (stored as ``feature.<name>``).
            inference_ids: One id per row (required).
            model_version: The version that answered (required).
            variant: ``champion``, ``canary`` or ``shadow``.
            predictions: One prediction per row (required).
            probabilities: One probability per row, or ``None`` (regression).
            captured_at: When the rows were answered (default: now).
            caller: The name of the API key the request came with (never the key).

        Returns:
            Rows accepted: all of them, or 0 when they do not fit in the buffer, the
            writer is closed or the input is malformed (then they are added to
            :attr:`dropped`; a request's rows are kept or dropped together).
        """
        try:
            offered = OfferedRows(
                rows,
                inference_ids,  # type: ignore[arg-type]  # checked by OfferedRows
                model_version,  # type: ignore[arg-type]
                variant,
                predictions,  # type: ignore[arg-type]
                probabilities,
                stamped_us=time.time_ns() // 1000,
                captured_at=captured_at,
                caller=caller,
            )
            n_rows = rows.n_rows
        except Exception as exc:  # the request path must never fail because of capture
            n_rows = _offered_rows(rows)
            with self._cond:
                self.dropped += n_rows
                now = time.monotonic()
                loud = now - self._last_bad_input_log >= _DROP_LOG_SECONDS
                if loud:
                    self._last_bad_input_log = now
            if loud:  # a caller bug: say it, but do not flood the log at every request
                log.error(
                    "capture of %s: %d rows refused, malformed input: %s (%d dropped so far)",
                    self.endpoint,
                    n_rows,
                    exc,
                    self.dropped,
                )
            return 0
        if n_rows == 0:
            return 0
        with self._cond:
            if self._closed:
                self.dropped += n_rows
                return 0
            room = self.max_buffer_rows - self._buffered - self._pending_rows
            if room < n_rows:
                self.dropped += n_rows
                self._log_drop(n_rows)
                return 0
            self._offered.append(offered)
            self._buffered += n_rows
            self.accepted += n_rows
            if self._buffered >= self.flush_rows and self._buffered - n_rows < self.flush_rows:
                self._cond.notify_all()
        return n_rows

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
            offered, self._offered = self._offered, []
            taken, self._buffered = self._buffered, 0
            self._pending_rows += taken
        if offered:
            try:
                self._add_pending(offered)
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
            self._offered = []
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

    def _add_pending(self, offered: list[OfferedRows]) -> None:
        table, bad_rows = offered_to_table(offered, self.endpoint)
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


def _offered_rows(rows: Any) -> int:
    """Rows of what was offered, for the drop count of malformed input."""
    n = getattr(rows, "n_rows", None)
    return n if isinstance(n, int) else 1


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
