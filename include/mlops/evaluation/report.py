"""The evaluation report a person reads: metrics JSON, plots and a model card.

Written under ``reports/evaluation/<model>/<version>/``::

    metrics.json            the report's numbers (model and baseline), machine-readable
    roc.png, pr.png, ...    the plots (see :mod:`include.mlops.evaluation.plots`)
    model_card.md           the model card in Markdown (renders in MLflow and on GitHub)
    model_card.html         the same card as one HTML page, plots embedded by relative src

The card follows the "model cards for model reporting" outline: what the model is for,
what data it saw, how it did against the baseline, where it may fail, what drives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from include.mlops.evaluation.plots import evaluation_plots
from include.mlops.jsonable import jsonable
from include.mlops.templates import render
from include.mlops.training.fit import METRIC_DIRECTION

if TYPE_CHECKING:
    from include.mlops.clarify.evidence import ClarifyEvidence
    from include.mlops.evaluation.metrics import EvaluationReport
    from include.mlops.lake.store import Lake

DEFAULT_INTENDED_USE = (
    "Scoring records like those of the training dataset, to support (not replace) a "
    "human decision. Not validated for populations, time periods or uses the training "
    "data does not cover."
)
CLASSIFICATION_ROWS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "fpr",
    "specificity",
    "log_loss",
)
REGRESSION_ROWS: tuple[str, ...] = ("rmse", "mse", "mae", "r2")
# Metrics where a smaller value is better, beyond the objective metrics.
_LOWER_IS_BETTER = {"fpr", "mse"} | {m for m, d in METRIC_DIRECTION.items() if d == "min"}
_PLOT_TITLES = {
    "roc.png": "ROC curve",
    "pr.png": "Precision-recall curve",
    "confusion_matrix.png": "Confusion matrix",
    "feature_importance.png": "Feature importance",
    "residuals.png": "Residuals",
}


def evaluation_prefix(model_name: str, version: str | int) -> str:
    """Lake prefix of a version's evaluation report."""
    return f"reports/evaluation/{model_name}/{version}"


