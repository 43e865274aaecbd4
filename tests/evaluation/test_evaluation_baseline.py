"""The drift baseline: statistics, quantile bins, category frequencies, JSON round trip."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from include.mlops.evaluation.baseline import (
    OTHER_CATEGORY,
    bin_counts,
    bin_edges,
    category_counts,
    compute_drift_baseline,
)


@pytest.fixture
def train() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "calls": rng.poisson(0.3, n).astype(float),  # mostly zeros: few distinct edges
            "region": rng.choice(
                [f"r{i}" for i in range(30)], n, p=np.r_[[0.5], np.full(29, 0.5 / 29)]
            ),
            "signup": pd.date_range("2020-01-01", periods=n, freq="D"),
            "churned": rng.integers(0, 2, n),
        }
    )
    frame.loc[:49, "income"] = np.nan
    frame.loc[:9, "region"] = None
    return frame


def test_numeric_statistics_and_bins(train: pd.DataFrame) -> None:
    baseline = compute_drift_baseline(train, features=["income", "calls"])
    income = baseline["features"]["income"]
    values = train["income"].dropna()
    assert income["kind"] == "numeric"
    assert income["count"] == 950 and income["missing"] == 50
    assert income["missing_share"] == pytest.approx(0.05)
    assert income["mean"] == pytest.approx(values.mean())
    assert income["std"] == pytest.approx(values.std())
    assert income["min"] == values.min() and income["max"] == values.max()
    assert income["quantiles"]["p50"] == pytest.approx(values.median())
    edges = income["bin_edges"]
    assert len(edges) == 11 and edges[0] == -math.inf and edges[-1] == math.inf
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert sum(income["bin_counts"]) == 950
    assert all(abs(p - 0.1) < 0.01 for p in income["bin_proportions"])  # quantile bins
    calls = baseline["features"]["calls"]
    assert len(calls["bin_edges"]) < 11  # equal quantiles are deduplicated
    assert calls["bin_counts"][0] == int((train["calls"] == 0).sum())  # right-closed (-inf, 0]


def test_bin_counts_are_right_closed_and_catch_everything() -> None:
    edges = [-math.inf, 0.0, 1.0, math.inf]
    assert bin_counts([-5, 0, 0.5, 1, 2, 1e9, np.nan], edges) == [2, 2, 2]
    assert bin_edges([np.nan]) == [-math.inf, math.inf]
    assert bin_edges(np.arange(100), bins=4) == [-math.inf, 24.75, 49.5, 74.25, math.inf]


def test_categorical_top_n_and_other(train: pd.DataFrame) -> None:
    baseline = compute_drift_baseline(train, features=["region"], top_categories=5)
    region = baseline["features"]["region"]
    assert region["kind"] == "categorical"
    assert region["missing"] == 10 and region["distinct"] == 30
    assert next(iter(region["categories"])) == "r0"
    assert len(region["categories"]) == 6 and OTHER_CATEGORY in region["categories"]
    assert sum(region["categories"].values()) == pytest.approx(1.0)
    assert sum(region["category_counts"].values()) == 990
    live = category_counts(["r0", "r0", "never-seen", None], region["categories"])
    assert live["r0"] == 2 and live[OTHER_CATEGORY] == 1


def test_dates_target_and_predictions_and_json_round_trip(train: pd.DataFrame) -> None:
    predictions = np.linspace(0, 1, len(train))
    baseline = compute_drift_baseline(
        train, features=["income", "region", "signup"], target="churned", predictions=predictions
    )
    assert baseline["format"] == 1 and baseline["rows"] == 1000
    assert baseline["features"]["signup"]["kind"] == "datetime"
    assert baseline["features"]["signup"]["min"] == pytest.approx(
        (pd.Timestamp("2020-01-01") - pd.Timestamp("1970-01-01")).days
    )
    assert baseline["target"]["kind"] == "categorical"
    assert set(baseline["target"]["categories"]) == {"0", "1"}
    assert baseline["prediction"]["kind"] == "numeric"
    assert json.loads(json.dumps(baseline)) == baseline


def test_unknown_feature_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not in the training data"):
        compute_drift_baseline(train, features=["nope"])
