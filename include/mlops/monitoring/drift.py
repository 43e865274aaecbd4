"""Per-feature drift of a capture window against a version's stored drift baseline.

The baseline (:mod:`include.mlops.evaluation.baseline`) keeps histograms, not training
rows: per numeric feature the decile bin edges with their counts, seven quantiles, min,
max, mean and std; per categorical feature the category counts. Every statistic here is
computed from that summary and one pass over the window's values, so the cost grows with
the window, never with the training data or the monitoring history.

Which test decides (``n`` = the window's non-missing values of the feature; the
defaults are those of Evidently's DataDriftPreset for a large reference, so both tools
read the same numbers the same way):

============ ============================ ======================================= =========
kind         ``n >= small_sample`` (1000) ``n < small_sample``                     drift if
============ ============================ ======================================= =========
numeric      normalised Wasserstein       Kolmogorov-Smirnov                      W ≥ 0.1 /
                                                                                  p < 0.05
categorical  Jensen-Shannon distance      chi-square (baseline vs window counts)  JS ≥ 0.1 /
                                                                                  p < 0.05
============ ============================ ======================================= =========

PSI on the baseline's bins is reported for every numeric feature, and decides instead
of Wasserstein when ``numeric_method="psi"``. The dataset drifts by either of two rules
(:func:`dataset_drift` reports both):

- **plain share**: at least ``drift_share`` (half) of the features with data drift;
- **importance-weighted share**: each feature weighs its share of the serving version's
  attribution importance (mean |attribution| per input column, the attribution baseline
  stored with the version, normalised over the judged features), and the drifted
  features' total weight reaches ``weighted_drift_share`` (0.3). One drifting feature that
  carries most of the model's decisions is a dataset drift even when the plain share
  stays low; many drifting features the model ignores are not one by this rule. Without
  an attribution baseline the weighted rule is reported as unavailable, with the reason.

The statistics themselves (how the baseline's CDF is read, the Wasserstein integral, KS,
PSI, Jensen-Shannon, chi-square) are in :mod:`include.mlops.monitoring.statistics`.

Cost: per numeric feature one sort of the window's values (numpy's SIMD sort, ~10 ms per
million) and binary searches of a few dozen knots into it; per categorical feature one
``value_counts``. Missing values are left out of every distribution (their share is a data-quality check,
:mod:`include.mlops.monitoring.quality`); infinities are counted as missing.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.evaluation.baseline import (
    OTHER_CATEGORY,
    category_name,
)
from include.mlops.jsonable import jsonable
from include.mlops.monitoring.statistics import (
    BaselineCdf,
    chi_square_homogeneity,
    js_distance,
    ks_p_value,
    live_summary,
    psi,
    sorted_bin_counts,
    spread,
)

NUMERIC_METHODS = ("wasserstein", "psi")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class DriftThresholds:
    """Every knob of the monitor's decisions (defaults follow SageMaker/Evidently).

    Attributes:
        distance: Large samples: a feature drifts when its normalised Wasserstein
            (numeric) or Jensen-Shannon distance (categorical) is at least this.
        p_value: Small samples: a feature drifts when the KS / chi-square p-value is
            below this.
        small_sample: A feature with fewer non-missing window values than this is
            judged by the statistical test instead of the distance.
        drift_share: The dataset drifts when at least this share of its features do.
        numeric_method: ``wasserstein`` (default) or ``psi`` for large numeric samples.
        psi: PSI at or above which a feature drifts when ``numeric_method="psi"``.
        psi_epsilon: Floor of bin proportions in PSI.
        prediction_distance: Like ``distance``, for the prediction distribution.
        completeness_tolerance: A feature violates completeness when its window
            completeness (share of non-missing values) is below the baseline's by more
            than this (absolute).
        type_mismatch_tolerance: Share of a numeric feature's non-missing window values
            that may fail to parse as numbers before it is a type violation.
        unseen_category_tolerance: Share of window values in categories training never
            saw that is tolerated before a violation.
        quality_tolerance: Model quality degrades when a window metric is worse than the
            version's test metric by more than this share of it (0.1 = 10 %).
        min_labeled_rows: Fewer ground-truth rows than this: metrics are reported but
            judge nothing.
        attribution_ndcg: Feature-attribution drift: the window's ranking of columns by
            mean |attribution| scores an NDCG below this against the baseline's (Clarify's 0.9).
        bias_tolerance: Bias drift: a post-training bias metric on the labelled window moved
            from the version's training-time value by more than this (absolute).
        weighted_drift_share: The dataset drifts when the drifted features hold at least
            this share of the version's attribution importance.
        estimated_performance_tolerance: A classifier's performance estimated without
            labels (CBPE) degrades when a metric's estimate is below the version's test
            value by more than this (absolute; 0.05 ROC-AUC is past the estimate's own
            error on a few hundred rows, and a drop a person would act on).
    """

    distance: float = 0.1
    p_value: float = 0.05
    small_sample: int = 1000
    drift_share: float = 0.5
    numeric_method: str = "wasserstein"
    psi: float = 0.2
    psi_epsilon: float = 1e-4
    prediction_distance: float = 0.1
    completeness_tolerance: float = 0.02
    type_mismatch_tolerance: float = 0.0
    unseen_category_tolerance: float = 0.0
    quality_tolerance: float = 0.1
    min_labeled_rows: int = 30
    attribution_ndcg: float = 0.9
    bias_tolerance: float = 0.1
    weighted_drift_share: float = 0.3
    estimated_performance_tolerance: float = 0.05

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "p_value",
            "drift_share",
            "completeness_tolerance",
            "type_mismatch_tolerance",
            "unseen_category_tolerance",
            "attribution_ndcg",
            "weighted_drift_share",
            "estimated_performance_tolerance",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}={value} (must be within 0..1)")
        for name in (
            "distance",
            "prediction_distance",
            "psi",
            "quality_tolerance",
            "bias_tolerance",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} (must be >= 0)")
        if not 0 < self.psi_epsilon < 1:
            problems.append(f"psi_epsilon={self.psi_epsilon} (must be within 0..1, exclusive)")
        for name in ("small_sample", "min_labeled_rows"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} (must be >= 0)")
        if self.numeric_method not in NUMERIC_METHODS:
            problems.append(f"numeric_method={self.numeric_method!r} (one of {NUMERIC_METHODS})")
        if problems:
            raise ValueError("invalid drift thresholds: " + "; ".join(problems))

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> DriftThresholds:
        """Defaults overridden by the given params (``None`` values keep the default).

        Raises:
            ValueError: An unknown name (the message lists the known ones) or a value
                out of range.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        given = {k: v for k, v in (params or {}).items() if v is not None}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"unknown drift threshold(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in given.items():
            default: Any = known[name].default
            values[name] = type(default)(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as plain values (for the report)."""
        return dataclasses.asdict(self)


@dataclass
class FeatureDrift:
    """One feature's drift verdict and the numbers behind it.

    Attributes:
        feature: Feature name.
        kind: ``numeric``, ``datetime`` or ``categorical``.
        method: The statistic that decided: ``wasserstein``, ``psi``, ``ks``,
            ``jensenshannon``, ``chi_square``, or ``no_data`` (nothing to compare).
        score: Its value (a distance, or a p-value for ``ks``/``chi_square``).
        threshold: The threshold it was judged against.
        drift: Whether the feature drifted.
        rows: Non-missing window values compared.
        statistics: Every statistic computed (distances, p-values, live summary).
        histogram: ``{"labels", "baseline", "current"}`` proportions on the baseline's
            bins or categories, for the plots.
    """

    feature: str
    kind: str
    method: str
    score: float | None
    threshold: float
    drift: bool
    rows: int
    statistics: dict[str, Any] = field(default_factory=dict)
    histogram: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def score_is_p_value(self) -> bool:
        """Whether a small score means drift (statistical tests)."""
        return self.method in ("ks", "chi_square")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN as ``None``)."""
        return jsonable(
            {
                "drift": self.drift,
                "method": self.method,
                "score": self.score,
                "threshold": self.threshold,
                "kind": self.kind,
                "rows": self.rows,
                "statistics": self.statistics,
                "histogram": self.histogram,
            }
        )


# -- a numeric feature against its baseline ---------------------------------------------
def numeric_drift(
    feature: str,
    values: np.ndarray,
    summary: Mapping[str, Any],
    thresholds: DriftThresholds,
    *,
    kind: str = "numeric",
    distance_threshold: float | None = None,
) -> FeatureDrift:
    """Drift of a numeric (or datetime, as days) feature against its baseline entry.

    Args:
        feature: Feature name.
        values: The window's values as floats (NaN/inf = missing).
        summary: The baseline's entry for the feature.
        thresholds: Decision thresholds.
        kind: ``numeric`` or ``datetime`` (reported only).
        distance_threshold: Overrides ``thresholds.distance`` (the prediction uses
            ``prediction_distance``).

    Returns:
        The verdict, with PSI, Wasserstein (raw and normalised), KS when the sample is
        small, a live summary and the histogram on the baseline's bins.
    """
    limit = thresholds.distance if distance_threshold is None else distance_threshold
    data = np.asarray(values, dtype=float)
    # One sort (SIMD, ~10 ms per million) and every count below is a binary search of
    # a few knots into it, instead of a pass over the values per statistic.
    data = np.sort(data[np.isfinite(data)])
    n = int(data.size)
    cdf = BaselineCdf.from_summary(summary)
    edges = list(summary.get("bin_edges") or [-math.inf, math.inf])
    base_props = [float(p) for p in summary.get("bin_proportions") or [0.0] * (len(edges) - 1)]
    counts = sorted_bin_counts(data, edges)
    live_props = [c / n if n else 0.0 for c in counts]
    histogram: dict[str, list[Any]] = {
        "labels": _bin_labels(edges),
        "baseline": base_props,
        "current": live_props,
    }
    statistics: dict[str, Any] = {"live": live_summary(data), "bin_counts": counts}
    if n == 0 or cdf is None:
        reason = "no values in the window" if n == 0 else "the baseline holds no values"
        statistics["reason"] = reason
        return FeatureDrift(feature, kind, "no_data", None, limit, False, n, statistics, histogram)

    window_f = cdf.window_cdf(data)
    w1 = cdf.wasserstein(data, window_f)
    scale = spread(summary)
    statistics.update(
        psi=psi(base_props, counts, epsilon=thresholds.psi_epsilon),
        wasserstein=w1,
        wasserstein_norm=w1 / scale,
        scale=scale,
    )
    if n < thresholds.small_sample:
        d = float(np.max(np.abs(window_f - cdf.f)))
        p = ks_p_value(d, n, cdf.count)
        statistics.update(ks_statistic=d, ks_p_value=p)
        return FeatureDrift(
            feature,
            kind,
            "ks",
            p,
            thresholds.p_value,
            p < thresholds.p_value,
            n,
            statistics,
            histogram,
        )
    if thresholds.numeric_method == "psi" and distance_threshold is None:
        score = statistics["psi"]
        return FeatureDrift(
            feature,
            kind,
            "psi",
            score,
            thresholds.psi,
            score >= thresholds.psi,
            n,
            statistics,
            histogram,
        )
    score = statistics["wasserstein_norm"]
    return FeatureDrift(
        feature, kind, "wasserstein", score, limit, score >= limit, n, statistics, histogram
    )


# -- a categorical feature against its baseline -----------------------------------------
def category_frequencies(values: pd.Series) -> dict[str, int]:
    """Counts per category name (``category_name`` form) of the non-missing values.

    Counts distinct raw values first (vectorised), then names only those, so a million
    rows cost one ``value_counts``.
    """
    raw = values.dropna().value_counts(sort=False)
    counts: dict[str, int] = {}
    for value, count in raw.items():
        key = category_name(value)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def categorical_drift(
    feature: str,
    frequencies: Mapping[str, int],
    summary: Mapping[str, Any],
    thresholds: DriftThresholds,
    *,
    distance_threshold: float | None = None,
) -> FeatureDrift:
    """Drift of a categorical feature against its baseline entry.

    Args:
        feature: Feature name.
        frequencies: Window counts per category name (:func:`category_frequencies`).
        summary: The baseline's entry for the feature.
        thresholds: Decision thresholds.
        distance_threshold: Overrides ``thresholds.distance``.

    Returns:
        The verdict, with JS distance, PSI, chi-square when the sample is small, the
        categories the baseline does not name, and the histogram over its categories.
    """
    limit = thresholds.distance if distance_threshold is None else distance_threshold
    base_counts = {str(k): int(v) for k, v in (summary.get("category_counts") or {}).items()}
    names = [k for k in base_counts if k != OTHER_CATEGORY] + [OTHER_CATEGORY]
    live = dict.fromkeys(names, 0)
    unnamed: dict[str, int] = {}
    for key, count in frequencies.items():
        if key in live and key != OTHER_CATEGORY:
            live[key] += count
        else:
            live[OTHER_CATEGORY] += count
            unnamed[key] = unnamed.get(key, 0) + count
    n = int(sum(live.values()))
    base_vector = np.array([base_counts.get(k, 0) for k in names], dtype=float)
    live_vector = np.array([live[k] for k in names], dtype=float)
    base_total = float(base_vector.sum())
    histogram: dict[str, list[Any]] = {
        "labels": names,
        "baseline": (base_vector / base_total).tolist() if base_total else [0.0] * len(names),
        "current": (live_vector / n).tolist() if n else [0.0] * len(names),
    }
    top_unnamed = sorted(unnamed.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    statistics: dict[str, Any] = {
        "live": {"count": n, "distinct": len(frequencies)},
        "category_counts": live,
        "unnamed_categories": dict(top_unnamed),
        "unnamed_share": sum(unnamed.values()) / n if n else 0.0,
    }
    if n == 0 or base_total == 0:
        statistics["reason"] = "no values in the window" if n == 0 else "empty baseline"
        return FeatureDrift(
            feature, "categorical", "no_data", None, limit, False, n, statistics, histogram
        )
    statistics.update(
        jensenshannon=js_distance(base_vector, live_vector),
        psi=psi(base_vector, live_vector, epsilon=thresholds.psi_epsilon),
    )
    if n < thresholds.small_sample:
        chi2, p, dof = chi_square_homogeneity(base_vector, live_vector)
        statistics.update(chi_square=chi2, chi_square_p_value=p, chi_square_dof=dof)
        return FeatureDrift(
            feature,
            "categorical",
            "chi_square",
            p,
            thresholds.p_value,
            p < thresholds.p_value,
            n,
            statistics,
            histogram,
        )
    score = statistics["jensenshannon"]
    return FeatureDrift(
        feature,
        "categorical",
        "jensenshannon",
        score,
        limit,
        score >= limit,
        n,
        statistics,
        histogram,
    )


def feature_drift(
    feature: str,
    values: pd.Series | np.ndarray,
    summary: Mapping[str, Any],
    thresholds: DriftThresholds,
    *,
    distance_threshold: float | None = None,
) -> FeatureDrift:
    """Drift of one feature, dispatched on the baseline's ``kind``.

    Args:
        feature: Feature name.
        values: The window's raw values (numeric features are parsed here; values that
            do not parse count as missing).
        summary: The baseline's entry.
        thresholds: Decision thresholds.
        distance_threshold: Overrides ``thresholds.distance``.
    """
    kind = summary.get("kind", "numeric")
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if kind == "categorical":
        return categorical_drift(
            feature,
            category_frequencies(series),
            summary,
            thresholds,
            distance_threshold=distance_threshold,
        )
    return numeric_drift(
        feature,
        as_float(series, kind),
        summary,
        thresholds,
        kind=kind,
        distance_threshold=distance_threshold,
    )


def as_float(series: pd.Series, kind: str = "numeric") -> np.ndarray:
    """A column as float64 (datetimes as days since 1970-01-01, as the baseline stores
    them); values that do not parse become NaN."""
    if kind == "datetime":
        when = pd.to_datetime(series, errors="coerce", utc=True)
        return np.asarray((when - _EPOCH).dt.total_seconds() / 86400.0, dtype=float)
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.asarray(series.astype("float64"), dtype=float)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan), dtype=float)
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float)


