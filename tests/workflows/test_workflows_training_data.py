"""prepare_training_data under a data policy, on a local lake: which partitions it reads,
the feedback it adds, the recent window it holds out, the weights it writes."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from include.mlops.features.split import Splits
from include.mlops.lake import Lake
from include.mlops.training.request import TrainingRequest
from include.mlops.workflows.training import prepare_training_data
from tests.training.lake_data import churn_rows, feedback_rows, write_partition

BASE = {"dataset": "churn", "target": "churned", "model_name": "m", "seed": 1}
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake.local(tmp_path / "lake")
    for i, day in enumerate(DAYS):
        write_partition(lake, "churn", day, churn_rows(150, seed=i, start_id=1000 * (i + 1)))
    return lake


def _ids(splits: Splits) -> set[int]:
    return set(pd.concat([splits.train, splits.validation])["customer_id"])


def test_the_window_reads_only_the_newest_days(lake: Lake) -> None:
    request = TrainingRequest.from_params({**BASE, "data_window_days": 2})
    prepared = prepare_training_data(lake, request, run_id="r1")
    assert prepared.rows == 300 and prepared.data["base"]["partitions"] == list(DAYS[1:])
    assert prepared.data["feedback"] is None and prepared.data["recent"] is None
    splits = Splits.read(lake, prepared.features_prefix)
    every = pd.concat([splits.train, splits.validation, splits.test])
    assert every["customer_id"].min() >= 2000  # nothing from 2026-11-01
    assert splits.train_weight is None
    assert not [c for c in every.columns if c.startswith("__")]


def test_feedback_joins_with_base_columns_only_and_weights_follow_the_days(lake: Lake) -> None:
    write_partition(lake, "m_feedback", "2026-11-03",
                    feedback_rows(100, seed=7, start_id=50_000, day="2026-11-03"))  # fmt: skip
    request = TrainingRequest.from_params({**BASE, "recency_half_life_days": 1})
    prepared = prepare_training_data(lake, request, run_id="r2")
    assert prepared.rows == 550 and prepared.data["feedback"]["rows"] == 100
    assert prepared.snapshot_id not in (
        prepared.data["base"]["snapshot_id"], prepared.data["feedback"]["snapshot_id"]
    )  # fmt: skip
    splits = Splits.read(lake, prepared.features_prefix)
    assert not {"inference_id", "served_at", "model_version"} & set(splits.train.columns)
    # 2026-11-01 rows are two half-lives old: a quarter; 2026-11-03's (feedback too) weigh 1.
    by_id = dict(zip(splits.train["customer_id"], splits.train_weight, strict=True))
    assert {w for i, w in by_id.items() if i < 2000} == {0.25}
    assert {w for i, w in by_id.items() if i >= 3000} == {1.0}


def test_the_recent_window_is_held_out_of_the_challengers_training(lake: Lake) -> None:
    """Feedback newer than the champion's: its test share is judged on, never trained on."""
    write_partition(lake, "m_feedback", "2026-11-02",
                    feedback_rows(100, seed=5, start_id=40_000, day="2026-11-02"))  # fmt: skip
    write_partition(lake, "m_feedback", "2026-11-03",
                    feedback_rows(200, seed=6, start_id=60_000, day="2026-11-03"))  # fmt: skip
    champion = {"version": "1", "threshold": 0.5,
                "data": {"base": {"dataset": "churn", "snapshot_id": "x", "partitions": list(DAYS)},
                         "feedback": {"dataset": "m_feedback", "snapshot_id": "y",
                                      "partitions": ["2026-11-02"]}}}  # fmt: skip
    request = TrainingRequest.from_params(BASE)
    prepared = prepare_training_data(lake, request, run_id="r3", champion=champion)
    recent = prepared.data["recent"]
    assert recent["partitions"] == ["2026-11-03"] and recent["feedback_rows"] == 200
    assert recent["rows"] == 20 and recent["champion_version"] == "1"  # the 10% test share
    window = pd.read_parquet(io.BytesIO(lake.read_bytes(recent["key"])))
    assert len(window) == 20 and window["customer_id"].between(60_000, 60_199).all()
    splits = Splits.read(lake, prepared.features_prefix)
    assert not set(window["customer_id"]) & _ids(splits)
    assert not set(window["customer_id"]) & set(splits.test["customer_id"])
    # The rest of the recent feedback is split like any data (it trains, or is tested on).
    assert {i for i in _ids(splits) | set(splits.test["customer_id"]) if i >= 60_000} | set(
        window["customer_id"]
    ) == set(range(60_000, 60_200))
    assert prepared.rows == 750
