"""Fitting one candidate: one Pipeline, early stopping, pruning reports, objective scores."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, r2_score, roc_auc_score

from include.mlops.features.split import Splits, split_dataset
from include.mlops.training.algorithms import TUNABLE_ALGORITHMS, get_algorithm
from include.mlops.training.fit import (
    METRIC_DIRECTION,
    FittedCandidate,
    best_f1_threshold,
    fit_candidate,
    objective_score,
)


def _data(problem_type: str, n: int = 600, seed: int = 0) -> Splits:
    """A small table with signal in a number, a category and a date; 'email' is PII."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    signal = x + (color == "red") * 1.5 + rng.normal(scale=0.7, size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "noise": rng.normal(size=n),
            "color": color,
            "opened": pd.date_range("2022-01-01", periods=n, freq="D").astype(str),
            "email": [f"u{i}@example.com" for i in range(n)],
        }
    )
    if problem_type == "binary":
        frame["target"] = np.where(signal > 0.8, "churn", "stay")
    elif problem_type == "multiclass":
        frame["target"] = pd.cut(
            signal, [-np.inf, -0.3, 0.9, np.inf], labels=["lo", "mid", "hi"]
        ).astype(str)
    else:
        frame["target"] = 3 * signal + 10
    return split_dataset(frame, target="target", problem_type=problem_type, seed=seed)


@pytest.mark.parametrize(
    ("algorithm", "problem_type"),
    [
        (a, p)
        for a in (*TUNABLE_ALGORITHMS, "baseline")
        for p in ("binary", "multiclass", "regression")
        if get_algorithm(a).supports(p)
    ],
)
def test_every_algorithm_fits_one_pipeline(algorithm: str, problem_type: str) -> None:
    splits = _data(problem_type)
    candidate = fit_candidate(
        algorithm, None, splits, target="target", problem_type=problem_type, exclude=["email"]
    )
    assert isinstance(candidate, FittedCandidate)
    assert [name for name, _ in candidate.pipeline.steps] == ["features", "model"]
    expected = (
        {"rmse", "mae", "r2"}
        if problem_type == "regression"
        else {"roc_auc", "pr_auc", "f1", "accuracy", "log_loss"}
    )
    assert set(candidate.validation_scores) == expected
    assert candidate.fit_seconds > 0 and candidate.n_features >= 3
    X_test = splits.test.drop(columns=["target"])
    restored = pickle.loads(pickle.dumps(candidate.pipeline))
    predictions = restored.predict(X_test)
    if problem_type != "regression":
        # Predictions come back in the user's labels, whatever the estimator needs inside.
        assert set(predictions) <= set(splits.train["target"])
    if algorithm != "baseline":
        if problem_type == "regression":
            assert candidate.validation_scores["r2"] > 0.5
        else:
            assert candidate.validation_scores["roc_auc"] > 0.75


def test_xgboost_early_stopping_records_best_iteration_and_reports() -> None:
    splits = _data("binary")
    reports: list[tuple[int, float]] = []
    candidate = fit_candidate(
        "xgboost",
        {"n_estimators": 400, "learning_rate": 0.3, "max_depth": 3},
        splits,
        target="target",
        problem_type="binary",
        exclude=["email"],
        report=lambda step, value: reports.append((step, value)),
    )
    model = candidate.pipeline.named_steps["model"]
    assert candidate.best_iteration is not None
    assert candidate.best_iteration < 400 - 30  # stopped early: 30 rounds without progress
    assert model.estimator.get_booster().num_boosted_rounds() == candidate.best_iteration + 31
    # The positive class is the label that sorts last ("stay"): weight = negatives / positives.
    assert candidate.params["scale_pos_weight"] == pytest.approx(
        (splits.train["target"] == "churn").sum() / (splits.train["target"] == "stay").sum()
    )
    steps = [step for step, _ in reports]
    assert steps == sorted(steps) and len(steps) >= 3
    assert all(0.5 < value <= 1.0 for _, value in reports)  # validation ROC-AUC
    assert model.estimator.get_params()["callbacks"] is None  # nothing of the tuner is saved


def test_a_pruning_report_stops_the_fit() -> None:
    class Pruned(Exception):
        pass

    def prune(step: int, value: float) -> None:
        raise Pruned(step)

    with pytest.raises(Pruned):
        fit_candidate(
            "xgboost",
            None,
            _data("regression"),
            target="target",
            problem_type="regression",
            report=prune,
        )


def test_non_iterative_algorithms_report_once() -> None:
    reports: list[tuple[int, float]] = []
    candidate = fit_candidate(
        "ridge",
        {"alpha": 1.0},
        _data("regression"),
        target="target",
        problem_type="regression",
        objective="mae",
        report=lambda step, value: reports.append((step, value)),
    )
    assert reports == [(1, candidate.validation_scores["mae"])]
    assert candidate.score == candidate.validation_scores["mae"]
    assert candidate.best_iteration is None


