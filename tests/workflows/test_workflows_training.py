"""Pure pieces of the train_model workflow: the approval text."""

from __future__ import annotations

from include.mlops.training.request import TrainingRequest
from include.mlops.workflows.training import approval_body

BASE = {"dataset": "churn", "target": "churned", "model_name": "churn_model"}


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
