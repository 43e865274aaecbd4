"""What a replica serves right now, and how it changes without failing a request.

The replica's whole serving state is one immutable :class:`ServingState` object. A request
takes a reference to it when it starts and uses only that object (its endpoint, the loaded
model it routes to, that model's batcher) until it answers. A reload builds a complete new
state beside the old one (new versions fully downloaded, verified, unpickled and warmed up
first) and then swaps a single reference, so a request in flight finishes on the model it
started with and the next one sees the new model; a version that fails to load never
replaces a working one.

Scoring goes through a :class:`MicroBatcher` per loaded model: requests that arrive while a
batch is being scored wait (no timer) and are scored together in the next call. At
concurrency 1 that adds nothing; under load it turns N pipeline calls of one row into one
call of N rows, which costs about the same as one, since the scikit-learn pipeline's time
is per call, not per row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.evaluation.baseline import category_name
from include.mlops.registry.versions import APPROVED, NotApprovedError, get_version, registry_client
from include.mlops.serving.config import (
    VARIANTS,
    EndpointConfig,
    ServingConfigError,
    ServingSettings,
    read_all_endpoint_configs,
)
from include.mlops.serving.scoring import Scorer, load_scorer
from include.mlops.serving.validation import InputSchema, Rows, frame_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredRows:
    """One request's share of a scored batch, as plain Python values.

    Attributes:
        inference_ids: One id per row.
        predictions: Label (classifiers) or value (regression) per row.
        probability: Positive-class (binary) or predicted-class (multiclass) probability
            per row; ``None`` for regression.
        class_probabilities: Per row, one probability per class in model class order;
            ``None`` for regression.
    """

    inference_ids: list[str]
    predictions: list[Any]
    probability: list[float] | None = None
    class_probabilities: list[list[float]] | None = None


@dataclass(frozen=True)
class Scored:
    """One request's place in a scored batch (what a batch hook sees).

    Attributes:
        ticket: What the caller attached to the request (e.g. its capture decision).
        rows: The request's validated rows.
        result: Its scores.
        start: Index of its first row in the batch frame.
    """

    ticket: Any
    rows: Rows
    result: ScoredRows
    start: int


#: Called once per scored batch, before its requests are answered, with the model, the
#: batch's DataFrame and the requests that carried a ticket (capture and shadow hooks).
BatchHook = Callable[["LoadedModel", pd.DataFrame, list[Scored]], None]


class ScoringError(RuntimeError):
    """The model raised while scoring valid input (the endpoint answers 500)."""


class LoadedModel:
    """A verified, loaded model version with everything a request needs to use it.

    Args:
        scorer: The loaded scorer (``load_scorer``).
        executor: Where batches are scored (``None``: in the event loop).
        max_batch_rows: Cap on rows per pipeline call.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        executor: Executor | None,
        max_batch_rows: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.scorer = scorer
        self.model_name = scorer.model_name
        self.version = int(scorer.version)
        self.schema = InputSchema.for_scorer(scorer)
        self.is_classifier = scorer.is_classifier
        self.class_keys: list[str] = [category_name(c) for c in scorer.classes]
        self.loaded_at = dt.datetime.now(dt.UTC)
        self.batcher = MicroBatcher(
            self, executor=executor, max_rows=max_batch_rows, on_batch=on_batch
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (``/endpoints``)."""
        return {
            "version": self.version,
            "sha256": self.scorer.sha256,
            "classes": self.class_keys,
            "threshold": self.scorer.threshold,
            "load_seconds": round(self.scorer.load_seconds, 3),
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            # Rows per pipeline call > 1 means concurrent requests were batched.
            "scored_batches": self.batcher.batches,
            "scored_rows": self.batcher.rows,
        }

    def score_batch(self, batch: Sequence[Rows]) -> list[ScoredRows]:
        """Score several requests' rows in one pipeline call; split the results back.

        Raises:
            Exception: Whatever the pipeline raised.
        """
        return self.score_frame(batch)[1]

    def score_frame(self, batch: Sequence[Rows]) -> tuple[pd.DataFrame, list[ScoredRows]]:
        """:meth:`score_batch`, also returning the batch's DataFrame (for capture)."""
        frame = frame_of(batch)
        scored = self.scorer.score(frame)
        predictions = _plain_list(scored.predictions)
        probability = None if scored.probability is None else scored.probability.tolist()
        classes = (
            None if scored.class_probabilities is None else scored.class_probabilities.tolist()
        )
        out: list[ScoredRows] = []
        start = 0
        for rows in batch:
            end = start + rows.n_rows
            out.append(
                ScoredRows(
                    inference_ids=[str(uuid.uuid4()) for _ in range(rows.n_rows)],
                    predictions=predictions[start:end],
                    probability=None if probability is None else probability[start:end],
                    class_probabilities=None if classes is None else classes[start:end],
                )
            )
            start = end
        return frame, out

    def warm_up(self) -> None:
        """Score one all-null row (the pipeline imputes it) so the first request is not slow.

        A failure is logged, not raised: the endpoint still serves the version, and a model
        that cannot score shows up as 500s in ``/metrics`` (what deploy's rollback watches).
        """
        row = Rows({name: [None] for name in self.schema.required}, 1)
        try:
            self.score_batch([row])
        except Exception as error:  # reported, never fatal
            log.error(
                "model %s version %s failed its warm-up scoring of one null row: %s",
                self.model_name,
                self.version,
                error,
            )


class MicroBatcher:
    """Scores requests for one model, batching the ones that arrive during a call.

    Args:
        model: The model whose requests it scores.
        executor: Thread pool to score in (``None``: score in the event loop).
        max_rows: Cap on rows per pipeline call.
        on_batch: Called once per scored batch with the requests that carry a ticket.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        executor: Executor | None,
        max_rows: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.model = model
        self.executor = executor
        self.max_rows = max_rows
        self.on_batch = on_batch
        self._pending: list[_Pending] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def score(self, rows: Rows, ticket: Any = None) -> ScoredRows:
        """Score one request's rows (awaits the batch it joins).

        Args:
            rows: Validated rows.
            ticket: Anything; when not ``None``, the request is handed to ``on_batch``
                with it once scored, before it is answered.

        Raises:
            ScoringError: The pipeline raised on these rows.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredRows] = loop.create_future()
        self._pending.append(_Pending(rows, future, ticket))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # One turn of the loop: requests parsed in the same turn join this batch.
            await asyncio.sleep(0)
            while self._pending:
                batch = self._take()
                if self.executor is None:
                    results = self._run(batch)
                else:
                    results = await loop.run_in_executor(self.executor, self._run, batch)
                for pending, result in zip(batch, results, strict=True):
                    if pending.future.done():
                        continue  # the client went away
                    if isinstance(result, BaseException):
                        pending.future.set_exception(result)
                    else:
                        pending.future.set_result(result)
        finally:
            self._draining = False
            if self._pending:  # arrived after the last check
                self._draining = True
                self._task = loop.create_task(self._drain())

    def _take(self) -> list[_Pending]:
        taken = 0
        for i, pending in enumerate(self._pending):
            if taken and taken + pending.rows.n_rows > self.max_rows:
                batch, self._pending = self._pending[:i], self._pending[i:]
                return batch
            taken += pending.rows.n_rows
        batch, self._pending = self._pending, []
        return batch

    def _run(self, batch: list[_Pending]) -> list[ScoredRows | BaseException]:
        self.batches += 1
        self.rows += sum(p.rows.n_rows for p in batch)
        try:
            frame, scored = self.model.score_frame([p.rows for p in batch])
        except Exception as error:  # isolate the request that broke it
            if len(batch) == 1:
                return [self._failure(error)]
            return [self._run_one(pending) for pending in batch]
        results: list[ScoredRows | BaseException] = list(scored)
        self._hand_over(frame, batch, scored)
        return results

    def _run_one(self, pending: _Pending) -> ScoredRows | BaseException:
        try:
            frame, (scored,) = self.model.score_frame([pending.rows])
        except Exception as error:
            return self._failure(error)
        self._hand_over(frame, [pending], [scored])
        return scored

    def _hand_over(
        self, frame: pd.DataFrame, batch: list[_Pending], scored: list[ScoredRows]
    ) -> None:
        if self.on_batch is None:
            return
        entries: list[Scored] = []
        start = 0
        for pending, result in zip(batch, scored, strict=True):
            if pending.ticket is not None:
                entries.append(Scored(pending.ticket, pending.rows, result, start))
            start += pending.rows.n_rows
        if not entries:
            return
        try:
            self.on_batch(self.model, frame, entries)
        except Exception:  # a capture problem never fails the request
            log.exception("batch hook failed for %s", self.model.model_name)

    def _failure(self, error: Exception) -> ScoringError:
        log.error(
            "model %s version %s raised while scoring: %s: %s",
            self.model.model_name,
            self.model.version,
            type(error).__name__,
            error,
        )
        return ScoringError(
            f"model {self.model.model_name!r} version {self.model.version} failed to score "
            f"the request: {type(error).__name__}: {error}"
        )


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[ScoredRows]
    ticket: Any


