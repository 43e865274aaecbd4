"""
### lake_ingest — raw files into the curated Parquet lake, bad rows into quarantine

Reads CSV, JSON lines or Parquet (a local path, an `s3://` URI, or by default the
day's landing folder `landing/<dataset>/dt=<partition>/`), streaming in record batches.

1. **stage** — validate every row against the dataset's schema (declared in code, or
   inferred on the first ingest and stored in `catalog/<dataset>/schema.json`); rows that
   fail a type cast, a required field, a domain rule or key uniqueness go to
   `quarantine/<dataset>/dt=<partition>/` with a reason each; the rest are cleaned
   (strings normalized, missing tokens → null, deduplicated, PII hashed) and staged.
   New, missing or retyped columns stop the run (schema drift report in `reports/quality/`).
2. **quality_gate** — the dataset's Great Expectations suite on the staged partition;
   a failed blocking expectation stops the run before anything is published. Data Docs:
   `reports/quality/<dataset>/<run>/docs/index.html`.
3. **publish** — the staged file replaces `curated/<dataset>/dt=<partition>/` atomically.
4. **update_catalog** — partitions, row counts, quality score, content hash (the data
   snapshot id models record); emits the `curated_dataset` asset event.
5. **build_feedback** — only for labels, a dataset named `<model>_ground_truth`
   (`inference_id`, the target, optional `event_time`; keyed on `inference_id`):
   joins all of the model's capture with all its labels into `curated/<model>_feedback/`
   (the champion's training columns, gated and catalogued like any dataset) and writes
   the accounting to `reports/feedback/<model>/<run>/report.json`. Skipped for any other
   dataset, or while the model has no champion.

Accounting, always: rows read = rows curated + rows quarantined.
Schedule: daily over the landing zone (partition = the day the run covers); manual
runs take any source.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from include.mlops.airflow import assets
from include.mlops.airflow.defaults import DEFAULT_ARGS
from include.mlops.vocabulary import FORMATS, NAME_PATTERN, OPTIONAL_DAY_PATTERN

with DAG(
    dag_id="lake_ingest",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    catchup=False,
    max_active_runs=1,  # one writer per catalog at a time
    default_args=DEFAULT_ARGS,
    tags=["lake", "etl", "quality"],
    params={
        "dataset": Param(
            "churn",
            type="string",
            pattern=NAME_PATTERN,
            title="Dataset",
            description="Dataset name in the lake (lower case, digits, underscores), "
            "e.g. churn. Names the landing, curated, quarantine and catalog folders.",
        ),
        "source": Param(
            None,
            type=["null", "string"],
            title="Source",
            description="A local path or s3:// URI (a file or a folder of files). "
            "Empty: the landing zone, landing/<dataset>/dt=<partition>/.",
        ),
        "format": Param(
            "auto",
            type="string",
            enum=list(FORMATS),
            title="Format",
            description="File format; auto detects it from each file's extension.",
        ),
        "partition": Param(
            None,
            type=["null", "string"],
            pattern=OPTIONAL_DAY_PATTERN,
            title="Partition (YYYY-MM-DD)",
            description="The dt= partition to (re)write. Empty: the day the run covers "
            "(the data interval's start for scheduled runs, the run date for manual ones).",
        ),
    },
) as dag:

    @task
    def plan(
        *, params: dict[str, Any], dag_run: Any = None, data_interval_start: Any = None
    ) -> dict:
        """Resolve the partition and the source files; skip cleanly when there is nothing."""
        from include.mlops.airflow.ingest import plan_ingest

        return plan_ingest(params, dag_run=dag_run, data_interval_start=data_interval_start)

    @task
    def stage(ingest_plan: dict, *, run_id: str) -> dict:
        """Extract, validate, transform; quarantine bad rows; stage the curated file."""
        from include.mlops.airflow.ingest import stage_partition

        return stage_partition(ingest_plan, run_id=run_id)

    @task
    def quality_gate(staged: dict, *, run_id: str) -> dict:
        """Run the dataset's expectation suite on the staged partition."""
        from include.mlops.airflow.ingest import check_quality

        return check_quality(staged, run_id=run_id)

    @task
    def publish(staged: dict, quality: dict) -> str:
        """Atomically replace the curated partition with the staged file."""
        from include.mlops.airflow.ingest import publish_staged

        return publish_staged(staged)

    @task(outlets=[assets.curated_alias])
    def update_catalog(
        staged: dict, quality: dict, curated_uri: str, *, outlet_events: Any
    ) -> dict:
        """Record the partition in the catalog and announce the curated dataset."""
        from include.mlops.airflow.ingest import record_in_catalog

        return record_in_catalog(staged, quality, outlet_events=outlet_events)

    @task(outlets=[assets.curated_alias])
    def build_feedback(recorded: dict, *, run_id: str, outlet_events: Any) -> dict:
        """Labels landed: rebuild the model's labelled traffic (skipped for other datasets)."""
        from include.mlops.airflow.feedback import build_feedback_from_labels

        return build_feedback_from_labels(recorded, run_id=run_id, outlet_events=outlet_events)

    staged = stage(plan())
    quality = quality_gate(staged)
    build_feedback(update_catalog(staged, quality, publish(staged, quality)))
