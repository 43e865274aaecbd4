"""What ``train_model`` computes for Clarify, and where it goes.

At **evaluate** (:func:`clarify_evaluation`), on the split the candidate was trained and
tested on:

- the bias report (binary targets with ``bias_facets``): pre-training metrics on the
  training split, post-training metrics on the candidate's test predictions (at the
  decision threshold chosen on validation), the bias gate's verdict;
- explanations: per-row attributions of a sample of the test split (global mean
  |attribution| and a beeswarm plot for the model card), and the attribution baseline
  on a sample of the training split;
- the training feature means stored on the pipeline (linear models' SHAP baseline).

Files beside the evaluation report (``reports/evaluation/<model>/<version>/``):
``bias.json``, ``attributions.json`` (the test sample's global attribution),
``attribution_baseline.json``, ``beeswarm.png``; the model card shows them.

At **register** (:func:`log_clarify_evidence`): ``bias_<facet>_<METRIC>`` metrics and
``attribution_baseline.json`` on the version's run, the version tag ``bias_summary``
(read by the Models view), and the lines of the approval request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from include.mlops.clarify.attribution import (
    ATTRIBUTION_BASELINE_FILE,
    beeswarm_png,
    sample,
    sample_rows,
    summarise,
)
from include.mlops.clarify.bias import BiasGate, bias_report, flat_metrics, parse_bounds
from include.mlops.clarify.explain import Explainer, NotExplainable, attach_background
from include.mlops.clarify.facets import parse_facets
from include.mlops.jsonable import jsonable

if TYPE_CHECKING:
    import mlflow

    from include.mlops.features.split import Splits

log = logging.getLogger(__name__)

BIAS_FILE = "bias.json"
ATTRIBUTIONS_FILE = "attributions.json"
BEESWARM_FILE = "beeswarm.png"
#: Version tag with the bias verdict and each facet's post-training metrics (Models view).
BIAS_SUMMARY_TAG = "bias_summary"
#: Metrics shown in the card's and the approval request's short tables.
HEADLINE_METRICS = ("CI", "DPL", "DPPL", "DI", "AD", "RD")
#: Columns in the card's global attribution table.
TOP_COLUMNS = 20


@dataclass
class ClarifyEvidence:
    """The Clarify part of one candidate's evaluation.

    Attributes:
        bias: The bias report (``None`` without facets).
        bias_note: Why there is no bias report despite facets (e.g. a regression target).
        explanations: The test sample's global attribution (``None`` when unavailable).
        baseline: The attribution baseline (training sample).
        explanation_note: Why explanations are unavailable.
        files: File name → bytes, written beside the evaluation report.
    """

    bias: dict[str, Any] | None = None
    bias_note: str | None = None
    explanations: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    explanation_note: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)

    def card(self) -> dict[str, Any]:
        """The model card's Clarify sections (rendered to Markdown and HTML alike)."""
        facets = []
        for entry in (self.bias or {}).get("facets") or []:
            rows = []
            for stage in ("pre_training", "post_training"):
                for name, value in (entry.get(stage) or {}).items():
                    rows.append((name, stage.replace("_", "-"), _number(value),
                                 (entry.get("errors") or {}).get(name, "")))  # fmt: skip
            counts = entry.get("rows") or {}
            facets.append({
                "facet": entry["facet"],
                "rows": f"{counts.get('train_facet')} of {counts.get('train')} training rows, "
                        f"{counts.get('test_facet')} of {counts.get('test')} test rows",
                "metrics": rows,
            })  # fmt: skip
        gate = (self.bias or {}).get("gate") or {}
        top = []
        if self.explanations:
            mean_abs = self.explanations["mean_abs"]
            top = [(c, _number(mean_abs[c])) for c in self.explanations["ranking"][:TOP_COLUMNS]]
        return {
            "bias": self.bias is not None,
            "bias_note": self.bias_note,
            "label": (self.bias or {}).get("label"),
            "positive_label": (self.bias or {}).get("positive_label"),
            "group_column": (self.bias or {}).get("group_column"),
            "gate": gate,
            "facets": facets,
            "explanations": self.explanations,
            "explanation_note": self.explanation_note,
            "top": top,
            "beeswarm": BEESWARM_FILE if BEESWARM_FILE in self.files else None,
        }

    def markdown(self) -> list[str]:
        """The card's Clarify sections in Markdown."""
        card = self.card()
        lines = ["", "## Bias (SageMaker Clarify metrics)", ""]
        if not card["bias"]:
            lines.append(card["bias_note"] or "No facet was given (train_model's `bias_facets`).")
        else:
            lines.append(
                f"Label `{card['label']}`, positive class `{card['positive_label']}`; "
                "pre-training metrics on the training split, post-training on the test "
                f"split's predictions. Gate: {_gate_text(card['gate'])}."
            )
            for v in card["gate"].get("violations") or []:
                lines.append(f"- {v['message']}")
            for facet in card["facets"]:
                lines += ["", f"### Facet `{facet['facet']}` ({facet['rows']})", ""]
                lines += ["| metric | stage | value | note |", "|---|---|---:|---|"]
                lines += [f"| {m} | {s} | {v} | {n} |" for m, s, v, n in facet["metrics"]]
        lines += ["", "## Explanations", ""]
        if not card["explanations"]:
            lines.append(f"Not available: {card['explanation_note'] or 'not computed'}.")
            return lines
        e = card["explanations"]
        lines.append(
            f"Mean |attribution| per input column on {e['rows']} test rows, in the model's "
            f"{e['space']} space ({e['method']}); base value {_number(e['base_value'])}. "
            "Per row, base value + Σ attributions = the model's output."
        )
        lines += ["", "| column | mean abs attribution |", "|---|---:|"]
        lines += [f"| {c} | {v} |" for c, v in card["top"]]
        if card["beeswarm"]:
            lines += ["", f"![Attributions per row (beeswarm)]({card['beeswarm']})"]
        return lines


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _gate_text(gate: Mapping[str, Any]) -> str:
    mode = gate.get("mode", "off")
    if mode == "off":
        return "off"
    bounds = ", ".join(f"{m} in [{_open(lo, '-inf')}, {_open(hi, 'inf')}]"
                       for m, (lo, hi) in (gate.get("bounds") or {}).items())  # fmt: skip
    return f"{mode}, {bounds}: {gate.get('status')}"


