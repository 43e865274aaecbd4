"""Shared data for the quality-gate tests: a small churn-like partition and its schema."""

from __future__ import annotations

from typing import Any

import pytest

CHURN_COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "tenure_months",
    "plan",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "region",
    "payment_method",
    "email",
    "churned",
]


def make_churn(n: int = 1000, seed: int = 0, first_id: int = 0) -> Any:
    """A clean churn partition shaped like the demo dataset (12 columns, ~20% churn)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(first_id, first_id + n, dtype="int64"),
            "signup_date": pd.date_range("2020-01-01", periods=n, freq="h").date,
            "age": rng.integers(18, 90, n),
            "tenure_months": rng.integers(0, 120, n),
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "monthly_charges": rng.uniform(10, 200, n).round(2),
            "total_charges": rng.uniform(0, 5000, n).round(2),
            "support_calls": rng.integers(0, 10, n).astype("float64"),
            "region": rng.choice(["north", "south", "east", "west", "central"], n),
            "payment_method": rng.choice(["card", "bank_transfer", "paypal", "check"], n),
            "email": [f"{h:016x}" for h in rng.integers(0, 2**62, n)],
            "churned": (rng.uniform(size=n) < 0.2).astype("int64"),
        }
    )
    # Realistic gaps in the nullable columns.
    df.loc[rng.uniform(size=n) < 0.05, "total_charges"] = np.nan
    df.loc[rng.uniform(size=n) < 0.1, "region"] = None
    df.loc[rng.uniform(size=n) < 0.3, "email"] = None
    return df


def churn_schema() -> dict[str, Any]:
    """The catalog schema of the churn dataset, as the ETL declares it."""

    def col(name: str, type_: str, **extra: Any) -> dict[str, Any]:
        base = {
            "name": name,
            "type": type_,
            "nullable": False,
            "categorical": False,
            "pii": False,
            "allowed": None,
            "min": None,
            "max": None,
        }
        return base | extra

    return {
        "dataset": "churn",
        "key": ["customer_id"],
        "columns": [
            col("customer_id", "int64"),
            col("signup_date", "date"),
            col("age", "int64", min=18, max=100),
            col("tenure_months", "int64", min=0, max=120),
            col("plan", "string", categorical=True, allowed=["basic", "standard", "premium"]),
            col("monthly_charges", "float64", min=0, max=1000),
            col("total_charges", "float64", nullable=True, min=0),
            col("support_calls", "int64", nullable=True, min=0, max=100),
            col("region", "string", nullable=True, categorical=True),
            col("payment_method", "string", nullable=True, categorical=True),
            col("email", "string", nullable=True, pii=True),
            col("churned", "int64", categorical=True, allowed=[0, 1]),
        ],
    }


@pytest.fixture(scope="session")
def churn_factory() -> Any:
    """``make_churn`` for tests and module-scoped fixtures that need several partitions."""
    return make_churn


@pytest.fixture
def churn_df() -> Any:
    return make_churn()


@pytest.fixture(scope="session")
def schema_factory() -> Any:
    """``churn_schema`` for module-scoped fixtures."""
    return churn_schema


@pytest.fixture
def schema() -> dict[str, Any]:
    return churn_schema()
