"""monitor_model through Airflow (``dag.test()``): capture written by the real CaptureWriter
on SeaweedFS, a real MLflow registry, the drift asset event in Airflow's database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import run_dag, task_states
from tests.serving.conftest import serving_store, serving_template  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(serving_store: Any, s3_server: Any) -> Iterator[Any]:  # noqa: F811
    """churn v1 is the champion; the lake holds no capture or report of it yet."""
    from include.mlops.serving.config import set_variant

    os.environ["MLFLOW_TRACKING_URI"] = serving_store.uri
    set_variant(serving_store.client, "churn", "champion", 1)
    lake = s3_server.lake()
    for prefix in ("capture/churn", "monitoring/churn"):
        lake.delete(prefix)
    yield lake
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def capture_traffic(lake: Any, client: Any, *, drift: float, rows: int = 3000) -> None:
    from include.mlops.demo.churn import generate_churn
    from include.mlops.serving.capture import CaptureWriter
    from include.mlops.serving.rows import Rows
    from include.mlops.serving.scoring import load_scorer

    scorer = load_scorer(client, "churn", 1)
    frame = generate_churn(rows, seed=21, drift=drift)[scorer.input_names]
    scored = scorer.score(frame)
    with CaptureWriter(lake, "churn", replica="it") as writer:
        writer.start()
        writer.offer(Rows(frame.to_dict("list"), rows), inference_ids=[f"it-{i}" for i in range(rows)], model_version=1,
                     variant="champion", predictions=scored.predictions,
                     probabilities=scored.probability,
                     captured_at=datetime.now(UTC) - timedelta(minutes=10))  # fmt: skip


def drift_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "drift_detected")
        ).all()
        return [dict(row.extra or {}) for row in rows]


def test_drift_fires_the_event_and_the_cooldown_holds_the_next(
    dags,
    deployed,
    serving_store,  # noqa: F811
) -> None:
    from include.mlops.airflow.monitoring import LAST_DRIFT_EVENT_TAG

    capture_traffic(deployed, serving_store.client, drift=1.0)
    before = len(drift_events())
    conf = {"model_name": "churn", "window_hours": 1, "cooldown_minutes": 60}
    run = run_dag(dags["monitor_model"], conf)
    states = task_states(run)
    assert run.state == "success" and states["alert"] == "success", states

    summary = run.get_task_instance("monitor", map_index=0).xcom_pull(
        task_ids="monitor", map_indexes=0
    )
    assert summary["rows"] == 3000 and summary["dataset_drift"] and summary["drifted_features"]
    report = json.loads(deployed.read_bytes(summary["report_uri"].split("/", 3)[-1]))
    assert report["dataset_drift"] is True and report["window"]["rows"] == 3000
    events = drift_events()
    assert len(events) == before + 1
    assert events[-1]["model_name"] == "churn" and events[-1]["version"] == 1
    assert set(events[-1]["drifted_features"]) == set(summary["drifted_features"])
    assert LAST_DRIFT_EVENT_TAG in serving_store.client.get_registered_model("churn").tags
    # The scores are in MLflow too, one run per monitoring run, so trends chart over time.
    logged = serving_store.client.get_run(summary["mlflow_run_id"]).data
    assert logged.metrics["dataset_drift"] == 1.0 and logged.metrics["rows"] == 3000
    for feature in summary["drifted_features"]:
        assert logged.metrics[f"drift_score.{feature}"] == pytest.approx(summary["scores"][feature])

    again = run_dag(dags["monitor_model"], conf)
    assert task_states(again)["alert"] == "skipped"  # drift persists, retraining is cooling down
    assert len(drift_events()) == before + 1


def test_no_drift_no_event(dags, deployed, serving_store) -> None:  # noqa: F811
    capture_traffic(deployed, serving_store.client, drift=0.0)
    before = len(drift_events())
    run = run_dag(dags["monitor_model"], {"model_name": "churn", "window_hours": 1})
    states = task_states(run)
    assert run.state == "success" and states["alert"] == "skipped", states
    assert len(drift_events()) == before
