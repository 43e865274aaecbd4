"""The feature pipeline: column roles, encoders, date parts, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, TargetEncoder
from sklearn.tree import DecisionTreeClassifier

from include.mlops.features.pipeline import (
    build_preprocessor,
    feature_names,
    infer_column_roles,
    input_columns,
)

N = 300


@pytest.fixture
def raw() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(N),
            "row_number": rng.permutation(N) + 1000,
            "age": rng.integers(18, 80, N).astype(float),
            "plan": rng.choice(["basic", "premium", "gold"], N, p=[0.6, 0.39, 0.01]),
            "city": [f"city_{i}" for i in rng.integers(0, 60, N)],
            "signup": pd.date_range("2020-01-01", periods=N, freq="D").astype(str),
            "joined_at": pd.date_range("2021-06-01", periods=N, freq="D"),
            "is_member": rng.random(N) > 0.5,
            "email": [f"user{i}@example.com" for i in range(N)],
            "constant": "x",
            "churned": rng.integers(0, 2, N),
        }
    )
    frame.loc[3, "age"] = np.nan
    frame.loc[4, "plan"] = None
    return frame


def test_column_roles_from_dtypes_names_and_content(raw: pd.DataFrame) -> None:
    roles = infer_column_roles(raw, exclude=["churned"])
    assert roles.numeric == ["age"]
    assert roles.categorical == ["plan", "is_member"]
    assert roles.high_cardinality == ["city"]
    assert roles.dates == ["signup", "joined_at"]
    assert roles.dropped == {
        "customer_id": "identifier (name)",
        "row_number": "identifier (row number)",
        "email": "identifier (unique per row)",
        "constant": "constant",
        "churned": "excluded",
    }


def _fit(raw: pd.DataFrame, algorithm: str = "xgboost") -> Pipeline:
    X, y = raw.drop(columns=["churned"]), raw["churned"]
    features = build_preprocessor(X, algorithm=algorithm, problem_type="binary")
    # Unscaled features suit trees; the linear model gets the scaled pipeline it expects.
    model = (
        LogisticRegression(max_iter=500)
        if algorithm == "logistic_regression"
        else DecisionTreeClassifier(max_depth=3, random_state=0)
    )
    return Pipeline([("features", features), ("model", model)]).fit(X, y)


def test_rare_categories_are_grouped_and_unknown_ones_land_there(raw: pd.DataFrame) -> None:
    pipeline = _fit(raw)
    names = feature_names(pipeline)
    # "gold" (3 rows of 300) is rare: one shared "infrequent" column instead of its own.
    assert "plan_gold" not in names
    assert "plan_infrequent_sklearn" in names
    assert {"plan_basic", "plan_premium"} <= set(names)
    row = raw.drop(columns=["churned"]).iloc[[0]].assign(plan="never-seen")
    transformed = pipeline.named_steps["features"].transform(row)
    assert transformed[0, names.index("plan_infrequent_sklearn")] == 1.0


def test_high_cardinality_column_is_target_encoded(raw: pd.DataFrame) -> None:
    pipeline = _fit(raw)
    encoder = pipeline.named_steps["features"].named_transformers_["high"].named_steps["target"]
    assert isinstance(encoder, TargetEncoder)
    assert encoder.target_type_ == "binary"
    assert "city" in feature_names(pipeline)  # one column, not 60 one-hot columns


def test_date_parts(raw: pd.DataFrame) -> None:
    pipeline = _fit(raw)
    names = feature_names(pipeline)
    parts = ["year", "month", "day_of_week", "day_of_year", "days_since_epoch"]
    assert all(f"signup_{p}" in names and f"joined_at_{p}" in names for p in parts)
    row = raw.drop(columns=["churned"]).iloc[[0]].assign(signup="2024-03-01")
    values = pipeline.named_steps["features"].transform(row)[0]
    got = {p: values[names.index(f"signup_{p}")] for p in parts}
    # 2024-03-01 was a Friday (Monday = 0), day 61 of a leap year, 19783 days after 1970-01-01.
    assert got == {
        "year": 2024,
        "month": 3,
        "day_of_week": 4,
        "day_of_year": 61,
        "days_since_epoch": 19783,
    }


def test_scaling_only_for_linear_algorithms(raw: pd.DataFrame) -> None:
    X = raw.drop(columns=["churned"])

    def numeric_steps(algorithm: str) -> list[type]:
        ct = build_preprocessor(X, algorithm=algorithm)
        numeric = next(t for name, t, _ in ct.transformers if name == "num")
        return [type(step) for _, step in numeric.steps]

    assert StandardScaler in numeric_steps("logistic_regression")
    assert StandardScaler in numeric_steps("ridge")
    assert StandardScaler not in numeric_steps("xgboost")
    assert StandardScaler not in numeric_steps("random_forest")


def test_pickled_pipeline_scores_loose_raw_records(raw: pd.DataFrame) -> None:
    pipeline = _fit(raw, algorithm="logistic_regression")
    restored = pickle.loads(pickle.dumps(pipeline))
    X = raw.drop(columns=["churned"])
    np.testing.assert_allclose(restored.predict_proba(X), pipeline.predict_proba(X))
    # What a JSON request carries: numbers as text, missing values, an extra field.
    record = pd.DataFrame(
        [
            {
                "age": "42",
                "plan": None,
                "city": "unseen-city",
                "signup": "2023-12-31",
                "joined_at": "2022-01-01T10:00:00",
                "is_member": "True",
                "extra": 1,
                **{c: None for c in ("customer_id", "row_number", "email", "constant")},
            }
        ]
    )
    proba = restored.predict_proba(record)
    assert proba.shape == (1, 2) and np.isfinite(proba).all()
    assert input_columns(restored) == ["age", "plan", "is_member", "city", "signup", "joined_at"]


def test_no_usable_column_is_a_clear_error() -> None:
    X = pd.DataFrame({"id": range(20), "constant": 1})
    with pytest.raises(ValueError, match="no usable feature columns"):
        build_preprocessor(X, algorithm="xgboost")
