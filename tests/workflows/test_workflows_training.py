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


def test_approval_body_shows_the_test_split_and_the_recent_window_side_by_side() -> None:
    request = TrainingRequest.from_params(BASE)
    recent = {"rows": 450, "min_rows": 400, "used_for_gate": True, "champion_version": "3",
              "partitions": ["2026-12-01"], "candidate": {"roc_auc": 0.81, "f1": 0.55},
              "champion": {"roc_auc": 0.74, "f1": 0.5}, "baseline": {"roc_auc": 0.5}}  # fmt: skip
    body = approval_body(request, evaluation(recent=recent), "4", CARD)
    assert "**Recent window**: 450 held-out rows" in body and "judged the **recent window**" in body
    assert "| roc_auc | 0.8600 | 0.8400 | 0.8100 | 0.7400 |" in body
    assert "Recent window" not in approval_body(request, evaluation(), "4", CARD)
