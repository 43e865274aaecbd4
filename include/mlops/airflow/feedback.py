"""Task body of ``lake_ingest.build_feedback``: labels landed → the model's feedback dataset.

Runs after ``update_catalog``; only a ``<model>_ground_truth`` ingest builds anything.
Foreseen outcomes are clear task states: another dataset or a model without a champion →
skipped with the reason; a failed quality gate → failed with the gate's message.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.mlops.airflow.hooks import LakeHook

log = logging.getLogger(__name__)


def build_feedback_from_labels(
    recorded: dict[str, Any], *, run_id: str, outlet_events: Any
) -> dict[str, Any]:
    """Rebuild ``<model>_feedback`` after ``<model>_ground_truth`` was ingested.

    Args:
        recorded: What ``update_catalog`` returned (its ``dataset`` names the ingest).
        run_id: The ingest run (names the feedback and quality reports).
        outlet_events: The task's outlet events (the curated-dataset alias).

    Returns:
        The accounting (small, for XCom): rows labelled and not, labels without a
        captured row, duplicates, partitions written, snapshot id, report URI.
    """
    from include.mlops.etl.naming import model_of_ground_truth

    dataset = recorded["dataset"]
    model = model_of_ground_truth(dataset)
    if model is None:
        raise AirflowSkipException(
            f"{dataset} holds no labels (only a <model>_ground_truth ingest builds feedback)"
        )
    from include.mlops.airflow.assets import curated_alias, curated_asset
    from include.mlops.feedback import FeedbackError, NoChampionError, build_feedback
    from include.mlops.quality import DataQualityError

    hook = LakeHook()
    try:
        result = build_feedback(hook.get_lake(), hook.get_mlflow_client(), model, run_id=run_id)
    except NoChampionError as exc:
        raise AirflowSkipException(str(exc)) from exc
    except (FeedbackError, DataQualityError) as exc:
        raise AirflowFailException(str(exc)) from exc  # retrying cannot fix the data
    summary = {
        "model_name": model,
        "dataset": result.dataset,
        "captured_requests": result.captured_requests,
        "labelled_rows": result.labelled_rows,
        "unlabelled_rows": result.unlabelled_rows,
        "labels_without_capture": result.labels_without_capture,
        "duplicate_labels": result.duplicate_labels,
        "labels_without_value": result.labels_without_value,
        "partitions_written": result.written,
        "snapshot_id": result.snapshot_id,
        "report_uri": result.report_uri,
    }
    if result.written:
        extra = {
            "dataset": result.dataset,
            "partition": result.written[-1],
            "partitions": result.written,
            "rows": result.labelled_rows,
            "snapshot_id": result.snapshot_id,
        }
        outlet_events[curated_alias].add(
            curated_asset(hook.get_settings().lake_bucket, result.dataset), extra=extra
        )
    log.info(
        "%s: %d labelled of %d captured requests (%d unlabelled), %d label(s) without a "
        "captured row, %d superseded; written %s; report %s",
        result.dataset, result.labelled_rows, result.captured_requests, result.unlabelled_rows,
        result.labels_without_capture, result.duplicate_labels, result.written or "nothing new",
        result.report_uri,
    )  # fmt: skip
    return summary
