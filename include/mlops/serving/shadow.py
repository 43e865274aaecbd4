"""Shadow scoring: copies of answered requests scored by a shadow model, off the request path.

The shadow's answers are never returned; they are captured beside the answered records
(same inference ids), which is what a shadow deployment is compared on.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from include.mlops.serving.batching import ScoredRows
from include.mlops.serving.rows import Rows, merged_rows
from include.mlops.serving.state import LoadedModel

log = logging.getLogger(__name__)

#: Receives every scored group: ``(endpoint, model, rows, scored, captured_at, caller)``.
ShadowSink = Callable[[str, LoadedModel, Rows, ScoredRows, dt.datetime, str | None], None]


@dataclass(frozen=True)
class ShadowJob:
    """One answered request's copy, waiting for the shadow.

    Attributes:
        endpoint: The endpoint that answered it.
        model: The shadow model to score it with.
        rows: The request's validated rows.
        inference_ids: The ids the answered rows got (the shadow's records join on them).
        captured_at: When the request was answered.
        caller: The name of the API key the request came with.
    """

    endpoint: str
    model: LoadedModel
    rows: Rows
    inference_ids: list[str]
    captured_at: dt.datetime
    caller: str | None = None


class ShadowWorker:
    """Scores copies of requests with shadow models on its own thread, off the request path.

    Jobs wait in a bounded queue (counted in rows); a copy that does not fit is dropped
    and counted, never waited for. The shadow's answers go only to ``sink`` (capture),
    one call per scored group: ``sink(endpoint, model, rows, scored, captured_at, caller)`` with
    the group's rows merged and one :class:`ScoredRows` for all of them, carrying the
    inference ids of the answered requests.

    Args:
        sink: Receives every scored group.
        max_queue_rows: Rows allowed to wait.
        max_batch_rows: Rows per pipeline call.
    """

    def __init__(
        self,
        sink: ShadowSink,
        *,
        max_queue_rows: int = 10_000,
        max_batch_rows: int = 512,
    ) -> None:
        self.sink = sink
        self.max_queue_rows = max_queue_rows
        self.max_batch_rows = max_batch_rows
        self._queue: queue.SimpleQueue[ShadowJob | None] = queue.SimpleQueue()
        self._queued_rows = 0
        self._rows_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.scored = 0
        self.dropped = 0
        self.failed = 0

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
            self._thread.start()

    def submit(
        self,
        endpoint: str,
        model: LoadedModel,
        rows: Rows,
        inference_ids: list[str],
        captured_at: dt.datetime,
        *,
        caller: str | None = None,
    ) -> bool:
        """Queue a copy for the shadow (never blocks). Returns False when dropped."""
        with self._rows_lock:
            if self._queued_rows + rows.n_rows > self.max_queue_rows:
                self.dropped += rows.n_rows
                return False
            self._queued_rows += rows.n_rows
        self._queue.put(ShadowJob(endpoint, model, rows, inference_ids, captured_at, caller))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Score what is queued (within ``timeout``) and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("shadow worker did not finish its queue within %.0fs", timeout)
        self._thread = None

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            rows_taken = first.rows.n_rows
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True  # score what was queued before the stop, then exit
                    continue
                jobs.append(job)
                rows_taken += job.rows.n_rows
                if rows_taken >= self.max_batch_rows and not stop:
                    break
            self._score(jobs)

    def _score(self, jobs: list[ShadowJob]) -> None:
        groups: dict[tuple[int, dt.datetime, str | None], list[ShadowJob]] = {}
        for job in jobs:
            groups.setdefault((id(job.model), job.captured_at, job.caller), []).append(job)
        for group in groups.values():
            first = group[0]
            model = first.model
            rows = merged_rows([job.rows for job in group])
            try:
                results = model.score_batch([job.rows for job in group])
            except Exception as error:  # the shadow never affects traffic
                self.failed += rows.n_rows
                log.warning(
                    "shadow %s version %s failed to score %d request(s): %s",
                    model.model_name,
                    model.version,
                    len(group),
                    error,
                )
                results = None
            with self._rows_lock:
                self._queued_rows -= rows.n_rows
            if results is None:
                continue
            self.scored += rows.n_rows
            # The shadow's records join the answered ones on the same inference ids.
            merged = ScoredRows(
                inference_ids=[i for job in group for i in job.inference_ids],
                predictions=[p for r in results for p in r.predictions],
                probability=None
                if results[0].probability is None
                else [p for r in results for p in (r.probability or [])],
            )
            try:
                self.sink(first.endpoint, model, rows, merged, first.captured_at, first.caller)
            except Exception:
                log.exception("shadow capture failed for %s", first.endpoint)
