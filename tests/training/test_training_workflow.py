"""Pure pieces of the train_model workflow: request validation, leakage check, approval text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlops.training.workflow import (
    TrainingRequest,
    TrainingRequestError,
    approval_body,
    leakage_scores,
)

BASE = {"dataset": "churn", "target": "churned", "model_name": "churn_model"}


def test_request_defaults_round_trip_as_a_stored_spec() -> None:
    request = TrainingRequest.from_params({**BASE, "min_objective": "", "time_column": ""})
    assert request.min_objective is None and request.time_column is None
    assert TrainingRequest.from_params(request.to_dict()) == request


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"problem_type": "regression", "objective_metric": "roc_auc"}, "objective_metric"),
        (
            {"problem_type": "regression", "algorithms": ["logistic_regression"]},
            "logistic_regression",
        ),
        ({"problem_type": "binary", "algorithms": ["ridge"]}, "algorithms"),
        ({"split": [0.7, 0.2, 0.2]}, "split"),
        ({"algorithms": []}, "algorithms"),
        ({"model_name": "Churn Model"}, "model_name"),
        ({"tuning_strategy": "genetic"}, "tuning_strategy"),
        ({"max_parallel_trials": 0}, "max_parallel_trials"),
    ],
)
def test_inconsistent_requests_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(TrainingRequestError, match=field):
        TrainingRequest.from_params({**BASE, **change})


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


def test_approval_body_puts_candidate_beside_champion() -> None:
    request = TrainingRequest.from_params(BASE)
    evaluation = {
        "algorithm": "xgboost", "objective": "roc_auc",
        "metrics": {"roc_auc": 0.86, "f1": 0.6}, "baseline_metrics": {"roc_auc": 0.5, "f1": 0.0},
        "champion": {"version": "3", "metrics": {"roc_auc": 0.84}},
        "decision": {"summary": "all gates passed"},
    }  # fmt: skip
    body = approval_body(
        request, evaluation, "4", "s3://lake/reports/evaluation/churn_model/4/model_card.html"
    )
    assert "| roc_auc (objective) | 0.8600 | 0.5000 | 0.8400 |" in body
    assert "champion v3" in body and "model_card.html" in body
