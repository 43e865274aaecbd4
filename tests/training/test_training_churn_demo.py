"""The demo churn dataset end to end: its real dtypes through split, fit, evaluate, baseline."""

from __future__ import annotations

import json
import pickle

import pandas as pd

from include.mlops.demo.churn import generate_churn
from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.evaluation.metrics import evaluate
from include.mlops.features.pipeline import input_columns
from include.mlops.features.split import split_dataset
from include.mlops.training.fit import fit_candidate


def test_churn_demo_end_to_end() -> None:
    frame = generate_churn(2000, seed=3)
    splits = split_dataset(frame, target="churned", problem_type="auto", seed=0)
    assert splits.info["problem_type"] == "binary"
    model = fit_candidate(
        "xgboost", None, splits, target="churned", problem_type="binary", exclude=["email"]
    )
    baseline = fit_candidate("baseline", None, splits, target="churned", problem_type="binary")
    report = evaluate(
        model.pipeline,
        splits,
        target="churned",
        problem_type="binary",
        baseline_pipeline=baseline.pipeline,
    )
    assert report.metrics["roc_auc"] > 0.75 > report.baseline_metrics["roc_auc"]
    columns = input_columns(model.pipeline)
    assert "customer_id" not in columns and "email" not in columns
    assert {"signup_date", "plan", "support_calls"} <= set(columns)

    # Serving: the unpickled pipeline scores one JSON-style record with loose types.
    record = json.loads(
        splits.test.drop(columns=["churned"]).head(1).to_json(orient="records", date_format="iso")
    )
    record[0]["signup_date"] = "2024-02-29"
    record[0]["support_calls"] = None
    proba = pickle.loads(pickle.dumps(model.pipeline)).predict_proba(pd.DataFrame(record))
    assert proba.shape == (1, 2)

    drift = compute_drift_baseline(
        splits.train,
        features=columns,
        target="churned",
        predictions=model.pipeline.predict_proba(splits.train.drop(columns=["churned"]))[:, 1],
    )
    assert drift["features"]["plan"]["kind"] == "categorical"
    assert drift["features"]["signup_date"]["kind"] == "datetime"
    assert drift["features"]["support_calls"]["kind"] == "numeric"
    assert json.loads(json.dumps(drift)) == drift
