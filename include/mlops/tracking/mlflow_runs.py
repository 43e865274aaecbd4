"""Thin helpers over the MLflow client: experiments, the tuning run and its trial child runs.

Every helper takes an explicit :class:`mlflow.MlflowClient` (or builds one from a tracking
URI with :func:`mlflow_client`) and never touches MLflow's global "active run" state, so
parallel workers in one process cannot log into each other's runs, and a unit test hands
in a client on a throw-away local store.

The tuning run is the parent; each tuning trial is a child run (tag ``mlflow.parentRunId``)
named ``trial-<n>-<algorithm>`` carrying the trial's parameters, its validation metrics
(``val_<metric>``) and its duration, so the MLflow UI lists the trials under the tuning run
and compares them side by side. Child runs are logged after the trial, with a start time
set back by the trial's duration, so the UI shows how long each trial really took.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

log = logging.getLogger(__name__)

TrialState = Literal["COMPLETE", "PRUNED", "FAIL"]
#: MLflow run status of each trial state. A pruned trial ran as intended and was stopped
#: by the tuner, not by an error, so it is FINISHED; its ``trial_state`` tag says PRUNED.
RUN_STATUS: dict[str, str] = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
#: MLflow's limits on one param value and one tag value (characters).
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 5000
#: Tag holding an error message (also shown as the run's description in the UI).
ERROR_TAG = "error"
NOTE_TAG = "mlflow.note.content"


def mlflow_client(client_or_uri: mlflow.MlflowClient | str | None = None) -> mlflow.MlflowClient:
    """An MLflow client for a tracking URI (a client passes through unchanged).

    Args:
        client_or_uri: A client, a tracking URI (``http://...``, ``sqlite:///...``), or
            ``None`` for MLflow's own default resolution (``MLFLOW_TRACKING_URI``).

    Returns:
        The client.
    """
    if isinstance(client_or_uri, mlflow.MlflowClient):
        return client_or_uri
    return mlflow.MlflowClient(tracking_uri=client_or_uri)


def ensure_experiment(
    client: mlflow.MlflowClient,
    name: str,
    *,
    artifact_location: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> str:
    """The id of the experiment called ``name``, created (or restored) when needed.

    Safe when several processes call it at once: losing the creation race just means
    reading the experiment the winner created.

    Args:
        client: MLflow client.
        name: Experiment name.
        artifact_location: Where runs store artifacts, used only when creating it.
        tags: Experiment tags, used only when creating it.

    Returns:
        The experiment id.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return str(
                client.create_experiment(
                    name,
                    artifact_location=artifact_location,
                    tags={k: str(v) for k, v in (tags or {}).items()},
                )
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        # A deleted experiment still owns its name; bring it back rather than fail.
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def start_parent_run(
    client: mlflow.MlflowClient,
    experiment_id: str,
    *,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Create the tuning run that trial runs hang under; it stays RUNNING until finished.

    Args:
        client: MLflow client.
        experiment_id: Experiment of the run.
        run_name: Display name (e.g. ``tune-churn-2026-11-01``).
        tags: Run tags (values are turned into strings).
        params: Run parameters (lists and dicts are stored as JSON).

    Returns:
        The run id.
    """
    run = client.create_run(
        experiment_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    run_id = str(run.info.run_id)
    if params:
        _log_batch(client, run_id, params=params)
    return run_id


def log_trial_run(
    client: mlflow.MlflowClient,
    *,
    experiment_id: str,
    parent_run_id: str,
    trial_number: int,
    algorithm: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    duration_s: float,
    state: TrialState,
    error: str | None = None,
    tags: Mapping[str, Any] | None = None,
    history: Mapping[str, Mapping[int, float]] | None = None,
) -> str:
    """Record one finished tuning trial as a child run of the tuning run.

    Args:
        client: MLflow client.
        experiment_id: Experiment of the tuning run.
        parent_run_id: The tuning run (see :func:`start_parent_run`).
        trial_number: Optuna trial number.
        algorithm: Algorithm of the trial.
        params: Estimator parameters of the trial (unprefixed).
        metrics: Final metrics, e.g. ``{"val_roc_auc": 0.91}``; ``None`` values are skipped.
            ``duration_s`` is added.
        duration_s: Wall time of the trial, in seconds.
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        error: Why the trial failed (stored as a tag and as the run description).
        tags: Extra tags (worker, study name, ...).
        history: Metric name → step → value, e.g. the validation objective per boosting
            round, so the UI draws the learning curve.

    Returns:
        The child run id.
    """
    if state not in RUN_STATUS:
        raise ValueError(f"trial state {state!r} must be one of {sorted(RUN_STATUS)}")
    end_ms = int(time.time() * 1000)
    run_tags: dict[str, str] = {
        MLFLOW_PARENT_RUN_ID: parent_run_id,
        "trial_number": str(trial_number),
        "trial_state": state,
        "algorithm": algorithm,
        **{k: str(v) for k, v in (tags or {}).items()},
    }
    if error:
        run_tags[ERROR_TAG] = error[:MAX_TAG_LENGTH]
        run_tags[NOTE_TAG] = f"Trial {trial_number} failed: {error}"[:MAX_TAG_LENGTH]
    run = client.create_run(
        experiment_id,
        start_time=end_ms - int(max(duration_s, 0.0) * 1000),
        tags=run_tags,
        run_name=f"trial-{trial_number}-{algorithm}",
    )
    run_id = str(run.info.run_id)
    try:
        _log_batch(
            client,
            run_id,
            params={"algorithm": algorithm, **params},
            metrics={**metrics, "duration_s": duration_s},
            history=history,
            timestamp_ms=end_ms,
        )
    finally:
        # Never leave a trial run RUNNING in the UI, even if logging its values failed.
        client.set_terminated(run_id, status=RUN_STATUS[state], end_time=end_ms)
    return run_id


def finish_run(
    client: mlflow.MlflowClient,
    run_id: str,
    *,
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED",
    metrics: Mapping[str, float | None] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Log final metrics and tags on a run, then end it.

    Args:
        client: MLflow client.
        run_id: The run (typically the tuning run).
        status: Final MLflow status.
        metrics: Final metrics (e.g. best objective, trial counts).
        tags: Final tags.
    """
    _log_batch(client, run_id, metrics=metrics or {}, tags=tags or {})
    client.set_terminated(run_id, status=status)


def log_dict_artifact(
    client: mlflow.MlflowClient, run_id: str, data: Mapping[str, Any], artifact_file: str
) -> None:
    """Store a JSON-able mapping as a run artifact (``.json``, ``.yaml`` or ``.yml``).

    Args:
        client: MLflow client.
        run_id: The run.
        data: What to store.
        artifact_file: Run-relative path, e.g. ``tuning/summary.json``.
    """
    client.log_dict(run_id, dict(data), artifact_file)


def param_value(value: Any) -> str:
    """A parameter value as MLflow stores it: lists and dicts as JSON, cut to MLflow's limit."""
    text = (
        json.dumps(value, sort_keys=True, default=str)
        if isinstance(value, list | tuple | dict)
        else str(value)
    )
    return text[:MAX_PARAM_LENGTH]


@dataclass
class TrialTracker:
    """Logs tuning trials as child runs of one tuning run (wraps :func:`log_trial_run`).

    Built in each worker from ids the tuning run's creator passed along (XCom carries the
    tracking URI, experiment id and parent run id, never a client).

    Attributes:
        client: MLflow client.
        experiment_id: Experiment of the tuning run.
        parent_run_id: The tuning run.
        tags: Tags added to every trial run (e.g. the Optuna study name).
    """

    client: mlflow.MlflowClient
    experiment_id: str
    parent_run_id: str
    tags: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def connect(
        cls,
        client_or_uri: mlflow.MlflowClient | str | None,
        *,
        experiment_id: str,
        parent_run_id: str,
        tags: Mapping[str, Any] | None = None,
    ) -> TrialTracker:
        """A tracker for a tracking URI (or client) and an existing tuning run."""
        return cls(mlflow_client(client_or_uri), experiment_id, parent_run_id, dict(tags or {}))

    def log_trial(
        self,
        *,
        trial_number: int,
        algorithm: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float | None],
        duration_s: float,
        state: TrialState,
        error: str | None = None,
        tags: Mapping[str, Any] | None = None,
        history: Mapping[str, Mapping[int, float]] | None = None,
    ) -> str:
        """Log one trial (see :func:`log_trial_run`); returns the child run id."""
        return log_trial_run(
            self.client,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            trial_number=trial_number,
            algorithm=algorithm,
            params=params,
            metrics=metrics,
            duration_s=duration_s,
            state=state,
            error=error,
            tags={**self.tags, **(tags or {})},
            history=history,
        )


class BackgroundTrialLogger:
    """Logs trials from a background thread, so the next trial computes while MLflow writes.

    A trial's child run costs a few HTTP round trips to the tracking server (~0.4 s on the
    embedded stack); logged inline, that is pure orchestration overhead between two trials.
    Here :meth:`log_trial` only queues the record and :meth:`close` waits until every queued
    trial is logged. A failure is logged as a warning and never reaches the tuning loop
    (the trial already ran; tracking is its record, not the search).

    Use as a context manager around the tuning loop::

        with BackgroundTrialLogger(tracker) as background:
            run_trials(study, ..., tracker=background)
    """

    _STOP = object()

    def __init__(self, tracker: TrialTracker) -> None:
        import queue
        import threading

        self.tracker = tracker
        self._queue: queue.Queue[Any] = queue.Queue()
        self.logged = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._drain, name="mlflow-trials", daemon=True)
        self._thread.start()

    def log_trial(self, **kwargs: Any) -> str:
        """Queue one trial (the arguments of :meth:`TrialTracker.log_trial`); returns ``""``."""
        self._queue.put(kwargs)
        return ""

    def close(self, timeout: float = 300.0) -> None:
        """Wait until every queued trial is logged (or ``timeout`` seconds pass)."""
        self._queue.put(self._STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("MLflow trial logging still busy after %.0fs; giving up on it", timeout)

    def __enter__(self) -> BackgroundTrialLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not self._STOP:
            try:
                self.tracker.log_trial(**item)
                self.logged += 1
            except Exception as exc:
                self.failed += 1
                log.warning("could not log trial %s to MLflow: %s", item.get("trial_number"), exc)


def _log_batch(
    client: mlflow.MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float | None] | None = None,
    tags: Mapping[str, Any] | None = None,
    history: Mapping[str, Mapping[int, float]] | None = None,
    timestamp_ms: int | None = None,
) -> None:
    now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    metric_rows = [
        Metric(key, float(value), now, 0)
        for key, value in (metrics or {}).items()
        if value is not None and _is_number(value)
    ]
    for key, steps in (history or {}).items():
        metric_rows.extend(Metric(key, float(v), now, int(step)) for step, v in steps.items())
    param_rows = [Param(key, param_value(value)) for key, value in (params or {}).items()]
    tag_rows = [RunTag(key, str(value)[:MAX_TAG_LENGTH]) for key, value in (tags or {}).items()]
    # MLflow's batch limits (1000 metrics, 100 params, 100 tags per call) only bind on
    # long learning curves; chunking keeps any size legal.
    chunks = max(
        -(-len(metric_rows) // 1000), -(-len(param_rows) // 100), -(-len(tag_rows) // 100), 1
    )
    for i in range(chunks):
        client.log_batch(
            run_id,
            metrics=metric_rows[i * 1000 : (i + 1) * 1000],
            params=param_rows[i * 100 : (i + 1) * 100],
            tags=tag_rows[i * 100 : (i + 1) * 100],
        )


def _is_number(value: Any) -> bool:
    # NaN is a legal MLflow metric (an undefined ROC-AUC); text is not.
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def log_monitoring_run(
    client: mlflow.MlflowClient, summary: Mapping[str, Any], *, experiment: str = "monitoring"
) -> str:
    """One finished run per monitoring run, so drift scores chart over time in MLflow.

    Args:
        client: MLflow client.
        summary: ``MonitorResult.to_xcom()``: model, version, rows, scores, verdicts.
        experiment: Experiment holding every model's monitoring runs.

    Returns:
        The run id. Metrics: ``drift_score.<feature>``, ``dataset_drift`` (0/1),
        ``drifted_features``, ``prediction_drift`` (0/1), ``violations``, ``rows``, and
        when computed ``weighted_drift_share`` and ``estimated.<metric>`` (CBPE).
    """
    experiment_id = ensure_experiment(client, experiment)
    model = str(summary.get("model_name"))
    tags = {"model_name": model, "version": summary.get("version"),
            "report": summary.get("html_uri"), "monitor_run_id": summary.get("run_id")}  # fmt: skip
    run = client.create_run(
        experiment_id,
        run_name=f"monitor-{model}-v{summary.get('version')}",
        tags={k: str(v) for k, v in tags.items() if v is not None},
    )
    scores = summary.get("scores") or {}
    metrics: dict[str, float | None] = {
        f"drift_score.{name}": value for name, value in scores.items() if _is_number(value)
    }
    metrics.update(
        dataset_drift=float(bool(summary.get("dataset_drift"))),
        drifted_features=float(len(summary.get("drifted_features") or [])),
        prediction_drift=float(bool(summary.get("prediction_drift"))),
        violations=float(summary.get("violations") or 0),
        rows=float(summary.get("rows") or 0),
    )
    if _is_number(summary.get("weighted_share")):
        metrics["weighted_drift_share"] = summary["weighted_share"]
    for name, value in (summary.get("estimated_metrics") or {}).items():
        if _is_number(value):
            metrics[f"estimated.{name}"] = value
    finish_run(client, run.info.run_id, metrics=metrics)
    return str(run.info.run_id)
