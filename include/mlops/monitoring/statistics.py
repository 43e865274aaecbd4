"""Distribution statistics the drift monitor computes from a baseline's summary.

The baseline (:mod:`include.mlops.evaluation.baseline`) keeps histograms, not training
rows; everything here reads that summary and the window's sorted values, so its cost grows
with the window, never with the training data. Where scipy has the statistic on two count
vectors (Jensen-Shannon, chi-square) it is scipy's; what is new is reading a numeric
baseline's CDF from its bins and quantiles (:class:`BaselineCdf`) and the Wasserstein
integral over it.

How each statistic is computed, precisely:

- **CDF knots.** The baseline's distribution function ``F`` is known exactly at its
  interior bin edges (``F(e_i)`` = cumulated bin proportions; bins are right-closed), is
  ``0`` just below ``min`` and ``1`` at ``max``, and is known up to ties at each stored
  quantile ``p_q``: ``F(p_q-) <= q <= F(p_q)``. The window's ``F`` is counted exactly at
  the same points (left and right limits in one vectorised pass); at a quantile point
  it is read as ``clip(q, F(p_q-), F(p_q))``, the same reading the baseline's number
  allows, so a discrete feature does not drift by construction of the summary. Between
  knots both functions are taken as linear.
- **Wasserstein** (``wasserstein``): ``W1 = ∫ |F_window - F_baseline| dx``. Over the body
  ``[p01, p99]`` of the baseline it is the exact integral of the piecewise-linear
  difference between the knots. Each outer 1 % tail counts as the difference of the
  mean excess beyond p01/p99: exact for the window (``mean((X - p99)+)``), estimated for
  the baseline from an exponential tail fitted to the p95..p99 (p01..p05) spacing and
  capped by ``max``/``min`` (the extremes themselves depend on the sample size, so
  they are not knots of the integral). Normalised by the baseline's std (ddof=1; the
  inter-quartile range when the std is missing or 0; never less than 0.001, Evidently's
  floor). Measured against ``scipy.stats.wasserstein_distance / std`` on the raw training
  rows (tests and benchmark): within ~0.005 for normal, uniform and integer features,
  ~0.01 for a log-normal one (the tail estimate), and somewhat low for a Poisson
  count. On two weighted samples (every point a knot, step CDFs) the same integral
  (:func:`area_between_cdfs`) equals scipy's exactly (a test pins it).
- **KS** (``ks``): ``D = max |F_window - F_baseline|`` over the knots (the sup is taken
  where the baseline's CDF is known, not between knots, so ``D`` is a lower bound of
  the raw two-sample statistic and the test is conservative). p-value as scipy's
  two-sample asymptotic method: ``kstwo.sf(D, round(n*m/(n+m)))`` with ``m`` the
  baseline's count (:func:`ks_p_value`; on two raw samples it equals
  ``scipy.stats.ks_2samp(method="asymp")``, a test pins it).
- **PSI** (``psi``): ``Σ (a_i - e_i) ln(a_i / e_i)`` over the baseline's bins, the window
  counted in the same right-closed bins as
  :func:`~include.mlops.evaluation.baseline.bin_counts` (:func:`sorted_bin_counts`, the
  same counts by binary search in the sorted window; a test pins the equality);
  proportions are floored at ``psi_epsilon`` (1e-4) so an empty bin costs a finite amount (no
  renormalisation after the floor).
- **Jensen-Shannon** (``jensenshannon``): ``scipy.spatial.distance.jensenshannon``, the
  distance (square root of the divergence), natural logarithm (scipy's default base and
  Evidently's), so it lies in ``[0, sqrt(ln 2)] ≈ [0, 0.833]``. Over the baseline's
  categories plus ``__other__`` (:func:`~include.mlops.monitoring.drift.categorical_drift`):
  window values the baseline does not name go to ``__other__``.
- **Chi-square** (``chi_square``): homogeneity test on the 2×k table of baseline counts
  and window counts (columns empty in both dropped), no continuity correction:
  ``scipy.stats.chi2_contingency(table, correction=False)``. As the training count
  grows it becomes the goodness-of-fit test against the baseline's proportions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from include.mlops.evaluation.baseline import QUANTILES

#: Floor of the Wasserstein normaliser, as Evidently's ``wasserstein`` test.
MIN_SCALE = 0.001
# Knot kinds: what a knot's baseline value means, so the window is read the same way.
_LEFT, _QUANTILE, _RIGHT = 0, 1, 2


# -- on plain vectors ----------------------------------------------------------------
def psi(expected: Any, actual: Any, *, epsilon: float = 1e-4) -> float:
    """Population stability index of two proportion vectors over the same bins.

    Args:
        expected: Baseline proportions (or counts; normalised here).
        actual: Window proportions (or counts).
        epsilon: Floor applied to both proportion vectors before the logarithm.

    Returns:
        ``Σ (a - e) ln(a / e)``; 0 when either side is empty.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(p: Any, q: Any) -> float:
    """Jensen-Shannon distance (natural log) of two distributions over the same support.

    ``scipy.spatial.distance.jensenshannon(p, q)`` (which normalises both to sum to 1);
    0 when either side is empty, and never NaN (rounding can make the divergence of two
    equal distributions a hair below 0).
    """
    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    if a.sum() <= 0 or b.sum() <= 0:
        return 0.0
    distance = float(jensenshannon(a, b))
    return distance if math.isfinite(distance) else 0.0


