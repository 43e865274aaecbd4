"""Problem type inference and train/validation/test splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlops.features.split import Splits, infer_problem_type, split_dataset
from include.mlops.lake.store import Lake


def _frame(n: int = 1000, positive_share: float = 0.2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h")[rng.permutation(n)],
            "label": rng.random(n) < positive_share,
        }
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "no"], "binary"),
        ([True, False, None], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([0, 1, 2, 3, 2], "multiclass"),
        ([0.5, 1.25, 3.0, 2.0], "regression"),
        (list(range(100)), "regression"),  # many whole numbers: a count, not classes
    ],
)
def test_infer_problem_type(values: list, expected: str) -> None:
    assert infer_problem_type(pd.Series(values)) == expected


def test_infer_problem_type_refuses_constant_target() -> None:
    with pytest.raises(ValueError, match="at least two"):
        infer_problem_type([1, 1, None])


def test_split_proportions_and_disjoint_rows() -> None:
    df = _frame().reset_index(names="row")
    splits = split_dataset(df, target="label", problem_type="binary", seed=3)
    assert splits.sizes() == {"train": 800, "validation": 100, "test": 100}
    rows = [set(splits[name]["row"]) for name in ("train", "validation", "test")]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    assert sum(map(len, rows)) == len(df)
    assert list(splits.test.index) == list(range(100))


def test_classification_split_is_stratified() -> None:
    splits = split_dataset(_frame(positive_share=0.1), target="label", problem_type="binary")
    shares = [splits[name]["label"].mean() for name in ("train", "validation", "test")]
    overall = _frame(positive_share=0.1)["label"].mean()
    assert all(abs(share - overall) < 0.011 for share in shares), shares
    assert splits.info["stratified"] is True


def test_split_is_reproducible_with_seed() -> None:
    a = split_dataset(_frame(), target="label", problem_type="binary", seed=7)
    b = split_dataset(_frame(), target="label", problem_type="binary", seed=7)
    pd.testing.assert_frame_equal(a.test, b.test)


def test_time_split_puts_oldest_in_train_and_newest_in_test() -> None:
    splits = split_dataset(
        _frame(),
        target="label",
        problem_type="binary",
        time_column="when",
        fractions=(0.7, 0.2, 0.1),
    )
    assert splits.sizes() == {"train": 700, "validation": 200, "test": 100}
    assert splits.train["when"].max() < splits.validation["when"].min()
    assert splits.validation["when"].max() < splits.test["when"].min()


def test_rows_without_target_are_dropped_and_auto_infers_type() -> None:
    df = _frame(100)
    df["label"] = df["label"].astype(object)
    df.loc[:9, "label"] = None
    splits = split_dataset(df, target="label", problem_type="auto")
    assert sum(splits.sizes().values()) == 90
    assert splits.info["problem_type"] == "binary"
    assert splits.info["dropped_missing_target"] == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nope"}, "not in the data"),
        ({"target": "label", "fractions": (0.8, 0.3, 0.1)}, "summing to 1"),
        ({"target": "label", "time_column": "nope"}, "time column"),
    ],
)
def test_split_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_dataset(_frame(50), problem_type="binary", **kwargs)


def test_splits_round_trip_through_the_lake(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    splits = split_dataset(_frame(200), target="label", problem_type="binary", seed=1)
    uris = splits.write(lake, "features/churn/2026-11-01/")
    assert set(uris) == {"train", "validation", "test", "manifest"}
    assert lake.list_files("features/churn/2026-11-01") == [
        "features/churn/2026-11-01/split.json",
        "features/churn/2026-11-01/test.parquet",
        "features/churn/2026-11-01/train.parquet",
        "features/churn/2026-11-01/validation.parquet",
    ]
    back = Splits.read(lake, "features/churn/2026-11-01")
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(back[name], splits[name], check_dtype=False)
    assert back.info["target"] == "label" and back.info["seed"] == 1
