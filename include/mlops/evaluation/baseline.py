"""The drift baseline: what the training data looked like, for the monitor to compare with.

Computed on a model version's training split and stored with it, so the monitor always
compares live traffic with the data of the version actually serving.

Format (``BASELINE_FORMAT`` = 1), JSON-able::

    {
      "format": 1,
      "rows": 8000,                       # rows of the training split
      "bins": 10,                         # requested quantile bins per numeric feature
      "top_categories": 20,
      "features": {
        "<numeric feature>": {
          "kind": "numeric",              # "datetime" too: values are days since 1970-01-01
          "count": 7990,                  # non-missing values
          "missing": 10, "missing_share": 0.00125,
          "mean": ..., "std": ..., "min": ..., "max": ...,   # null when no value
          "quantiles": {"p01": ..., "p05": ..., "p25": ..., "p50": ..., "p75": ..., "p95": ..., "p99": ...},
          "bin_edges": [-Infinity, e1, ..., ek, Infinity],   # strictly increasing
          "bin_counts": [c0, ..., ck],                       # len(bin_edges) - 1
          "bin_proportions": [p0, ..., pk]                   # over non-missing values
        },
        "<categorical feature>": {
          "kind": "categorical",
          "count": ..., "missing": ..., "missing_share": ...,
          "distinct": 7,                  # distinct values in training
          "categories": {"card": 0.41, ..., "__other__": 0.02}, # proportions of non-missing
          "category_counts": {"card": 3276, ..., "__other__": 160}
        }
      },
      "target": {...} | null,             # same shape, for the target column
      "prediction": {...} | null,         # same shape, for the model's predictions
      "calibration": {...}                # binary classifiers trained since CBPE: the
                                          # isotonic map of the positive-class probability
                                          # fitted on validation (monitoring.cbpe); absent
                                          # in older baselines
    }

Bins (the contract the monitor's PSI relies on):

- interior edges are the 10%, 20%, ..., 90% quantiles of the training values,
  deduplicated (a feature with many equal values gets fewer bins), and the outer edges
  are -inf and +inf, so every live value falls in some bin;
- bins are closed on the right: bin ``i`` holds ``edges[i] < x <= edges[i+1]``; use
  :func:`bin_counts` to count live values the same way;
- missing values are in no bin: they are counted in ``missing``/``missing_share``.

Categories: the ``top_categories`` most frequent values by name (as text, ``"3"`` for
3 or 3.0, ``"True"`` for booleans), everything else as ``"__other__"``, including, live,
any category training never saw. JSON writes infinities as ``-Infinity``/``Infinity``,
which Python's ``json`` reads back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.features.pipeline import infer_column_roles

BASELINE_FORMAT = 1
OTHER_CATEGORY = "__other__"
DEFAULT_BINS = 10
DEFAULT_TOP_CATEGORIES = 20
QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def compute_drift_baseline(
    train_df: pd.DataFrame,
    *,
    features: Iterable[str],
    target: str | None = None,
    predictions: Sequence[Any] | pd.Series | np.ndarray | None = None,
    bins: int = DEFAULT_BINS,
    top_categories: int = DEFAULT_TOP_CATEGORIES,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Per-feature statistics and histogram bins of the training data.

    Args:
        train_df: The training split.
        features: The model's input columns (see ``features.pipeline.input_columns``).
        target: Target column, summarised under ``"target"`` when given.
        predictions: The model's predictions on ``train_df`` (probabilities, labels or
            values), summarised under ``"prediction"`` when given.
        bins: Quantile bins per numeric feature (before deduplication).
        top_categories: Categories kept by name; the rest become ``"__other__"``.
        calibration: A binary classifier's calibration map fitted on the validation
            split (:func:`include.mlops.monitoring.cbpe.fit_calibration`), stored as
            ``"calibration"`` for the monitor's label-free performance estimate.

    Returns:
        The baseline (see the module docstring for the format).

    Raises:
        ValueError: A feature or the target is not a column of ``train_df``.
    """
    names = list(features)
    missing = [n for n in [*names, *([target] if target else [])] if n not in train_df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the training data")
    roles = infer_column_roles(train_df[names]) if names else None
    summaries = {}
    for name in names:
        kind = "numeric"
        if roles is not None and name in roles.dates:
            kind = "datetime"
        elif not _is_numeric(train_df[name]):
            kind = "categorical"
        summaries[name] = summarise_column(
            train_df[name], kind=kind, bins=bins, top_categories=top_categories
        )
    target_summary = None
    if target is not None:
        column = train_df[target]
        target_summary = summarise_column(
            column,
            kind="numeric" if _is_numeric(column) and column.nunique() > 20 else "categorical",
            bins=bins,
            top_categories=top_categories,
        )
    prediction_summary = None
    if predictions is not None:
        values = pd.Series(np.asarray(predictions))
        prediction_summary = summarise_column(
            values,
            kind="numeric" if _is_numeric(values) else "categorical",
            bins=bins,
            top_categories=top_categories,
        )
    baseline: dict[str, Any] = {
        "format": BASELINE_FORMAT,
        "rows": len(train_df),
        "bins": bins,
        "top_categories": top_categories,
        "features": summaries,
        "target": target_summary,
        "prediction": prediction_summary,
    }
    if calibration is not None:
        baseline["calibration"] = dict(calibration)
    return baseline


def summarise_column(
    column: pd.Series,
    *,
    kind: str,
    bins: int = DEFAULT_BINS,
    top_categories: int = DEFAULT_TOP_CATEGORIES,
) -> dict[str, Any]:
    """One column's baseline entry (``kind``: numeric, datetime or categorical)."""
    n = len(column)
    if kind == "datetime":
        when = pd.to_datetime(column, errors="coerce", utc=True)
        column = (when - _EPOCH).dt.total_seconds() / 86400.0
    n_missing = int(column.isna().sum())
    base: dict[str, Any] = {
        "kind": kind,
        "count": n - n_missing,
        "missing": n_missing,
        "missing_share": n_missing / n if n else 0.0,
    }
    if kind == "categorical":
        return {**base, **_categorical(column.dropna(), top_categories)}
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
    return {**base, **_numeric(values, bins)}


def bin_edges(values: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> list[float]:
    """Quantile bin edges with -inf/+inf outer edges, deduplicated (see module docstring)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return [-math.inf, math.inf]
    interior = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [-math.inf, *(float(e) for e in np.unique(interior)), math.inf]


def bin_counts(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[int]:
    """Count values per right-closed bin ``(edges[i], edges[i+1]]``; NaN is skipped.

    The monitor counts live values with this same function, so training and live
    histograms agree on which bin a value on an edge belongs to.
    """
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    interior = np.asarray(edges[1:-1], dtype=float)
    index = np.searchsorted(interior, data, side="left")
    return [int(c) for c in np.bincount(index, minlength=len(edges) - 1)]


def category_counts(values: Iterable[Any], known: Iterable[str]) -> dict[str, int]:
    """Count values per baseline category; unknown ones go to ``"__other__"``.

    Args:
        values: Live values (missing ones are skipped).
        known: The baseline's category names (``"__other__"`` may be among them).

    Returns:
        A count for every known category and ``"__other__"``.
    """
    names = [k for k in known if k != OTHER_CATEGORY]
    counts = dict.fromkeys([*names, OTHER_CATEGORY], 0)
    for value in pd.Series(list(values)).dropna():
        key = category_name(value)
        counts[key if key in counts else OTHER_CATEGORY] += 1
    return counts


def category_name(value: Any) -> str:
    """A category as text, the same for ``3``, ``3.0`` and ``"3"``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _numeric(values: np.ndarray, bins: int) -> dict[str, Any]:
    edges = bin_edges(values, bins)
    counts = bin_counts(values, edges)
    total = sum(counts)
    if values.size == 0:
        stats: dict[str, Any] = dict.fromkeys(("mean", "std", "min", "max"))
        quantiles: dict[str, Any] = dict.fromkeys(QUANTILES)
    else:
        stats = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
        }
        quantiles = {k: float(np.quantile(values, q)) for k, q in QUANTILES.items()}
    return {
        **stats,
        "quantiles": quantiles,
        "bin_edges": edges,
        "bin_counts": counts,
        "bin_proportions": [c / total if total else 0.0 for c in counts],
    }


def _categorical(values: pd.Series, top: int) -> dict[str, Any]:
    names = values.map(category_name)
    frequencies = names.value_counts()
    # Ties broken by name, so the same data always yields the same top list.
    ordered = sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ordered[:top])
    other = int(sum(count for _, count in ordered[top:]))
    counts = {str(k): int(v) for k, v in kept.items()}
    if other:
        counts[OTHER_CATEGORY] = other
    total = len(names)
    return {
        "distinct": len(frequencies),
        "categories": {k: v / total for k, v in counts.items()},
        "category_counts": counts,
    }


def _is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))
