"""Seed a running embedded stack the way a user would: through the REST API and the lake.

- :func:`ingest_day`: one small churn day (with a few defective rows) through ``lake_ingest``;
- :func:`start_training`: a tiny ``train_model`` run (two logistic-regression trials);
- :func:`write_monitoring_runs`: monitoring reports for a model, written with the
  monitoring package's own report writer (``monitor_model`` is not scheduled here, and a
  drift trend needs several runs).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from include.mlops.lake import Lake
from include.mlops.stack.airflow_api import AirflowClient

DATASET = "churn"
MODEL = "ui_churn"
TRAIN_CONF: dict[str, Any] = {
    "dataset": DATASET,
    "target": "churned",
    "model_name": MODEL,
    "algorithms": ["logistic_regression"],
    "tuning_strategy": "random",
    "max_trials": 2,
    "max_parallel_trials": 1,
    "approval": "manual",
    "seed": 3,
}


def ingest_day(client: AirflowClient, folder: Path, *, partition: str = "2026-11-02") -> str:
    """Write one churn day with defects and ingest it; returns the run id once it succeeded."""
    from include.mlops.demo.landing import write_landing_file

    source = folder / f"churn-{partition}.csv"
    write_landing_file(
        source, fmt="csv", n_rows=600, seed=11, defects={"wrong_type": 4, "missing_required": 3}
    )
    client.unpause("lake_ingest")
    conf = {"dataset": DATASET, "source": str(source), "partition": partition}
    run_id = client.trigger("lake_ingest", conf)
    state = client.wait("lake_ingest", run_id, timeout=300)
    if state != "success":
        raise RuntimeError(f"seeding: lake_ingest run {run_id} ended {state}")
    return run_id


def start_training(client: AirflowClient, **overrides: Any) -> str:
    """Trigger a tiny ``train_model`` run (manual approval unless overridden); its run id."""
    client.unpause("train_model")
    return client.trigger("train_model", {**TRAIN_CONF, **overrides})


def write_monitoring_runs(lake: Lake, *, model_name: str = MODEL, version: int = 1) -> list[str]:
    """Three hourly monitoring reports, the last with drift; returns their HTML keys."""
    from include.mlops.monitoring.report import write_report

    start = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
    keys = []
    for hour, (shift, drifted) in enumerate(((0.02, False), (0.06, False), (0.31, True))):
        window_start = start + dt.timedelta(hours=hour)
        features = {
            name: {
                "drift": drifted and name != "plan",
                "method": "psi" if name != "plan" else "chi_square",
                "score": round(shift * weight, 4),
                "threshold": 0.2 if name != "plan" else 0.05,
                "kind": "numeric" if name != "plan" else "categorical",
            }
            for name, weight in (
                ("tenure_months", 1.0),
                ("monthly_charges", 0.8),
                ("support_calls", 1.3),
                ("plan", 0.1),
            )
        }
        drifted_names = [n for n, f in features.items() if f["drift"]]
        violations = [
            {
                "feature_name": n,
                "constraint_check_type": "baseline_drift_check",
                "description": f"feature {n!r} drifted: psi {features[n]['score']} ≥ 0.2",
                "observed": features[n]["score"],
                "expected": 0.2,
            }
            for n in drifted_names
        ]
        report = {
            "model_name": model_name,
            "version": version,
            "variant": "champion",
            "run_id": f"scheduled__{window_start.isoformat()}",
            "window": {
                "start": window_start.isoformat(),
                "end": (window_start + dt.timedelta(hours=1)).isoformat(),
                "rows": 1200 + 40 * hour,
            },
            "dataset_drift": drifted,
            "drift_summary": {
                "drift": drifted,
                "drifted_features": drifted_names,
                "judged_features": len(features),
                "share": len(drifted_names) / len(features),
            },
            "features": features,
            "prediction_drift": {
                "drift": drifted,
                "method": "psi",
                "score": shift,
                "threshold": 0.2,
                "column": "probability",
            },
            "model_quality": None,
            "violations": violations,
            "data_quality": {},
            "variants": [],
        }
        written = write_report(lake, report, model_name=model_name, run_id=report["run_id"])
        keys.append(written["prefix"] + "/report.html")
    return keys
