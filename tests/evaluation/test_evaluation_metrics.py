"""Held-out metrics, threshold choice and feature importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    log_loss,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from include.mlops.evaluation.metrics import (
    choose_threshold,
    evaluate,
    evaluate_classifier,
    evaluate_regressor,
)
from include.mlops.features.split import split_dataset
from include.mlops.training.fit import fit_candidate


class ScoreColumn:
    """A stand-in model whose probabilities are the test frame's ``score`` column(s)."""

    def __init__(self, classes: list) -> None:
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        scores = X.filter(like="score").to_numpy(dtype=float)
        return np.column_stack([1 - scores[:, 0], scores[:, 0]]) if scores.shape[1] == 1 else scores

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["score"].to_numpy(dtype=float)


def test_choose_threshold_maximises_validation_f1() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    proba = np.array([0.1, 0.3, 0.35, 0.8, 0.4, 0.6, 0.2, 0.05])
    cut = choose_threshold(y, proba)
    best = max(f1_score(y, proba >= t) for t in np.unique(proba))
    assert f1_score(y, proba >= cut) == pytest.approx(best)
    assert cut == pytest.approx(0.35)
    assert choose_threshold(["b", "a"], [0.9, 0.2], positive_label="b") == pytest.approx(0.9)
    assert choose_threshold([0, 0], [0.3, 0.4]) == 0.5  # no positive: keep the default


def test_binary_metrics_against_sklearn() -> None:
    y = np.array(["no", "no", "yes", "yes", "no", "yes", "no", "no", "yes", "no"])
    score = np.array([0.1, 0.3, 0.35, 0.8, 0.4, 0.6, 0.2, 0.05, 0.3, 0.7])
    test = pd.DataFrame({"score": score, "y": y})
    m = evaluate_classifier(ScoreColumn(["no", "yes"]), test, "y", threshold=0.35)
    is_yes, predicted = y == "yes", score >= 0.35
    assert m["positive_label"] == "yes" and m["threshold"] == 0.35
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (4, 2, 1, 3)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(precision_score(is_yes, predicted))
    assert m["recall"] == pytest.approx(recall_score(is_yes, predicted))
    assert m["f1"] == pytest.approx(f1_score(is_yes, predicted))
    assert m["fpr"] == pytest.approx(2 / 6) and m["specificity"] == pytest.approx(4 / 6)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(is_yes, score))
    assert m["pr_auc"] == pytest.approx(average_precision_score(is_yes, score))
    assert m["log_loss"] == pytest.approx(log_loss(is_yes, score))
    assert m["confusion_matrix"] == {
        "labels": ["no", "yes"],
        "counts": [[4, 2], [1, 3]],
        "percent": [[40.0, 20.0], [10.0, 30.0]],
    }


def test_single_class_test_split_gives_null_auc_not_a_crash() -> None:
    test = pd.DataFrame({"score": [0.2, 0.7], "y": [0, 0]})
    m = evaluate_classifier(ScoreColumn([0, 1]), test, "y")
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["accuracy"] == 0.5


def test_multiclass_macro_metrics() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c"])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.6, 0.3],
            [0.5, 0.3, 0.2],
            [0.1, 0.8, 0.1],
            [0.2, 0.2, 0.6],
        ]
    )
    test = pd.DataFrame(proba, columns=["score_a", "score_b", "score_c"]).assign(y=y)
    m = evaluate_classifier(ScoreColumn(["a", "b", "c"]), test, "y")
    predicted = np.array(["a", "b", "b", "a", "b", "c"])
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert m["precision"] == pytest.approx(precision_score(y, predicted, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    assert m["confusion_matrix"]["counts"] == [[2, 0, 0], [0, 2, 0], [0, 1, 1]]
    # One false positive (a "c" called "b") among 4 negatives of "b": mean FPR = (0 + 1/4 + 0) / 3.
    assert m["fpr"] == pytest.approx(1 / 12) and m["specificity"] == pytest.approx(11 / 12)


def test_regression_metrics() -> None:
    test = pd.DataFrame({"score": [1.5, 2.0, 2.0], "y": [1.0, 2.0, 3.0]})
    m = evaluate_regressor(ScoreColumn([]), test, "y")
    assert m["mse"] == pytest.approx(mean_squared_error([1, 2, 3], [1.5, 2, 2]))
    assert m["rmse"] == pytest.approx(np.sqrt(1.25 / 3))
    assert m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 1.25 / 2)


@pytest.fixture(scope="module")
def binary_report():
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "strong": rng.normal(size=n),
            "weak": rng.normal(size=n),
            "plan": rng.choice(["a", "b"], n),
        }
    )
    frame["label"] = (frame["strong"] + 0.3 * frame["weak"] + rng.normal(scale=0.5, size=n)) > 1
    splits = split_dataset(frame, target="label", problem_type="binary", seed=0)
    model = fit_candidate(
        "logistic_regression", None, splits, target="label", problem_type="binary"
    )
    baseline = fit_candidate("baseline", None, splits, target="label", problem_type="binary")
    report = evaluate(
        model.pipeline,
        splits,
        target="label",
        problem_type="binary",
        baseline_pipeline=baseline.pipeline,
    )
    return splits, report


def test_evaluate_puts_baseline_beside_model(binary_report) -> None:
    splits, report = binary_report
    assert report.metrics["roc_auc"] > 0.9
    assert report.baseline_metrics["roc_auc"] == 0.5
    assert report.baseline_metrics["tp"] + report.baseline_metrics["fp"] == 0  # majority class
    assert report.threshold is not None
    X_val = splits.validation.drop(columns=["label"])
    assert report.metrics["threshold"] == report.threshold
    assert report.split_rows == {"train": 400, "validation": 50, "test": 50}
    assert report.estimator == "LogisticRegression"
    assert list(report.predictions.columns) == ["y_true", "y_pred", "proba_False", "proba_True"]
    assert len(X_val) == 50


def test_top_features_rank_the_signal_first(binary_report) -> None:
    _, report = binary_report
    assert report.importance_method == "native"
    assert [f["feature"] for f in report.top_features[:2]] == ["strong", "weak"]
    as_dict = report.to_dict()
    assert "predictions" not in as_dict and as_dict["classes"] == [False, True]


def test_permutation_importance_for_models_without_native_importance() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["y"] = 3 * frame["a"] + rng.normal(scale=0.1, size=300)
    splits = split_dataset(frame, target="y", problem_type="regression", seed=0)
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import Pipeline

    from include.mlops.features.pipeline import build_preprocessor

    X = splits.train.drop(columns=["y"])
    pipeline = Pipeline(
        [("features", build_preprocessor(X, algorithm="ridge")), ("model", KNeighborsRegressor())]
    ).fit(X, splits.train["y"])
    baseline = fit_candidate("baseline", None, splits, target="y", problem_type="regression")
    report = evaluate(
        pipeline, splits, target="y", problem_type="regression", baseline_pipeline=baseline.pipeline
    )
    assert report.importance_method == "permutation"
    assert report.top_features[0]["feature"] == "a"
    assert report.metrics["r2"] > report.baseline_metrics["r2"]
