"""Evaluation plots as PNG bytes: ROC, precision-recall, confusion matrix, importance, residuals.

Figures are drawn on matplotlib's Agg canvas through ``matplotlib.figure.Figure``,
never through ``pyplot``: no global figure state, no GUI backend, safe in a worker
process that draws many reports.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from include.mlops.evaluation.metrics import EvaluationReport

#: At most this many classes get their own ROC/PR curve (one-vs-rest).
MAX_CURVES = 10
_DPI = 100


def evaluation_plots(report: EvaluationReport) -> dict[str, bytes]:
    """Every plot that fits the report's problem type.

    Args:
        report: An evaluation with its test predictions.

    Returns:
        PNG bytes by file name: ``roc.png``, ``pr.png``, ``confusion_matrix.png``,
        ``feature_importance.png`` (classification), or ``residuals.png`` and
        ``feature_importance.png`` (regression).
    """
    plots: dict[str, bytes] = {}
    if report.problem_type == "regression":
        plots["residuals.png"] = residuals_png(report)
    else:
        plots["roc.png"] = roc_png(report)
        plots["pr.png"] = pr_png(report)
        plots["confusion_matrix.png"] = confusion_matrix_png(report)
    if report.top_features:
        plots["feature_importance.png"] = feature_importance_png(report)
    return plots


def roc_png(report: EvaluationReport) -> bytes:
    """ROC curve(s) on the test split, with the chance diagonal."""
    figure, ax = _figure(5.5, 5)
    for label, is_class, score in _one_vs_rest(report):
        if 0 < is_class.sum() < len(is_class):
            fpr, tpr, _ = roc_curve(is_class, score)
            ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    auc = report.metrics.get("roc_auc")
    ax.set_title(f"ROC curve (test AUC {auc:.3f})" if auc is not None else "ROC curve")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.legend(loc="lower right", fontsize="small")
    return _png(figure)


def pr_png(report: EvaluationReport) -> bytes:
    """Precision-recall curve(s) on the test split, with each class's base rate."""
    figure, ax = _figure(5.5, 5)
    for label, is_class, score in _one_vs_rest(report):
        if 0 < is_class.sum() < len(is_class):
            precision, recall, _ = precision_recall_curve(is_class, score)
            line = ax.plot(recall, precision, label=label)[0]
            ax.axhline(is_class.mean(), linestyle=":", color=line.get_color(), linewidth=1)
    ap = report.metrics.get("pr_auc")
    ax.set_title(f"Precision-recall (test AP {ap:.3f})" if ap is not None else "Precision-recall")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize="small")
    return _png(figure)


def confusion_matrix_png(report: EvaluationReport) -> bytes:
    """Confusion matrix on the test split: counts and percent of all rows per cell."""
    matrix = report.metrics["confusion_matrix"]
    labels = [str(v) for v in matrix["labels"]]
    counts = np.asarray(matrix["counts"])
    percent = np.asarray(matrix["percent"])
    size = max(4.0, 0.7 * len(labels) + 2.5)
    figure, ax = _figure(size, size * 0.9)
    ax.imshow(counts, cmap="Blues")
    high = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{percent[i, j]:.1f}%",
                ha="center",
                va="center",
                color="white" if counts[i, j] > high else "black",
                fontsize="small",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("Actual")
    threshold = f" (threshold {report.threshold:.3f})" if report.threshold is not None else ""
    ax.set_title(f"Confusion matrix{threshold}")
    return _png(figure)


def feature_importance_png(report: EvaluationReport) -> bytes:
    """Horizontal bars of the top features, most important on top."""
    features = report.top_features[::-1]
    figure, ax = _figure(7, max(2.5, 0.32 * len(features) + 1.2))
    ax.barh([str(f["feature"]) for f in features], [f["importance"] for f in features])
    ax.set_title(f"Feature importance ({report.importance_method})")
    ax.set_xlabel("importance")
    ax.tick_params(axis="y", labelsize="small")
    return _png(figure)


def residuals_png(report: EvaluationReport) -> bytes:
    """Regression: predicted vs actual, and residuals vs predicted."""
    predictions = report.predictions
    if predictions is None:
        raise ValueError("the report holds no test predictions to plot")
    actual = predictions["y_true"].to_numpy(dtype=float)
    predicted = predictions["y_pred"].to_numpy(dtype=float)
    figure = Figure(figsize=(10, 4.5), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.scatter(actual, predicted, s=10, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], linestyle="--", color="grey")
    left.set_xlabel("Actual")
    left.set_ylabel("Predicted")
    left.set_title("Predicted vs actual (test)")
    right.scatter(predicted, actual - predicted, s=10, alpha=0.6)
    right.axhline(0, linestyle="--", color="grey")
    right.set_xlabel("Predicted")
    right.set_ylabel("Residual (actual - predicted)")
    right.set_title("Residuals (test)")
    return _png(figure)


def _one_vs_rest(report: EvaluationReport) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, is_that_class, its_probability)`` per curve to draw."""
    predictions = report.predictions
    if predictions is None or not report.classes:
        raise ValueError("the report holds no test probabilities to plot")
    y = predictions["y_true"].to_numpy()
    classes = report.classes
    if len(classes) == 2:
        positive = classes[1]
        return [
            (f"positive = {positive}", y == positive, predictions[f"proba_{positive}"].to_numpy())
        ]
    return [
        (f"{label} vs rest", y == label, predictions[f"proba_{label}"].to_numpy())
        for label in classes[:MAX_CURVES]
    ]


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
