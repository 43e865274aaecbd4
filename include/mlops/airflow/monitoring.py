"""Task bodies of ``monitor_model``: params and context in, one call into the domain, refs out."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.mlops.airflow.hooks import LakeHook
from include.mlops.airflow.training import mlflow_client

log = logging.getLogger(__name__)

ALL_MODELS = "all"
#: Registered-model tag: when this model's last drift event was emitted (ISO, UTC).
LAST_DRIFT_EVENT_TAG = "monitor.last_drift_event"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Trigger-form params → DriftThresholds fields.
THRESHOLD_PARAMS = {"drift_distance": "distance", "drift_p_value": "p_value",
                    "drift_share": "drift_share", "quality_tolerance": "quality_tolerance"}  # fmt: skip


def plan(params: dict[str, Any], *, window_end: datetime | None) -> list[dict]:
    """Validate the params and list one monitoring job per model (``all``: every champion)."""
    from include.mlops.monitoring.drift import DriftThresholds

    problems = []
    model = str(params.get("model_name") or ALL_MODELS)
    if model != ALL_MODELS and not _NAME.match(model):
        problems.append(f"model_name {model!r} must be 'all' or match ^[a-z][a-z0-9_]*$")
    hours = float(params.get("window_hours") or 1)
    if not 0 < hours <= 24 * 30:
        problems.append(f"window_hours {hours:g} must be in (0, 720]")
    truth = str(params.get("ground_truth_dataset") or "")
    if truth and not _NAME.match(truth):
        problems.append(f"ground_truth_dataset {truth!r} must match ^[a-z][a-z0-9_]*$")
    overrides = {field: params.get(name) for name, field in THRESHOLD_PARAMS.items()}
    try:
        thresholds = DriftThresholds.from_params(overrides).to_dict()
    except (TypeError, ValueError) as exc:
        problems.append(str(exc))
    if problems:
        raise AirflowFailException("monitor_model params refused: " + "; ".join(problems))

    end = (window_end or datetime.now(UTC)).astimezone(UTC)
    start = end - timedelta(hours=hours)
    if model == ALL_MODELS:
        from include.mlops.serving.config import read_all_endpoint_configs

        models = sorted(
            n for n, c in read_all_endpoint_configs(mlflow_client()).items() if c.champion
        )
        if not models:
            raise AirflowSkipException("no model is deployed yet: nothing to monitor")
    else:
        models = [model]
    log.info("monitoring %s over [%s, %s)", models, start.isoformat(), end.isoformat())
    return [{"model_name": m, "start": start.isoformat(), "end": end.isoformat(),
             "ground_truth_dataset": truth or None, "thresholds": thresholds} for m in models]  # fmt: skip


def monitor(job: dict[str, Any], *, run_id: str) -> dict:
    """Judge one model's capture window against its serving version's baseline."""
    from include.mlops.etl.naming import safe_run_id
    from include.mlops.monitoring.monitor import MonitorError, run_monitor
    from include.mlops.tracking.mlflow_runs import log_monitoring_run

    client = mlflow_client()
    try:
        result = run_monitor(
            LakeHook().get_lake(), client, job["model_name"], window_start=job["start"],
            window_end=job["end"], run_id=safe_run_id(run_id),
            ground_truth=job.get("ground_truth_dataset"), thresholds=job["thresholds"],
        )  # fmt: skip
    except MonitorError as exc:
        raise AirflowFailException(str(exc)) from exc
    summary = result.to_xcom()
    if result.rows:
        summary["mlflow_run_id"] = log_monitoring_run(client, summary)
    log.info("%s v%s: %d rows, dataset drift %s (%s), prediction drift %s, quality %s; report %s",
             summary["model_name"], summary["version"], summary["rows"], summary["dataset_drift"],
             ", ".join(summary["drifted_features"]) or "no feature", summary["prediction_drift"],
             summary["model_quality"], summary["html_uri"])  # fmt: skip
    return summary


def alert(summary: dict[str, Any], *, cooldown_minutes: float, outlet_events: Any,
          drift_asset: Any, now: datetime | None = None) -> dict:  # fmt: skip
    """Emit the drift event (retraining) and notify; once per model per cooldown.

    Raises:
        AirflowSkipException: No drift (or nothing captured), or still in the cooldown
            after the last event: no asset event is emitted, so no retraining starts.
    """
    from include.mlops.airflow.notifiers import DriftNotifier

    if not summary.get("rows"):
        raise AirflowSkipException(f"nothing captured for {summary['model_name']} in the window")
    if not summary.get("drift_detected"):
        raise AirflowSkipException(
            f"{summary['model_name']}: no drift, no violation beyond thresholds"
        )
    client = mlflow_client()
    model = summary["model_name"]
    now = (now or datetime.now(UTC)).astimezone(UTC)
    last = (client.get_registered_model(model).tags or {}).get(LAST_DRIFT_EVENT_TAG)
    if last and now - datetime.fromisoformat(last) < timedelta(minutes=cooldown_minutes):
        until = datetime.fromisoformat(last) + timedelta(minutes=cooldown_minutes)
        action = (f"Retraining NOT triggered: the last drift event was at {last}; cooldown "
                  f"until {until.isoformat(timespec='seconds')}.")  # fmt: skip
        DriftNotifier({**summary, "action": action}).notify({})
        raise AirflowSkipException(action)
    client.set_registered_model_tag(model, LAST_DRIFT_EVENT_TAG, now.isoformat(timespec="seconds"))
    extra = {"model_name": model, "version": summary["version"],
             "drifted_features": summary["drifted_features"], "scores": summary["scores"],
             "prediction_drift": summary["prediction_drift"],
             "model_quality": summary["model_quality"], "report": summary["html_uri"]}  # fmt: skip
    outlet_events[drift_asset].extra = extra
    DriftNotifier(
        {**summary, "action": "Retraining triggered: train_model runs on drift_detected."}
    ).notify({})
    return extra
