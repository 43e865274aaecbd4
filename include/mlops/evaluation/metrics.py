"""Held-out evaluation of a fitted pipeline, beside the baseline's.

Everything is measured on the test split, which neither training nor tuning touched.
The binary decision threshold is chosen on the validation split (maximising F1), never
on test, so the test numbers are what a user should expect in production.

Metric dictionaries are JSON-able: plain floats (``None`` when a metric is undefined on
these rows, e.g. ROC-AUC when the test split holds a single class) and plain lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from include.mlops.features.pipeline import feature_names
from include.mlops.jsonable import jsonable
from include.mlops.training.fit import best_f1_threshold

if TYPE_CHECKING:
    from include.mlops.features.split import Splits

#: Threshold used when none was chosen (and for the majority-class baseline).
DEFAULT_THRESHOLD = 0.5
#: Rows of the test split used for permutation importance (it refits nothing, but
#: predicts n_features x repeats times).
PERMUTATION_SAMPLE_ROWS = 1000
PERMUTATION_REPEATS = 5


@dataclass
class EvaluationReport:
    """A model's held-out evaluation.

    Attributes:
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        target: Target column name.
        estimator: Class name of the fitted model (e.g. ``XGBClassifier``).
        metrics: The model's test metrics.
        baseline_metrics: The baseline's test metrics, same keys.
        threshold: Binary decision threshold chosen on validation (``None`` otherwise).
        top_features: ``[{"feature", "importance"}]``, most important first.
        importance_method: ``native`` (trees' importances, linear coefficients) or
            ``permutation`` (drop in score when a raw column is shuffled).
        split_rows: Rows in train, validation and test.
        classes: Class labels in probability-column order (classification).
        predictions: Test rows' true target, prediction and (classification) class
            probabilities ``proba_<class>``, kept for the plots; not written as JSON.
    """

    problem_type: str
    target: str
    estimator: str
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    threshold: float | None = None
    top_features: list[dict[str, Any]] = field(default_factory=list)
    importance_method: str = "native"
    split_rows: dict[str, int] = field(default_factory=dict)
    classes: list[Any] | None = None
    predictions: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-row predictions, JSON-able."""
        return jsonable(
            {
                "problem_type": self.problem_type,
                "target": self.target,
                "estimator": self.estimator,
                "threshold": self.threshold,
                "metrics": self.metrics,
                "baseline_metrics": self.baseline_metrics,
                "top_features": self.top_features,
                "importance_method": self.importance_method,
                "split_rows": self.split_rows,
                "classes": self.classes,
            }
        )


def choose_threshold(y_val: Any, proba_val: Any, *, positive_label: Any = None) -> float:
    """The decision threshold that maximises F1 on the validation split.

    Args:
        y_val: Validation targets.
        proba_val: Positive-class probabilities, shape ``(n,)``.
        positive_label: The positive class (default: the larger of the two labels,
            which is ``classes_[1]`` of a fitted classifier).

    Returns:
        The cut: a row is predicted positive when its probability is ``>=`` it.
        0.5 when validation holds no positive row (or one class only).
    """
    y = np.asarray(y_val)
    if positive_label is None:
        labels = np.sort(pd.unique(y))
        if len(labels) < 2:
            # One class only: which one is "positive" is unknowable from the rows.
            return DEFAULT_THRESHOLD
        positive_label = labels[-1]
    return best_f1_threshold(y == positive_label, np.asarray(proba_val, dtype=float))


def evaluate_classifier(
    pipeline: Any, test_df: pd.DataFrame, target: str, threshold: float | None = None
) -> dict[str, Any]:
    """Classification metrics of a fitted pipeline on the test rows.

    Binary: the positive class is ``classes_[1]``; labels are predicted with
    ``proba >= threshold``. Multiclass: the most probable class is predicted; precision,
    recall, F1, FPR, specificity and PR-AUC are macro averages over classes, ROC-AUC is
    one-vs-rest macro.

    Args:
        pipeline: A fitted classifier pipeline (``predict_proba``, ``classes_``).
        test_df: Test rows, target included.
        target: Target column name.
        threshold: Binary decision threshold (default 0.5).

    Returns:
        accuracy, precision, recall, f1, fpr, specificity, roc_auc, pr_auc, log_loss,
        n, and ``confusion_matrix`` with ``labels``, ``counts`` and ``percent`` (of all
        test rows; rows are true classes, columns predicted), plus for binary the
        ``tn/fp/fn/tp`` counts, ``positive_label`` and ``threshold``.
    """
    X = test_df.drop(columns=[target])
    y = test_df[target].to_numpy()
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    classes = np.asarray(pipeline.classes_)
    if len(classes) == 2:
        return _binary_metrics(y, proba[:, 1], classes, threshold)
    return _multiclass_metrics(y, proba, classes)


def evaluate_regressor(pipeline: Any, test_df: pd.DataFrame, target: str) -> dict[str, Any]:
    """Regression metrics of a fitted pipeline on the test rows.

    Returns:
        mse, rmse, mae, r2 and n.
    """
    X = test_df.drop(columns=[target])
    y = test_df[target].to_numpy(dtype=float)
    predicted = np.asarray(pipeline.predict(X), dtype=float)
    mse = float(mean_squared_error(y, predicted))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)) if len(y) > 1 else None,
        "n": len(y),
    }


