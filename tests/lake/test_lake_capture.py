"""Reading the capture zone: the window, the variant, the columns, and files of different
model versions combined. The files are written by the endpoint's real capture writer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.mlops.lake.capture import capture_files, read_capture
from include.mlops.lake.store import Lake
from include.mlops.serving.capture import CaptureWriter
from include.mlops.serving.rows import Rows

T0 = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def local_lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


def answer(
    writer: CaptureWriter,
    ids: Iterable[int],
    *,
    at: datetime = T0,
    version: int = 3,
    variant: str = "champion",
    features: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    """One answered single-row request per id: ``id-<i>`` at ``at + i`` seconds, features
    ``features(i)`` (default age ``20 + i``, plan ``p<i % 3>``)."""
    for i in ids:
        values = features(i) if features else {"age": 20 + i, "plan": f"p{i % 3}"}
        writer.offer(
            Rows({name: [value] for name, value in values.items()}, 1),
            inference_ids=[f"id-{i}"],
            model_version=version,
            variant=variant,
            predictions=[i % 2],
            probabilities=[i / 1000],
            captured_at=at + timedelta(seconds=i),
        )


def test_read_capture_filters_window_and_variant(local_lake: Lake) -> None:
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        answer(writer, range(0, 60, 10), variant="champion")  # 12:30:00..50
        answer(writer, range(5, 60, 10), variant="shadow")  # 12:30:05..55
        later = T0 + timedelta(hours=2)
        answer(writer, range(100, 103), at=later, variant="canary")
    start, end = T0 + timedelta(seconds=10), T0 + timedelta(seconds=40)
    window = read_capture(local_lake, "churn", start, end)
    assert window["inference_id"].tolist() == [
        "id-10", "id-15", "id-20", "id-25", "id-30", "id-35",
    ]  # fmt: skip
    assert (window["captured_at"] >= pd.Timestamp(start)).all()
    assert (window["captured_at"] < pd.Timestamp(end)).all()  # end is exclusive
    shadow = read_capture(local_lake, "churn", start, end, variant="shadow")
    assert shadow["inference_id"].tolist() == ["id-15", "id-25", "id-35"]
    canary = read_capture(local_lake, "churn", T0, T0 + timedelta(hours=3), variant="canary")
    assert len(canary) == 3
    naive = read_capture(local_lake, "churn", start.replace(tzinfo=None), end.replace(tzinfo=None))
    assert len(naive) == 6  # naive datetimes are UTC
    picked = read_capture(
        local_lake, "churn", start, end, columns=["inference_id", "feature.age", "feature.nope"]
    )
    assert list(picked.columns) == ["inference_id", "feature.age", "feature.nope"]
    assert picked["feature.age"].tolist() == [30, 35, 40, 45, 50, 55]
    assert picked["feature.nope"].isna().all()
    empty = read_capture(local_lake, "churn", T0 - timedelta(days=2), T0 - timedelta(days=1))
    assert empty.empty and "captured_at" in empty.columns and "prediction" in empty.columns


def test_read_capture_unions_columns_across_model_versions(local_lake: Lake) -> None:
    # Two writers, two files with different columns.
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        answer(writer, range(3), version=1, features=lambda i: {"age": i, "plan": "basic"})
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        answer(
            writer,
            range(10, 12),
            version=2,
            features=lambda i: {"age": i - 8.5, "region": "north", "plan": 7},
        )
    assert len(capture_files(local_lake, "churn", *WIDE)) == 2
    frame = read_capture(local_lake, "churn", *WIDE)
    assert frame["model_version"].tolist() == [1, 1, 1, 2, 2]
    assert frame["feature.age"].tolist() == [0.0, 1.0, 2.0, 1.5, 2.5]  # int ∪ float → float
    assert frame["feature.region"].iloc[:3].isna().all()
    assert frame["feature.region"].iloc[3:].tolist() == ["north", "north"]
    assert frame["feature.plan"].tolist() == ["basic"] * 3 + ["7", "7"]  # text ∪ int → text
