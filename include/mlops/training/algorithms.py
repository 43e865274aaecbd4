"""The algorithms a user may pick, their defaults, search spaces and grids.

Each :class:`Algorithm` knows which problem types it solves, how to build its estimator,
its default parameters, an Optuna search space and a small grid. ``baseline`` is always
trained beside the candidates: a model that cannot beat the majority class (or the mean)
has learned nothing worth shipping.

Optuna parameter names are prefixed with the algorithm (``xgboost__max_depth``) so one
study can search several algorithms without two of them claiming the same name with
different ranges; :meth:`Algorithm.search_space` returns them unprefixed, ready for the
estimator.

Class imbalance: ``class_weight="balanced"`` for random forest and logistic regression,
``scale_pos_weight = negatives / positives`` for binary XGBoost and balanced sample
weights for multiclass XGBoost. The decision threshold is chosen later on the validation
split, which undoes the probability shift this weighting causes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier, XGBRegressor

from include.mlops.training.threads import host_cpus

if TYPE_CHECKING:
    import optuna

CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
ALL_PROBLEMS = CLASSIFICATION | REGRESSION
#: Below this many training rows a fit uses one thread. Thread synchronisation then costs
#: more than it saves, and on a busy machine OpenMP's spinning threads make a 2-thread
#: XGBoost fit 10x slower than a 1-thread one (measured: 0.25 s vs 2-4 s, 2,400 rows).
MULTITHREAD_MIN_ROWS = 20_000
#: XGBoost stops when the validation metric has not improved for this many rounds.
EARLY_STOPPING_ROUNDS = 30
PARAM_SEPARATOR = "__"


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm.

    Attributes:
        name: The name users pass in ``algorithms``.
        problem_types: Problem types it can solve.
        defaults: Default parameters (before imbalance handling).
        space: ``(trial, problem_type) -> params`` drawing from an Optuna trial.
        grid_values: A small grid for grid search (parameter → values).
        build: ``(problem_type, params, seed) -> estimator``; ``params`` carries
            ``n_jobs`` for the algorithms that take it.
        iterative: Whether it trains in rounds with early stopping on validation.
    """

    name: str
    problem_types: frozenset[str]
    defaults: dict[str, Any]
    space: Callable[[Any, str], dict[str, Any]]
    grid_values: dict[str, list[Any]]
    build: Callable[[str, dict[str, Any], int], Any]
    iterative: bool = False

    def supports(self, problem_type: str) -> bool:
        """Whether the algorithm solves this problem type."""
        return problem_type in self.problem_types

    def default_params(self) -> dict[str, Any]:
        """A copy of the default parameters."""
        return dict(self.defaults)

    def search_space(self, trial: optuna.Trial, problem_type: str) -> dict[str, Any]:
        """Draw one parameter set from an Optuna trial.

        Args:
            trial: The Optuna trial (any sampler: random, TPE, grid).
            problem_type: ``binary``, ``multiclass`` or ``regression``.

        Returns:
            Estimator parameters, unprefixed, on top of the defaults.
        """
        return {**self.defaults, **self.space(_Prefixed(trial, self.name), problem_type)}

    def optuna_grid(self) -> dict[str, list[Any]]:
        """The grid with Optuna parameter names, for ``optuna.samplers.GridSampler``."""
        return {param_key(self.name, k): list(v) for k, v in self.grid_values.items()}


def param_key(algorithm: str, name: str) -> str:
    """The Optuna parameter name of an algorithm's parameter (``xgboost__max_depth``)."""
    return f"{algorithm}{PARAM_SEPARATOR}{name}"


class _Prefixed:
    """A view of an Optuna trial that prefixes every parameter name with the algorithm."""

    def __init__(self, trial: Any, algorithm: str) -> None:
        self._trial = trial
        self._algorithm = algorithm

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        return float(
            self._trial.suggest_float(param_key(self._algorithm, name), low, high, **kwargs)
        )

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        return int(self._trial.suggest_int(param_key(self._algorithm, name), low, high, **kwargs))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._trial.suggest_categorical(param_key(self._algorithm, name), choices)


