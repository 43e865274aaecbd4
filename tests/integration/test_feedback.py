"""Labels for served predictions through the real DAGs (``dag.test()``): ground truth lands
through lake_ingest, build_feedback materialises the labelled traffic, and monitor_model
judges model quality on it without being told where the labels are."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.mlops.demo.landing import write_landing_file
from tests.integration.conftest import run_dag, task_states
from tests.serving.conftest import serving_store, serving_template  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration
CAPTURED = 600
LABELLED = 400
PREFIXES = (
    "capture/churn", "monitoring/churn", "reports/feedback/churn",
    *(f"{zone}/churn_{name}" for zone in ("curated", "catalog", "quarantine")
      for name in ("ground_truth", "feedback")),
)  # fmt: skip


@pytest.fixture
def lake(serving_store: Any, s3_server: Any) -> Iterator[Any]:  # noqa: F811
    """churn v1 serves; no capture, labels or feedback of it yet (and none left after)."""
    from include.mlops.serving.config import set_variant

    os.environ["MLFLOW_TRACKING_URI"] = serving_store.uri
    set_variant(serving_store.client, "churn", "champion", 1)
    lake = s3_server.lake()
    for prefix in PREFIXES:
        lake.delete(prefix)
    yield lake
    for prefix in PREFIXES:  # other tests' monitor runs must not find these labels
        lake.delete(prefix)
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def serve(lake: Any, client: Any) -> pd.DataFrame:
    """Score churn rows with v1 and capture them, as the endpoint does; returns the truth."""
    from include.mlops.demo.churn import generate_churn
    from include.mlops.serving.capture import CaptureWriter
    from include.mlops.serving.rows import Rows
    from include.mlops.serving.scoring import load_scorer

    scorer = load_scorer(client, "churn", 1)
    customers = generate_churn(CAPTURED, seed=31)
    frame = customers[scorer.input_names]
    scored = scorer.score(frame)
    ids = [f"fb-{i}" for i in range(CAPTURED)]
    with CaptureWriter(lake, "churn", replica="it") as writer:
        writer.start()
        writer.offer(Rows(frame.to_dict("list"), CAPTURED), inference_ids=ids, model_version=1,
                     variant="champion", predictions=scored.predictions,
                     probabilities=scored.probability,
                     captured_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip
    return pd.DataFrame({"inference_id": ids, "churned": customers["churned"]})


def test_labels_land_become_feedback_and_drive_model_quality(
    dags: dict,
    lake: Any,
    serving_store: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from include.mlops.training.data import load_curated

    # The champion's training dataset is in the lake (its columns are feedback's).
    write_landing_file(tmp_path / "churn.csv", fmt="csv", n_rows=500, seed=2)
    run = run_dag(dags["lake_ingest"], {"dataset": "churn", "source": str(tmp_path / "churn.csv"),
                                        "partition": "2026-10-01"})  # fmt: skip
    states = task_states(run)
    assert run.state == "success" and states["build_feedback"] == "skipped", states

    truth = serve(lake, serving_store.client)
    labels = pd.concat(
        [
            truth.head(LABELLED),
            pd.DataFrame({"inference_id": ["ghost-1", "ghost-2"], "churned": [0, 1]}),
            truth.head(1),  # the same label twice in one file: quarantined as a duplicate key
        ]
    ).assign(event_time=datetime.now(UTC).isoformat())
    labels.to_csv(tmp_path / "labels.csv", index=False)
    run = run_dag(dags["lake_ingest"], {"dataset": "churn_ground_truth",
                                        "source": str(tmp_path / "labels.csv")})  # fmt: skip
    states = task_states(run)
    assert run.state == "success" and states["build_feedback"] == "success", states

    catalog = lake.read_json("catalog/churn_ground_truth/schema.json")
    assert catalog["schema"]["key"] == ["inference_id"]
    (partition,) = catalog["partitions"].values()
    assert (partition["rows"], partition["quarantined"]) == (LABELLED + 2, 1)
    assert partition["reasons"] == {"duplicate_key": 1}

    summary = run.get_task_instance("build_feedback").xcom_pull(task_ids="build_feedback")
    assert summary["labelled_rows"] == LABELLED
    assert summary["unlabelled_rows"] == CAPTURED - LABELLED
    assert summary["labels_without_capture"] == 2 and summary["duplicate_labels"] == 0
    report = lake.read_json(summary["report_uri"].split("/", 3)[-1])
    assert all(report["accounting"].values()), report["accounting"]
    assert report["captured_requests"] == report["labelled_rows"] + report["unlabelled_rows"]
    assert sorted(report["labels_without_capture_sample"]) == ["ghost-1", "ghost-2"]

    feedback, fb_catalog = load_curated(lake, "churn_feedback")
    assert len(feedback) == LABELLED and fb_catalog["snapshot_id"] == summary["snapshot_id"]
    assert set(feedback["inference_id"]) == set(truth["inference_id"].head(LABELLED))
    assert feedback["churned"].tolist() == (
        truth.set_index("inference_id").loc[feedback["inference_id"], "churned"].tolist()
    )
    assert feedback["email"].isna().all()  # PII, never captured: null, not invented
    assert curated_events("curated_churn_feedback")[-1]["snapshot_id"] == summary["snapshot_id"]

    # monitor_model, no ground_truth_dataset given: the model's own labels are used.
    run = run_dag(dags["monitor_model"], {"model_name": "churn", "window_hours": 1})
    assert run.state == "success", task_states(run)
    monitored = run.get_task_instance("monitor", map_index=0).xcom_pull(
        task_ids="monitor", map_indexes=0
    )
    assert monitored["model_quality"] in ("ok", "degraded")
    assert monitored["labelled_rows"] == LABELLED
    report = json.loads(lake.read_bytes(monitored["report_uri"].split("/", 3)[-1]))
    assert report["ground_truth_dataset"] == "churn_ground_truth"
    quality = report["model_quality"]
    assert (quality["rows"], quality["window_rows"]) == (LABELLED, CAPTURED)
    assert quality["metrics"]["accuracy"]["value"] > 0.5


def curated_events(asset_name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == asset_name)
        ).all()
        return [dict(row.extra or {}) for row in rows]
