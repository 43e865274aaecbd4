"""Estimated performance without labels: confidence-based performance estimation (CBPE).

NannyML's CBPE for binary classifiers. If the model's positive-class probability is
*calibrated* (of the rows scored ``p``, a share ``p`` is positive), each row's calibrated
probability is the chance that it is positive, and every confusion-matrix cell has an
expected value on an unlabelled window:

- a row predicted positive (``score >= threshold``, the endpoint's decision) is a true
  positive with probability ``p`` and a false positive with ``1 - p``; a row predicted
  negative a false negative with ``p`` and a true negative with ``1 - p``. Summing gives
  the expected TP, FP, FN, TN, hence the expected accuracy ``(TP + TN) / n`` and F1
  ``2TP / (2TP + FP + FN)`` (NannyML's ``estimate_accuracy`` and ``estimate_f1``);
- ROC-AUC: rows sorted by the model's own score, descending; the expected TPR and FPR at
  each cut are the cumulative sums of ``p`` and ``1 - p`` over their totals, and the
  estimate is the trapezoid area under that curve (NannyML's ``estimate_roc_auc``). Rows
  with equal scores form one step (as ``roc_auc_score`` treats ties), so with labels
  ``p`` of exactly 0 or 1 the estimate *is* scikit-learn's ROC-AUC.

Calibration is fitted at training time on the version's **validation** split (isotonic
regression of the label on the positive-class probability, NannyML's default), and
stored with the version inside its drift baseline as plain JSON numbers: the isotonic
step function's knots ``x`` (scores) and ``y`` (calibrated probabilities), applied with
linear interpolation and clipped at the ends (``IsotonicRegression(out_of_bounds="clip")``
predicts exactly so).

What holds it up: the estimate stays right under *covariate shift* (the inputs move, the
relation ``P(y | x)`` does not), which is the drift the monitor watches for; it cannot see
*concept* drift (the same inputs now mean another outcome). Model quality with ground truth
(:mod:`include.mlops.monitoring.model_quality`) catches that once labels arrive.

The judgement: the estimate of each metric is held to the version's held-out test value;
a drop of more than ``estimated_performance_tolerance`` (absolute, default 0.05) is an
``estimated_performance_check`` violation and the section's status is ``degraded``.
Windows of fewer than :data:`MIN_ROWS` scored rows are reported but judge nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.jsonable import jsonable
from include.mlops.monitoring.quality import ESTIMATED_PERFORMANCE, Violation

CALIBRATION_FORMAT = 1
#: The metrics CBPE estimates for a binary classifier (all higher-is-better).
METRICS = ("roc_auc", "accuracy", "f1")
#: Fewer scored rows than this: the estimate is reported, not judged. Measured on the
#: churn data (gradient boosting, 300 windows per size from one distribution): the
#: estimate's standard deviation is 0.017 ROC-AUC / 0.045 F1 at 100 rows, 0.011 / 0.029
#: at 200, 0.007 / 0.019 at 500; from 500 rows a 0.05 drop is not sampling noise.
MIN_ROWS = 500


# -- training time -------------------------------------------------------------------------
def fit_calibration(
    is_positive: np.ndarray | pd.Series,
    probability: np.ndarray | pd.Series,
    *,
    positive_label: Any = None,
    split: str = "validation",
) -> dict[str, Any] | None:
    """An isotonic calibration map of the positive-class probability, as JSON numbers.

    Args:
        is_positive: Whether each row's true label is the positive class.
        probability: The model's positive-class probability of each row.
        positive_label: The positive class (recorded for the report).
        split: Which split it was fitted on (recorded).

    Returns:
        ``{"format", "method": "isotonic", "split", "rows", "positive_label", "x", "y",
        "brier_before", "brier_after"}``, or ``None`` when the rows hold one class only
        (nothing to calibrate against).
    """
    from sklearn.isotonic import IsotonicRegression

    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(probability, dtype=float)
    keep = np.isfinite(p)
    y, p = y[keep], p[keep]
    if y.size == 0 or y.all() or not y.any():
        return None
    regressor = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    regressor.fit(p, y.astype(float))
    x_knots = np.asarray(regressor.X_thresholds_, dtype=float)
    y_knots = np.asarray(regressor.y_thresholds_, dtype=float)
    calibrated = np.interp(p, x_knots, y_knots)
    return jsonable(
        {
            "format": CALIBRATION_FORMAT,
            "method": "isotonic",
            "split": split,
            "rows": int(y.size),
            "positive_label": None if positive_label is None else str(positive_label),
            "x": [round(float(v), 10) for v in x_knots],
            "y": [round(float(v), 10) for v in y_knots],
            "brier_before": float(np.mean((p - y) ** 2)),
            "brier_after": float(np.mean((calibrated - y) ** 2)),
        }
    )


def validation_calibration(
    pipeline: Any, validation: pd.DataFrame, *, columns: list[str], target: str
) -> dict[str, Any] | None:
    """:func:`fit_calibration` of a fitted binary pipeline on its validation split.

    The positive class is ``classes_[1]``, the column ``predict_proba(...)[:, 1]`` scores
    (what the endpoint captures as ``probability``).
    """
    classes = list(getattr(pipeline, "classes_", []))
    if len(classes) != 2 or validation.empty:
        return None
    from include.mlops.evaluation.baseline import category_name

    positive = category_name(classes[1])
    probability = pipeline.predict_proba(validation[columns])[:, 1]
    truth = np.array([category_name(v) == positive for v in validation[target]], dtype=bool)
    known = validation[target].notna().to_numpy()
    return fit_calibration(truth[known], probability[known], positive_label=positive)


# -- monitoring time -----------------------------------------------------------------------
def calibrate(calibration: Mapping[str, Any], probability: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of scores, by the stored map (clipped to its ends)."""
    x = np.asarray(calibration["x"], dtype=float)
    y = np.asarray(calibration["y"], dtype=float)
    return np.clip(np.interp(np.asarray(probability, dtype=float), x, y), 0.0, 1.0)