# -- XGBoost --------------------------------------------------------------------------------
class EncodedLabelClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that accepts any labels for an estimator that needs ``0..k-1``.

    XGBoost only takes integer class codes; users' targets are ``"yes"``/``"no"``,
    booleans or arbitrary integers. Predictions come back in the original labels, so
    the saved pipeline answers in the user's vocabulary.

    Args:
        estimator: The wrapped classifier (fitted in place).
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> EncodedLabelClassifier:
        """Encode the labels (and those of any ``eval_set``) and fit the estimator."""
        self.encoder_ = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self.encoder_.classes_
        if "eval_set" in fit_params and fit_params["eval_set"] is not None:
            fit_params["eval_set"] = [
                (X_eval, self.encoder_.transform(np.asarray(y_eval)))
                for X_eval, y_eval in fit_params["eval_set"]
            ]
        self.estimator.fit(X, self.encoder_.transform(np.asarray(y)), **fit_params)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, in the original vocabulary."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return np.asarray(self.estimator.predict_proba(X))

    @property
    def feature_importances_(self) -> np.ndarray:
        """The wrapped estimator's feature importances."""
        return np.asarray(self.estimator.feature_importances_)

    @property
    def best_iteration(self) -> int | None:
        """The boosting round early stopping kept (``None`` without early stopping)."""
        return getattr(self.estimator, "best_iteration", None)


def _xgboost(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    # n_jobs comes from make_estimator (the thread budget); 1 when built directly.
    merged = {"tree_method": "hist", "n_jobs": 1, "random_state": seed, **params}
    if problem_type == "regression":
        return XGBRegressor(**merged)
    return EncodedLabelClassifier(XGBClassifier(**merged))


def _xgboost_space(trial: Any, problem_type: str) -> dict[str, Any]:
    return {
        # The upper bound only: early stopping on validation picks the real count.
        "n_estimators": trial.suggest_int("n_estimators", 50, 600, step=50),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }


XGBOOST = Algorithm(
    name="xgboost",
    problem_types=ALL_PROBLEMS,
    defaults={
        "n_estimators": 500,
        "learning_rate": 0.05,
        "max_depth": 4,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 1.0,
    },
    space=_xgboost_space,
    grid_values={"max_depth": [3, 6], "learning_rate": [0.03, 0.1], "n_estimators": [300]},
    build=_xgboost,
    iterative=True,
)


# -- random forest --------------------------------------------------------------------------
def _random_forest(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    merged = {"n_jobs": 1, "random_state": seed, **params}
    if problem_type == "regression":
        return RandomForestRegressor(**merged)
    return RandomForestClassifier(**{"class_weight": "balanced", **merged})


def _random_forest_space(trial: Any, problem_type: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "max_depth": trial.suggest_int("max_depth", 3, 20),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5, 1.0]),
    }


RANDOM_FOREST = Algorithm(
    name="random_forest",
    problem_types=ALL_PROBLEMS,
    defaults={"n_estimators": 200, "min_samples_leaf": 2, "max_features": "sqrt"},
    space=_random_forest_space,
    grid_values={"max_depth": [6, 12], "min_samples_leaf": [1, 5], "n_estimators": [200]},
    build=_random_forest,
)


# -- linear models --------------------------------------------------------------------------
def _logistic_regression(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    return LogisticRegression(
        random_state=seed, **{"class_weight": "balanced", "max_iter": 2000, **params}
    )


def _logistic_regression_space(trial: Any, problem_type: str) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}


LOGISTIC_REGRESSION = Algorithm(
    name="logistic_regression",
    problem_types=CLASSIFICATION,
    defaults={"C": 1.0},
    space=_logistic_regression_space,
    grid_values={"C": [0.01, 0.1, 1.0, 10.0]},
    build=_logistic_regression,
)


def _ridge(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    return Ridge(random_state=seed, **params)


def _ridge_space(trial: Any, problem_type: str) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}


RIDGE = Algorithm(
    name="ridge",
    problem_types=REGRESSION,
    defaults={"alpha": 1.0},
    space=_ridge_space,
    grid_values={"alpha": [0.1, 1.0, 10.0, 100.0]},
    build=_ridge,
)


