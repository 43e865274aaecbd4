"""Task bodies of ``monitor_model``: params and context in, one call into the domain, refs out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.mlops.airflow.hooks import LakeHook

log = logging.getLogger(__name__)

#: Registered-model tag: when this model's last drift event was emitted (ISO, UTC).
LAST_DRIFT_EVENT_TAG = "monitor.last_drift_event"


def plan(params: dict[str, Any], *, window_end: datetime | None) -> list[dict]:
    """Validate the params and list one monitoring job per model (``all``: every champion)."""
    from include.mlops.monitoring.request import MonitorRequest, MonitorRequestError

    try:
        request = MonitorRequest.from_params(params)
    except MonitorRequestError as exc:
        raise AirflowFailException(str(exc)) from exc
    if request.all_models:
        from include.mlops.serving.config import read_all_endpoint_configs

        models = sorted(
            n
            for n, c in read_all_endpoint_configs(LakeHook().get_mlflow_client()).items()
            if c.champion
        )
        if not models:
            raise AirflowSkipException("no model is deployed yet: nothing to monitor")
    else:
        models = [request.model_name]
    from include.mlops.etl.naming import catalog_key

    lake = LakeHook().get_lake()
    jobs = request.jobs(
        models, window_end=window_end, catalogued=lambda d: lake.exists(catalog_key(d))
    )
    log.info("monitoring %s over [%s, %s); ground truth: %s", models, jobs[0].start, jobs[0].end,
             {j.model_name: j.ground_truth_dataset for j in jobs})  # fmt: skip
    return [job.to_dict() for job in jobs]


def monitor(job: dict[str, Any], *, run_id: str) -> dict:
    """Judge one model's capture window against its serving version's baseline."""
    from include.mlops.etl.naming import safe_run_id
    from include.mlops.monitoring.monitor import MonitorError, run_monitor
    from include.mlops.monitoring.request import MonitorJob
    from include.mlops.tracking.mlflow_runs import log_monitoring_run

    planned = MonitorJob.from_dict(job)
    hook = LakeHook()
    client = hook.get_mlflow_client()
    try:
        result = run_monitor(
            hook.get_lake(), client, planned.model_name, window_start=planned.start,
            window_end=planned.end, run_id=safe_run_id(run_id),
            ground_truth=planned.ground_truth_dataset, thresholds=planned.thresholds,
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
    client = LakeHook().get_mlflow_client()
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
             "model_quality": summary["model_quality"],
             "estimated_quality": summary.get("estimated_quality"),
             "report": summary["html_uri"]}  # fmt: skip
    outlet_events[drift_asset].extra = extra
    DriftNotifier(
        {**summary, "action": "Retraining triggered: train_model runs on drift_detected."}
    ).notify({})
    return extra