def _open(value: Any, text: str) -> str:
    return text if value is None else f"{value:g}"


def clarify_evaluation(
    pipeline: Any,
    splits: Splits,
    *,
    target: str,
    problem_type: str,
    threshold: float | None,
    facets: tuple[str, ...] | list[str] = (),
    group_column: str | None = None,
    gate_mode: str = "off",
    bounds: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> ClarifyEvidence:
    """Bias report and explanations of a fitted candidate (see the module docstring).

    Also stores the training feature means on ``pipeline`` (before it is pickled).
    """
    evidence = ClarifyEvidence()
    train_x = splits.train.drop(columns=[target])
    test_x = splits.test.drop(columns=[target])
    try:
        attach_background(pipeline, train_x)
        explainer = Explainer(pipeline)
    except NotExplainable as error:
        evidence.explanation_note = str(error)
        explainer = None
    if explainer is not None:
        rows = sample_rows(explainer)
        shown = sample(test_x, rows, seed)
        attributions = explainer.explain(shown)
        log.info("explanations: %d test rows by %s, additivity error %.2e", len(shown),
                 explainer.method, attributions.additivity_error)  # fmt: skip
        evidence.explanations = summarise(attributions, method=explainer.method, split="test")
        evidence.baseline = summarise(
            explainer.explain(sample(train_x, rows, seed)), method=explainer.method, split="train"
        )
        evidence.files[ATTRIBUTIONS_FILE] = _json(evidence.explanations)
        evidence.files[ATTRIBUTION_BASELINE_FILE] = _json(evidence.baseline)
        evidence.files[BEESWARM_FILE] = beeswarm_png(
            attributions, shown, title=f"Attributions of {len(shown)} test rows"
        )
    if facets:
        if problem_type != "binary":
            evidence.bias_note = (
                f"bias metrics need a binary target; this model is {problem_type}: "
                f"facets {list(facets)} not computed"
            )
        else:
            evidence.bias = _bias(pipeline, splits, target=target, threshold=threshold,
                                  facets=facets, group_column=group_column,
                                  gate=BiasGate(gate_mode, parse_bounds(bounds)))  # fmt: skip
            evidence.files[BIAS_FILE] = _json(evidence.bias)
    return evidence


def _bias(
    pipeline: Any,
    splits: Splits,
    *,
    target: str,
    threshold: float | None,
    facets: tuple[str, ...] | list[str],
    group_column: str | None,
    gate: BiasGate,
) -> dict[str, Any]:
    from include.mlops.clarify.explain import column_groups, without_column

    classes = list(pipeline.classes_)
    positive = classes[1]
    cut = 0.5 if threshold is None else threshold
    train, test = splits.train, splits.test
    test_x = test.drop(columns=[target])
    predicted = np.asarray(pipeline.predict_proba(test_x))[:, 1] >= cut
    features = pipeline.named_steps["features"]
    matrix = np.asarray(features.transform(test_x), dtype=float)
    columns, starts = column_groups(features)
    # The flip test's neighbours are found without the facet column itself.
    by_facet = {
        facet.key: without_column(matrix, columns, starts, facet.column)
        for facet in parse_facets(facets)
    }
    return bias_report(
        list(facets),
        train={"frame": train, "y": train[target].to_numpy() == positive},
        test={"frame": test, "y": test[target].to_numpy() == positive, "yhat": predicted,
              "features_by_facet": by_facet},
        label=target, positive_label=jsonable(positive), group_column=group_column,
        threshold=cut, gate=gate,
    )  # fmt: skip


def _json(data: Any) -> bytes:
    return json.dumps(jsonable(data), indent=1, allow_nan=False).encode()


# -- registration ------------------------------------------------------------------------
def bias_summary(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``bias_summary`` tag: gate status and each facet's headline metrics."""
    if not report:
        return None
    return jsonable({
        "gate": (report.get("gate") or {}).get("status"),
        "facets": {
            entry["facet"]: {m: {**(entry.get("pre_training") or {}),
                                 **(entry.get("post_training") or {})}.get(m)
                             for m in HEADLINE_METRICS}
            for entry in report.get("facets") or []
        },
    })  # fmt: skip


def log_clarify_evidence(
    client: mlflow.MlflowClient,
    *,
    run_id: str,
    model_name: str,
    version: str | int,
    report_files: Mapping[str, bytes],
) -> dict[str, Any] | None:
    """Log a registered version's Clarify evidence on its run and tag it.

    Args:
        client: MLflow client.
        run_id: The version's run.
        model_name: Registered model name.
        version: The version.
        report_files: The evaluation report's files (``bias.json``, ...).

    Returns:
        The bias report, or ``None`` when the version has none.
    """
    import tempfile
    from pathlib import Path

    from mlflow.entities import Metric

    bias = json.loads(report_files[BIAS_FILE]) if BIAS_FILE in report_files else None
    if ATTRIBUTION_BASELINE_FILE in report_files:
        with tempfile.TemporaryDirectory(prefix="mlops-clarify-") as tmp:
            path = Path(tmp) / ATTRIBUTION_BASELINE_FILE
            path.write_bytes(report_files[ATTRIBUTION_BASELINE_FILE])
            client.log_artifact(run_id, str(path))
    if bias:
        import time

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in flat_metrics(bias).items()]
        for start in range(0, len(metrics), 500):  # MLflow's batch limit is 1,000
            client.log_batch(run_id, metrics=metrics[start : start + 500])
        client.set_model_version_tag(
            model_name, str(version), BIAS_SUMMARY_TAG,
            json.dumps(bias_summary(bias), separators=(",", ":"), allow_nan=False),
        )  # fmt: skip
    return bias


def approval_lines(bias: Mapping[str, Any] | None) -> list[str]:
    """The approval request's bias section (Markdown), empty without a report."""
    if not bias:
        return []
    gate = bias.get("gate") or {}
    lines = ["", f"**Bias** (label `{bias.get('label')}` = `{bias.get('positive_label')}`; "
                 f"gate {_gate_text(gate)}):", ""]  # fmt: skip
    lines += ["| facet | " + " | ".join(HEADLINE_METRICS) + " |",
              "|---|" + "---:|" * len(HEADLINE_METRICS)]  # fmt: skip
    for entry in bias.get("facets") or []:
        values = {**(entry.get("pre_training") or {}), **(entry.get("post_training") or {})}
        lines.append(
            f"| {entry['facet']} | "
            + " | ".join(_number(values.get(m)) for m in HEADLINE_METRICS)
            + " |"
        )
    lines += [f"- {v['message']}" for v in gate.get("violations") or []]
    return lines
