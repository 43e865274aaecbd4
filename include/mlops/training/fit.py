"""Fit one candidate: feature pipeline + estimator, scored on the validation split.

A candidate is one algorithm with one parameter set: what a tuning trial trains. The
result is ONE scikit-learn ``Pipeline`` with steps ``features`` and ``model``, the object
that is registered and served, so serving applies exactly the training preprocessing.

Validation scores use the same rules as the final evaluation: for binary problems the
label metrics (F1, accuracy) are taken at the threshold that maximises F1 on validation,
as :func:`include.mlops.evaluation.metrics.choose_threshold` will pick it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    r2_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight
from xgboost.callback import TrainingCallback

from include.mlops.features.pipeline import build_preprocessor
from include.mlops.training.algorithms import (
    EARLY_STOPPING_ROUNDS,
    get_algorithm,
    make_estimator,
    positive_weight,
)
from include.mlops.vocabulary import CLASSIFICATION_METRICS, METRIC_DIRECTION, REGRESSION_METRICS

if TYPE_CHECKING:
    from include.mlops.features.split import Splits

log = logging.getLogger(__name__)

#: The objective used when the caller names none.
DEFAULT_OBJECTIVE: dict[str, str] = {
    "binary": "roc_auc",
    "multiclass": "roc_auc",
    "regression": "rmse",
}
#: An iterative fit reports at least this many times over its round budget (and every 10 rounds at most).
REPORT_CHECKPOINTS = 5

#: ``report(step, value)``: called with the validation objective during a fit; it may raise
#: (e.g. ``optuna.TrialPruned``) to stop a hopeless fit, and the exception propagates.
ReportCallback = Callable[[int, float], None]


@dataclass
class FittedCandidate:
    """A fitted candidate and how it did on validation.

    Attributes:
        algorithm: Algorithm name.
        params: The parameters it was fitted with (imbalance settings included).
        pipeline: The fitted ``Pipeline`` (steps ``features`` and ``model``).
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        target: Target column name.
        objective: The metric reported during the fit.
        validation_scores: Every metric of the problem type on the validation split.
        fit_seconds: Wall time of the fit (preprocessing included, scoring excluded).
        best_iteration: Boosting round kept by early stopping (``None`` if not iterative).
        n_features: Number of columns the model sees after preprocessing.
    """

    algorithm: str
    params: dict[str, Any]
    pipeline: Pipeline
    problem_type: str
    target: str
    objective: str
    validation_scores: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    best_iteration: int | None = None
    n_features: int = 0

    @property
    def score(self) -> float:
        """The validation value of the objective metric."""
        return self.validation_scores[self.objective]


def metrics_for(problem_type: str) -> tuple[str, ...]:
    """The objective metrics that apply to a problem type."""
    return REGRESSION_METRICS if problem_type == "regression" else CLASSIFICATION_METRICS


def objective_score(
    metric: str,
    y_true: Any,
    y_pred_or_proba: Any,
    problem_type: str,
    *,
    classes: Iterable[Any] | None = None,
    threshold: float | None = None,
) -> float:
    """Score predictions with one objective metric.

    Args:
        metric: A key of :data:`METRIC_DIRECTION`.
        y_true: True targets (original labels for classification).
        y_pred_or_proba: Regression predictions; for classification, class probabilities
            of shape ``(n, k)`` in ``classes`` order, or for binary problems the
            positive-class probability of shape ``(n,)``.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        classes: Class labels in probability-column order (default: sorted ``y_true``
            values; pass the model's ``classes_`` when a class may be absent).
        threshold: Binary decision threshold for ``f1``/``accuracy`` (default: the one
            maximising F1 on these very rows, as the evaluation chooses it on validation).

    Returns:
        The metric value (``nan`` when undefined, e.g. ROC-AUC with one class present).

    Raises:
        ValueError: Unknown metric, or one that does not apply to the problem type.
    """
    if metric not in METRIC_DIRECTION:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRIC_DIRECTION)}")
    if metric not in metrics_for(problem_type):
        raise ValueError(f"metric {metric!r} does not apply to {problem_type} problems")
    y = np.asarray(y_true)
    scores = np.asarray(y_pred_or_proba, dtype=float)
    if problem_type == "regression":
        if metric == "rmse":
            return float(np.sqrt(mean_squared_error(y, scores)))
        if metric == "mae":
            return float(mean_absolute_error(y, scores))
        return float(r2_score(y, scores))

    labels = np.asarray(sorted(pd.unique(y)) if classes is None else list(classes))
    if problem_type == "binary":
        positive = scores[:, -1] if scores.ndim == 2 else scores
        is_positive = y == labels[-1]
        if metric in ("roc_auc", "pr_auc") and len(np.unique(is_positive)) < 2:
            return float("nan")
        if metric == "roc_auc":
            return float(roc_auc_score(is_positive, positive))
        if metric == "pr_auc":
            return float(average_precision_score(is_positive, positive))
        if metric == "log_loss":
            return float(log_loss(is_positive, positive, labels=[False, True]))
        cut = best_f1_threshold(is_positive, positive) if threshold is None else threshold
        predicted = positive >= cut
        if metric == "f1":
            return float(f1_score(is_positive, predicted, zero_division=0))
        return float(accuracy_score(is_positive, predicted))

    # multiclass
    if metric == "log_loss":
        # float32 probabilities (XGBoost) sum to 1 only to ~1e-7; sklearn warns on that.
        normalised = scores / np.clip(scores.sum(axis=1, keepdims=True), 1e-12, None)
        return float(log_loss(y, normalised, labels=labels))
    if metric == "accuracy":
        return float(accuracy_score(y, labels[np.argmax(scores, axis=1)]))
    if metric == "f1":
        return float(
            f1_score(y, labels[np.argmax(scores, axis=1)], average="macro", zero_division=0)
        )
    present = np.isin(labels, y)
    if present.sum() < 2:
        return float("nan")
    if metric == "roc_auc":
        if not present.all():
            # ROC-AUC one-vs-rest needs every column's class among the rows.
            return float(_macro_ovr(roc_auc_score, y, scores, labels, present))
        return float(roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=labels))
    return float(_macro_ovr(average_precision_score, y, scores, labels, present))


def best_f1_threshold(is_positive: np.ndarray, positive_proba: np.ndarray) -> float:
    """The probability cut that maximises F1 (predict positive when ``proba >= cut``)."""
    is_positive = np.asarray(is_positive, dtype=bool)
    if not is_positive.any():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(is_positive, positive_proba)
    # The last precision/recall pair has no threshold (it is the "predict none" point).
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(thresholds[int(np.argmax(f1))])


def fit_candidate(
    algorithm: str,
    params: dict[str, Any] | None,
    splits: Splits,
    *,
    target: str,
    problem_type: str,
    seed: int = 0,
    exclude: Iterable[str] = (),
    report: ReportCallback | None = None,
    objective: str | None = None,
    threads: int | None = None,
) -> FittedCandidate:
    """Fit the feature pipeline and one algorithm on train; score it on validation.

    XGBoost fits the preprocessor on train, transforms validation for its ``eval_set``
    and stops early when the validation metric stalls; the kept round is recorded.
    During that fit ``report`` receives the validation objective every few rounds, so a
    tuner's pruner can stop a hopeless trial early. Other algorithms report once, after
    the fit.

    Args:
        algorithm: Algorithm name (see :mod:`include.mlops.training.algorithms`).
        params: Estimator parameters; ``None`` for the algorithm's defaults.
        splits: Train/validation/test data (test is not touched here); its
            ``train_weight``, when set, is every fit's ``sample_weight``.
        target: Target column name.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        seed: Random seed of the estimator and the target encoder's folds.
        exclude: Columns never used as features (PII, leakage); the target always is.
        report: Optional ``report(step, value)`` callback (see :data:`ReportCallback`).
        objective: Metric to report and to expose as :attr:`FittedCandidate.score`
            (default: roc_auc for classification, rmse for regression).
        threads: Thread budget of the fit (a trial's share of its host's cores, see
            :mod:`include.mlops.training.threads`); default every core of the host.

    Returns:
        The fitted pipeline with its validation scores, fit time and sizes.

    Raises:
        ValueError: Unknown algorithm, or one that does not solve this problem type.
    """
    objective = objective or DEFAULT_OBJECTIVE[problem_type]
    if objective not in metrics_for(problem_type):
        raise ValueError(f"objective {objective!r} does not apply to {problem_type} problems")
    spec = get_algorithm(algorithm)
    X_train, y_train = _features_and_target(splits.train, target)
    X_val, y_val = _features_and_target(splits.validation, target)
    params = spec.default_params() if params is None else dict(params)
    # Recency weights (the data policy's half-life): every fit, trial or refit, uses them.
    weight = splits.train_weight
    if weight is not None and len(weight) != len(X_train):
        raise ValueError(f"{len(weight)} sample weights for {len(X_train)} train rows")

    started = time.perf_counter()
    features = build_preprocessor(
        X_train,
        algorithm=algorithm,
        exclude=[target, *exclude],
        problem_type=problem_type,
        seed=seed,
    )
    best_iteration: int | None = None
    if spec.iterative:
        params.setdefault("early_stopping_rounds", EARLY_STOPPING_ROUNDS)
        params.setdefault("eval_metric", _xgboost_eval_metric(objective, problem_type))
        if problem_type == "binary":
            # Recorded in params so the registry's training spec shows the weighting used.
            params.setdefault("scale_pos_weight", positive_weight(y_train))
        model = make_estimator(
            algorithm, params, problem_type=problem_type, seed=seed, y_train=y_train,
            threads=threads,
        )  # fmt: skip
        Xt_train = features.fit_transform(X_train, y_train)
        Xt_val = features.transform(X_val)
        booster_owner = model.estimator if hasattr(model, "estimator") else model
        classes = np.sort(pd.unique(y_train)) if problem_type != "regression" else None
        if report is not None:
            # Often enough that a pruner sees the curve before early stopping ends it.
            every = max(1, min(int(params.get("n_estimators", 100)) // REPORT_CHECKPOINTS, 10))
            booster_owner.set_params(
                callbacks=[
                    _ReportObjective(report, objective, Xt_val, y_val, problem_type, classes, every)
                ]
            )
        fit_kwargs: dict[str, Any] = {"eval_set": [(Xt_val, y_val)], "verbose": False}
        if problem_type == "multiclass":
            fit_kwargs["sample_weight"] = compute_sample_weight("balanced", y_train)
        if weight is not None:
            fit_kwargs["sample_weight"] = fit_kwargs.get("sample_weight", 1.0) * weight
        try:
            model.fit(Xt_train, y_train, **fit_kwargs)
        finally:
            # The callback holds the tuner's trial: it must not be pickled with the model.
            booster_owner.set_params(callbacks=None)
        best_iteration = _best_iteration(booster_owner)
        pipeline = Pipeline([("features", features), ("model", model)])
    else:
        model = make_estimator(
            algorithm, params, problem_type=problem_type, seed=seed, y_train=y_train,
            threads=threads,
        )  # fmt: skip
        pipeline = Pipeline([("features", features), ("model", model)])
        if weight is None:
            pipeline.fit(X_train, y_train)
        else:
            pipeline.fit(X_train, y_train, model__sample_weight=weight)
    fit_seconds = time.perf_counter() - started

    scores = validation_scores(pipeline, X_val, y_val, problem_type)
    if report is not None and not spec.iterative:
        report(1, scores[objective])
    n_features = len(pipeline.named_steps["features"].get_feature_names_out())
    log.info(
        "fitted %s in %.2fs: validation %s=%.4f (%d features%s)",
        algorithm,
        fit_seconds,
        objective,
        scores[objective],
        n_features,
        f", best iteration {best_iteration}" if best_iteration is not None else "",
    )
    return FittedCandidate(
        algorithm=algorithm,
        params=params,
        pipeline=pipeline,
        problem_type=problem_type,
        target=target,
        objective=objective,
        validation_scores=scores,
        fit_seconds=fit_seconds,
        best_iteration=best_iteration,
        n_features=n_features,
    )


def validation_scores(
    pipeline: Any, X: pd.DataFrame, y: pd.Series, problem_type: str
) -> dict[str, float]:
    """Every objective metric of the problem type for a fitted pipeline on some rows."""
    if problem_type == "regression":
        predicted = pipeline.predict(X)
        return {m: objective_score(m, y, predicted, problem_type) for m in REGRESSION_METRICS}
    proba = pipeline.predict_proba(X)
    classes = list(pipeline.classes_)
    return {
        m: objective_score(m, y, proba, problem_type, classes=classes)
        for m in CLASSIFICATION_METRICS
    }


class _ReportObjective(TrainingCallback):
    """Report the validation objective every ``every`` boosting rounds."""

    def __init__(
        self,
        report: ReportCallback,
        objective: str,
        X_val: np.ndarray,
        y_val: pd.Series,
        problem_type: str,
        classes: np.ndarray | None,
        every: int,
    ) -> None:
        super().__init__()
        self.report = report
        self.objective = objective
        self.X_val = X_val
        self.y_val = y_val
        self.problem_type = problem_type
        self.classes = classes
        self.every = every

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        rounds = epoch + 1
        if rounds % self.every == 0:
            predicted = model.inplace_predict(self.X_val, iteration_range=(0, rounds))
            value = objective_score(
                self.objective, self.y_val, predicted, self.problem_type, classes=self.classes
            )
            # An exception raised here (a pruned trial) ends the fit and propagates.
            self.report(rounds, value)
        return False


def _xgboost_eval_metric(objective: str, problem_type: str) -> str:
    """The XGBoost metric early stopping watches.

    Classification watches log loss whatever the objective: AUC plateaus (often at 1.0
    on easy data) within a few rounds, which would stop training at round 0.
    """
    if problem_type == "regression":
        return "mae" if objective == "mae" else "rmse"
    return "logloss" if problem_type == "binary" else "mlogloss"


def _best_iteration(model: Any) -> int | None:
    try:
        return int(model.best_iteration)
    except (AttributeError, TypeError, ValueError):
        return None


def _features_and_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} is not in the split")
    return frame.drop(columns=[target]), frame[target]


def _macro_ovr(
    score: Callable[..., float],
    y: np.ndarray,
    proba: np.ndarray,
    labels: np.ndarray,
    present: np.ndarray,
) -> float:
    """Macro average of a one-vs-rest score over the classes present in ``y``."""
    values = [score(y == label, proba[:, j]) for j, label in enumerate(labels) if present[j]]
    return float(np.mean(values))
