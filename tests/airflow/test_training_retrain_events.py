"""An unattended retrain does not start on labels or labelled traffic alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from include.mlops.airflow.training import resolve_request


def curated(dataset: str) -> SimpleNamespace:
    """A curated-dataset asset event as lake_ingest emits it."""
    return SimpleNamespace(extra={"dataset": dataset, "partition": "2026-11-01", "rows": 10})


@pytest.mark.parametrize("dataset", ["churn_ground_truth", "churn_feedback"])
def test_curated_events_of_labels_are_not_a_retraining_trigger(dataset: str) -> None:
    run = SimpleNamespace(run_type="asset_triggered", run_id="asset__1")
    with pytest.raises(AirflowSkipException) as skipped:
        resolve_request(
            {"model_name": "churn"}, dag_run=run,
            triggering_asset_events={"curated_dataset": [curated(dataset)]},
        )  # fmt: skip
    message = str(skipped.value)
    assert dataset in message and "next drift-triggered or scheduled retrain" in message