def _linear_regression(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    return LinearRegression(**params)


def _no_space(trial: Any, problem_type: str) -> dict[str, Any]:
    # Nothing to tune; a trial of this algorithm is simply one more fit.
    return {}


LINEAR_REGRESSION = Algorithm(
    name="linear_regression",
    problem_types=REGRESSION,
    defaults={},
    space=_no_space,
    grid_values={"fit_intercept": [True]},
    build=_linear_regression,
)


# -- baseline -------------------------------------------------------------------------------
def _baseline(problem_type: str, params: dict[str, Any], seed: int) -> Any:
    if problem_type == "regression":
        return DummyRegressor(**{"strategy": "mean", **params})
    # "prior" predicts the majority class like "most_frequent", but its probabilities
    # are the class shares rather than 0/1, so its log loss is a fair reference.
    return DummyClassifier(**{"strategy": "prior", **params})


def threads_for(n_rows: int | None, budget: int | None = None) -> int:
    """Threads for a fit on ``n_rows`` training rows.

    1 on small or unknown data; else ``budget`` (a trial's share of its host, see
    :mod:`include.mlops.training.threads`), by default every core this process may use.
    """
    if n_rows is None or n_rows < MULTITHREAD_MIN_ROWS:
        return 1
    return max(1, budget if budget is not None else host_cpus())


BASELINE = Algorithm(
    name="baseline",
    problem_types=ALL_PROBLEMS,
    defaults={},
    space=_no_space,
    grid_values={},
    build=_baseline,
)

#: Every algorithm by name, the baseline included.
ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (XGBOOST, RANDOM_FOREST, LOGISTIC_REGRESSION, RIDGE, LINEAR_REGRESSION, BASELINE)
}
#: Algorithms that take ``n_jobs``.
THREADED_ALGORITHMS = frozenset({"xgboost", "random_forest"})
#: What users may list in ``algorithms`` (the baseline is always trained anyway).
TUNABLE_ALGORITHMS: tuple[str, ...] = tuple(name for name in ALGORITHMS if name != "baseline")


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``.

    Raises:
        ValueError: No such algorithm (the message lists the known ones).
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}") from None


def algorithms_for(problem_type: str) -> list[str]:
    """Names of the tunable algorithms that solve a problem type."""
    return [name for name in TUNABLE_ALGORITHMS if ALGORITHMS[name].supports(problem_type)]


def default_params(algorithm: str) -> dict[str, Any]:
    """Default parameters of an algorithm."""
    return get_algorithm(algorithm).default_params()


def search_space(algorithm: str, trial: optuna.Trial, problem_type: str) -> dict[str, Any]:
    """Draw an algorithm's parameters from an Optuna trial (see :meth:`Algorithm.search_space`)."""
    return get_algorithm(algorithm).search_space(trial, problem_type)


def grid(algorithm: str) -> dict[str, list[Any]]:
    """A small grid (parameter → values) for grid search; unprefixed names."""
    return {k: list(v) for k, v in get_algorithm(algorithm).grid_values.items()}


def make_estimator(
    algorithm: str,
    params: dict[str, Any] | None = None,
    *,
    problem_type: str,
    seed: int = 0,
    y_train: pd.Series | np.ndarray | None = None,
    threads: int | None = None,
) -> Any:
    """Build an unfitted estimator, with class imbalance handled.

    Args:
        algorithm: Algorithm name.
        params: Parameters (defaults when ``None``); explicit values win over defaults.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        seed: Random seed.
        y_train: Training target; for binary XGBoost it sets ``scale_pos_weight``,
            and its length sets the thread count (see :func:`threads_for`) unless
            ``params`` gives ``n_jobs``.
        threads: The thread budget of this fit (a trial's share of its host).

    Returns:
        The estimator (XGBoost classifiers come wrapped in :class:`EncodedLabelClassifier`).

    Raises:
        ValueError: Unknown algorithm, or one that does not solve this problem type.
    """
    spec = get_algorithm(algorithm)
    if not spec.supports(problem_type):
        raise ValueError(
            f"algorithm {algorithm!r} does not solve {problem_type} problems; "
            f"choose from {algorithms_for(problem_type)}"
        )
    merged = spec.default_params() if params is None else dict(params)
    if algorithm in THREADED_ALGORITHMS:
        merged.setdefault("n_jobs", threads_for(None if y_train is None else len(y_train), threads))
    if algorithm == "xgboost" and problem_type == "binary" and y_train is not None:
        merged.setdefault("scale_pos_weight", positive_weight(y_train))
    return spec.build(problem_type, merged, seed)


def positive_weight(y: pd.Series | np.ndarray) -> float:
    """``negatives / positives`` of a binary target; the positive class sorts last."""
    labels = pd.Series(np.asarray(y))
    classes = np.sort(labels.unique())
    positives = int((labels == classes[-1]).sum())
    return float((len(labels) - positives) / max(positives, 1))
