"""Data-quality checks of a capture window against the baseline's schema and statistics.

The violation kinds are SageMaker Model Monitor's (``constraint_check_type``), so people
who know its ``constraint_violations.json`` read ours the same way:

- ``missing_column_check``: a feature of the baseline is not in the window at all;
- ``extra_column_check``: the window carries a feature the baseline does not know;
- ``data_type_check``: a numeric (or date) feature holds values that do not parse as
  numbers (dates), beyond ``type_mismatch_tolerance`` of its non-missing values;
- ``completeness_check``: a feature's share of non-missing values fell below the
  baseline's by more than ``completeness_tolerance``;
- ``categorical_values_check``: values in categories training never saw, beyond
  ``unseen_category_tolerance``. Judged only when the baseline lists every training
  category (it kept no ``__other__`` bucket); otherwise an unnamed value may be a rare
  training category, and it only counts toward drift (``__other__``);
- ``baseline_drift_check``, ``dataset_drift_check``, ``prediction_drift_check``,
  ``model_quality_check``: raised by the monitor from the drift and model-quality verdicts;
- ``estimated_performance_check``: the performance estimated without labels (CBPE,
  :mod:`include.mlops.monitoring.cbpe`) dropped below the version's test value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.evaluation.baseline import OTHER_CATEGORY
from include.mlops.monitoring.drift import DriftThresholds, as_float, category_frequencies

MISSING_COLUMN = "missing_column_check"
EXTRA_COLUMN = "extra_column_check"
DATA_TYPE = "data_type_check"
COMPLETENESS = "completeness_check"
CATEGORICAL_VALUES = "categorical_values_check"
BASELINE_DRIFT = "baseline_drift_check"
DATASET_DRIFT = "dataset_drift_check"
PREDICTION_DRIFT = "prediction_drift_check"
MODEL_QUALITY = "model_quality_check"
ESTIMATED_PERFORMANCE = "estimated_performance_check"


@dataclass(frozen=True)
class Violation:
    """One broken constraint.

    Attributes:
        check: The kind (``constraint_check_type``), e.g. ``completeness_check``.
        feature: The feature concerned (``None`` for dataset-level checks).
        description: What failed, with the numbers.
        observed: The window's value.
        expected: The baseline's value or the limit it was held to.
    """

    check: str
    feature: str | None
    description: str
    observed: float | None = None
    expected: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"feature_name", "constraint_check_type", "description", ...}``."""
        return {
            "feature_name": self.feature,
            "constraint_check_type": self.check,
            "description": self.description,
            "observed": self.observed,
            "expected": self.expected,
        }


@dataclass
class ColumnQuality:
    """One feature's data-quality numbers and what the drift step needs from the pass.

    Attributes:
        statistics: JSON-able numbers (rows, missing, completeness, type mismatches,
            unseen categories).
        violations: Constraints this column breaks.
        numbers: Numeric/datetime features: the values as floats (NaN = missing or
            unparseable), reused by the drift computation.
        frequencies: Categorical features: counts per category name.
    """

    statistics: dict[str, Any]
    violations: list[Violation]
    numbers: np.ndarray | None = None
    frequencies: dict[str, int] | None = None


def schema_violations(
    baseline_features: Iterable[str], window_features: Iterable[str]
) -> list[Violation]:
    """Missing and extra columns of the window against the baseline.

    Args:
        baseline_features: The features the model version was trained on.
        window_features: The features present in the captured window.
    """
    expected = list(baseline_features)
    present = list(window_features)
    violations = [
        Violation(
            MISSING_COLUMN,
            name,
            f"feature {name!r} of the baseline is not in the captured data "
            f"(captured features: {len(present)})",
        )
        for name in expected
        if name not in present
    ]
    violations += [
        Violation(
            EXTRA_COLUMN,
            name,
            f"feature {name!r} is in the captured data but not in the baseline "
            f"({len(expected)} baseline features)",
        )
        for name in present
        if name not in expected
    ]
    return violations