@dataclass(frozen=True)
class EndpointState:
    """One endpoint's loaded variants and traffic shares (immutable).

    Attributes:
        model_name: Endpoint (= registered model) name.
        config: The registry configuration this state was built from.
        champion: The loaded champion (``None`` before the first deployment).
        canary: The loaded canary, if any.
        shadow: The loaded shadow, if any.
        errors: Why a configured version is not the one loaded (load failures).
    """

    model_name: str
    config: EndpointConfig
    champion: LoadedModel | None = None
    canary: LoadedModel | None = None
    shadow: LoadedModel | None = None
    errors: tuple[str, ...] = ()

    @property
    def canary_share(self) -> float:
        """Fraction (0-1) of requests the canary answers."""
        return self.config.canary_percent / 100.0 if self.canary is not None else 0.0

    @property
    def shadow_share(self) -> float:
        """Fraction (0-1) of requests copied to the shadow."""
        return self.config.shadow_percent / 100.0 if self.shadow is not None else 0.0

    @property
    def capture_share(self) -> float:
        """Fraction (0-1) of requests captured."""
        return self.config.capture_percent / 100.0

    def route(self, draw: float) -> tuple[LoadedModel, str]:
        """The model and variant answering a request, given a uniform draw in [0, 1).

        Raises:
            LookupError: No champion is loaded.
        """
        if self.canary is not None and draw < self.canary_share:
            return self.canary, "canary"
        if self.champion is None:
            raise LookupError(self.model_name)
        return self.champion, "champion"

    def model(self, variant: str) -> LoadedModel | None:
        """The loaded model of a variant."""
        loaded: LoadedModel | None = getattr(self, variant)
        return loaded

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what this replica serves for the endpoint and at which shares."""
        serving: dict[str, Any] = {}
        for variant in VARIANTS:
            loaded = self.model(variant)
            if loaded is None:
                serving[variant] = None
                continue
            entry = loaded.describe()
            if variant == "canary":
                entry["percent"] = self.config.canary_percent
            elif variant == "shadow":
                entry["percent"] = self.config.shadow_percent
            else:
                entry["percent"] = 100.0 - (
                    self.config.canary_percent if self.canary is not None else 0.0
                )
            serving[variant] = entry
        return {
            "champion": self.champion.version if self.champion else None,
            "canary": self.canary.version if self.canary else None,
            "canary_percent": self.config.canary_percent if self.canary else 0.0,
            "shadow": self.shadow.version if self.shadow else None,
            "shadow_percent": self.config.shadow_percent if self.shadow else 0.0,
            "capture_percent": self.config.capture_percent,
            "serving": serving,
            "configured": self.config.as_dict(),
            "errors": list(self.errors),
            "in_sync": all(
                (self.model(v).version if self.model(v) else None) == self.config.version_of(v)  # type: ignore[union-attr]
                for v in VARIANTS
            ),
        }


@dataclass(frozen=True)
class ServingState:
    """Everything a replica serves at one moment (swapped whole, never mutated).

    Attributes:
        generation: Increases with every reload that changed what is served.
        endpoints: Endpoint name → state.
        default_endpoint: ``MLOPS_DEFAULT_ENDPOINT`` (``None``: the only live endpoint).
        loaded_at: When this state was built.
        registry_error: Why the last registry read failed (``None`` when it worked).
    """

    generation: int = 0
    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    default_endpoint: str | None = None
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    registry_error: str | None = None

    @property
    def live(self) -> list[str]:
        """Endpoints with a champion loaded."""
        return [name for name, ep in self.endpoints.items() if ep.champion is not None]

    def not_ready_reason(self) -> str:
        """Why nothing is served (the 503 message before the first approved deployment)."""
        if self.registry_error and not self.endpoints:
            return (
                f"no approved model is deployed yet: the registry could not be read "
                f"({self.registry_error})"
            )
        if not self.endpoints:
            return (
                "no approved model is deployed yet: the registry holds no registered model; "
                "train one (train_model DAG), approve it and deploy it (deploy_model DAG)"
            )
        waiting = []
        for name, ep in self.endpoints.items():
            detail = "; ".join(ep.errors) if ep.errors else "no champion alias"
            waiting.append(f"{name} ({detail})")
        return (
            "no approved model is deployed yet: no endpoint has a champion loaded "
            f"[{', '.join(waiting)}]; approve a version and deploy it (deploy_model DAG)"
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready view of every endpoint (``/endpoints``, ``/admin/config``)."""
        return {
            "generation": self.generation,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "default_endpoint": self.default_endpoint,
            "registry_error": self.registry_error,
            "endpoints": {name: ep.describe() for name, ep in self.endpoints.items()},
        }


