"""``run_monitor`` end to end: a real MLflow registry, capture files written by the real
CaptureWriter on a real S3 server (SeaweedFS), the report read back from the lake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.features.pipeline import input_columns
from include.mlops.monitoring import BaselineMissingError, GroundTruthError, run_monitor
from include.mlops.monitoring.cbpe import validation_calibration
from include.mlops.monitoring.report import report_prefix
from include.mlops.registry import approve_version, set_champion
from include.mlops.serving.capture import CaptureWriter
from include.mlops.serving.rows import Rows
from include.mlops.serving.scoring import Scorer

HOUR = datetime(2026, 11, 1, 10, tzinfo=UTC)
RUN_ID = "scheduled__2026-11-01T11:00:00+00:00"


def capture(
    lake,
    rows: pd.DataFrame,
    scorer: Scorer,
    *,
    version: int,
    variant: str,
    at: datetime,
    prefix: str,
) -> list[str]:
    scored = scorer.score(rows)
    ids = [f"{prefix}-{i}" for i in range(len(rows))]
    with CaptureWriter(lake, "churn", replica="test") as writer:
        writer.start()
        accepted = writer.offer(
            Rows(rows[scorer.input_names].to_dict("list"), len(rows)),
            inference_ids=ids,
            model_version=version,
            variant=variant,
            predictions=scored.predictions,
            probabilities=scored.probability,
            captured_at=at,
        )
        assert accepted == len(rows)
    return ids


@pytest.fixture
def lake(s3_server, tmp_path: Path):
    lake = s3_server.lake()
    lake.delete("capture/churn")
    lake.delete("monitoring/churn")
    return lake


def test_run_monitor_writes_the_contract_report(lake, store, register, fitted) -> None:
    pipeline = fitted.candidate.pipeline
    train = fitted.splits.train
    columns = input_columns(pipeline)
    scorer = Scorer.from_pipeline(pipeline, model_name="churn", version=1)
    baseline = compute_drift_baseline(
        train,
        features=columns,
        target="churned",
        predictions=pipeline.predict_proba(train[columns])[:, 1],
    )
    # v1 as train_model registers it now: the calibration map fitted on validation (CBPE);
    # v2 as registered before (no map).
    calibration = validation_calibration(
        pipeline, fitted.splits.validation, columns=columns, target="churned"
    )
    v1 = register(
        drift_baseline={**baseline, "calibration": calibration},
        metrics={"roc_auc": 0.99, "accuracy": 0.99, "threshold": 0.5},
    )
    v2 = register(drift_baseline=baseline)
    # v1's attribution baseline (importance for the weighted drift share); v2 has none.
    importance = {c: float(i + 1) for i, c in enumerate(columns)}
    store.client.log_dict(v1.run_id, {"format": 1, "mean_abs": importance},
                          "attribution_baseline.json")  # fmt: skip
    for v in (v1, v2):
        approve_version(store.client, "churn", v.version, actor="test")
    set_champion(store.client, "churn", v1.version)

    traffic = pd.concat([train] * 3, ignore_index=True)  # like training: no drift
    ids = capture(
        lake,
        traffic,
        scorer,
        version=v1.version,
        variant="champion",
        at=HOUR + timedelta(minutes=5),
        prefix="c",
    )
    moved = traffic.copy()
    moved["monthly_charges"] = moved["monthly_charges"] * 3
    moved["tenure_months"] = moved["tenure_months"] + 40
    capture(
        lake,
        moved,
        scorer,
        version=v2.version,
        variant="canary",
        at=HOUR + timedelta(minutes=20),
        prefix="k",
    )
    # Outside the window: never read.
    capture(
        lake,
        moved.head(50),
        scorer,
        version=v1.version,
        variant="champion",
        at=HOUR - timedelta(minutes=1),
        prefix="old",
    )
    truth = pd.DataFrame({"inference_id": ids, "churned": traffic["churned"].to_numpy()})

    result = run_monitor(
        lake,
        store.client,
        "churn",
        window_start=HOUR,
        window_end=HOUR + timedelta(hours=1),
        run_id=RUN_ID,
        ground_truth=truth,
    )

    assert result.version == v1.version
    assert result.rows == len(traffic)
    assert result.dataset_drift is False
    assert result.model_quality in ("ok", "degraded")
    # CBPE without labels: the test values (0.99) are far above what the window's
    # calibrated probabilities promise, so the estimate degrades and triggers.
    assert result.estimated_quality == "degraded" and result.drift_detected
    canary = result.variants[f"canary:{v2.version}"]
    assert canary["rows"] == len(moved)
    xcom = result.to_xcom()
    json.dumps(xcom)  # XCom-able
    assert xcom["report_uri"].endswith(f"{report_prefix('churn', RUN_ID)}/report.json")
    assert ":" not in report_prefix("churn", RUN_ID).split("/")[-1]

    report = json.loads(lake.read_bytes(f"{report_prefix('churn', RUN_ID)}/report.json"))
    for key in (
        "model_name",
        "version",
        "window",
        "dataset_drift",
        "features",
        "prediction_drift",
        "model_quality",
        "violations",
    ):
        assert key in report
    assert report["window"]["rows"] == len(traffic)
    assert report["window"]["start"].startswith("2026-11-01T10:00:00")
    assert set(report["features"]) == set(columns)
    for name, entry in report["features"].items():
        assert {"drift", "method", "score", "threshold"} <= set(entry), name
        assert isinstance(entry["drift"], bool) and isinstance(entry["method"], str)
    assert report["features"]["signup_date"]["kind"] == "datetime"
    assert report["prediction_drift"]["column"] == "probability"
    assert report["prediction_drift"]["drift"] is False
    assert report["model_quality"]["rows"] == len(traffic)
    assert report["model_quality"]["metrics"]["roc_auc"]["expected"] == 0.99
    estimate = report["estimated_performance"]
    assert estimate["method"] == "cbpe" and estimate["rows"] == len(traffic)
    assert estimate["reference"]["roc_auc"] == 0.99 and "roc_auc" in estimate["degraded"]
    # Realised (labelled) and estimated ROC-AUC of the same window agree.
    realised = report["model_quality"]["metrics"]["roc_auc"]["value"]
    assert abs(estimate["metrics"]["roc_auc"] - realised) <= 0.05
    summary = report["drift_summary"]
    assert summary["weighted_threshold"] == 0.3 and summary["weighted_share"] == 0.0
    total = sum(importance.values())
    assert summary["importance"] == pytest.approx({c: v / total for c, v in importance.items()})
    assert xcom["estimated_quality"] == "degraded"
    assert xcom["estimated_metrics"]["roc_auc"] == estimate["metrics"]["roc_auc"]
    # The canary's window moved on two features, judged against its own baseline.
    (section,) = report["variants"]
    assert section["variant"] == "canary" and section["version"] == v2.version
    assert {"monthly_charges", "tenure_months"} <= set(section["drift_summary"]["drifted_features"])
    assert section["estimated_performance"]["status"] == "unavailable"
    assert section["drift_summary"]["weighted_share"] is None
    assert section["drift_summary"]["weighted_reason"] == "the version has no attribution baseline"
    assert "without a calibration map" in section["estimated_performance"]["reason"]

    page = lake.read_bytes(f"{report_prefix('churn', RUN_ID)}/report.html").decode()
    assert page.count("data:image/png;base64,") >= len(columns)
    assert "Per-feature drift" in page and "monthly_charges" in page

    # Rerunning the same run rewrites the same report.
    again = run_monitor(
        lake,
        store.client,
        "churn",
        window_start=HOUR,
        window_end=HOUR + timedelta(hours=1),
        run_id=RUN_ID,
    )
    assert again.report_uri == result.report_uri
    assert again.model_quality is None
    assert lake.list_files(report_prefix("churn", RUN_ID)) == [
        f"{report_prefix('churn', RUN_ID)}/report.html",
        f"{report_prefix('churn', RUN_ID)}/report.json",
    ]


def test_empty_window_and_missing_baseline(lake, store, register, fitted) -> None:
    v1 = register()
    approve_version(store.client, "churn", v1.version, actor="test")
    set_champion(store.client, "churn", v1.version)
    result = run_monitor(
        lake,
        store.client,
        "churn",
        window_start=HOUR,
        window_end=HOUR + timedelta(hours=1),
        run_id="empty",
    )
    assert result.rows == 0 and result.version == v1.version
    assert result.dataset_drift is False and result.drift_detected is False
    report = json.loads(lake.read_bytes("monitoring/churn/empty/report.json"))
    assert report["notes"] == ["no champion rows were captured in the window"]
    with pytest.raises(GroundTruthError, match=r"ground truth dataset 'nosuch'.*no catalog"):
        run_monitor(
            lake,
            store.client,
            "churn",
            window_start=HOUR,
            window_end=HOUR + timedelta(hours=1),
            run_id="empty",
            ground_truth="nosuch",
        )

    scorer = Scorer.from_pipeline(fitted.candidate.pipeline, model_name="churn", version=1)
    capture(
        lake,
        fitted.splits.train.head(20),
        scorer,
        version=v1.version,
        variant="champion",
        at=HOUR,
        prefix="x",
    )
    for path in Path(store.artifacts).rglob("drift_baseline.json"):
        path.unlink()
    with pytest.raises(
        BaselineMissingError, match=r"version 1 serves as champion but has no drift"
    ):
        run_monitor(
            lake,
            store.client,
            "churn",
            window_start=HOUR,
            window_end=HOUR + timedelta(hours=1),
            run_id="nobase",
        )
