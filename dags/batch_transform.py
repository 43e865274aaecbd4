"""
### batch_transform — score a curated dataset with a registered model version

SageMaker Batch Transform on the lake: every row of the chosen curated partition(s) goes
through the version's pipeline on the endpoint's prediction path (same verified load,
same decision threshold), streamed in batches so memory stays flat however big the data.

1. **plan** — check the params (a bad value fails here, naming the field), resolve
   `version` (a number, `champion`, `latest` or another alias) to one version number and
   refuse it unless it is **Approved** (PendingManualApproval and Rejected versions are
   never scored, as on the endpoint); find the partitions and the id (key) columns in
   the dataset's catalog.
2. **transform** — load the version (its files must match the registered sha256),
   stream each partition through it and write, atomically per partition,
   `predictions/<model_name>/<run id>/dt=YYYY-MM-DD/part-00000.parquet` with the id
   columns, `prediction`, `probability` (null for regressors), `model_name`,
   `model_version` (and `probability_<class>` per class for multiclass; with `explain`,
   `explanation_base_value`, `explanation_output`, `contribution_<column>`), then
   `_manifest.json` beside them (rows in/out per partition, version, sha256s, seconds).
   Returns the manifest's URI. The log shows rows done of total and rows/s.

Rows out always equal rows in (checked before publishing). Rerunning the same run
rewrites the same files; a new run writes a new folder.
Schedule: manual (UI, CLI or REST).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from include.mlops.airflow.defaults import DEFAULT_ARGS
from include.mlops.vocabulary import NAME_PATTERN, OPTIONAL_DAY_OR_ALL_PATTERN

with DAG(
    dag_id="batch_transform",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["serving", "lake"],
    params={
        "model_name": Param("churn_model", type="string", pattern=NAME_PATTERN, title="Model name",
                            description="Registered model (MLflow) to score with, e.g. churn_model."),
        "version": Param("champion", type=["string", "integer"], minimum=1,
                         pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", title="Version",
                         description="A version number, 'champion' (what the endpoint serves), "
                         "'latest' (the newest version) or another alias. It must be Approved."),
        "dataset": Param("churn", type="string", pattern=NAME_PATTERN, title="Dataset",
                         description="Curated dataset in the lake to score (curated/<dataset>/)."),
        "partition": Param(None, type=["null", "string"], pattern=OPTIONAL_DAY_OR_ALL_PATTERN,
                           title="Partition (YYYY-MM-DD)",
                           description="The dt= partition to score. Empty or 'all': every "
                           "partition in the dataset's catalog."),
        "batch_rows": Param(100_000, type="integer", minimum=100, maximum=1_000_000,
                            title="Rows per batch",
                            description="Rows decoded, scored and written at a time; memory "
                            "grows with this, not with the data."),
        "explain": Param(False, type="boolean", title="Write explanations",
                         description="Also write each row's attributions beside its prediction: "
                         "explanation_base_value, explanation_output and contribution_<column> per "
                         "input column (base + Σ contributions = output, the model's raw output)."),
    },
) as dag:  # fmt: skip

    @task
    def plan(*, params: dict[str, Any], run_id: str) -> dict:
        """Check params; resolve an Approved version, the partitions and the id columns."""
        from include.mlops.airflow.batch import plan_transform

        return plan_transform(params, run_id=run_id)

    @task
    def transform(batch_plan: dict) -> str:
        """Stream every planned partition through the model; returns the manifest URI."""
        from include.mlops.airflow.batch import transform

        return transform(batch_plan)

    transform(plan())
