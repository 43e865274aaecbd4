"""
### monitor_model — live traffic against the serving version's own baseline; drift → retrain

SageMaker Model Monitor, on the endpoint's captured traffic.

1. **plan** — validate the params; `model_name=all` monitors every model with a
   champion (one mapped `monitor` per model). The window is the `window_hours` before
   the run's time.
2. **monitor** — read `capture/<model>/dt=.../hour=.../` for the window, load the
   drift baseline of the version that served it (and of a canary or shadow when
   present), and compute: data quality (missing/extra columns, types, completeness,
   unseen categories), per-feature drift (numeric: normalised Wasserstein, PSI on the
   stored bins, KS for small samples; categorical: Jensen-Shannon, chi-square for small
   samples; the dataset drifts by the plain share of drifted features or by their share of
   the version's attribution importance), prediction drift, the performance estimated
   without labels (CBPE: expected ROC-AUC, accuracy and F1 from the probabilities
   calibrated on validation), and model quality on the labelled part of the window
   (joined on `inference_id`; the report gives labelled rows of window rows) from
   `ground_truth_dataset`, or when it is empty from the model's own `<model>_ground_truth`
   if that dataset exists (with `model_name=all`, each model's own); feature-attribution drift (NDCG of the columns' ranking
   by mean |attribution| vs the version's attribution baseline) and, with ground truth,
   bias drift of the version's facets. Report: `monitoring/<model>/<run>/report.json` and
   `report.html`; scores logged to the MLflow experiment `monitoring` for trends.
3. **alert** — on drift or degraded quality (measured or estimated): emit the `drift_detected` asset (extra:
   model, version, drifted features, scores), which schedules `train_model` to retrain
   from the champion's spec, and notify (task log always; webhook/e-mail when
   configured). At most one event per model per `cooldown_minutes`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, CronTriggerTimetable, Param, task

from include.mlops.airflow import assets
from include.mlops.airflow.defaults import DEFAULT_ARGS
from include.mlops.vocabulary import ALL_MODELS, MODEL_OR_ALL_PATTERN, OPTIONAL_NAME_PATTERN

with DAG(
    dag_id="monitor_model",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["monitoring", "serving"],
    params={
        "model_name": Param(ALL_MODELS, type="string", pattern=MODEL_OR_ALL_PATTERN, title="Model name",
                            description="The endpoint to monitor, or 'all' for every model with a champion."),
        "window_hours": Param(1, type="number", exclusiveMinimum=0, maximum=720, title="Window (hours)",
                              description="Captured traffic of this many hours before the run's time."),
        "ground_truth_dataset": Param(None, type=["null", "string"], pattern=OPTIONAL_NAME_PATTERN,
                                      title="Ground-truth dataset",
                                      description="Curated dataset with inference_id and the true label. "
                                                  "Empty: each model's <model>_ground_truth when it exists "
                                                  "(landed by lake_ingest), else no model quality."),
        "drift_distance": Param(0.1, type="number", exclusiveMinimum=0, maximum=1, title="Drift distance",
                                description="Large samples: a feature drifts at this normalised Wasserstein / "
                                            "Jensen-Shannon distance or more."),
        "drift_p_value": Param(0.05, type="number", exclusiveMinimum=0, maximum=1, title="Drift p-value",
                               description="Small samples: a feature drifts when the KS / chi-square p-value is below this."),
        "drift_share": Param(0.5, type="number", exclusiveMinimum=0, maximum=1, title="Dataset drift share",
                             description="The dataset drifts when at least this share of its features drift."),
        "weighted_drift_share": Param(0.3, type="number", exclusiveMinimum=0, maximum=1,
                                      title="Importance-weighted drift share",
                                      description="The dataset also drifts when the drifted features hold at least this "
                                                  "share of the serving version's attribution importance (mean "
                                                  "|attribution| per input column), so one drifting feature the model "
                                                  "leans on counts for what it weighs."),
        "quality_tolerance": Param(0.1, type="number", minimum=0, maximum=1, title="Quality tolerance",
                                   description="Model quality degrades when a metric is worse than the version's "
                                               "own test metric by more than this share."),
        "estimated_performance_tolerance": Param(0.05, type="number", minimum=0, maximum=1,
                                                 title="Estimated performance tolerance",
                                                 description="Binary classifiers, no labels needed (CBPE): a violation when "
                                                             "the expected ROC-AUC, accuracy or F1 from calibrated "
                                                             "probabilities is below the version's test value by more "
                                                             "than this (absolute)."),
        "attribution_drift_threshold": Param(0.9, type="number", minimum=0, maximum=1,
                                             title="Attribution drift NDCG threshold",
                                             description="Feature-attribution drift (Clarify's): the window's ranking of "
                                                         "columns by mean |attribution| scores an NDCG below this against "
                                                         "the version's attribution baseline."),
        "bias_drift_tolerance": Param(0.1, type="number", minimum=0, maximum=10, title="Bias drift tolerance",
                                      description="Bias drift (with ground truth): a post-training bias metric of a "
                                                  "facet moved from its training-time value by more than this."),
        "cooldown_minutes": Param(360, type="number", minimum=0, maximum=10080, title="Retrain cooldown (minutes)",
                                  description="At most one drift event (retraining) per model in this time."),
    },
) as dag:  # fmt: skip

    @task
    def plan(*, params: dict, dag_run: Any = None) -> list[dict]:
        from include.mlops.airflow.monitoring import plan

        return plan(params, window_end=getattr(dag_run, "run_after", None))

    @task
    def monitor(job: dict, *, run_id: str) -> dict:
        from include.mlops.airflow.monitoring import monitor

        return monitor(job, run_id=run_id)

    @task(outlets=[assets.drift_detected])
    def alert(summary: dict, *, params: dict, outlet_events: Any) -> dict:
        from include.mlops.airflow.monitoring import alert

        return alert(summary, cooldown_minutes=float(params["cooldown_minutes"]),
                     outlet_events=outlet_events, drift_asset=assets.drift_detected)  # fmt: skip

    alert.expand(summary=monitor.expand(job=plan()))