def chi_square_homogeneity(baseline_counts: Any, current_counts: Any) -> tuple[float, float, int]:
    """Chi-square test that two count vectors come from one distribution.

    ``scipy.stats.chi2_contingency([baseline, current], correction=False)`` on the columns
    that are not empty in both rows (scipy refuses an empty column).

    Returns:
        ``(statistic, p_value, degrees_of_freedom)``; ``(0, 1, 0)`` when fewer than two
        categories hold values or a row is empty.
    """
    table = np.vstack(
        [np.asarray(baseline_counts, dtype=float), np.asarray(current_counts, dtype=float)]
    )
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return 0.0, 1.0, 0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), int(result.dof)


def area_between_cdfs(x: Any, f: Any, g: Any) -> float:
    """``∫ |f - g| dx`` for two functions linear between the knots ``x`` (sorted).

    Repeated knots (a jump) add no width. Exact for piecewise-linear ``f`` and ``g``;
    with each point doubled into its left and right limit it integrates step CDFs
    exactly (scipy's ``wasserstein_distance`` on two samples).
    """
    xs = np.asarray(x, dtype=float)
    d = np.asarray(f, dtype=float) - np.asarray(g, dtype=float)
    if xs.size < 2:
        return 0.0
    width = np.diff(xs)
    d0, d1 = d[:-1], d[1:]
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    crossing = np.divide(
        d0 * d0 + d1 * d1, 2.0 * (a0 + a1), out=np.zeros_like(d0), where=(a0 + a1) > 0
    )
    area = np.where(same_sign, (a0 + a1) / 2.0, crossing) * width
    return float(area.sum())


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sided KS p-value for samples of sizes ``n`` and ``m`` (scipy's ``asymp``)."""
    if n <= 0 or m <= 0:
        return 1.0
    en = n * m / (n + m)
    return float(np.clip(stats.kstwo.sf(statistic, max(1, round(en))), 0.0, 1.0))


# -- a numeric baseline's CDF -------------------------------------------------------
@dataclass(frozen=True)
class BaselineCdf:
    """A baseline numeric feature's CDF knots (see the module docstring).

    Attributes:
        x: Knot positions, sorted.
        kind: Per knot: 0 left limit ``F(x-)``, 1 quantile (``q`` within ``[F(x-), F(x)]``),
            2 value ``F(x)``.
        f: The baseline's CDF value per knot.
        low: The baseline's minimum (``F = 0`` below it).
        high: The baseline's maximum (``F = 1`` from it on).
        count: Non-missing training values.
        body_low: p01 (``low`` when absent): where the body of the distribution starts.
        body_high: p99 (``high`` when absent): where it ends.
        tail_low: Estimated ``E[(body_low - X)+]`` of the baseline.
        tail_high: Estimated ``E[(X - body_high)+]`` of the baseline.
    """

    x: np.ndarray
    kind: np.ndarray
    f: np.ndarray
    low: float
    high: float
    count: int
    body_low: float
    body_high: float
    tail_low: float
    tail_high: float

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> BaselineCdf | None:
        """Knots of a numeric baseline entry; ``None`` when it holds no value."""
        if not summary.get("count") or summary.get("min") is None:
            return None
        low, high = float(summary["min"]), float(summary["max"])
        edges = np.asarray(summary["bin_edges"], dtype=float)[1:-1]
        proportions = np.asarray(summary["bin_proportions"], dtype=float)
        cumulative = np.cumsum(proportions)[:-1]
        knots: list[tuple[float, int, float]] = [(low, _LEFT, 0.0), (high, _RIGHT, 1.0)]
        knots += [(float(e), _RIGHT, float(c)) for e, c in zip(edges, cumulative, strict=True)]
        edge_set = set(edges.tolist())
        for name, level in QUANTILES.items():
            value = (summary.get("quantiles") or {}).get(name)
            # An edge's CDF value is exact; a quantile on it would only blur it.
            if value is not None and float(value) not in edge_set:
                knots.append((float(value), _QUANTILE, float(level)))
        knots.sort(key=lambda k: (k[0], k[1], k[2]))
        x = np.array([k[0] for k in knots])
        kind = np.array([k[1] for k in knots])
        # Interpolated quantiles can undercut an edge's exact value by rounding.
        f = np.maximum.accumulate(np.clip([k[2] for k in knots], 0.0, 1.0))
        quantiles = {
            k: float(v) for k, v in (summary.get("quantiles") or {}).items() if v is not None
        }
        body_low = quantiles.get("p01", low)
        body_high = quantiles.get("p99", high)
        return cls(
            x=x,
            kind=kind,
            f=f,
            low=low,
            high=high,
            count=int(summary["count"]),
            body_low=body_low,
            body_high=body_high,
            tail_low=_tail_mean(quantiles.get("p05", body_low) - body_low, body_low - low),
            tail_high=_tail_mean(body_high - quantiles.get("p95", body_high), high - body_high),
        )

    def window_cdf(self, ordered: np.ndarray) -> np.ndarray:
        """The window's CDF read at the knots the way the baseline's is.

        Args:
            ordered: The window's finite values, sorted ascending.
        """
        n = ordered.size
        if n == 0:
            return np.zeros_like(self.f)
        left = np.searchsorted(ordered, self.x, side="left") / n  # F(x-)
        right = np.searchsorted(ordered, self.x, side="right") / n  # F(x)
        return np.where(
            self.kind == _LEFT,
            left,
            np.where(self.kind == _RIGHT, right, np.clip(self.f, left, right)),
        )

    def wasserstein(self, ordered: np.ndarray, window_f: np.ndarray) -> float:
        """W1 between the window (sorted values) and the baseline: the body ``[p01, p99]``
        from the CDF knots, each outer 1 % tail as the difference of its mean excess."""
        body = (self.x >= self.body_low) & (self.x <= self.body_high)
        area = area_between_cdfs(self.x[body], window_f[body], self.f[body])
        n = max(ordered.size, 1)
        low = int(np.searchsorted(ordered, self.body_low, side="left"))
        high = int(np.searchsorted(ordered, self.body_high, side="right"))
        below = (low * self.body_low - float(ordered[:low].sum())) / n
        above = (float(ordered[high:].sum()) - (ordered.size - high) * self.body_high) / n
        return area + abs(below - self.tail_low) + abs(above - self.tail_high)


def _tail_mean(spacing: float, reach: float) -> float:
    """Mean excess beyond p01/p99 of a 1 % tail, ``E[(X - p99)+]``, estimated.

    An exponential tail fitted to the p95..p99 spacing (``scale = spacing / ln 5``),
    capped by what the extreme allows (``0.01 * (max - p99)``).
    """
    reach = max(reach, 0.0)
    scale = max(spacing, 0.0) / math.log(5.0)
    return 0.01 * min(scale, reach)


def spread(summary: Mapping[str, Any]) -> float:
    """The Wasserstein normaliser: std, else inter-quartile range, floored at 0.001."""
    std = summary.get("std")
    if std is not None and math.isfinite(float(std)) and float(std) > 0:
        return max(float(std), MIN_SCALE)
    quantiles = summary.get("quantiles") or {}
    if quantiles.get("p75") is not None and quantiles.get("p25") is not None:
        iqr = float(quantiles["p75"]) - float(quantiles["p25"])
        if iqr > 0:
            return max(iqr, MIN_SCALE)
    return MIN_SCALE


def sorted_bin_counts(ordered: np.ndarray, edges: list[float]) -> list[int]:
    """:func:`~include.mlops.evaluation.baseline.bin_counts` for sorted values (right-closed
    bins, same counts), by binary search of the edges instead of a pass over the values."""
    at_or_below = np.searchsorted(ordered, np.asarray(edges[1:-1], dtype=float), side="right")
    bounds = np.concatenate([[0], at_or_below, [ordered.size]])
    return [int(c) for c in np.diff(bounds)]


def _sorted_quantiles(ordered: np.ndarray, levels: list[float]) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear method) of sorted values, without a pass."""
    position = np.asarray(levels) * (ordered.size - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, ordered.size - 1)
    return np.asarray(ordered[low] + (position - low) * (ordered[high] - ordered[low]))


def live_summary(data: np.ndarray) -> dict[str, Any]:
    """Count, mean, std (ddof=1), min, max and the baseline's quantiles of sorted values
    (what the report shows beside the baseline's summary)."""
    if data.size == 0:
        return {"count": 0}
    q = _sorted_quantiles(data, list(QUANTILES.values()))
    return {
        "count": int(data.size),
        "mean": float(data.mean()),
        "std": float(data.std(ddof=1)) if data.size > 1 else 0.0,
        "min": float(data[0]),
        "max": float(data[-1]),
        "quantiles": {k: float(v) for k, v in zip(QUANTILES, q, strict=True)},
    }
