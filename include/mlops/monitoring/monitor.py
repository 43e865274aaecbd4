"""One monitoring run: a capture window against the serving version's baseline, reported.

:func:`run_monitor` is the single entry point of the ``monitor_model`` DAG: it reads the
window from ``capture/<endpoint>/``, splits it by variant and model version (champion,
and canary or shadow when they served in the window), loads each version's drift
baseline and test metrics from the registry, judges data quality, feature drift,
prediction drift, the performance estimated without labels (CBPE, binary classifiers)
and (with ground truth) model quality with :func:`analyze_window`, then
feature-attribution drift and bias drift (:mod:`include.mlops.clarify.window`), and
writes ``monitoring/<model>/<run>/report.json`` and ``report.html``.

The report's top level is the champion's section (the registry's champion version when
it served in the window, else the champion rows of the version with most rows);
canary/shadow sections are listed under ``variants``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from include.mlops.jsonable import jsonable
from include.mlops.lake.capture import FEATURE_PREFIX, read_capture
from include.mlops.monitoring.cbpe import estimated_performance
from include.mlops.monitoring.drift import (
    DriftThresholds,
    FeatureDrift,
    categorical_drift,
    dataset_drift,
    feature_drift,
    numeric_drift,
)
from include.mlops.monitoring.errors import BaselineMissingError, GroundTruthError, MonitorError
from include.mlops.monitoring.model_quality import model_quality
from include.mlops.monitoring.quality import (
    BASELINE_DRIFT,
    DATASET_DRIFT,
    PREDICTION_DRIFT,
    Violation,
    column_quality,
    schema_violations,
)
from include.mlops.monitoring.report import write_report

if TYPE_CHECKING:
    import mlflow

    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

CHAMPION = "champion"


@dataclass
class MonitorResult:
    """What a monitoring run found and where its report is.

    Attributes:
        model_name: Registered model (endpoint) name.
        version: The champion version judged (``None`` when nothing was captured and
            no champion exists).
        run_id: The monitoring run.
        report_uri: ``report.json``.
        html_uri: ``report.html``.
        rows: Captured rows of the judged version in the window.
        dataset_drift: Whether the dataset drifted.
        drifted_features: Features that drifted.
        scores: Score per feature (distance or p-value, see the report's ``method``).
        prediction_drift: Whether the prediction distribution drifted.
        model_quality: ``ok``, ``degraded``, ``insufficient_labels`` or ``None`` (no
            ground truth given).
        estimated_quality: The performance estimated without labels (CBPE): ``ok``,
            ``degraded``, ``insufficient_rows``, ``unavailable`` or ``None`` (no section).
        estimated_metrics: CBPE's expected ``roc_auc``, ``accuracy``, ``f1`` (empty when
            not estimated).
        weighted_share: The drifted features' share of the attribution importance
            (``None`` when the version has no attribution baseline).
        violations: Number of violations in the report (all variants).
        variants: Per other variant: version, rows, dataset_drift.
        report: The full report.
    """

    model_name: str
    version: int | None
    run_id: str
    report_uri: str
    html_uri: str
    rows: int
    dataset_drift: bool
    drifted_features: list[str]
    scores: dict[str, float | None]
    prediction_drift: bool
    model_quality: str | None
    violations: int
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict, repr=False)
    estimated_quality: str | None = None
    estimated_metrics: dict[str, float | None] = field(default_factory=dict)
    weighted_share: float | None = None

    @property
    def labelled_rows(self) -> int | None:
        """Rows of the window judged for model quality (``None`` without ground truth)."""
        quality = self.report.get("model_quality")
        return None if quality is None else int(quality.get("rows") or 0)

    @property
    def drift_detected(self) -> bool:
        """Whether the champion's data, predictions or quality (measured or estimated)
        moved (retraining signal)."""
        return (
            self.dataset_drift
            or self.prediction_drift
            or self.model_quality == "degraded"
            or self.estimated_quality == "degraded"
        )

    def to_xcom(self) -> dict[str, Any]:
        """A small JSON-able summary for XCom (the report stays in the lake)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "report_uri": self.report_uri,
            "html_uri": self.html_uri,
            "rows": self.rows,
            "dataset_drift": self.dataset_drift,
            "drifted_features": self.drifted_features,
            "scores": self.scores,
            "prediction_drift": self.prediction_drift,
            "model_quality": self.model_quality,
            "labelled_rows": self.labelled_rows,
            "estimated_quality": self.estimated_quality,
            "estimated_metrics": self.estimated_metrics,
            "weighted_share": self.weighted_share,
            "violations": self.violations,
            "drift_detected": self.drift_detected,
            "variants": self.variants,
        }


