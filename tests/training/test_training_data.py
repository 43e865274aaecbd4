"""The training data's leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.mlops.training.data import leakage_scores


def test_leakage_flags_a_copy_of_the_target_but_not_ids_or_dates() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "churned": y,
        "leak": y * 10 + rng.normal(0, 0.1, n),  # the label in disguise
        "signal": y + rng.normal(0, 1.5, n),  # real but weak
        "code": [f"c{i}" for i in range(n)],  # unique per row: in-sample rates would be perfect
        "signup": pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
    })  # fmt: skip
    scores = leakage_scores(df, target="churned", features=["leak", "signal", "code", "signup"])
    assert scores["leak"] >= 0.99
    assert 0.55 < scores["signal"] < 0.9
    assert scores.get("code", 0.5) < 0.6 and scores["signup"] < 0.6


# -- the data policy ---------------------------------------------------------------------
def test_the_window_counts_back_from_the_newest_partition_not_from_today() -> None:
    from include.mlops.training.data import window_partitions

    days = ["2026-10-01", "2026-11-01", "2026-11-05", "2026-11-07", "2026-11-08"]
    assert window_partitions(days, None) == days
    assert window_partitions(reversed(days), 1) == ["2026-11-08"]
    assert window_partitions(days, 4) == ["2026-11-05", "2026-11-07", "2026-11-08"]
    assert window_partitions(days, 400) == days


def test_recency_weights_halve_every_half_life_behind_the_newest_day() -> None:
    from include.mlops.training.data import recency_weights

    days = pd.Series(["2026-11-08", "2026-11-01", "2026-10-25", "2026-11-08"])
    assert recency_weights(days, 7).tolist() == [1.0, 0.5, 0.25, 1.0]


def test_plan_names_the_windowed_base_and_the_feedback_snapshots(tmp_path) -> None:
    from include.mlops.etl.catalog import load_catalog
    from include.mlops.lake import Lake
    from include.mlops.training.data import plan_training_data
    from tests.training.lake_data import churn_rows, feedback_rows, write_partition

    lake = Lake.local(tmp_path / "lake")
    for i, day in enumerate(("2026-11-01", "2026-11-02", "2026-11-03")):
        write_partition(lake, "churn", day, churn_rows(20, seed=i, start_id=100 * i))
    everything = plan_training_data(lake, dataset="churn", model_name="m")
    assert everything.feedback is None  # no m_feedback yet
    assert everything.base["snapshot_id"] == load_catalog(lake, "churn")["snapshot_id"]
    assert everything.snapshot_id == everything.base["snapshot_id"]
    window = plan_training_data(lake, dataset="churn", model_name="m", window_days=2)
    assert window.base["partitions"] == ["2026-11-02", "2026-11-03"]
    assert window.base["snapshot_id"] != everything.base["snapshot_id"]

    write_partition(lake, "m_feedback", "2026-11-03", feedback_rows(5, seed=9, start_id=900,
                                                                    day="2026-11-03"))  # fmt: skip
    with_feedback = plan_training_data(lake, dataset="churn", model_name="m")
    assert with_feedback.feedback == {
        "dataset": "m_feedback", "partitions": ["2026-11-03"], "rows": 5,
        "snapshot_id": load_catalog(lake, "m_feedback")["snapshot_id"],
    }  # fmt: skip
    assert with_feedback.snapshot_id not in (
        everything.snapshot_id,
        with_feedback.feedback["snapshot_id"],
    )
    assert with_feedback.snapshots() == {"churn": everything.base["snapshot_id"],
                                         "m_feedback": with_feedback.feedback["snapshot_id"]}  # fmt: skip
    off = plan_training_data(lake, dataset="churn", model_name="m", use_feedback=False)
    assert off.feedback is None


def test_same_data_and_what_the_skip_says_it_waits_for() -> None:
    from include.mlops.training.data import DataPlan, same_data, stored_data_block, waiting_message

    base = {"dataset": "churn", "snapshot_id": "ab12" * 16, "partitions": ["2026-11-01"]}
    feedback = {"dataset": "churn_model_feedback", "snapshot_id": "cd34" * 16,
                "partitions": ["2026-11-02"], "rows": 40}  # fmt: skip
    plan = DataPlan(base=base, feedback=feedback)
    stored = {"base": dict(base), "feedback": dict(feedback)}
    assert same_data(plan, stored)
    assert not same_data(plan, {"base": dict(base), "feedback": None})  # new labels
    assert not same_data(DataPlan(base={**base, "snapshot_id": "ef"}, feedback=feedback), stored)
    assert waiting_message("churn_model", 1, plan, use_feedback=True) == (
        f"churn_model v1 already trained on churn snapshot {'ab12' * 3} and churn_model_feedback "
        f"snapshot {'cd34' * 3}; waiting for new data in churn or labels in churn_model_ground_truth"
    )
    no_traffic = DataPlan(base=base, feedback=None)
    assert "(no labelled traffic yet: churn_model_feedback is empty)" in waiting_message(
        "churn_model", 1, no_traffic, use_feedback=True
    )
    assert waiting_message("churn_model", 1, no_traffic, use_feedback=False).endswith(
        "waiting for new data in churn"
    )
    # A version registered before the data policy: every partition, no feedback.
    old = stored_data_block({"dataset": "churn"}, "ab12" * 16)
    assert same_data(no_traffic, old) and not same_data(plan, old)


def test_recent_partitions_are_feedback_newer_than_the_champion_saw() -> None:
    from include.mlops.training.data import recent_partitions

    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert recent_partitions(days, None) == days
    assert recent_partitions(days, ["2026-11-01"]) == ["2026-11-02", "2026-11-03"]
    assert recent_partitions(days, days) == []