class EndpointManager:
    """Builds serving states from the registry and swaps them in atomically.

    Args:
        settings: The replica's settings (tracking URI, batching, defaults).
        client: An MLflow client (default: one for ``settings.tracking_uri``).
        executor: Thread pool that batches are scored in (``None``: the event loop).
        on_batch: Batch hook of every loaded model (capture, shadow hand-off).
        load: Loads one version (default :func:`load_scorer`); the test seam for a
            model that cannot be loaded is a real broken registry entry, not this.
    """

    def __init__(
        self,
        settings: ServingSettings,
        *,
        client: Any = None,
        executor: Executor | None = None,
        load: Callable[[Any, str, int], Scorer] | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        if client is None and not settings.tracking_uri:
            raise ServingConfigError(
                "MLFLOW_TRACKING_URI is not set: the endpoint reads what to serve from the "
                "MLflow registry"
            )
        self.settings = settings
        self._client = client
        self.executor = executor
        self.on_batch = on_batch
        self._load = load or (lambda client, name, version: load_scorer(client, name, version))
        self._lock = threading.Lock()
        self._state = ServingState(default_endpoint=settings.default_endpoint)
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_seconds = 0.0
        self.listeners: list[Callable[[ServingState], None]] = []

    @property
    def state(self) -> ServingState:
        """The current state (take it once per request and use only that object)."""
        return self._state

    @property
    def client(self) -> Any:
        """The MLflow client (created on first use)."""
        if self._client is None:
            self._client = registry_client(str(self.settings.tracking_uri))
        return self._client

    def reload(self) -> ServingState:
        """Read the registry, load what changed, swap the state in (blocking; thread-safe).

        A registry that cannot be read keeps the current state (and records why); a
        version that cannot be loaded (not Approved, checksum mismatch, unpickling error)
        keeps whatever that variant served before.

        Returns:
            The state now served.
        """
        with self._lock:
            started = time.perf_counter()
            self.reloads += 1
            old = self._state
            try:
                configs = read_all_endpoint_configs(
                    self.client, default_capture_percent=self.settings.capture_percent
                )
            except Exception as error:  # the registry may be down for a while
                self.reload_failures += 1
                message = f"{type(error).__name__}: {error}"
                log.error("cannot read the endpoint configuration from the registry: %s", message)
                self._swap(
                    ServingState(
                        generation=old.generation,
                        endpoints=old.endpoints,
                        default_endpoint=old.default_endpoint,
                        loaded_at=old.loaded_at,
                        registry_error=message[:500],
                    )
                )
                return self._state
            endpoints: dict[str, EndpointState] = {}
            for name, config in configs.items():
                endpoints[name] = self._endpoint(name, config, old.endpoints.get(name))
            changed = _serving_signature(endpoints) != _serving_signature(old.endpoints)
            state = ServingState(
                generation=old.generation + 1 if changed else old.generation,
                endpoints=endpoints,
                default_endpoint=self.settings.default_endpoint,
                registry_error=None,
            )
            in_use = {
                (name, loaded.version)
                for name, ep in endpoints.items()
                for loaded in (ep.champion, ep.canary, ep.shadow)
                if loaded is not None
            }
            # Versions no longer served are released once in-flight requests drop them.
            self._models = {key: m for key, m in self._models.items() if key in in_use}
            self._swap(state)
            if changed:
                _freeze_heap()
            self.last_reload_seconds = time.perf_counter() - started
            if changed:
                log.info(
                    "serving generation %d: %s",
                    state.generation,
                    ", ".join(
                        f"{n} champion={ep.champion.version if ep.champion else None}"
                        f" canary={ep.canary.version if ep.canary else None}"
                        f" shadow={ep.shadow.version if ep.shadow else None}"
                        for n, ep in endpoints.items()
                    )
                    or "nothing",
                )
            return state

    def _swap(self, state: ServingState) -> None:
        self._state = state  # one reference assignment: atomic for every reader
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:
                log.exception("serving-state listener failed")

    def _endpoint(
        self, name: str, config: EndpointConfig, old: EndpointState | None
    ) -> EndpointState:
        loaded: dict[str, LoadedModel | None] = {}
        errors: list[str] = list(config.problems)
        for variant in VARIANTS:
            version = config.version_of(variant)
            if version is None:
                loaded[variant] = None
                continue
            try:
                loaded[variant] = self._model(name, version)
            except Exception as error:  # keep serving what worked
                previous = old.model(variant) if old is not None else None
                kept = f"; still serving version {previous.version}" if previous else ""
                message = (
                    f"{variant} version {version} not loaded: {type(error).__name__}: {error}{kept}"
                )
                log.error("endpoint %s: %s", name, message)
                errors.append(message[:1000])
                loaded[variant] = previous
        return EndpointState(
            model_name=name,
            config=config,
            champion=loaded["champion"],
            canary=loaded["canary"],
            shadow=loaded["shadow"],
            errors=tuple(errors),
        )

    def _model(self, name: str, version: int) -> LoadedModel:
        cached = self._models.get((name, version))
        if cached is not None:
            return cached
        info = get_version(self.client, name, version)
        if info.status != APPROVED:
            raise NotApprovedError(
                f"model {name!r} version {version} is {info.status}, not {APPROVED}; "
                "only Approved versions are served"
            )
        log.info("loading model %s version %s", name, version)
        scorer = self._load(self.client, name, version)
        model = LoadedModel(
            scorer,
            executor=self.executor,
            max_batch_rows=self.settings.max_batch_rows,
            on_batch=self.on_batch,
        )
        model.warm_up()
        log.info(
            "loaded model %s version %s in %.2fs (sha256 %s)",
            name,
            version,
            scorer.load_seconds,
            (scorer.sha256 or "")[:12],
        )
        self._models[(name, version)] = model
        return model


class ShadowWorker:
    """Scores copies of requests with shadow models on its own thread, off the request path.

    Jobs wait in a bounded queue (counted in rows); a copy that does not fit is dropped
    and counted, never waited for. The shadow's answers go only to ``sink`` (capture),
    one call per scored group: ``sink(endpoint, model, frame, scored, captured_at)`` with
    the group's DataFrame and one :class:`ScoredRows` for all its rows, carrying the
    inference ids of the answered requests.

    Args:
        sink: Receives every scored group.
        max_queue_rows: Rows allowed to wait.
        max_batch_rows: Rows per pipeline call.
    """

    def __init__(
        self,
        sink: Callable[[str, LoadedModel, pd.DataFrame, ScoredRows, dt.datetime], None],
        *,
        max_queue_rows: int = 10_000,
        max_batch_rows: int = 512,
    ) -> None:
        self.sink = sink
        self.max_queue_rows = max_queue_rows
        self.max_batch_rows = max_batch_rows
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
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
    ) -> bool:
        """Queue a copy for the shadow (never blocks). Returns False when dropped."""
        with self._rows_lock:
            if self._queued_rows + rows.n_rows > self.max_queue_rows:
                self.dropped += rows.n_rows
                return False
            self._queued_rows += rows.n_rows
        self._queue.put((endpoint, model, rows, inference_ids, captured_at))
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
            rows_taken = first[2].n_rows
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True  # score what was queued before the stop, then exit
                    continue
                jobs.append(job)
                rows_taken += job[2].n_rows
                if rows_taken >= self.max_batch_rows and not stop:
                    break
            self._score(jobs)

    def _score(self, jobs: list[Any]) -> None:
        groups: dict[tuple[int, dt.datetime], list[Any]] = {}
        for job in jobs:
            groups.setdefault((id(job[1]), job[4]), []).append(job)
        for group in groups.values():
            endpoint, model, _, _, captured_at = group[0]
            n_rows = sum(job[2].n_rows for job in group)
            try:
                frame, results = model.score_frame([job[2] for job in group])
            except Exception as error:  # the shadow never affects traffic
                self.failed += n_rows
                log.warning(
                    "shadow %s version %s failed to score %d request(s): %s",
                    model.model_name,
                    model.version,
                    len(group),
                    error,
                )
                results = None
            with self._rows_lock:
                self._queued_rows -= n_rows
            if results is None:
                continue
            self.scored += n_rows
            # The shadow's records join the answered ones on the same inference ids.
            merged = ScoredRows(
                inference_ids=[i for job in group for i in job[3]],
                predictions=[p for r in results for p in r.predictions],
                probability=None
                if results[0].probability is None
                else [p for r in results for p in (r.probability or [])],
            )
            try:
                self.sink(endpoint, model, frame, merged, captured_at)
            except Exception:
                log.exception("shadow capture failed for %s", endpoint)


def _freeze_heap() -> None:
    """Put every object alive now (libraries, loaded models) out of the cyclic GC's reach.

    A full collection walks every tracked object: ~50 ms for the ~220,000 objects of
    mlflow + scikit-learn + a model, which lands on whichever request is being answered
    (a p99 spike). Frozen objects are skipped. Unfreezing first and collecting lets the
    models a swap just released be freed; that one ~50 ms pause happens per deployment,
    not at random under traffic.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _plain_list(values: np.ndarray) -> list[Any]:
    """``tolist()`` that also unwraps numpy scalars held in object arrays."""
    items = values.tolist()
    if values.dtype == object:
        return [v.item() if isinstance(v, np.generic) else v for v in items]
    return items  # type: ignore[no-any-return]


def _serving_signature(endpoints: dict[str, EndpointState]) -> tuple[Any, ...]:
    return tuple(
        (
            name,
            ep.champion.version if ep.champion else None,
            ep.canary.version if ep.canary else None,
            ep.shadow.version if ep.shadow else None,
            ep.config.canary_percent,
            ep.config.shadow_percent,
            ep.config.capture_percent,
        )
        for name, ep in sorted(endpoints.items())
    )
