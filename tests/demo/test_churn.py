"""The churn demo generator: determinism, schema, learnable signal, drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlops.demo.churn import generate_churn
from tests.demo.contract import EXPECTED_COLUMNS, PAYMENTS, PLANS, REGIONS


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = generate_churn(3000, seed=7)
    pd.testing.assert_frame_equal(a, generate_churn(3000, seed=7))
    b = generate_churn(3000, seed=8)
    assert not a["age"].equals(b["age"])
    # start_id moves the keys, not the customers.
    shifted = generate_churn(3000, seed=7, start_id=1001)
    assert shifted["customer_id"].tolist() == list(range(1001, 4001))
    pd.testing.assert_frame_equal(
        a.drop(columns=["customer_id", "email"]), shifted.drop(columns=["customer_id", "email"])
    )


def test_a_prefix_is_the_same_rows() -> None:
    """Rows depend on (seed, row index) only, across the generator's internal blocks."""
    long = generate_churn(120_000, seed=3)
    pd.testing.assert_frame_equal(generate_churn(70_000, seed=3), long.iloc[:70_000])


def test_schema_dtypes_and_domains() -> None:
    df = generate_churn(20_000, seed=1, as_of="2026-11-01")
    assert list(df.columns) == EXPECTED_COLUMNS
    for col in ("customer_id", "age", "tenure_months", "churned"):
        assert df[col].dtype == np.int64, col
    assert df["support_calls"].dtype == "Int64"
    assert df["monthly_charges"].dtype == np.float64
    assert df["total_charges"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])
    assert df["customer_id"].is_unique
    assert df["age"].between(18, 100).all()
    assert df["tenure_months"].between(0, 120).all()
    assert df["monthly_charges"].between(0, 1000).all()
    assert (df["total_charges"].dropna() >= 0).all()
    assert df["support_calls"].dropna().between(0, 100).all()
    assert set(df["plan"]) == PLANS
    assert set(df["region"].dropna()) == REGIONS
    assert set(df["payment_method"].dropna()) == PAYMENTS
    assert set(df["churned"]) == {0, 1}
    assert (df["signup_date"] <= pd.Timestamp("2026-11-01")).all()
    # Required columns are never null; each nullable one has a few nulls.
    for col in (
        "customer_id",
        "signup_date",
        "age",
        "tenure_months",
        "plan",
        "monthly_charges",
        "churned",
    ):
        assert df[col].notna().all(), col
    for col in ("total_charges", "support_calls", "region", "payment_method", "email"):
        assert 0.005 < df[col].isna().mean() < 0.1, col
    emails = df["email"].dropna()
    assert emails.str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+").all()
    assert emails.nunique() > 0.99 * len(emails)
    # Plans price differently, and total ≈ tenure × monthly.
    by_plan = df.groupby("plan")["monthly_charges"].mean()
    assert by_plan["basic"] < by_plan["standard"] < by_plan["premium"]
    ok = df.dropna(subset=["total_charges"])
    ratio = ok["total_charges"] / (ok["tenure_months"] * ok["monthly_charges"]).where(
        ok["tenure_months"] > 0
    )
    assert ratio.dropna().between(0.9, 1.05).all()


def _features(df: pd.DataFrame) -> pd.DataFrame:
    x = df[["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]].astype(
        float
    )
    for col in ("plan", "payment_method", "region"):
        x = x.join(pd.get_dummies(df[col], prefix=col, dtype=float))
    return x


def _holdout_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x_train = _features(train)
    x_test = _features(test).reindex(columns=x_train.columns, fill_value=0.0)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(
        x_train, train["churned"]
    )
    return float(roc_auc_score(test["churned"], model.predict_proba(x_test)[:, 1]))


def test_label_is_learnable_and_base_rate_is_realistic() -> None:
    train, test = generate_churn(5000, seed=11), generate_churn(5000, seed=12, start_id=5001)
    assert 0.2 <= train["churned"].mean() <= 0.3
    auc = _holdout_auc(train, test)
    assert 0.75 <= auc <= 0.95, auc


def test_noise_scales_label_noise() -> None:
    test = generate_churn(5000, seed=22, start_id=10_001, noise=0.3)
    sharp = _holdout_auc(generate_churn(5000, seed=21, noise=0.3), test)
    blurred = _holdout_auc(generate_churn(5000, seed=21, noise=3.0), test)
    assert sharp > blurred + 0.03, (sharp, blurred)


def test_drift_moves_distributions_the_stated_way() -> None:
    base = generate_churn(30_000, seed=5)
    same = generate_churn(30_000, seed=6)
    drifted = generate_churn(30_000, seed=5, drift=0.9)

    # drift=0 from another seed: the same distributions.
    assert abs(base["age"].mean() - same["age"].mean()) < 0.5
    assert abs(base["monthly_charges"].mean() - same["monthly_charges"].mean()) < 1.0
    assert abs(base["support_calls"].mean() - same["support_calls"].mean()) < 0.05
    assert "crypto" not in set(same["payment_method"].dropna())

    assert drifted["age"].mean() > base["age"].mean() + 5
    assert drifted["monthly_charges"].mean() > 1.2 * base["monthly_charges"].mean()
    assert drifted["support_calls"].mean() > 1.5 * base["support_calls"].mean()
    share = lambda df, plan: (df["plan"] == plan).mean()  # noqa: E731
    assert share(drifted, "premium") > share(base, "premium") + 0.1
    assert share(drifted, "basic") < share(base, "basic") - 0.1
    assert (drifted["payment_method"] == "crypto").mean() > 0.05
    # Region is not part of the drift: a control.
    assert abs((drifted["region"] == "north").mean() - (base["region"] == "north").mean()) < 0.02
    # Drift is still the same customers, moved: tenure does not change.
    assert drifted["tenure_months"].equals(base["tenure_months"])
    # The new category only appears at high drift.
    assert "crypto" not in set(generate_churn(30_000, seed=5, drift=0.4)["payment_method"].dropna())


def test_drift_changes_why_customers_churn() -> None:
    """Concept drift, not only covariate shift: a model trained before the drift ranks
    drifted customers clearly worse than one trained on drifted labels does."""
    before = generate_churn(8000, seed=31)
    after = generate_churn(8000, seed=32, start_id=10_001, drift=1.0)
    today = generate_churn(5000, seed=33, start_id=20_001, drift=1.0)
    old_model = _holdout_auc(before, today)
    new_model = _holdout_auc(after, today)
    assert old_model < 0.72 < 0.8 < new_model, (old_model, new_model)
    assert 0.25 <= today["churned"].mean() <= 0.45


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="drift"):
        generate_churn(10, drift=1.5)
    with pytest.raises(ValueError, match="noise"):
        generate_churn(10, noise=-1)
    assert len(generate_churn(0)) == 0