def analyze_window(
    frame: pd.DataFrame,
    baseline: Mapping[str, Any],
    *,
    thresholds: DriftThresholds | None = None,
    ground_truth: pd.DataFrame | None = None,
    label_column: str | None = None,
    problem_type: str | None = None,
    expected_metrics: Mapping[str, Any] | None = None,
    decision_threshold: float | None = None,
    importance: Mapping[str, float] | None = None,
    importance_reason: str | None = None,
) -> dict[str, Any]:
    """Judge one version's captured rows against its baseline (no I/O).

    Args:
        frame: Captured rows of one version (capture columns: ``prediction``,
            ``probability``, ``inference_id``, ``feature.<name>``).
        baseline: The version's drift baseline.
        thresholds: Decision thresholds (defaults: :class:`DriftThresholds`).
        ground_truth: ``inference_id`` + ``label_column`` rows, when labels arrived.
        label_column: Ground-truth column with the true value.
        problem_type: ``binary``, ``multiclass`` or ``regression``; inferred from the
            captured columns and the baseline when ``None``.
        expected_metrics: The version's test metrics, for model quality.
        decision_threshold: Binary decision threshold of the version.
        importance: The version's mean |attribution| per input column (its attribution
            baseline), for the importance-weighted drift share; ``None``: unavailable.
        importance_reason: Why ``importance`` is ``None`` (reported).

    Returns:
        The report section: ``window.rows``, ``dataset_drift``, ``drift_summary``,
        ``features``, ``data_quality``, ``prediction_drift``, ``estimated_performance``,
        ``model_quality``, ``violations``.
    """
    thresholds = thresholds or DriftThresholds()
    started = time.perf_counter()
    summaries: Mapping[str, Any] = baseline.get("features") or {}
    present = [
        c[len(FEATURE_PREFIX) :]
        for c in frame.columns
        if c.startswith(FEATURE_PREFIX) and frame[c].notna().any()
    ]
    violations: list[Violation] = schema_violations(summaries, present) if len(frame) else []
    features: dict[str, FeatureDrift] = {}
    quality: dict[str, Any] = {}
    names = list(summaries)
    step = max(1, len(names) // 10)
    for i, name in enumerate(names, start=1):
        summary = summaries[name]
        if name not in present:
            features[name] = feature_drift(name, pd.Series([], dtype=float), summary, thresholds)
            features[name].statistics["reason"] = "not in the captured data"
        else:
            checked = column_quality(name, frame[FEATURE_PREFIX + name], summary, thresholds)
            quality[name] = checked.statistics
            violations.extend(checked.violations)
            if checked.frequencies is not None:
                features[name] = categorical_drift(name, checked.frequencies, summary, thresholds)
            else:
                assert checked.numbers is not None
                features[name] = numeric_drift(
                    name, checked.numbers, summary, thresholds, kind=summary.get("kind", "numeric")
                )
        if i % step == 0 or i == len(names):
            log.info(
                "features checked: %d of %d (%.1f s)", i, len(names), time.perf_counter() - started
            )
    for f in features.values():
        if f.drift:
            violations.append(
                Violation(
                    BASELINE_DRIFT,
                    f.feature,
                    f"feature {f.feature!r} drifted: {f.method} "
                    f"{'p-value' if f.score_is_p_value else 'score'} {f.score:.4g} "
                    f"{'<' if f.score_is_p_value else '≥'} {f.threshold:g} on {f.rows} rows",
                    observed=f.score,
                    expected=f.threshold,
                )
            )
    summary_all = dataset_drift(
        features, thresholds, importance, importance_reason=importance_reason
    )
    if summary_all["drift"]:
        violations.append(dataset_drift_violation(summary_all))
    prediction = prediction_drift(frame, baseline, thresholds)
    if prediction.get("drift"):
        violations.append(
            Violation(
                PREDICTION_DRIFT,
                None,
                f"the {prediction['column']} distribution drifted: {prediction['method']} "
                f"{prediction['score']:.4g} vs threshold {prediction['threshold']:g} on "
                f"{prediction['rows']} rows",
                observed=prediction["score"],
                expected=prediction["threshold"],
            )
        )
    kind = problem_type or infer_problem_type(frame, baseline)
    estimate, estimate_violations = estimated_performance(
        frame,
        baseline,
        problem_type=kind,
        expected=expected_metrics or {},
        decision_threshold=decision_threshold,
        tolerance=thresholds.estimated_performance_tolerance,
    )
    violations.extend(estimate_violations)
    quality_section = None
    if ground_truth is not None:
        quality_section, quality_violations = model_quality(
            frame,
            ground_truth,
            label_column=label_column or "label",
            problem_type=kind,
            expected=expected_metrics or {},
            thresholds=thresholds,
            decision_threshold=decision_threshold,
        )
        violations.extend(quality_violations)
    return jsonable(
        {
            "window": {"rows": len(frame)},
            "dataset_drift": summary_all["drift"],
            "drift_summary": summary_all,
            "features": {
                name: {**f.to_dict(), "importance": summary_all["importance"].get(name)}
                for name, f in features.items()
            },
            "data_quality": quality,
            "prediction_drift": prediction,
            "estimated_performance": estimate,
            "model_quality": quality_section,
            "violations": [v.to_dict() for v in violations],
            "seconds": time.perf_counter() - started,
        }
    )


def dataset_drift_violation(summary: Mapping[str, Any]) -> Violation:
    """The ``dataset_drift_check`` violation, naming the rule(s) that fired with both shares."""
    drifted = summary["drifted_features"]
    weighted = summary.get("weighted_share")
    plain_text = (
        f"plain share {summary['share']:.0%} "
        f"{'≥' if summary.get('plain_drift') else '<'} {summary['threshold']:.0%}"
    )
    weighted_text = (
        f"importance-weighted share unavailable ({summary.get('weighted_reason')})"
        if weighted is None
        else f"importance-weighted share {weighted:.0%} "
        f"{'≥' if summary.get('weighted_drift') else '<'} {summary['weighted_threshold']:.0%}"
    )
    rules = " and ".join(
        {"share": "plain share", "weighted_share": "importance-weighted share"}[r]
        for r in summary.get("rule") or []
    )
    # observed/expected: the weighted numbers when only that rule fired, else the plain ones.
    by_weight = summary.get("rule") == ["weighted_share"]
    return Violation(
        DATASET_DRIFT,
        None,
        f"dataset drift by the {rules} rule: {len(drifted)} of {summary['judged_features']} "
        f"features drifted ({plain_text}; {weighted_text}): {', '.join(drifted)}",
        observed=weighted if by_weight else summary["share"],
        expected=summary["weighted_threshold"] if by_weight else summary["threshold"],
    )


def prediction_drift(
    frame: pd.DataFrame, baseline: Mapping[str, Any], thresholds: DriftThresholds
) -> dict[str, Any]:
    """Drift of the score (binary: positive-class probability; regression: the value) or
    of the predicted classes (multiclass), against the baseline's training predictions.

    Returns:
        ``{"drift", "method", "score", "threshold", "column", "rows", ...}``; method
        ``unavailable`` (with ``reason``) when the baseline holds no predictions.
    """
    summary = baseline.get("prediction")
    shares = None
    if "prediction" in frame.columns and not pd.api.types.is_numeric_dtype(frame["prediction"]):
        counts = frame["prediction"].dropna().value_counts(normalize=True).head(20)
        shares = {str(k): float(v) for k, v in counts.items()}
    if not summary:
        return {
            "drift": False,
            "method": "unavailable",
            "score": None,
            "threshold": thresholds.prediction_distance,
            "reason": "the version's baseline holds no training predictions",
            "class_shares": shares,
        }
    if summary.get("kind") == "categorical":
        column = "prediction"
    elif "probability" in frame.columns and frame["probability"].notna().any():
        column = "probability"
    else:
        column = "prediction"
    values = frame[column] if column in frame.columns else pd.Series([], dtype=float)
    result = feature_drift(
        "prediction",
        values,
        summary,
        thresholds,
        distance_threshold=thresholds.prediction_distance,
    ).to_dict()
    result.update(column=column, class_shares=shares)
    return dict(result)


def infer_problem_type(frame: pd.DataFrame, baseline: Mapping[str, Any]) -> str:
    """``regression`` without probabilities, ``binary`` when the baseline's predictions
    are scores, else ``multiclass``."""
    if "probability" not in frame.columns or not frame["probability"].notna().any():
        return "regression"
    prediction = baseline.get("prediction") or {}
    return "binary" if prediction.get("kind") == "numeric" else "multiclass"


def run_monitor(
    lake: Lake,
    client: mlflow.MlflowClient | str,
    model_name: str,
    *,
    window_start: datetime | str,
    window_end: datetime | str,
    run_id: str,
    ground_truth: pd.DataFrame | str | None = None,
    label_column: str | None = None,
    thresholds: DriftThresholds | Mapping[str, Any] | None = None,
    endpoint: str | None = None,
) -> MonitorResult:
    """Monitor one endpoint's capture window and write the report.

    Args:
        lake: The lake (capture in, report out).
        client: MLflow client or tracking URI (champion, baselines, test metrics).
        model_name: Registered model name.
        window_start: Window start (inclusive; naive = UTC; ISO text accepted).
        window_end: Window end (exclusive).
        run_id: The monitoring run's id (the report folder; rerunning overwrites it).
        ground_truth: True values: a DataFrame with ``inference_id`` and the label, or
            the name of a curated dataset holding them (the DAG's default is the
            model's ``<model>_ground_truth`` when catalogued); ``None`` skips model
            quality. Quality is judged on the labelled part of the window.
        label_column: The label column of ``ground_truth`` (default: the training
            target's name, else ``label``).
        thresholds: :class:`DriftThresholds` or a mapping of overrides.
        endpoint: Endpoint whose capture to read (default ``model_name``).

    Returns:
        The result; :meth:`MonitorResult.to_xcom` is what a task returns.

    Raises:
        BaselineMissingError: The judged version has no drift baseline.
        GroundTruthError: The ground-truth dataset is not catalogued, or lacks
            ``inference_id`` or the label column.
        ValueError: Bad thresholds.
    """
    from include.mlops.clarify.window import attribution_importance, judge_window
    from include.mlops.registry.versions import (
        RegistryError,
        champion,
        drift_baseline,
        get_version,
        registry_client,
        training_spec,
    )

    client = registry_client(client)
    limits = (
        thresholds
        if isinstance(thresholds, DriftThresholds)
        else (DriftThresholds.from_params(thresholds))
    )
    start, end = _utc(window_start), _utc(window_end)
    frame = read_capture(lake, endpoint or model_name, start, end)
    serving = champion(client, model_name)
    groups = _groups(frame)
    log.info(
        "monitor %s: %d captured rows in [%s, %s): %s",
        model_name,
        len(frame),
        start.isoformat(),
        end.isoformat(),
        ", ".join(f"{v} v{ver} ({len(rows)} rows)" for (v, ver), rows in groups.items()) or "none",
    )
    primary = _primary(groups, None if serving is None else serving.version)
    truth = _ground_truth(lake, ground_truth)
    sections: list[dict[str, Any]] = []
    for key, rows in groups.items():
        variant, version = key
        try:
            baseline = drift_baseline(client, model_name, version)
        except RegistryError as error:
            if key == primary:
                raise BaselineMissingError(
                    f"model {model_name!r} version {version} serves as {variant} but has no drift "
                    f"baseline to monitor against ({error}); re-register it with train_model"
                ) from error
            sections.append(
                _empty_section(variant, version, len(rows), f"no drift baseline: {error}")
            )
            continue
        info = get_version(client, model_name, version)
        try:
            spec = training_spec(client, model_name, version)
        except RegistryError:
            spec = {}
        importance, importance_reason = attribution_importance(client, info.run_id)
        log.info("judging %s version %d: %d rows", variant, version, len(rows))
        section = analyze_window(
            rows,
            baseline,
            thresholds=limits,
            ground_truth=truth,
            label_column=label_column or spec.get("target") or "label",
            problem_type=spec.get("problem_type"),
            expected_metrics=info.metrics,
            decision_threshold=spec.get("threshold", info.metrics.get("threshold")),
            importance=importance,
            importance_reason=importance_reason,
        )
        section.update(variant=variant, version=version)
        # Clarify: feature-attribution drift and (with ground truth) bias drift.
        clarify = judge_window(client, model_name, version, rows, thresholds=limits,
                               ground_truth=truth, label_column=label_column or spec.get("target"))  # fmt: skip
        section.update(attribution_drift=clarify["attribution_drift"],
                       bias_drift=clarify["bias_drift"])  # fmt: skip
        section["violations"].extend(jsonable([v.to_dict() for v in clarify["violations"]]))
        sections.append(section)
    main = next(
        (s for s in sections if (s["variant"], s["version"]) == primary),
        None,
    )
    others = [s for s in sections if s is not main]
    if main is None:
        main = _empty_section(
            CHAMPION,
            None if serving is None else serving.version,
            0,
            "no champion rows were captured in the window",
        )
    notes = list(main.pop("notes", []))
    report: dict[str, Any] = {
        "model_name": model_name,
        "version": main.get("version"),
        "variant": main.get("variant"),
        "run_id": run_id,
        "endpoint": endpoint or model_name,
        "window": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "rows": main["window"]["rows"],
            "total_rows": len(frame),
        },
        "dataset_drift": main["dataset_drift"],
        "drift_summary": main["drift_summary"],
        "features": main["features"],
        "prediction_drift": main["prediction_drift"],
        "estimated_performance": main.get("estimated_performance"),
        "model_quality": main["model_quality"],
        "ground_truth_dataset": ground_truth if isinstance(ground_truth, str) else None,
        "attribution_drift": main.get("attribution_drift"),
        "bias_drift": main.get("bias_drift"),
        "violations": main["violations"],
        "data_quality": main["data_quality"],
        "thresholds": limits.to_dict(),
        "variants": others,
        "notes": notes,
        "seconds": main.get("seconds"),
    }
    uris = write_report(lake, report, model_name=model_name, run_id=run_id)
    log.info(
        "monitor %s v%s: dataset drift %s (%d of %d features), %d violations; report %s",
        model_name,
        report["version"],
        report["dataset_drift"],
        len(main["drift_summary"]["drifted_features"]),
        main["drift_summary"]["judged_features"],
        len(report["violations"]),
        uris["html_uri"],
    )
    quality = main["model_quality"]
    if quality is not None:
        log.info(
            "model quality %s on %d labelled of %d window rows (%s)",
            quality.get("status"), quality.get("rows", 0), quality.get("window_rows", 0),
            report["ground_truth_dataset"] or "ground truth given",
        )  # fmt: skip
    estimate = main.get("estimated_performance")
    return MonitorResult(
        model_name=model_name,
        version=report["version"],
        run_id=run_id,
        report_uri=uris["report_uri"],
        html_uri=uris["html_uri"],
        rows=report["window"]["rows"],
        dataset_drift=bool(report["dataset_drift"]),
        drifted_features=list(main["drift_summary"]["drifted_features"]),
        scores={name: f.get("score") for name, f in main["features"].items()},
        prediction_drift=bool(main["prediction_drift"].get("drift")),
        model_quality=None if quality is None else quality.get("status"),
        estimated_quality=None if estimate is None else estimate.get("status"),
        estimated_metrics=dict((estimate or {}).get("metrics") or {}),
        weighted_share=main["drift_summary"].get("weighted_share"),
        violations=len(report["violations"]) + sum(len(s["violations"]) for s in others),
        variants={
            f"{s['variant']}:{s['version']}": {
                "variant": s["variant"],
                "version": s["version"],
                "rows": s["window"]["rows"],
                "dataset_drift": s["dataset_drift"],
            }
            for s in others
        },
        report=report,
    )


