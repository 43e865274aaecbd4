"""Feedback materialisation on a local lake: real ingests, real capture files, real gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.mlops.demo.churn import generate_churn
from include.mlops.etl.schema import infer_schema
from include.mlops.feedback import FeedbackError, materialise_feedback
from include.mlops.lake.store import Lake
from include.mlops.quality import DataQualityError
from tests.lake_seed import ingest_file

FEATURES = [
    "age", "tenure_months", "plan", "monthly_charges", "total_charges", "support_calls",
    "region", "payment_method", "signup_date",
]  # fmt: skip
DAY1 = datetime(2026, 11, 1, 9, tzinfo=UTC)
DAY2 = datetime(2026, 11, 2, 15, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


def ingest(lake: Lake, dataset: str, path: Path, partition: str, run_id: str) -> Any:
    return ingest_file(lake, dataset, path, partition, run_id=run_id, pii_salt="salt")


def capture(lake: Lake, frame: pd.DataFrame, ids: list[str], when: datetime, **kw: Any) -> None:
    from include.mlops.serving.capture import CaptureWriter
    from include.mlops.serving.rows import Rows

    rows = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None)
    data = {c: rows[c].tolist() for c in FEATURES}
    with CaptureWriter(lake, "churn", replica="unit") as writer:
        writer.start()
        writer.offer(
            Rows(data, len(frame)), inference_ids=ids, model_version=kw.get("version", 1),
            variant=kw.get("variant", "champion"), predictions=["0"] * len(frame),
            probabilities=[0.2] * len(frame), captured_at=when,
        )  # fmt: skip


@pytest.fixture
def landed(lake: Lake, tmp_path: Path) -> dict[str, Any]:
    """churn (the training dataset), 300 captured requests over two days (+ 50 shadow copies),
    and labels: 200 for captured ids, 3 for ids never captured, 1 superseded, 1 still unknown."""
    customers = generate_churn(400, seed=5)
    customers.to_csv(tmp_path / "churn.csv", index=False)
    ingest(lake, "churn", tmp_path / "churn.csv", "2026-10-01", "train-1")

    traffic = generate_churn(300, seed=6)
    ids = [f"req-{i}" for i in range(300)]
    capture(lake, traffic.iloc[:180], ids[:180], DAY1)
    capture(lake, traffic.iloc[180:], ids[180:], DAY2)
    capture(
        lake, traffic.iloc[:50], ids[:50], DAY1 + timedelta(minutes=1), variant="shadow", version=2
    )

    first = pd.DataFrame({"inference_id": [*ids[:150], "ghost-1", "ghost-2", "req-250"],
                          "churned": [i % 2 for i in range(150)] + [1, 0, None],
                          "event_time": "2026-11-03T10:00:00Z"})  # fmt: skip
    first.to_csv(tmp_path / "gt1.csv", index=False)
    ingest(lake, "churn_ground_truth", tmp_path / "gt1.csv", "2026-11-03", "gt-1")
    # Day two: 50 more ids, a corrected label for req-0 and an id never captured.
    second = pd.DataFrame({"inference_id": [*ids[150:200], "req-0", "ghost-3"],
                           "churned": [1] * 50 + [1, 1],
                           "event_time": "2026-11-04T10:00:00Z"})  # fmt: skip
    second.to_csv(tmp_path / "gt2.csv", index=False)
    ingest(lake, "churn_ground_truth", tmp_path / "gt2.csv", "2026-11-04", "gt-2")
    return {"traffic": traffic, "ids": ids}


def test_ground_truth_is_keyed_on_inference_id_by_convention() -> None:
    import pyarrow as pa

    sample = pa.table({"inference_id": ["1", "2", "2"], "churned": ["0", "1", "1"]})
    schema = infer_schema(sample, "churn_ground_truth")
    assert schema.key == ["inference_id"]
    assert schema.column("inference_id").type == "string"  # numeric-looking ids stay text
    assert not schema.column("inference_id").nullable
    # Any other dataset: no such convention (duplicates → no key inferred).
    assert infer_schema(sample, "churn_labels").key == []


def test_duplicate_labels_in_one_ingest_are_quarantined(lake: Lake, tmp_path: Path) -> None:
    pd.DataFrame({"inference_id": ["a", "b", "a"], "churned": [0, 1, 1]}).to_csv(
        tmp_path / "gt.csv", index=False
    )
    result = ingest(lake, "churn_ground_truth", tmp_path / "gt.csv", "2026-11-03", "gt-dup")
    assert (result.rows_curated, result.rows_quarantined) == (2, 1)
    assert result.reasons == {"duplicate_key": 1}


def test_feedback_joins_every_captured_request_with_its_latest_label(
    lake: Lake, landed: dict[str, Any]
) -> None:
    from include.mlops.training.data import load_curated

    result = materialise_feedback(
        lake, "churn", training_dataset="churn", target="churned", run_id="fb-1",
        champion_version=1,
    )  # fmt: skip
    assert result.capture_rows == 350 and result.repeated_capture_rows == 50
    assert result.captured_requests == 300
    assert result.labelled_rows == 200 and result.unlabelled_rows == 100
    assert result.unlabelled_per_day == {"2026-11-02": 100}
    assert result.label_rows == 153 + 52
    assert result.labels_without_capture == 3
    assert result.labels_without_capture_sample == ["ghost-1", "ghost-2", "ghost-3"]
    assert result.duplicate_labels == 1 and result.duplicate_label_sample == ["req-0"]
    assert result.labels_without_value == 1
    assert all(result.accounting().values()), result.accounting()
    assert result.cast_failures == {}
    assert sorted(result.partitions) == ["2026-11-01", "2026-11-02"]
    assert [p["rows"] for p in result.partitions.values()] == [180, 20]
    assert result.written == ["2026-11-01", "2026-11-02"]

    frame, catalog = load_curated(lake, "churn_feedback")
    assert catalog["snapshot_id"] == result.snapshot_id and catalog["total_rows"] == 200
    training = lake.read_json("catalog/churn/schema.json")["schema"]
    names = [c["name"] for c in training["columns"]]
    assert list(frame.columns) == [*names, "inference_id", "served_at", "model_version"]
    assert catalog["schema"]["key"] == ["inference_id"]
    assert frame["inference_id"].is_unique
    assert frame["customer_id"].isna().all() and frame["email"].isna().all()  # not captured
    assert (frame["model_version"] == 1).all()  # the answered rows, not the shadow's copies
    first = frame.set_index("inference_id").loc["req-0"]
    assert first["churned"] == 1  # the later label wins
    traffic = landed["traffic"].iloc[0]
    assert first["age"] == traffic["age"] and first["plan"] == traffic["plan"]
    assert str(frame["signup_date"].iloc[0])[:4] == str(traffic["signup_date"])[:4]
    report = lake.read_json("reports/feedback/churn/fb-1/report.json")
    assert report["labelled_rows"] == 200 and all(report["accounting"].values())
    assert result.report_uri and result.report_uri.endswith(
        "reports/feedback/churn/fb-1/report.json"
    )

    # Idempotent: the same inputs leave every partition (and the snapshot) as it was.
    again = materialise_feedback(
        lake, "churn", training_dataset="churn", target="churned", run_id="fb-2"
    )
    assert again.written == [] and again.snapshot_id == result.snapshot_id
    assert {p["status"] for p in again.partitions.values()} == {"unchanged"}


def test_a_failed_gate_publishes_nothing(lake: Lake, landed: dict[str, Any]) -> None:
    from include.mlops.quality import expectation, save_suite

    save_suite(lake, "churn_feedback", [
        expectation("expect_table_row_count_to_be_between", blocking=True,
                    why="test: more rows than there are", min_value=10_000),
    ])  # fmt: skip
    with pytest.raises(DataQualityError, match=r"(?s)churn_feedback.*Report: "):
        materialise_feedback(lake, "churn", training_dataset="churn", target="churned",
                             run_id="fb-bad")  # fmt: skip
    assert not lake.exists("catalog/churn_feedback/schema.json")
    assert lake.list_files("curated/churn_feedback") == []
    assert lake.list_staged() == []


def test_missing_inputs_are_named(lake: Lake, landed: dict[str, Any]) -> None:
    with pytest.raises(FeedbackError, match="'nope'"):
        materialise_feedback(lake, "churn", training_dataset="nope", target="churned", run_id="x")
    with pytest.raises(FeedbackError, match="target 'label'"):
        materialise_feedback(lake, "churn", training_dataset="churn", target="label", run_id="x")
    with pytest.raises(FeedbackError, match="other_ground_truth"):
        materialise_feedback(lake, "other", training_dataset="churn", target="churned", run_id="x")


def test_feedback_schema_keeps_training_types_and_relaxes_what_is_not_captured() -> None:
    from include.mlops.etl.declared import churn_schema
    from include.mlops.feedback import feedback_schema

    schema = feedback_schema(
        churn_schema(), model_name="churn", target="churned", captured=["age", "plan", "email"]
    )
    assert schema.dataset == "churn_feedback" and schema.key == ["inference_id"]
    assert schema.names[-3:] == ["inference_id", "served_at", "model_version"]
    assert schema.column("plan").allowed == ["basic", "standard", "premium"]  # rules kept
    assert not schema.column("age").nullable and not schema.column("churned").nullable
    assert schema.column("customer_id").nullable  # not captured: null
    assert schema.column("email").nullable and schema.column("email").pii  # PII: always null
    # A model trained on feedback itself: its traffic columns come from this traffic.
    again = feedback_schema(schema, model_name="churn", target="churned", captured=["age"])
    assert again.names == schema.names
    with pytest.raises(FeedbackError, match="already has column"):
        feedback_schema(
            schema.__class__(dataset="other", columns=schema.columns, key=["inference_id"]),
            model_name="churn", target="churned", captured=[],
        )  # fmt: skip


def test_rows_outside_the_training_schema_are_quarantined_not_fatal(
    lake: Lake, tmp_path: Path
) -> None:
    """Drifted traffic with a category the declared schema refuses: those labelled rows go
    to quarantine with lake_ingest's reason, the rest is gated and published."""
    import pyarrow.parquet as pq

    from include.mlops.etl.load import quarantine_schema
    from include.mlops.training.data import load_curated

    generate_churn(400, seed=5).to_csv(tmp_path / "churn.csv", index=False)
    ingest(lake, "churn", tmp_path / "churn.csv", "2026-10-01", "train-1")
    allowed = lake.read_json("catalog/churn/schema.json")["schema"]
    assert "crypto" not in next(
        c["allowed"] for c in allowed["columns"] if c["name"] == "payment_method"
    )

    traffic = generate_churn(100, seed=7)
    traffic.loc[traffic.index[::10], "payment_method"] = "crypto"  # 10 rows, 4 on day one
    ids = [f"req-{i}" for i in range(100)]
    capture(lake, traffic.iloc[:40], ids[:40], DAY1)
    capture(lake, traffic.iloc[40:], ids[40:], DAY2)
    labels = pd.DataFrame({"inference_id": ids, "churned": [i % 2 for i in range(100)]})
    labels.to_csv(tmp_path / "gt.csv", index=False)
    ingest(lake, "churn_ground_truth", tmp_path / "gt.csv", "2026-11-03", "gt-1")

    result = materialise_feedback(
        lake, "churn", training_dataset="churn", target="churned", run_id="fb-q"
    )
    assert result.labelled_rows == 100
    assert result.quarantined_rows == 10
    assert result.quarantine_reasons == {"out_of_domain:payment_method": 10}
    assert all(result.accounting().values()), result.accounting()
    assert {d: (p["rows"], p["quarantined"]) for d, p in result.partitions.items()} == {
        "2026-11-01": (36, 4),
        "2026-11-02": (54, 6),
    }
    assert result.written == ["2026-11-01", "2026-11-02"]

    frame, catalog = load_curated(lake, "churn_feedback")
    assert len(frame) == 90 and catalog["total_rows"] == 90
    assert "crypto" not in set(frame["payment_method"])
    crypto = {ids[i] for i in range(0, 100, 10)}
    assert not crypto & set(frame["inference_id"])
    day1 = catalog["partitions"]["2026-11-01"]
    assert (day1["rows"], day1["quarantined"]) == (36, 4)
    assert day1["reasons"] == {"out_of_domain:payment_method": 4}

    rejected = pq.read_table(
        lake.path("quarantine/churn_feedback/dt=2026-11-01/part-00000.parquet")
    )
    assert (
        rejected.schema.names
        == quarantine_schema([c["name"] for c in catalog["schema"]["columns"]]).names
    )
    assert set(rejected["_reason"].to_pylist()) == {"out_of_domain:payment_method"}
    assert set(rejected["payment_method"].to_pylist()) == {"crypto"}
    assert set(rejected["inference_id"].to_pylist()) == {ids[0], ids[10], ids[20], ids[30]}
    assert set(rejected["_ingest_run_id"].to_pylist()) == {"fb-q"}
    report = lake.read_json("reports/feedback/churn/fb-q/report.json")
    assert report["quarantined_rows"] == 10 and all(report["accounting"].values())

    # Idempotent: the same inputs leave every day, and its quarantine, as it was.
    again = materialise_feedback(
        lake, "churn", training_dataset="churn", target="churned", run_id="fb-q2"
    )
    assert again.written == [] and again.snapshot_id == result.snapshot_id
    assert again.quarantined_rows == 10 and all(again.accounting().values())
    kept = pq.read_table(lake.path("quarantine/churn_feedback/dt=2026-11-01/part-00000.parquet"))
    assert set(kept["_ingest_run_id"].to_pylist()) == {"fb-q"}
