"""Our drift statistics against scipy's on the same inputs (agreement to 1e-6), and the
monitor's baseline-CDF reading against the raw data it summarises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from include.mlops.evaluation.baseline import bin_counts, summarise_column
from include.mlops.monitoring.statistics import (
    BaselineCdf,
    _sorted_quantiles,
    area_between_cdfs,
    chi_square_homogeneity,
    js_distance,
    ks_p_value,
    psi,
    sorted_bin_counts,
)

TOL = 1e-6


def step_cdfs(
    u: np.ndarray, v: np.ndarray, uw: np.ndarray | None = None, vw: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples' right-continuous (weighted) CDFs on their pooled support."""
    support = np.unique(np.concatenate([u, v]))

    def cdf(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        order = np.argsort(values, kind="mergesort")
        w = np.ones(values.size) if weights is None else weights[order]
        cumulative = np.concatenate([[0.0], np.cumsum(w)]) / w.sum()
        return np.asarray(cumulative[np.searchsorted(values[order], support, side="right")])

    return support, cdf(u, uw), cdf(v, vw)


def step_wasserstein(u: np.ndarray, v: np.ndarray, uw=None, vw=None) -> float:
    """The monitor's integral (:func:`area_between_cdfs`) with every sample point a knot:
    each point doubled into its left limit and its value, so the step CDFs are exact."""
    support, fu, fv = step_cdfs(u, v, uw, vw)
    x = np.repeat(support, 2)
    left_u = np.concatenate([[0.0], fu[:-1]])
    left_v = np.concatenate([[0.0], fv[:-1]])
    return area_between_cdfs(
        x, np.column_stack([left_u, fu]).ravel(), np.column_stack([left_v, fv]).ravel()
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_equals_scipy_on_raw_and_weighted_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1, 400)
    v = rng.normal(0.3, 1.4, 250)
    assert step_wasserstein(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=TOL)
    uw = rng.random(400)
    vw = rng.random(250)
    assert step_wasserstein(u, v, uw, vw) == pytest.approx(
        stats.wasserstein_distance(u, v, uw, vw), abs=TOL
    )
    # Ties and shared points (discrete values) too.
    a = rng.integers(0, 5, 300).astype(float)
    b = rng.integers(1, 7, 200).astype(float)
    assert step_wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), abs=TOL)


@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_ks_equals_scipy_ks_2samp_asymptotic(shift: float) -> None:
    """D as the monitor takes it (the largest CDF gap at the knots) and its p-value."""
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 700)
    b = rng.normal(shift, 1, 450)
    _, fa, fb = step_cdfs(a, b)
    statistic = float(np.max(np.abs(fa - fb)))
    theirs = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(theirs.statistic, abs=TOL)
    assert ks_p_value(statistic, a.size, b.size) == pytest.approx(theirs.pvalue, abs=TOL)
    # With ties.
    c = rng.integers(0, 10, 500).astype(float)
    d = rng.integers(0, 11, 300).astype(float)
    _, fc, fd = step_cdfs(c, d)
    statistic = float(np.max(np.abs(fc - fd)))
    theirs = stats.ks_2samp(c, d, method="asymp")
    assert statistic == pytest.approx(theirs.statistic, abs=TOL)
    assert ks_p_value(statistic, c.size, d.size) == pytest.approx(theirs.pvalue, abs=TOL)


def test_jensen_shannon_equals_scipy_natural_log() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        p = rng.random(8)
        q = rng.random(8)
        q[rng.integers(0, 8)] = 0.0  # a category absent on one side
        assert js_distance(p, q) == pytest.approx(jensenshannon(p, q), abs=TOL)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(np.sqrt(np.log(2)), abs=TOL)
    assert js_distance([3, 3], [1, 1]) == pytest.approx(0.0, abs=TOL)


def test_chi_square_equals_scipy_chi2_contingency() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 7):
        base = rng.integers(5, 500, k)
        live = rng.integers(0, 60, k)
        ours = chi_square_homogeneity(base, live)
        theirs = stats.chi2_contingency(np.vstack([base, live]), correction=False)
        assert ours[0] == pytest.approx(theirs.statistic, abs=TOL)
        assert ours[1] == pytest.approx(theirs.pvalue, abs=TOL)
        assert ours[2] == theirs.dof
    # A column empty in both rows is dropped (scipy refuses it).
    ours = chi_square_homogeneity([10, 0, 30], [5, 0, 9])
    theirs = stats.chi2_contingency([[10, 30], [5, 9]], correction=False)
    assert ours[0] == pytest.approx(theirs.statistic, abs=TOL)
    assert ours[1] == pytest.approx(theirs.pvalue, abs=TOL)