def evaluate(
    pipeline: Any,
    splits: Splits,
    *,
    target: str,
    problem_type: str,
    baseline_pipeline: Any,
    top_k: int = 20,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate a model and its baseline on the test split.

    Args:
        pipeline: The fitted candidate pipeline (``features`` + ``model``).
        splits: The split it was trained on; validation picks the threshold.
        target: Target column name.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        baseline_pipeline: The fitted baseline pipeline, judged the same way.
        top_k: How many features to keep in ``top_features``.
        seed: Seed of permutation importance (when the model has no native one).

    Returns:
        The report: metrics beside the baseline's, threshold, top features, predictions.
    """
    test = splits.test
    threshold = None
    classes: list[Any] | None = None
    if problem_type == "regression":
        metrics = evaluate_regressor(pipeline, test, target)
        baseline_metrics = evaluate_regressor(baseline_pipeline, test, target)
        predicted = np.asarray(pipeline.predict(test.drop(columns=[target])), dtype=float)
        predictions = pd.DataFrame({"y_true": test[target].to_numpy(), "y_pred": predicted})
    else:
        classes = list(pipeline.classes_)
        X_test = test.drop(columns=[target])
        if problem_type == "binary":
            X_val = splits.validation.drop(columns=[target])
            proba_val = pipeline.predict_proba(X_val)[:, 1]
            threshold = choose_threshold(
                splits.validation[target], proba_val, positive_label=classes[1]
            )
        metrics = evaluate_classifier(pipeline, test, target, threshold)
        # The baseline keeps its own decision: always the majority class.
        baseline_metrics = evaluate_classifier(baseline_pipeline, test, target, DEFAULT_THRESHOLD)
        proba = np.asarray(pipeline.predict_proba(X_test), dtype=float)
        if problem_type == "binary":
            cut = DEFAULT_THRESHOLD if threshold is None else threshold
            predicted_labels = np.where(proba[:, 1] >= cut, classes[1], classes[0])
        else:
            predicted_labels = np.asarray(classes)[np.argmax(proba, axis=1)]
        predictions = pd.DataFrame({"y_true": test[target].to_numpy(), "y_pred": predicted_labels})
        for j, label in enumerate(classes):
            predictions[f"proba_{label}"] = proba[:, j]
    top, method = feature_importance(
        pipeline, test, target=target, problem_type=problem_type, top_k=top_k, seed=seed
    )
    model = pipeline.named_steps["model"] if isinstance(pipeline, Pipeline) else pipeline
    inner = getattr(model, "estimator", model)
    return EvaluationReport(
        problem_type=problem_type,
        target=target,
        estimator=type(inner).__name__,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        threshold=threshold,
        top_features=top,
        importance_method=method,
        split_rows=splits.sizes(),
        classes=jsonable(classes),
        predictions=predictions,
    )


def feature_importance(
    pipeline: Any,
    df: pd.DataFrame,
    *,
    target: str,
    problem_type: str,
    top_k: int = 20,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], str]:
    """The model's most important features.

    Trees' ``feature_importances_`` and linear models' absolute coefficients (averaged
    over classes) are mapped to the preprocessed feature names; the linear pipelines
    scale their inputs, so coefficient sizes are comparable. A model with neither gets
    permutation importance on raw columns, on a sample of ``df``.

    Args:
        pipeline: Fitted pipeline (``features`` + ``model``).
        df: Rows for permutation importance, target included.
        target: Target column name.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        top_k: How many features to return.
        seed: Seed of the sample and the shuffles.

    Returns:
        ``([{"feature", "importance"}, ...] most important first, method)``.
    """
    model = pipeline.named_steps["model"]
    names = feature_names(pipeline)
    values: np.ndarray | None = None
    if hasattr(model, "feature_importances_"):
        values = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.abs(np.atleast_2d(np.asarray(model.coef_, dtype=float)))
        values = coef.mean(axis=0)
    method = "native"
    if values is None or len(values) != len(names):
        sample = df.sample(min(len(df), PERMUTATION_SAMPLE_ROWS), random_state=seed)
        scoring = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[problem_type]
        if problem_type == "binary" and sample[target].nunique() < 2:
            scoring = "accuracy"
        result = permutation_importance(
            pipeline,
            sample.drop(columns=[target]),
            sample[target],
            scoring=scoring,
            n_repeats=PERMUTATION_REPEATS,
            random_state=seed,
            n_jobs=1,
        )
        names = [str(c) for c in sample.drop(columns=[target]).columns]
        values = np.asarray(result.importances_mean, dtype=float)
        method = "permutation"
    order = np.argsort(-values, kind="stable")[:top_k]
    return [{"feature": names[i], "importance": float(values[i])} for i in order], method


def _binary_metrics(
    y: np.ndarray, positive_proba: np.ndarray, classes: np.ndarray, threshold: float | None
) -> dict[str, Any]:
    cut = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    is_positive = y == classes[1]
    predicted = positive_proba >= cut
    tn, fp, fn, tp = (
        int(v) for v in confusion_matrix(is_positive, predicted, labels=[False, True]).ravel()
    )
    both_present = len(np.unique(is_positive)) == 2
    n = len(y)
    counts = [[tn, fp], [fn, tp]]
    return {
        "accuracy": float(accuracy_score(is_positive, predicted)),
        "precision": float(precision_score(is_positive, predicted, zero_division=0)),
        "recall": float(recall_score(is_positive, predicted, zero_division=0)),
        "f1": float(f1_score(is_positive, predicted, zero_division=0)),
        "fpr": _ratio(fp, fp + tn),
        "specificity": _ratio(tn, fp + tn),
        "roc_auc": float(roc_auc_score(is_positive, positive_proba)) if both_present else None,
        "pr_auc": (
            float(average_precision_score(is_positive, positive_proba)) if both_present else None
        ),
        "log_loss": float(log_loss(is_positive, positive_proba, labels=[False, True])),
        "n": n,
        "threshold": cut,
        "positive_label": jsonable(classes[1]),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "confusion_matrix": {
            "labels": jsonable(list(classes)),
            "counts": counts,
            "percent": [[_percent(c, n) for c in row] for row in counts],
        },
    }


def _multiclass_metrics(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    predicted = classes[np.argmax(proba, axis=1)]
    matrix = confusion_matrix(y, predicted, labels=classes)
    n = len(y)
    total = matrix.sum()
    fp = matrix.sum(axis=0) - np.diag(matrix)
    tn = total - matrix.sum(axis=1) - fp
    present = np.isin(classes, y)
    # ROC/PR-AUC one-vs-rest are defined only for classes present among the rows.
    roc_auc = pr_auc = None
    if present.sum() >= 2:
        roc_auc = float(
            np.mean(
                [roc_auc_score(y == c, proba[:, j]) for j, c in enumerate(classes) if present[j]]
            )
        )
        pr_auc = float(
            np.mean(
                [
                    average_precision_score(y == c, proba[:, j])
                    for j, c in enumerate(classes)
                    if present[j]
                ]
            )
        )
    normalised = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    fpr_per_class = [_ratio(int(f), int(f + t)) for f, t in zip(fp, tn, strict=True)]
    defined = [v for v in fpr_per_class if v is not None]
    mean_fpr = float(np.mean(defined)) if defined else None
    counts = matrix.astype(int).tolist()
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(
            precision_score(y, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "recall": float(
            recall_score(y, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "f1": float(f1_score(y, predicted, labels=classes, average="macro", zero_division=0)),
        "fpr": mean_fpr,
        "specificity": None if mean_fpr is None else 1.0 - mean_fpr,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "log_loss": float(log_loss(y, normalised, labels=classes)),
        "n": n,
        "confusion_matrix": {
            "labels": jsonable(list(classes)),
            "counts": counts,
            "percent": [[_percent(c, n) for c in row] for row in counts],
        },
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None


def _percent(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0
