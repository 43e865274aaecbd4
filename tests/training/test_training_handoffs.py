"""train_model's hand-offs travel as small JSON dicts with the keys the UI and demo read."""

from __future__ import annotations

import json

import pytest

from include.mlops.training.handoffs import (
    CandidateEvaluation,
    PreparedData,
    RegisteredVersion,
    TuningHandle,
    WorkerResult,
)

HAND_OFFS = [
    PreparedData(snapshot_id="ab" * 32, problem_type="binary", features_prefix="features/m/ab",
                 rows=3000, splits={"train": 2400, "validation": 300, "test": 300},
                 class_balance={"0": 0.8, "1": 0.2}, exclude=["email"],
                 quality_report="s3://lake/reports/quality/churn/r/docs/index.html",
                 quality_score=1.0, leakage={"age": 0.55}),
    TuningHandle(study_name="m-run", storage_url="sqlite:///optuna.db", experiment_id="1",
                 parent_run_id="abc", deadline=1.5e9, spec={"strategy": "bayesian"}),
    WorkerResult(worker=1, trials=4, compute_seconds=2.5),
    CandidateEvaluation(candidate_key="k", algorithm="xgboost", params={"max_depth": 3},
                        objective="roc_auc", metrics={"roc_auc": 0.9, "pr_auc": None},
                        baseline_metrics={"roc_auc": 0.5}, champion=None,
                        decision={"promote": True}, report_prefix="reports/evaluation/m/c",
                        report_uri="s3://lake/reports/evaluation/m/c/model_card.html",
                        threshold=0.4, tuning={"trials": 4}),
    RegisteredVersion(model_name="m", version="2", run_id="abc", sha256="f" * 64,
                      report_uri="s3://lake/reports/evaluation/m/2/model_card.html",
                      approval_body="**m v2**"),
]  # fmt: skip


@pytest.mark.parametrize("hand_off", HAND_OFFS, ids=lambda h: type(h).__name__)
def test_round_trips_through_json(hand_off) -> None:
    data = json.loads(json.dumps(hand_off.to_dict(), allow_nan=False))
    assert type(hand_off).from_dict(data) == hand_off


def test_the_keys_read_by_templates_links_and_the_demo_stay() -> None:
    prepared, tuning, _, evaluation, registered = (h.to_dict() for h in HAND_OFFS)
    assert {"quality_report", "features_prefix", "snapshot_id", "exclude"} <= set(prepared)
    assert {"experiment_id", "parent_run_id", "study_name"} <= set(tuning)
    assert {"report_uri", "metrics", "baseline_metrics", "champion", "algorithm"} <= set(evaluation)
    assert {"model_name", "version", "run_id", "report_uri", "approval_body"} <= set(registered)