def expected_roc_auc(calibrated: np.ndarray, scores: np.ndarray) -> float | None:
    """CBPE's ROC-AUC: calibrated probabilities as soft labels along the model's ranking.

    Args:
        calibrated: Each row's calibrated probability of being positive.
        scores: The model's own score of each row (the ranking; ties form one step).

    Returns:
        The trapezoid area under the expected ROC curve, or ``None`` when the window
        expects no positive or no negative at all.
    """
    p = np.asarray(calibrated, dtype=float)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    p, s = p[order], s[order]
    positives = np.cumsum(p)
    negatives = np.cumsum(1.0 - p)
    if p.size == 0 or positives[-1] <= 0 or negatives[-1] <= 0:
        return None
    # The curve's corners: the last row of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tpr = np.r_[0.0, positives[last] / positives[-1]]
    fpr = np.r_[0.0, negatives[last] / negatives[-1]]
    return float(np.trapezoid(tpr, fpr))


def expected_confusion(calibrated: np.ndarray, predicted_positive: np.ndarray) -> dict[str, float]:
    """Expected ``tp``, ``fp``, ``fn``, ``tn`` of a window (sums of ``p`` / ``1 - p``)."""
    p = np.asarray(calibrated, dtype=float)
    said = np.asarray(predicted_positive, dtype=bool)
    return {
        "tp": float(p[said].sum()),
        "fp": float((1.0 - p[said]).sum()),
        "fn": float(p[~said].sum()),
        "tn": float((1.0 - p[~said]).sum()),
    }