# -- helpers ------------------------------------------------------------------------------
def _utc(value: datetime | str) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return datetime.fromtimestamp(stamp.timestamp(), tz=UTC)


def _groups(frame: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """Rows per (variant, model_version), champion first, then by rows."""
    if frame.empty:
        return {}
    keys = frame[["variant", "model_version"]].astype({"model_version": "int64"})
    pairs = keys.value_counts()
    if len(pairs) == 1:
        ((variant, version),) = pairs.index
        return {(str(variant), int(version)): frame}
    groups = {}
    variant_col = keys["variant"].to_numpy()
    version_col = keys["model_version"].to_numpy()
    for variant, version in pairs.index:
        mask = (variant_col == variant) & (version_col == version)
        groups[(str(variant), int(version))] = frame.loc[mask].reset_index(drop=True)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0] != CHAMPION, -len(kv[1]))))


def _primary(
    groups: Mapping[tuple[str, int], pd.DataFrame], champion_version: int | None
) -> tuple[str, int] | None:
    if champion_version is not None and (CHAMPION, champion_version) in groups:
        return (CHAMPION, champion_version)
    champions = [k for k in groups if k[0] == CHAMPION]
    if champions:
        return max(champions, key=lambda k: len(groups[k]))
    return None


def _empty_section(variant: str, version: int | None, rows: int, note: str) -> dict[str, Any]:
    return {
        "variant": variant,
        "version": version,
        "window": {"rows": rows},
        "dataset_drift": False,
        "drift_summary": {
            "drift": False,
            "share": 0.0,
            "threshold": None,
            "plain_drift": False,
            "weighted_share": None,
            "weighted_threshold": None,
            "weighted_drift": False,
            "weighted_reason": note,
            "importance": {},
            "rule": [],
            "drifted_features": [],
            "judged_features": 0,
        },
        "features": {},
        "data_quality": {},
        "prediction_drift": {
            "drift": False,
            "method": "unavailable",
            "score": None,
            "threshold": None,
            "reason": note,
        },
        "estimated_performance": {"method": "unavailable", "status": "unavailable", "reason": note},
        "model_quality": None,
        "violations": [],
        "notes": [note],
    }


def _ground_truth(lake: Lake, ground_truth: pd.DataFrame | str | None) -> pd.DataFrame | None:
    if ground_truth is None or isinstance(ground_truth, pd.DataFrame):
        return ground_truth
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.mlops.etl.catalog import curated_paths

    try:
        paths = curated_paths(lake, ground_truth)
    except ValueError as error:
        raise GroundTruthError(f"ground truth dataset {ground_truth!r}: {error}") from error
    if not paths:
        return pd.DataFrame({"inference_id": pd.Series([], dtype=object)})
    tables = [pq.read_table(p, filesystem=lake.fs) for p in paths]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    frame = table.to_pandas()
    log.info("ground truth %s: %d rows from %d partitions", ground_truth, len(frame), len(paths))
    return frame


__all__ = [
    "BaselineMissingError",
    "GroundTruthError",
    "MonitorError",
    "MonitorResult",
    "analyze_window",
    "dataset_drift_violation",
    "infer_problem_type",
    "prediction_drift",
    "run_monitor",
]
