"""Attributions add up for every algorithm we train, agree with shap, and read per input column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from include.mlops.clarify.attribution import attribution_drift, ndcg, summarise
from include.mlops.clarify.explain import Explainer, NotExplainable, attach_background
from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
from include.mlops.features.pipeline import input_columns
from include.mlops.features.split import split_dataset
from include.mlops.training.fit import fit_candidate

#: base + Σ contributions = raw output. XGBoost computes in float32: on outputs of
#: magnitude ~100 (the regression target here) the last bits leave ~1e-4 relative 1e-6.
TOLERANCE = 1e-4

CASES = [
    ("binary", TARGET_COLUMN, "xgboost"),
    ("binary", TARGET_COLUMN, "random_forest"),
    ("binary", TARGET_COLUMN, "logistic_regression"),
    ("multiclass", "plan", "xgboost"),
    ("multiclass", "plan", "random_forest"),
    ("multiclass", "plan", "logistic_regression"),
    ("regression", "tenure_months", "xgboost"),
    ("regression", "tenure_months", "random_forest"),
    ("regression", "tenure_months", "ridge"),
    ("regression", "tenure_months", "linear_regression"),
]


@pytest.fixture(scope="module")
def churn() -> Any:
    return generate_churn(1200, seed=5)


def _fit(churn: Any, problem: str, target: str, algorithm: str) -> tuple[Any, Any]:
    splits = split_dataset(churn, target=target, problem_type=problem, seed=0)
    params = {"n_estimators": 25, "min_samples_leaf": 2} if algorithm == "random_forest" else None
    fitted = fit_candidate(algorithm, params, splits, target=target, problem_type=problem,
                           exclude=["email"])  # fmt: skip
    attach_background(fitted.pipeline, splits.train.drop(columns=[target]))
    return fitted.pipeline, splits.test.drop(columns=[target])


@pytest.mark.parametrize(
    ("problem", "target", "algorithm"), CASES, ids=[f"{p}-{a}" for p, _, a in CASES]
)
def test_attributions_add_up_to_the_raw_output(
    churn: Any, problem: str, target: str, algorithm: str
) -> None:
    pipeline, X = _fit(churn, problem, target, algorithm)
    explainer = Explainer(pipeline)
    rows = X.head(60)
    attributions = explainer.explain(rows)
    scale = np.maximum(1.0, np.abs(attributions.output))
    error = np.abs(attributions.base + attributions.contributions.sum(axis=1) - attributions.output)
    assert float(np.max(error / scale)) <= TOLERANCE
    assert attributions.columns == input_columns(pipeline)
    # The output explained is the model's own: back through the link, the pipeline's answer.
    if problem == "regression":
        np.testing.assert_allclose(attributions.output, pipeline.predict(rows), rtol=1e-5)
    else:
        proba = pipeline.predict_proba(rows)
        chosen = proba[
            np.arange(len(rows)), [list(pipeline.classes_).index(c) for c in attributions.classes]
        ]
        if attributions.space == "probability":
            np.testing.assert_allclose(attributions.output, chosen, atol=1e-9)
        elif attributions.space == "log_odds":
            np.testing.assert_allclose(1 / (1 + np.exp(-attributions.output)), chosen, atol=1e-5)
        else:  # multiclass logit: softmax of the margins, the chosen class is the predicted one
            assert list(attributions.classes) == list(pipeline.predict(rows))


def test_linear_attributions_equal_shap_and_sum_one_hot_parts(churn: Any) -> None:
    import shap

    pipeline, X = _fit(churn, "binary", TARGET_COLUMN, "logistic_regression")
    explainer = Explainer(pipeline)
    features = pipeline.named_steps["features"]
    matrix = features.transform(X)
    train_matrix = features.transform(
        split_dataset(churn, target=TARGET_COLUMN, problem_type="binary", seed=0).train.drop(
            columns=[TARGET_COLUMN]
        )
    )
    oracle = shap.LinearExplainer(
        pipeline.named_steps["model"], (train_matrix.mean(0), np.cov(train_matrix.T))
    )
    expected = np.asarray(oracle.shap_values(matrix))
    attributions = explainer.explain_matrix(matrix)
    names = [n.split("__", 1)[1] for n in features.get_feature_names_out()]
    plan_parts = [j for j, n in enumerate(names) if n.startswith("plan_")]
    assert len(plan_parts) > 1
    column = attributions.columns.index("plan")
    np.testing.assert_allclose(
        attributions.contributions[:, column], expected[:, plan_parts].sum(axis=1), atol=1e-12
    )
    np.testing.assert_allclose(attributions.base, oracle.expected_value, atol=1e-12)


def test_forest_attributions_equal_shap_tree_explainer(churn: Any) -> None:
    import shap

    pipeline, X = _fit(churn, "binary", TARGET_COLUMN, "random_forest")
    matrix = pipeline.named_steps["features"].transform(X.head(40))
    ours = Explainer(pipeline).explain_matrix(matrix)
    theirs = np.asarray(shap.TreeExplainer(pipeline.named_steps["model"]).shap_values(matrix))[
        ..., 1
    ]
    assert np.isclose(ours.contributions.sum(), theirs.sum())


def test_row_lists_the_largest_contributions_first(churn: Any) -> None:
    pipeline, X = _fit(churn, "binary", TARGET_COLUMN, "xgboost")
    attributions = Explainer(pipeline).explain(X.head(3))
    row = attributions.row(0, top=3)
    assert set(row) == {"base_value", "output", "contributions", "class"}
    values = list(row["contributions"].values())
    assert len(values) == 3 and abs(values[0]) >= abs(values[1]) >= abs(values[2])
    full = attributions.row(0)
    assert row["base_value"] + sum(full["contributions"].values()) == pytest.approx(
        row["output"], abs=1e-4
    )


def test_baseline_models_are_not_explainable(churn: Any) -> None:
    splits = split_dataset(churn, target=TARGET_COLUMN, problem_type="binary", seed=0)
    baseline = fit_candidate("baseline", {}, splits, target=TARGET_COLUMN, problem_type="binary")
    with pytest.raises(NotExplainable, match="DummyClassifier"):
        Explainer(baseline.pipeline)


def test_ndcg_is_clarifys() -> None:
    baseline = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg(baseline, {"a": 9.0, "b": 5.0, "c": 0.1}) == pytest.approx(1.0)
    # Live order c, b, a: DCG = 1/log2(2) + 2/log2(3) + 3/log2(4); iDCG = 3 + 2/log2(3) + 1/2.
    expected = (1 + 2 / np.log2(3) + 3 / 2) / (3 + 2 / np.log2(3) + 1 / 2)
    assert ndcg(baseline, {"a": 0.1, "b": 0.5, "c": 0.9}) == pytest.approx(expected)
    assert ndcg({"a": 0.0}, {"a": 1.0}) is None


def test_attribution_drift_flags_a_reordered_window(churn: Any) -> None:
    pipeline, X = _fit(churn, "binary", TARGET_COLUMN, "xgboost")
    explainer = Explainer(pipeline)
    baseline = summarise(explainer.explain(X), method=explainer.method, split="train")
    same = attribution_drift(
        baseline, explainer.explain(X.sample(frac=1.0, random_state=1)), threshold=0.9
    )
    assert same["score"] == pytest.approx(1.0) and not same["drift"]
    top = baseline["ranking"][0]
    moved = X.copy()
    moved[top] = moved[top].iloc[0]  # the top column no longer varies: it explains nothing
    drifted = attribution_drift(baseline, explainer.explain(moved), threshold=0.9)
    assert drifted["window_ranking"][0] != top
    assert drifted["score"] < same["score"]