def estimate_metrics(
    calibrated: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, float | None]:
    """Expected ROC-AUC, accuracy, precision, recall and F1 of a window.

    Args:
        calibrated: Calibrated positive-class probabilities.
        scores: The model's scores (``>= threshold`` = predicted positive).
        threshold: The version's decision threshold.
    """
    cells = expected_confusion(calibrated, np.asarray(scores, dtype=float) >= threshold)
    tp, fp, fn, tn = cells["tp"], cells["fp"], cells["fn"], cells["tn"]
    n = tp + fp + fn + tn
    return {
        "roc_auc": expected_roc_auc(calibrated, scores),
        "accuracy": (tp + tn) / n if n else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
    }


def estimated_performance(
    frame: pd.DataFrame,
    baseline: Mapping[str, Any],
    *,
    problem_type: str,
    expected: Mapping[str, Any],
    decision_threshold: float | None,
    tolerance: float,
) -> tuple[dict[str, Any], list[Violation]]:
    """The report's ``estimated_performance`` section for one version's captured rows.

    Args:
        frame: Captured rows (``probability`` = the positive class's, as served).
        baseline: The version's drift baseline (``calibration`` inside, when trained so).
        problem_type: ``binary``, ``multiclass`` or ``regression``.
        expected: The version's test metrics (the reference).
        decision_threshold: The version's binary decision threshold (default 0.5).
        tolerance: A metric whose estimate is below its test value by more than this
            (absolute) degrades.

    Returns:
        ``(section, violations)``. The section is ``{"method": "cbpe", "status": ok |
        degraded | insufficient_rows, "rows", "metrics", "reference", "drop",
        "tolerance", "threshold", "degraded"}``, or ``{"method": "unavailable",
        "status": "unavailable", "reason"}`` (never an exception: versions registered
        before calibration was stored have none).
    """
    if problem_type != "binary":
        return _unavailable(f"CBPE is estimated for binary classifiers ({problem_type} model)")
    calibration = baseline.get("calibration")
    if not calibration or not calibration.get("x"):
        return _unavailable(
            "the version was registered without a calibration map (retrain it to get one)"
        )
    if "probability" not in frame.columns:
        return _unavailable("the capture holds no probabilities")
    scores = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(dtype=float)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        return _unavailable("no scored rows in the window")
    threshold = 0.5 if decision_threshold is None else float(decision_threshold)
    estimates = estimate_metrics(calibrate(calibration, scores), scores, threshold)
    judged = scores.size >= MIN_ROWS
    reference: dict[str, float | None] = {}
    drop: dict[str, float | None] = {}
    degraded: list[str] = []
    violations: list[Violation] = []
    for name in METRICS:
        value, before = estimates.get(name), _number(expected.get(name))
        reference[name] = before
        drop[name] = None if value is None or before is None else before - value
        moved = drop[name]
        if judged and moved is not None and moved > tolerance:
            degraded.append(name)
            violations.append(
                Violation(
                    ESTIMATED_PERFORMANCE,
                    None,
                    f"estimated {name} (CBPE, no labels) on {scores.size} rows is {value:.4f}, "
                    f"{moved:.4f} below the test value {before:.4f} (tolerance {tolerance:g})",
                    observed=value,
                    expected=before,
                )
            )
    section = {
        "method": "cbpe",
        "status": "insufficient_rows" if not judged else ("degraded" if degraded else "ok"),
        "rows": int(scores.size),
        "min_rows": MIN_ROWS,
        "threshold": threshold,
        "metrics": {k: estimates[k] for k in METRICS},
        "extra_metrics": {k: estimates[k] for k in ("precision", "recall")},
        "reference": reference,
        "drop": drop,
        "tolerance": tolerance,
        "degraded": degraded,
        "calibration": {
            "method": calibration.get("method"),
            "split": calibration.get("split"),
            "rows": calibration.get("rows"),
        },
    }
    return jsonable(section), violations


def _unavailable(reason: str) -> tuple[dict[str, Any], list[Violation]]:
    return {"method": "unavailable", "status": "unavailable", "reason": reason}, []


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
