"""Clarify in the monitor: feature-attribution drift and bias drift of a capture window.

- **Attribution drift** (SageMaker Model Monitor's feature attribution drift): the version's
  own model explains a sample of the window's captured rows (at most
  :data:`~include.mlops.clarify.attribution.SAMPLE_ROWS`); the columns ranked by mean
  |attribution| are scored against the stored attribution baseline with NDCG
  (:func:`~include.mlops.clarify.attribution.ndcg`); below ``attribution_ndcg`` (0.9) is a
  ``feature_attribution_drift_check`` violation.
- **Bias drift** (Model Monitor's model bias drift): with ground truth, the window's
  labelled rows (joined on ``inference_id``, as model quality joins them) give the
  post-training bias metrics of every facet the version was trained with; a metric that
  moved from its training-time value (the version's ``bias.json``) by more than
  ``bias_tolerance`` is a ``bias_drift_check`` violation. Judged from ``min_labeled_rows``
  labelled rows on; a facet whose column the capture does not carry is reported as such.

Both are sections of the monitoring report (``attribution_drift``, ``bias_drift``) and are
``None``-free: a section says ``"method": "unavailable"`` / ``"status": "unavailable"`` and
why when it cannot be computed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from include.mlops.clarify.attribution import (
    ATTRIBUTION_BASELINE_FILE,
    attribution_drift,
    sample,
    sample_rows,
)
from include.mlops.clarify.bias import UndefinedMetric, all_posttraining
from include.mlops.clarify.evidence import BIAS_FILE
from include.mlops.clarify.facets import parse_facet
from include.mlops.evaluation.baseline import category_name
from include.mlops.jsonable import jsonable
from include.mlops.lake.capture import FEATURE_PREFIX
from include.mlops.monitoring.quality import Violation

if TYPE_CHECKING:
    import mlflow

    from include.mlops.monitoring.drift import DriftThresholds

log = logging.getLogger(__name__)

ATTRIBUTION_DRIFT = "feature_attribution_drift_check"
BIAS_DRIFT = "bias_drift_check"
ID_COLUMN = "inference_id"
#: Where ``train_model`` leaves the bias report on the version's run.
BIAS_ARTIFACT = f"evaluation/{BIAS_FILE}"


def run_json(client: mlflow.MlflowClient, run_id: str | None, name: str) -> dict[str, Any] | None:
    """A JSON artifact of a run, or ``None`` when the run has no such file."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="mlops-clarify-") as tmp:
        try:
            path = client.download_artifacts(run_id, name, tmp)
        except Exception:  # MLflow raises several types for a missing artifact
            return None
        with open(os.fspath(path), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    return data


def window_frame(captured: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The captured rows as the model's raw input columns (absent ones all null)."""
    return pd.DataFrame(
        {
            c: captured[FEATURE_PREFIX + c] if FEATURE_PREFIX + c in captured.columns else None
            for c in columns
        },
        index=captured.index,
    )


def attribution_importance(
    client: mlflow.MlflowClient, run_id: str | None
) -> tuple[dict[str, float] | None, str | None]:
    """The version's mean |attribution| per input column (its attribution baseline), for
    the importance-weighted drift share; ``(None, reason)`` when it has none."""
    baseline = run_json(client, run_id, ATTRIBUTION_BASELINE_FILE)
    if baseline is None:
        return None, "the version has no attribution baseline"
    mean_abs = baseline.get("mean_abs") or {}
    if not mean_abs:
        return None, "the version's attribution baseline attributes nothing"
    return {str(k): float(v) for k, v in mean_abs.items() if v is not None}, None


def judge_window(
    client: mlflow.MlflowClient,
    model_name: str,
    version: int,
    captured: pd.DataFrame,
    *,
    thresholds: DriftThresholds,
    ground_truth: pd.DataFrame | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Attribution drift and bias drift of one version's captured rows.

    Returns:
        ``{"attribution_drift": {...}, "bias_drift": {...} | None, "violations": [...]}``
        (``bias_drift`` is ``None`` without ground truth or without a bias report).
    """
    from include.mlops.registry.versions import get_version

    info = get_version(client, model_name, version)
    baseline = run_json(client, info.run_id, ATTRIBUTION_BASELINE_FILE)
    bias = run_json(client, info.run_id, BIAS_ARTIFACT)
    wanted_bias = bias is not None and ground_truth is not None
    violations: list[Violation] = []
    if baseline is None and not wanted_bias:
        return {
            "attribution_drift": _unavailable("the version has no attribution baseline"),
            "bias_drift": None,
            "violations": [],
        }
    if captured.empty:
        return {
            "attribution_drift": _unavailable("no captured rows"),
            "bias_drift": None,
            "violations": [],
        }
    from include.mlops.registry.versions import RegistryError
    from include.mlops.serving.scoring import load_scorer

    try:
        scorer = load_scorer(client, model_name, version)
    except (RegistryError, OSError) as error:
        # Data drift and model quality are still judged; say why this part is not.
        log.warning("model %s v%s not loaded for attributions: %s", model_name, version, error)
        return {
            "attribution_drift": _unavailable(f"the model could not be loaded: {error}"),
            "bias_drift": None,
            "violations": [],
        }
    section: dict[str, Any]
    if baseline is None:
        section = _unavailable("the version has no attribution baseline")
    else:
        try:
            explainer = scorer.explainer()
            rows = sample(window_frame(captured, scorer.input_names), sample_rows(explainer))
            section = attribution_drift(
                baseline, explainer.explain(rows[explainer.columns]),
                threshold=thresholds.attribution_ndcg,
            )  # fmt: skip
        except ValueError as error:  # NotExplainable, or rows the model cannot read
            section = _unavailable(str(error))
        if section.get("drift"):
            violations.append(
                Violation(
                    ATTRIBUTION_DRIFT,
                    None,
                    f"feature attribution drift: NDCG {section['score']:.3f} < "
                    f"{section['threshold']:g} on {section['rows']} rows (top columns "
                    f"baseline {section['baseline_ranking'][:3]}, window "
                    f"{section['window_ranking'][:3]})",
                    observed=section["score"],
                    expected=section["threshold"],
                )
            )
    drift = None
    if wanted_bias:
        assert bias is not None and ground_truth is not None
        drift = bias_drift(scorer, captured, ground_truth, bias=bias,
                           label_column=label_column or str(bias.get("label")),
                           thresholds=thresholds)  # fmt: skip
        violations.extend(
            Violation(BIAS_DRIFT, None, m["message"], observed=m["value"], expected=m["training"])
            for m in drift.get("drifted", [])
        )
    return {"attribution_drift": section, "bias_drift": drift, "violations": violations}


def _unavailable(reason: str) -> dict[str, Any]:
    return {"method": "unavailable", "score": None, "drift": False, "reason": reason}


def bias_drift(
    scorer: Any,
    captured: pd.DataFrame,
    ground_truth: pd.DataFrame,
    *,
    bias: Mapping[str, Any],
    label_column: str,
    thresholds: DriftThresholds,
) -> dict[str, Any]:
    """Post-training bias metrics of the labelled window vs the version's training values."""
    if ID_COLUMN not in ground_truth.columns or label_column not in ground_truth.columns:
        return {"status": "unavailable", "drift": False, "facets": [], "drifted": [],
                "reason": f"ground truth lacks {ID_COLUMN!r} or {label_column!r}"}  # fmt: skip
    truth = ground_truth[[ID_COLUMN, label_column]].dropna().drop_duplicates(ID_COLUMN, keep="last")
    joined = captured.merge(truth, on=ID_COLUMN, how="inner")
    joined = joined[joined["prediction"].notna()].reset_index(drop=True)
    positive = category_name(bias.get("positive_label"))
    y = np.array([category_name(v) == positive for v in joined[label_column]], dtype=bool)
    yhat = np.array([category_name(v) == positive for v in joined["prediction"]], dtype=bool)
    enough = len(joined) >= thresholds.min_labeled_rows
    section: dict[str, Any] = {
        "rows": len(joined),
        "tolerance": thresholds.bias_tolerance,
        "min_labeled_rows": thresholds.min_labeled_rows,
        "positive_label": positive,
        "facets": [],
        "drifted": [],
    }
    explainer, matrix_all = None, None
    if len(joined):
        frame = window_frame(joined, scorer.input_names)
        try:
            explainer = scorer.explainer()
            matrix_all = explainer.transform(frame[explainer.columns])
        except ValueError:  # NotExplainable: the flip test is then undefined
            explainer = None
    group_column = bias.get("group_column")
    for entry in bias.get("facets") or []:
        facet = parse_facet(entry["facet"])
        column = FEATURE_PREFIX + facet.column
        result: dict[str, Any] = {"facet": facet.text, "metrics": {}}
        if column not in joined.columns:
            result["reason"] = f"the capture does not carry {facet.column!r} (not a model input)"
            section["facets"].append(result)
            continue
        mask = facet.mask(joined[column])
        result["facet_rows"] = int(mask.sum())
        group = None
        if group_column and FEATURE_PREFIX + group_column in joined.columns:
            group = joined[FEATURE_PREFIX + group_column].map(category_name).to_numpy()
        matrix = None if explainer is None else explainer.without(matrix_all, facet.column)
        values = (
            all_posttraining(mask, y, yhat, group=group, features=matrix) if len(joined) else {}
        )
        training = entry.get("post_training") or {}
        for name, value in values.items():
            number = (
                None
                if isinstance(value, UndefinedMetric) or not np.isfinite(value)
                else float(value)
            )
            before = training.get(name)
            moved = (
                enough and number is not None and before is not None
                and abs(number - before) > thresholds.bias_tolerance
            )  # fmt: skip
            result["metrics"][name] = {"value": number, "training": before, "drift": bool(moved)}
            if moved:
                section["drifted"].append({
                    "facet": facet.text, "metric": name, "value": number, "training": before,
                    "message": f"bias drift, facet {facet.text!r}: {name} {number:.4f} on "
                               f"{len(joined)} labelled rows vs {before:.4f} at training "
                               f"(tolerance {thresholds.bias_tolerance:g})",
                })  # fmt: skip
        section["facets"].append(result)
    section["drift"] = bool(section["drifted"])
    section["status"] = (
        "insufficient_labels" if not enough else ("drift" if section["drift"] else "ok")
    )
    return jsonable(section)