def dataset_drift(
    features: Mapping[str, FeatureDrift],
    thresholds: DriftThresholds,
    importance: Mapping[str, float] | None = None,
    *,
    importance_reason: str | None = None,
) -> dict[str, Any]:
    """Whether the dataset drifts, by the plain share or the importance-weighted share.

    Features without data (``no_data``) are not judged and count in neither number.

    Args:
        features: Every feature's verdict.
        thresholds: ``drift_share`` and ``weighted_drift_share``.
        importance: The serving version's mean |attribution| per input column (its
            attribution baseline); ``None``: the weighted rule is unavailable.
        importance_reason: Why ``importance`` is missing (reported).

    Returns:
        ``{"drift", "rule", "share", "threshold", "plain_drift", "weighted_share",
        "weighted_threshold", "weighted_drift", "importance", "drifted_features",
        "judged_features"}``: ``rule`` lists the rules that fired (``share``,
        ``weighted_share``); ``importance`` is each judged feature's normalised weight;
        ``weighted_share`` is ``None`` (with ``weighted_reason``) when unavailable.
    """
    judged = [f for f in features.values() if f.method != "no_data"]
    drifted = sorted(f.feature for f in judged if f.drift)
    share = len(drifted) / len(judged) if judged else 0.0
    plain = bool(judged) and share >= thresholds.drift_share
    weights = importance_weights(importance, [f.feature for f in judged])
    weighted_share: float | None = None
    reason = None
    if weights is None:
        reason = importance_reason or (
            "the version has no attribution baseline"
            if importance is None
            else "no judged feature carries attribution importance"
        )
    else:
        weighted_share = float(sum(weights[name] for name in drifted))
    weighted = weighted_share is not None and weighted_share >= thresholds.weighted_drift_share
    summary: dict[str, Any] = {
        "drift": plain or weighted,
        "rule": [r for r, fired in (("share", plain), ("weighted_share", weighted)) if fired],
        "share": share,
        "threshold": thresholds.drift_share,
        "plain_drift": plain,
        "weighted_share": weighted_share,
        "weighted_threshold": thresholds.weighted_drift_share,
        "weighted_drift": weighted,
        "importance": weights or {},
        "drifted_features": drifted,
        "judged_features": len(judged),
    }
    if reason is not None:
        summary["weighted_reason"] = reason
    return summary


def importance_weights(
    importance: Mapping[str, float] | None, judged: list[str]
) -> dict[str, float] | None:
    """Each judged feature's share of the importance the judged features carry together.

    Features the attribution baseline does not name weigh 0; ``None`` when there is no
    importance or it sums to 0 over the judged features.
    """
    if not importance:
        return None
    raw = {}
    for name in judged:
        value = importance.get(name)
        number = float(value) if isinstance(value, int | float) else 0.0
        raw[name] = abs(number) if math.isfinite(number) else 0.0
    total = sum(raw.values())
    if total <= 0:
        return None
    return {name: value / total for name, value in raw.items()}


# -- helpers -----------------------------------------------------------------------------
def _bin_labels(edges: list[float]) -> list[str]:
    labels = []
    for low, high in itertools.pairwise(edges):
        if math.isinf(low) and math.isinf(high):
            labels.append("all")
        elif math.isinf(low):
            labels.append(f"≤ {high:.4g}")
        elif math.isinf(high):
            labels.append(f"> {low:.4g}")
        else:
            labels.append(f"({low:.4g}, {high:.4g}]")
    return labels