def column_quality(
    feature: str, series: pd.Series, summary: Mapping[str, Any], thresholds: DriftThresholds
) -> ColumnQuality:
    """Completeness, type and category checks of one feature (one pass over its values).

    Args:
        feature: Feature name.
        series: The window's raw values.
        summary: The baseline's entry for the feature.
        thresholds: Tolerances.

    Returns:
        The statistics, the violations, and the parsed values for the drift step.
    """
    kind = summary.get("kind", "numeric")
    rows = len(series)
    missing = int(series.isna().sum())
    present = rows - missing
    completeness = present / rows if rows else 1.0
    baseline_completeness = 1.0 - float(summary.get("missing_share") or 0.0)
    stats: dict[str, Any] = {
        "kind": kind,
        "rows": rows,
        "missing": missing,
        "completeness": completeness,
        "baseline_completeness": baseline_completeness,
        "inferred_type": _inferred_type(series),
    }
    violations: list[Violation] = []
    if rows and completeness < baseline_completeness - thresholds.completeness_tolerance:
        violations.append(
            Violation(
                COMPLETENESS,
                feature,
                f"feature {feature!r} is {completeness:.2%} complete ({missing} of {rows} "
                f"values missing); the baseline was {baseline_completeness:.2%} complete "
                f"(tolerance {thresholds.completeness_tolerance:.2%})",
                observed=completeness,
                expected=baseline_completeness,
            )
        )
    if kind == "categorical":
        frequencies = category_frequencies(series)
        complete_list = OTHER_CATEGORY not in (summary.get("category_counts") or {})
        known = set(summary.get("category_counts") or {})
        unseen = {k: v for k, v in frequencies.items() if k not in known}
        unseen_rows = int(sum(unseen.values()))
        share = unseen_rows / present if present else 0.0
        top = sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        stats.update(
            baseline_lists_every_category=complete_list,
            unseen_categories=dict(top),
            unseen_share=share,
        )
        if complete_list and unseen and share > thresholds.unseen_category_tolerance:
            shown = ", ".join(f"{k!r} ({v})" for k, v in top)
            violations.append(
                Violation(
                    CATEGORICAL_VALUES,
                    feature,
                    f"feature {feature!r} has {len(unseen)} categor"
                    f"{'y' if len(unseen) == 1 else 'ies'} training never saw in "
                    f"{unseen_rows} of {present} values ({share:.2%}; tolerance "
                    f"{thresholds.unseen_category_tolerance:.2%}): {shown}",
                    observed=share,
                    expected=thresholds.unseen_category_tolerance,
                )
            )
        return ColumnQuality(stats, violations, frequencies=frequencies)

    numbers = as_float(series, kind)
    parsed = np.isfinite(numbers)
    mismatches = int(present - parsed.sum()) if present else 0
    # Infinities parse but are no usable value: count them apart from type mismatches.
    infinite = int(np.isinf(numbers).sum())
    mismatches = max(mismatches - infinite, 0)
    share = mismatches / present if present else 0.0
    stats.update(type_mismatches=mismatches, type_mismatch_share=share, infinite=infinite)
    if mismatches and share > thresholds.type_mismatch_tolerance:
        examples = _unparsed_examples(series, numbers)
        violations.append(
            Violation(
                DATA_TYPE,
                feature,
                f"feature {feature!r} should be {kind} but {mismatches} of {present} values "
                f"({share:.2%}) do not parse as {'dates' if kind == 'datetime' else 'numbers'} "
                f"(tolerance {thresholds.type_mismatch_tolerance:.2%}); e.g. {examples}",
                observed=share,
                expected=thresholds.type_mismatch_tolerance,
            )
        )
    return ColumnQuality(stats, violations, numbers=numbers)


def _inferred_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integral"
    if pd.api.types.is_float_dtype(dtype):
        return "fractional"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _unparsed_examples(series: pd.Series, numbers: np.ndarray) -> list[str]:
    mask = series.notna().to_numpy() & np.isnan(numbers)
    return [str(v) for v in pd.unique(series[mask])[:3]]