def test_psi_known_values() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.6 - 0.5) * np.log(0.6 / 0.5) + (0.4 - 0.5) * np.log(0.4 / 0.5)
    assert psi([50, 50], [60, 40]) == pytest.approx(expected, abs=1e-12)
    # An empty bin costs a finite amount through the epsilon floor.
    floored = (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (1.0 - 0.5) * np.log(1.0 / 0.5)
    assert psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(floored, abs=1e-12)


def test_area_between_piecewise_linear_functions() -> None:
    # f - g goes from +1 to -1 over width 2: two triangles of area 0.5 each.
    assert area_between_cdfs([0, 2], [1, 0], [0, 1]) == pytest.approx(1.0)
    assert area_between_cdfs([0, 1, 1, 3], [0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx(2.0)


def test_window_cdf_counts_agree_with_the_baseline_binning() -> None:
    rng = np.random.default_rng(6)
    train = rng.integers(0, 6, 5000).astype(float)  # ties on every edge
    summary = summarise_column(pd.Series(train), kind="numeric")
    cdf = BaselineCdf.from_summary(summary)
    assert cdf is not None
    live = np.sort(rng.integers(0, 7, 3000).astype(float))
    window = cdf.window_cdf(live)
    edges = summary["bin_edges"]
    counts = np.cumsum(bin_counts(live, edges))[:-1] / live.size
    for edge, expected in zip(edges[1:-1], counts, strict=True):
        at = np.flatnonzero((cdf.x == edge) & (cdf.kind == 2))
        assert window[at] == pytest.approx(expected)
    # The baseline read at its own edges is exactly the cumulated bin proportions.
    own = cdf.window_cdf(np.sort(train))
    assert own[cdf.kind == 2][:-1] == pytest.approx(cdf.f[cdf.kind == 2][:-1])


@pytest.mark.parametrize(
    ("name", "make_train", "make_live", "tolerance"),
    [
        ("normal shift", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.3, 1, n), 0.01),
        ("normal scale", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1.3, n), 0.01),
        ("uniform", lambda r, n: r.uniform(0, 10, n), lambda r, n: r.uniform(1, 10, n), 0.01),
        (
            "integers",
            lambda r, n: r.integers(18, 90, n) * 1.0,
            lambda r, n: r.integers(20, 92, n) * 1.0,
            0.01,
        ),
        ("lognormal", lambda r, n: r.lognormal(0, 1, n), lambda r, n: r.lognormal(0.1, 1, n), 0.02),
        (
            "three values",
            lambda r, n: r.integers(0, 3, n) * 1.0,
            lambda r, n: r.integers(0, 3, n) + 1.0,
            0.01,
        ),
    ],
)
def test_baseline_wasserstein_is_close_to_scipy_on_the_raw_training_rows(
    name: str, make_train, make_live, tolerance: float
) -> None:
    rng = np.random.default_rng(7)
    train = make_train(rng, 50_000)
    live = make_live(rng, 50_000)
    summary = summarise_column(pd.Series(train), kind="numeric")
    cdf = BaselineCdf.from_summary(summary)
    assert cdf is not None
    ordered = np.sort(live)
    ours = cdf.wasserstein(ordered, cdf.window_cdf(ordered)) / summary["std"]
    raw = stats.wasserstein_distance(train, live) / train.std(ddof=1)
    assert ours == pytest.approx(raw, abs=tolerance), name


@pytest.mark.parametrize("seed", [0, 1])
def test_sorted_counts_and_quantiles_equal_the_baseline_helpers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    train = rng.normal(0, 1, 2000).round(1)  # values on the edges
    edges = summarise_column(pd.Series(train), kind="numeric")["bin_edges"]
    live = np.concatenate([rng.normal(0.2, 1.5, 5000).round(1), np.asarray(edges[1:-1])])
    ordered = np.sort(live)
    assert sorted_bin_counts(ordered, edges) == bin_counts(live, edges)
    levels = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    assert _sorted_quantiles(ordered, levels) == pytest.approx(np.quantile(live, levels), abs=1e-12)
