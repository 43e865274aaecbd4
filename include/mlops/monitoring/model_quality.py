"""Model quality on the window once ground truth has arrived, against the version's test metrics.

Ground truth is joined to the captured predictions on ``inference_id`` (the id the
endpoint returned with each prediction). The window's metrics are computed from what
the endpoint actually answered: the captured label (classifiers) and probability
(binary: the positive class's), or the captured value (regression). Each metric is held
to the version's own held-out test value (``test_<metric>`` on its MLflow run) with a
relative tolerance: a higher-is-better metric degrades below ``expected - tol*|expected|``,
a lower-is-better one above ``expected + tol*|expected|``.

Multiclass captures hold the predicted class's probability only, so the window's
ROC-AUC, PR-AUC and log-loss are not computable there; accuracy, precision, recall and
F1 (macro) are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from include.mlops.evaluation.baseline import category_name
from include.mlops.monitoring.drift import DriftThresholds
from include.mlops.monitoring.errors import GroundTruthError
from include.mlops.monitoring.quality import MODEL_QUALITY, Violation
from include.mlops.vocabulary import METRIC_DIRECTION

#: Direction of every metric the window can report (``max``: higher is better).
DIRECTION: dict[str, str] = {**METRIC_DIRECTION, "precision": "max", "recall": "max", "mse": "min"}
ID_COLUMN = "inference_id"


def model_quality(
    captured: pd.DataFrame,
    ground_truth: pd.DataFrame,
    *,
    label_column: str,
    problem_type: str,
    expected: Mapping[str, Any],
    thresholds: DriftThresholds,
    decision_threshold: float | None = None,
) -> tuple[dict[str, Any], list[Violation]]:
    """The window's metrics beside the version's, and the metrics that degraded.

    Args:
        captured: Captured rows of one version (``inference_id``, ``prediction``,
            ``probability``).
        ground_truth: Rows with ``inference_id`` and the true value in ``label_column``
            (a later row for the same id wins).
        label_column: Column of ``ground_truth`` holding the truth.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        expected: The version's test metrics (``VersionInfo.metrics``).
        thresholds: ``quality_tolerance`` and ``min_labeled_rows``.
        decision_threshold: Binary: the probability cut the endpoint used (helps find
            the positive class when the window predicts one class only).

    Returns:
        ``(section, violations)``: the report's ``model_quality`` section
        (``status`` ∈ ok, degraded, insufficient_labels; ``rows`` labelled of
        ``window_rows`` captured (``labelled_share``), ``metrics`` with
        ``value``/``expected``/``limit``/``degraded`` each) and one
        ``model_quality_check`` violation per degraded metric.

    Raises:
        GroundTruthError: ``ground_truth`` lacks ``inference_id`` or ``label_column``.
    """
    for column in (ID_COLUMN, label_column):
        if column not in ground_truth.columns:
            raise GroundTruthError(
                f"ground truth has no column {column!r} (columns: {list(ground_truth.columns)}); "
                f"it needs {ID_COLUMN!r} and the true value in {label_column!r}"
            )
    truth = ground_truth[[ID_COLUMN, label_column]].dropna()
    truth = truth.drop_duplicates(ID_COLUMN, keep="last")
    joined = captured[[ID_COLUMN, "prediction", "probability"]].merge(
        truth, on=ID_COLUMN, how="inner"
    )
    joined = joined[joined["prediction"].notna()]
    section: dict[str, Any] = {
        "problem_type": problem_type,
        "label_column": label_column,
        "labels": len(truth),
        # Quality is judged on the labelled part of the window only.
        "rows": len(joined),
        "window_rows": len(captured),
        "labelled_share": len(joined) / len(captured) if len(captured) else 0.0,
        "tolerance": thresholds.quality_tolerance,
        "min_labeled_rows": thresholds.min_labeled_rows,
        "metrics": {},
        "degraded": [],
    }
    if joined.empty:
        section["status"] = "insufficient_labels"
        return section, []
    if problem_type == "regression":
        values = _regression(joined, label_column)
    else:
        values, positive = _classification(joined, label_column, problem_type, decision_threshold)
        if positive is not None:
            section["positive_label"] = positive
    judged = len(joined) >= thresholds.min_labeled_rows
    violations: list[Violation] = []
    for name, value in values.items():
        reference = expected.get(name)
        entry: dict[str, Any] = {
            "value": value,
            "expected": reference,
            "limit": None,
            "degraded": False,
        }
        if reference is not None and value is not None and name in DIRECTION:
            margin = thresholds.quality_tolerance * abs(float(reference))
            higher_is_better = DIRECTION[name] == "max"
            limit = float(reference) - margin if higher_is_better else float(reference) + margin
            worse = value < limit if higher_is_better else value > limit
            entry.update(limit=limit, degraded=bool(judged and worse))
            if entry["degraded"]:
                section["degraded"].append(name)
                violations.append(
                    Violation(
                        MODEL_QUALITY,
                        None,
                        f"{name} on {len(joined)} labelled rows is {value:.4g}, "
                        f"{'below' if higher_is_better else 'above'} the limit {limit:.4g} "
                        f"(test {float(reference):.4g}, tolerance "
                        f"{thresholds.quality_tolerance:.0%})",
                        observed=value,
                        expected=float(reference),
                    )
                )
        section["metrics"][name] = entry
    if not judged:
        section["status"] = "insufficient_labels"
    else:
        section["status"] = "degraded" if section["degraded"] else "ok"
    return section, violations


def _regression(joined: pd.DataFrame, label_column: str) -> dict[str, float | None]:
    y = pd.to_numeric(joined[label_column], errors="coerce").to_numpy(dtype=float)
    predicted = pd.to_numeric(joined["prediction"], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(y) & np.isfinite(predicted)
    y, predicted = y[keep], predicted[keep]
    if y.size == 0:
        return {}
    mse = float(mean_squared_error(y, predicted))
    return {
        "rmse": math.sqrt(mse),
        "mse": mse,
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)) if y.size > 1 else None,
    }


def _classification(
    joined: pd.DataFrame, label_column: str, problem_type: str, decision_threshold: float | None
) -> tuple[dict[str, float | None], str | None]:
    y = np.array([category_name(v) for v in joined[label_column]], dtype=object)
    predicted = np.array([category_name(v) for v in joined["prediction"]], dtype=object)
    values: dict[str, float | None] = {"accuracy": float(np.mean(y == predicted))}
    if problem_type != "binary":
        labels = sorted(set(y) | set(predicted))
        for name, scorer in (
            ("precision", precision_score),
            ("recall", recall_score),
            ("f1", f1_score),
        ):
            values[name] = float(
                scorer(y, predicted, labels=labels, average="macro", zero_division=0)
            )
        return values, None
    probability = pd.to_numeric(joined["probability"], errors="coerce").to_numpy(dtype=float)
    positive = positive_label(predicted, probability, y, decision_threshold)
    is_positive = y == positive
    said_positive = predicted == positive
    values["precision"] = float(precision_score(is_positive, said_positive, zero_division=0))
    values["recall"] = float(recall_score(is_positive, said_positive, zero_division=0))
    values["f1"] = float(f1_score(is_positive, said_positive, zero_division=0))
    scored = np.isfinite(probability)
    both = len(np.unique(is_positive[scored])) == 2
    values["roc_auc"] = (
        float(roc_auc_score(is_positive[scored], probability[scored])) if both else None
    )
    values["pr_auc"] = (
        float(average_precision_score(is_positive[scored], probability[scored])) if both else None
    )
    values["log_loss"] = (
        float(log_loss(is_positive[scored], probability[scored], labels=[False, True]))
        if scored.any()
        else None
    )
    return values, positive


def positive_label(
    predicted: np.ndarray, probability: np.ndarray, truth: np.ndarray, threshold: float | None
) -> str:
    """The positive class of a binary model, from what it predicted.

    The captured probability is the positive class's, and the endpoint predicts the
    positive class exactly when it reaches the threshold, so the label predicted at the
    highest probability is the positive one whenever the window holds both predictions
    (or that probability reaches the threshold). Otherwise the larger of the known
    labels (numbers compared as numbers), as scikit-learn orders ``classes_``.
    """
    scored = np.isfinite(probability)
    if scored.any():
        top = int(np.nanargmax(np.where(scored, probability, -np.inf)))
        cut = 0.5 if threshold is None else threshold
        if len(set(predicted.tolist())) > 1 or probability[top] >= cut:
            return str(predicted[top])
    labels = sorted(set(truth.tolist()) | set(predicted.tolist()), key=_label_order)
    return str(labels[-1])


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
