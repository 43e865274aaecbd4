"""Synthetic training data, its drift baseline, and capture windows drawn like it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from include.mlops.evaluation.baseline import compute_drift_baseline

# The real MLflow store and registered churn model of the registry tests (run_monitor).
from tests.registry.conftest import (  # noqa: F401
    _no_global_store,
    _quiet_mlflow,
    empty_store_db,
    fitted,
    register,
    store,
)

FEATURES = ["amount", "tenure", "age", "plan"]
PLANS = ["basic", "plus", "pro"]
PLAN_P = [0.5, 0.3, 0.2]


def draw(n: int, seed: int, **change: Any) -> pd.DataFrame:
    """Rows like training, with changes: ``amount_shift`` (in stds), ``tenure_scale``,
    ``plan_new`` (share of a category training never saw), ``score_shift``."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100.0, 20.0, n) + change.get("amount_shift", 0.0) * 20.0
    tenure = rng.normal(0.0, 1.0, n) * change.get("tenure_scale", 1.0) + 24.0
    age = rng.integers(18, 80, n).astype(float)
    plan = rng.choice(PLANS, n, p=PLAN_P).astype(object)
    if change.get("plan_new"):
        plan[rng.random(n) < change["plan_new"]] = "enterprise"
    score = 1.0 / (1.0 + np.exp(-(amount - 100.0) / 20.0 - rng.normal(0, 1, n)))
    score = np.clip(score + change.get("score_shift", 0.0), 0.0, 1.0)
    return pd.DataFrame(
        {"amount": amount, "tenure": tenure, "age": age, "plan": plan, "score": score}
    )


@pytest.fixture(scope="session")
def training() -> pd.DataFrame:
    return draw(20_000, seed=100)


@pytest.fixture(scope="session")
def baseline(training: pd.DataFrame) -> dict[str, Any]:
    return compute_drift_baseline(training, features=FEATURES, predictions=training["score"])


def as_capture(rows: pd.DataFrame, *, version: int = 1, variant: str = "champion") -> pd.DataFrame:
    """Rows in the capture layout (``feature.<name>``, prediction, probability)."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "inference_id": [f"id-{variant}-{i}" for i in range(n)],
            "captured_at": pd.Timestamp("2026-11-01T10:00:00Z")
            + pd.to_timedelta(np.arange(n) % 3_000_000, unit="ms"),
            "endpoint": "churn",
            "model_version": version,
            "variant": variant,
            "prediction": np.where(rows["score"] >= 0.5, "1", "0"),
            "probability": rows["score"].to_numpy(),
        }
    )
    for name in FEATURES:
        frame[f"feature.{name}"] = rows[name].to_numpy()
    return frame