def test_objective_scores_match_sklearn_on_known_inputs() -> None:
    y = np.array(["no", "yes", "no", "yes", "yes", "no"])
    proba = np.array([0.1, 0.8, 0.4, 0.35, 0.9, 0.2])
    is_yes = y == "yes"
    assert objective_score("roc_auc", y, proba, "binary") == pytest.approx(
        roc_auc_score(is_yes, proba)
    )
    assert objective_score("roc_auc", y, proba, "binary") == pytest.approx(8 / 9)
    assert objective_score("log_loss", y, proba, "binary") == pytest.approx(log_loss(is_yes, proba))
    # F1 at the validation-optimal cut (0.35: every "yes" caught, one false alarm).
    assert objective_score("f1", y, proba, "binary") == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert objective_score("accuracy", y, proba, "binary", threshold=0.5) == pytest.approx(5 / 6)
    y_reg, pred = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])
    assert objective_score("rmse", y_reg, pred, "regression") == pytest.approx(np.sqrt(1.25 / 3))
    assert objective_score("mae", y_reg, pred, "regression") == pytest.approx(
        mean_absolute_error(y_reg, pred)
    )
    assert objective_score("r2", y_reg, pred, "regression") == pytest.approx(r2_score(y_reg, pred))
    y_multi = np.array(["a", "b", "c", "a"])
    p_multi = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    assert objective_score("accuracy", y_multi, p_multi, "multiclass") == pytest.approx(0.75)
    assert objective_score("roc_auc", y_multi, p_multi, "multiclass") == pytest.approx(
        roc_auc_score(y_multi, p_multi, multi_class="ovr")
    )
    with pytest.raises(ValueError, match="does not apply"):
        objective_score("rmse", y, proba, "binary")
    assert set(METRIC_DIRECTION) == {
        "roc_auc",
        "pr_auc",
        "f1",
        "accuracy",
        "log_loss",
        "rmse",
        "mae",
        "r2",
    }
    assert best_f1_threshold(is_yes, proba) == pytest.approx(0.35)


@pytest.mark.parametrize("algorithm", ["logistic_regression", "xgboost", "random_forest"])
def test_recency_weights_reach_the_fit(algorithm: str) -> None:
    """Old rows say y follows x, new rows the opposite: only weights make the new rule win,
    so this cannot pass if a fit ignores ``Splits.train_weight``."""
    rng = np.random.default_rng(3)
    n_old, n_new = 2000, 200
    x = rng.normal(0, 1, n_old + n_new)
    y = np.where(np.arange(n_old + n_new) < n_old, x > 0, x < 0).astype(int)
    train = pd.DataFrame({"x": x, "y": y})
    validation = pd.DataFrame({"x": [-2.0, -1.0, 1.0, 2.0], "y": [1, 1, 0, 0]})
    weight = np.where(np.arange(n_old + n_new) < n_old, 0.5**10, 1.0)
    probe = pd.DataFrame({"x": [-2.0, 2.0]})

    def p_positive(w: np.ndarray | None) -> np.ndarray:
        splits = Splits(train, validation, validation, {}, w)
        fitted = fit_candidate(algorithm, None, splits, target="y", problem_type="binary")
        return fitted.pipeline.predict_proba(probe)[:, 1]

    unweighted, weighted = p_positive(None), p_positive(weight)
    assert unweighted[1] > unweighted[0]  # the old majority rule
    assert weighted[0] > weighted[1]  # the recent rule


def test_weights_travel_with_the_split_and_never_become_a_feature(tmp_path) -> None:
    from include.mlops.lake import Lake

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 100)
    df = pd.DataFrame({"x": x, "w": np.linspace(0.1, 1, 100), "y": (x > 0).astype(int)})
    splits = split_dataset(df, target="y", problem_type="binary", seed=0, weight_column="w")
    assert "w" not in splits.train.columns and "w" not in splits.test.columns
    # Each train row keeps its own weight.
    by_x = dict(zip(df["x"], df["w"], strict=True))
    assert splits.train_weight.tolist() == [by_x[v] for v in splits.train["x"]]
    lake = Lake.local(tmp_path)
    splits.write(lake, "features/m/s")
    again = Splits.read(lake, "features/m/s")
    assert np.allclose(again.train_weight, splits.train_weight)
    # An unweighted split written over it reads back unweighted (no stale weights).
    split_dataset(df.drop(columns=["w"]), target="y", problem_type="binary").write(
        lake, "features/m/s"
    )
    assert Splits.read(lake, "features/m/s").train_weight is None
    fitted = fit_candidate("logistic_regression", None, again, target="y", problem_type="binary")
    assert "w" not in fitted.pipeline.feature_names_in_
