"""The algorithm registry: problem types, search spaces, grids, imbalance handling."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression

from include.mlops.training.algorithms import (
    ALGORITHMS,
    TUNABLE_ALGORITHMS,
    EncodedLabelClassifier,
    algorithms_for,
    get_algorithm,
    grid,
    make_estimator,
    search_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_registry_problem_types() -> None:
    assert set(TUNABLE_ALGORITHMS) == {
        "xgboost",
        "random_forest",
        "logistic_regression",
        "ridge",
        "linear_regression",
    }
    assert algorithms_for("binary") == ["xgboost", "random_forest", "logistic_regression"]
    assert algorithms_for("regression") == [
        "xgboost",
        "random_forest",
        "ridge",
        "linear_regression",
    ]
    assert "baseline" in ALGORITHMS
    with pytest.raises(ValueError, match="does not solve regression"):
        make_estimator("logistic_regression", problem_type="regression")
    with pytest.raises(ValueError, match="unknown algorithm"):
        get_algorithm("svm")


def test_baseline_is_majority_class_or_mean() -> None:
    classifier = make_estimator("baseline", problem_type="binary")
    regressor = make_estimator("baseline", problem_type="regression")
    assert isinstance(classifier, DummyClassifier) and classifier.strategy == "prior"
    assert isinstance(regressor, DummyRegressor) and regressor.strategy == "mean"
    X = np.zeros((5, 1))
    assert list(classifier.fit(X, [0, 0, 0, 1, 1]).predict(X)) == [0] * 5


def test_class_imbalance_handling() -> None:
    y = np.array([0] * 90 + [1] * 10)
    xgb = make_estimator("xgboost", problem_type="binary", y_train=y)
    assert isinstance(xgb, EncodedLabelClassifier)
    assert xgb.estimator.get_params()["scale_pos_weight"] == pytest.approx(9.0)
    assert xgb.estimator.get_params()["tree_method"] == "hist"
    assert xgb.estimator.get_params()["n_jobs"] <= 2
    assert make_estimator("random_forest", problem_type="binary").class_weight == "balanced"
    logistic = make_estimator("logistic_regression", problem_type="binary")
    assert isinstance(logistic, LogisticRegression) and logistic.class_weight == "balanced"
    # An explicit choice wins over the default.
    assert (
        make_estimator(
            "logistic_regression", {"class_weight": None}, problem_type="binary"
        ).class_weight
        is None
    )


@pytest.mark.parametrize("algorithm", TUNABLE_ALGORITHMS)
def test_search_space_draws_valid_estimators(algorithm: str) -> None:
    problem_type = algorithms_problem(algorithm)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        params = search_space(algorithm, trial, problem_type)
        make_estimator(algorithm, params, problem_type=problem_type)  # accepts every parameter
        assert all(name.startswith(f"{algorithm}__") for name in trial.params)
        study.tell(trial, 0.0)


def test_xgboost_search_space_ranges() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        params = search_space("xgboost", trial, "binary")
        assert 50 <= params["n_estimators"] <= 600
        assert 2 <= params["max_depth"] <= 10
        assert 1e-3 <= params["learning_rate"] <= 0.3
        assert 0.5 <= params["subsample"] <= 1.0
        study.tell(trial, 0.0)
    distributions = study.trials[0].distributions
    assert distributions["xgboost__learning_rate"].log is True
    assert distributions["xgboost__reg_lambda"].log is True


def test_one_study_can_search_several_algorithms() -> None:
    """Prefixed names keep algorithms' parameters apart in a shared study."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        algorithm = trial.suggest_categorical("algorithm", ["xgboost", "random_forest"])
        search_space(algorithm, trial, "binary")
        return 0.0

    study.optimize(objective, n_trials=6)
    assert len(study.trials) == 6


@pytest.mark.parametrize("algorithm", TUNABLE_ALGORITHMS)
def test_grid_drives_a_grid_sampler(algorithm: str) -> None:
    problem_type = algorithms_problem(algorithm)
    spec = get_algorithm(algorithm)
    values = grid(algorithm)
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(spec.optuna_grid(), seed=0))

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_categorical(f"{algorithm}__{k}", v) for k, v in values.items()}
        make_estimator(algorithm, params, problem_type=problem_type)
        return 0.0

    combinations = int(np.prod([len(v) for v in values.values()]))
    study.optimize(objective, n_trials=combinations)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == combinations


def algorithms_problem(algorithm: str) -> str:
    return "binary" if get_algorithm(algorithm).supports("binary") else "regression"
