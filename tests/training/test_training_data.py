"""The training data's leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.mlops.training.data import leakage_scores


def test_leakage_flags_a_copy_of_the_target_but_not_ids_or_dates() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "churned": y,
        "leak": y * 10 + rng.normal(0, 0.1, n),  # the label in disguise
        "signal": y + rng.normal(0, 1.5, n),  # real but weak
        "code": [f"c{i}" for i in range(n)],  # unique per row: in-sample rates would be perfect
        "signup": pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
    })  # fmt: skip
    scores = leakage_scores(df, target="churned", features=["leak", "signal", "code", "signup"])
    assert scores["leak"] >= 0.99
    assert 0.55 < scores["signal"] < 0.9
    assert scores.get("code", 0.5) < 0.6 and scores["signup"] < 0.6
