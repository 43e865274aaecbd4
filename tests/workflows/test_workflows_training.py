"""Pure pieces of the train_model workflow: the approval text."""

from __future__ import annotations

from include.mlops.training.handoffs import CandidateEvaluation
from include.mlops.training.request import TrainingRequest
from include.mlops.workflows.training import approval_body

BASE = {"dataset": "churn", "target": "churned", "model_name": "churn_model"}
CARD = "s3://lake/reports/evaluation/churn_model/4/model_card.html"


def evaluation(**change: object) -> CandidateEvaluation:
    values: dict = {
        "candidate_key": "models/churn_model/candidates/r/pipeline.joblib",
        "algorithm": "xgboost", "params": {}, "objective": "roc_auc",
        "metrics": {"roc_auc": 0.86, "f1": 0.6}, "baseline_metrics": {"roc_auc": 0.5, "f1": 0.0},
        "champion": {"version": "3", "metrics": {"roc_auc": 0.84}},
        "decision": {"summary": "all gates passed"},
        "report_prefix": "reports/evaluation/churn_model/candidate-r", "report_uri": CARD,
    }  # fmt: skip
    return CandidateEvaluation(**{**values, **change})


def test_approval_body_puts_candidate_beside_champion() -> None:
    request = TrainingRequest.from_params(BASE)
    body = approval_body(request, evaluation(), "4", CARD)
    assert "| roc_auc (objective) | 0.8600 | 0.5000 | 0.8400 |" in body
    assert "champion v3" in body and "model_card.html" in body


def test_an_undefined_metric_shows_as_a_dash() -> None:
    request = TrainingRequest.from_params(BASE)
    undefined = evaluation(baseline_metrics={"roc_auc": None, "f1": 0.0}, champion=None)
    body = approval_body(request, undefined, "4", CARD)
    assert "| roc_auc (objective) | 0.8600 | – |" in body and "champion" not in body