def write_evaluation_report(
    lake: Lake,
    report: EvaluationReport,
    *,
    model_name: str,
    version: str | int,
    data_snapshot: str,
    dataset: str,
    intended_use: str = DEFAULT_INTENDED_USE,
    limitations: Iterable[str] = (),
    training_spec: dict[str, Any] | None = None,
    clarify: ClarifyEvidence | None = None,
    comparison: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the metrics, plots and model card of one model version.

    Args:
        lake: Where to write.
        report: The evaluation (see :func:`include.mlops.evaluation.metrics.evaluate`).
        model_name: Registered model name.
        version: Model version (or a run id before registration).
        data_snapshot: Id of the training data snapshot.
        dataset: Curated dataset name.
        intended_use: What the model is for, in the card's words.
        limitations: Known limitations to list before the generated ones.
        training_spec: Algorithm, parameters, objective... shown in the card.
        clarify: Bias report and explanations (:mod:`include.mlops.clarify.evidence`):
            their files are written beside the card and their sections added to it.
        comparison: The champion and the recent window: ``{"champion_version",
            "champion": test metrics, "recent": CandidateEvaluation.recent,
            "evaluated_on", "reason", "data": PreparedData.data}``; the card then shows the
            test split and the recent window side by side, and the feedback data.

    Returns:
        ``{"prefix", "uri", "model_card_uri", "keys": {file: key}, "uris": {file: uri}}``;
        ``model_card_uri`` is the HTML page to link from the Airflow task.
    """
    prefix = evaluation_prefix(model_name, version)
    plots = evaluation_plots(report)
    metrics = {
        "model_name": model_name,
        "version": str(version),
        "dataset": dataset,
        "data_snapshot": data_snapshot,
        **report.to_dict(),
        "training_spec": training_spec or {},
        "comparison": jsonable(dict(comparison or {})),
    }
    extra = dict(clarify.files) if clarify is not None else {}
    files: dict[str, bytes | None] = {"metrics.json": None, **plots, **extra}
    keys = {name: f"{prefix}/{name}" for name in [*files, "model_card.md", "model_card.html"]}
    uris = {"metrics.json": lake.write_json(keys["metrics.json"], metrics)}
    for name, png in plots.items():
        uris[name] = lake.write_bytes(keys[name], png)
    for name, data in extra.items():
        uris[name] = lake.write_bytes(keys[name], data)
    card = _card_sections(
        report,
        model_name=model_name,
        version=str(version),
        data_snapshot=data_snapshot,
        dataset=dataset,
        intended_use=intended_use,
        limitations=[*limitations, *generated_limitations(report)],
        training_spec=training_spec or {},
        comparison=comparison or {},
    )
    markdown = _markdown(card, list(plots)) + (
        "\n".join(clarify.markdown()) + "\n" if clarify is not None else ""
    )
    uris["model_card.md"] = lake.write_bytes(keys["model_card.md"], markdown.encode())
    uris["model_card.html"] = lake.write_bytes(
        keys["model_card.html"],
        _html(card, list(plots), clarify.card() if clarify is not None else None).encode(),
    )
    return {
        "prefix": prefix,
        "uri": lake.uri(prefix),
        "model_card_uri": uris["model_card.html"],
        "keys": keys,
        "uris": uris,
    }


def generated_limitations(report: EvaluationReport) -> list[str]:
    """Limitations that follow from the numbers themselves."""
    notes = []
    n_test = report.split_rows.get("test", report.metrics.get("n", 0))
    notes.append(
        f"Measured on one held-out test split of {n_test} rows; with few rows the "
        "metrics carry sampling error of a few points."
    )
    if report.problem_type != "regression":
        matrix = report.metrics.get("confusion_matrix", {})
        counts = matrix.get("counts") or []
        support = [sum(row) for row in counts]
        if support and min(support) < 0.2 * sum(support):
            notes.append(
                "Classes are imbalanced in the test data: accuracy flatters the model, "
                "read recall, precision and PR-AUC."
            )
        if report.threshold is not None:
            notes.append(
                f"The decision threshold {report.threshold:.3f} was chosen on the validation "
                "split to maximise F1; another cost of errors calls for another threshold."
            )
    notes.append(
        "Quality holds only while live data resembles the training data; the monitor "
        "compares live traffic with this version's drift baseline."
    )
    if report.importance_method == "native":
        notes.append(
            "Feature importances describe what the model uses, not causes; correlated "
            "features share importance."
        )
    return notes


def _card_sections(
    report: EvaluationReport,
    *,
    model_name: str,
    version: str,
    data_snapshot: str,
    dataset: str,
    intended_use: str,
    limitations: list[str],
    training_spec: dict[str, Any],
    comparison: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The card's content, rendered identically to Markdown and HTML."""
    details = [
        ("Model", model_name),
        ("Version", version),
        ("Estimator", report.estimator),
        ("Problem type", report.problem_type),
        ("Target", report.target),
    ]
    if report.threshold is not None:
        details.append(("Decision threshold", f"{report.threshold:.4f}"))
    details.extend((str(k), _text(v)) for k, v in training_spec.items())
    data = [
        ("Dataset", dataset),
        ("Data snapshot", data_snapshot),
        *((f"{name.capitalize()} rows", str(n)) for name, n in report.split_rows.items()),
    ]
    comparison = comparison or {}
    data.extend(_data_policy_rows(comparison.get("data") or {}))
    rows = REGRESSION_ROWS if report.problem_type == "regression" else CLASSIFICATION_ROWS
    metrics = []
    for metric in rows:
        model, baseline = report.metrics.get(metric), report.baseline_metrics.get(metric)
        better = "lower" if metric in _LOWER_IS_BETTER else "higher"
        delta = model - baseline if model is not None and baseline is not None else None
        metrics.append(
            (metric, _number(model), _number(baseline), _number(delta, signed=True), better)
        )
    features = [(str(f["feature"]), _number(f["importance"])) for f in report.top_features]
    return {
        "title": f"Model card: {model_name} v{version}",
        "intended_use": intended_use,
        "details": details,
        "data": data,
        "metrics": metrics,
        "confusion": report.metrics.get("confusion_matrix"),
        "limitations": limitations,
        "features": features,
        "importance_method": report.importance_method,
        "side_by_side": _side_by_side(report, comparison),
    }


def _data_policy_rows(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The data policy and the feedback data, as rows of the card's data table."""
    if not data:
        return []
    out = []
    base = data.get("base") or {}
    if base.get("partitions"):
        parts = base["partitions"]
        out.append(("Partitions", f"{len(parts)} ({parts[0]} … {parts[-1]})"))
    feedback = data.get("feedback")
    if feedback:
        out.append(("Feedback data", f"{feedback['dataset']}: {feedback.get('rows')} rows, "
                    f"snapshot {feedback['snapshot_id']}"))  # fmt: skip
    else:
        out.append(("Feedback data", "none"))
    policy = data.get("policy") or {}
    out.append(("Data window", f"newest {policy['data_window_days']} days"
                if policy.get("data_window_days") else "every partition"))  # fmt: skip
    out.append(("Recency weighting", f"half-life {policy['recency_half_life_days']} days"
                if policy.get("recency_half_life_days") else "none"))  # fmt: skip
    return out


def _side_by_side(report: EvaluationReport, comparison: Mapping[str, Any]) -> dict[str, Any] | None:
    """The test split and the recent window, candidate and champion, in one table."""
    recent = comparison.get("recent")
    if not recent:
        return None
    version = comparison.get("champion_version") or recent.get("champion_version")
    champion = comparison.get("champion") or {}
    header = ["metric", "test split: this model", f"test split: champion v{version}",
              "recent window: this model", f"recent window: champion v{version}"]  # fmt: skip
    names = REGRESSION_ROWS if report.problem_type == "regression" else CLASSIFICATION_ROWS
    rows = [
        [m, _number(report.metrics.get(m)), _number(champion.get(m)),
         _number((recent.get("candidate") or {}).get(m)),
         _number((recent.get("champion") or {}).get(m))]
        for m in names
    ]  # fmt: skip
    parts = ", ".join(recent.get("partitions") or []) or "no partition"
    note = (
        f"Recent window: {recent.get('rows', 0)} held-out rows of labelled traffic ({parts}) "
        f"that champion v{version} never trained on and this model did not train on. "
        f"The gates judged the {comparison.get('evaluated_on', 'test split')}: "
        f"{comparison.get('reason', '')} (the window decides from {recent.get('min_rows')} rows)."
    )
    return {"header": header, "rows": rows, "note": note}


def _markdown(card: dict[str, Any], plots: list[str]) -> str:
    lines = [f"# {card['title']}", "", "## Intended use", "", card["intended_use"], ""]
    lines += ["## Model details", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in card["details"]]
    lines += ["", "## Training data", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in card["data"]]
    lines += [
        "",
        "## Test metrics vs baseline",
        "",
        "| metric | model | baseline | model - baseline | better |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {m} | {a} | {b} | {d} | {w} |" for m, a, b, d, w in card["metrics"]]
    side = card.get("side_by_side")
    if side:
        lines += ["", "## Test split and recent window", "", side["note"], ""]
        lines += ["| " + " | ".join(side["header"]) + " |", "|---|" + "---:|" * 4]
        lines += ["| " + " | ".join(map(_md, row)) + " |" for row in side["rows"]]
    confusion = _confusion_table(card["confusion"])
    if confusion:
        lines += ["", "### Confusion matrix (rows actual, columns predicted)", ""]
        lines += ["| " + " | ".join(map(_md, confusion.header)) + " |"]
        lines += ["|---|" + "---:|" * (len(confusion.header) - 1)]
        lines += [
            f"| {_md(label)} | " + " | ".join(cells) + " |" for label, *cells in confusion.rows
        ]
    lines += ["", "## Limitations", ""] + [f"- {note}" for note in card["limitations"]]
    lines += ["", f"## Top features ({card['importance_method']} importance)", ""]
    lines += ["| feature | importance |", "|---|---:|"]
    lines += [f"| {_md(f)} | {v} |" for f, v in card["features"]]
    lines += ["", "## Plots", ""]
    lines += [f"![{_PLOT_TITLES.get(p, p)}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _html(card: dict[str, Any], plots: list[str], clarify: dict[str, Any] | None = None) -> str:
    return render(
        "evaluation/model_card.html",
        card=card,
        confusion=_confusion_table(card["confusion"]),
        plots=[(p, _PLOT_TITLES.get(p, p)) for p in plots],
        clarify=clarify,
    )


class _ConfusionTable(NamedTuple):
    header: list[str]
    rows: list[list[str]]


def _confusion_table(confusion: dict[str, Any] | None) -> _ConfusionTable | None:
    """The confusion matrix as a table: rows actual, columns predicted, ``count (pct%)``."""
    if not confusion:
        return None
    labels = [str(label) for label in confusion["labels"]]
    rows = [
        [label, *(f"{c} ({p:.1f}%)" for c, p in zip(counts, percent, strict=True))]
        for label, counts, percent in zip(
            labels, confusion["counts"], confusion["percent"], strict=True
        )
    ]
    return _ConfusionTable(["actual \\ predicted", *labels], rows)


def _number(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _md(value: Any) -> str:
    # A pipe would end the table cell.
    return str(value).replace("|", "\\|")
