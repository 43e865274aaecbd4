"""Problem type inference and the train/validation/test split a model is trained on.

The split is written to ``features/<model>/<snapshot>/{train,validation,test}.parquet``
(the caller chooses the prefix) so every registered version can be traced to the exact
rows it learned from and was judged on, and a tuning trial on another worker reads the
same rows as every other trial.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from include.mlops.vocabulary import AUTO, PROBLEM_TYPES, ProblemType

if TYPE_CHECKING:
    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
#: A numeric target with at most this many distinct whole-number values is read as classes.
MAX_CLASSES_FOR_NUMERIC_TARGET = 20
#: Name of the small JSON file written beside the Parquet files.
MANIFEST_NAME = "split.json"
#: The train rows' sample weights (recency weighting), beside the splits when there are any.
WEIGHTS_NAME = "train_weight.parquet"


def infer_problem_type(y: Sequence[Any] | pd.Series) -> ProblemType:
    """Guess the problem type from the target values.

    Text, boolean and categorical targets are classification. A numeric target is
    classification only when every value is a whole number and there are few of them
    (at most :data:`MAX_CLASSES_FOR_NUMERIC_TARGET`); anything else is regression, so a
    count-like target with hundreds of values is regressed rather than classified.

    Args:
        y: The target column (missing values are ignored).

    Returns:
        ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Raises:
        ValueError: The target has fewer than two distinct values, so nothing can be learned.
    """
    values = pd.Series(y).dropna()
    n_distinct = int(values.nunique())
    if n_distinct < 2:
        raise ValueError(
            f"target has {n_distinct} distinct value(s) among {len(values)} non-missing rows; "
            "a model needs at least two"
        )
    is_numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if is_numeric:
        numbers = values.astype(float).to_numpy()
        whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
        if not whole or n_distinct > MAX_CLASSES_FOR_NUMERIC_TARGET:
            return "regression"
    return "binary" if n_distinct == 2 else "multiclass"


@dataclass
class Splits:
    """The three parts of a dataset, each a DataFrame with a fresh 0..n-1 index.

    Attributes:
        train: Rows the model learns from.
        validation: Rows for early stopping, tuning and choosing the decision threshold.
        test: Held-out rows, touched only by the final evaluation.
        info: How the split was made (target, problem type, seed, fractions, time column).
        train_weight: One sample weight per train row, or ``None`` (every row counts the
            same). Kept apart from the frames, so it can never become a feature; every fit
            (tuning trials, the refit) passes it as ``sample_weight``.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    train_weight: np.ndarray | None = None

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLIT_NAMES}")
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def sizes(self) -> dict[str, int]:
        """Row count of each split."""
        return {name: len(self[name]) for name in SPLIT_NAMES}

    def write(self, lake: Lake, prefix: str) -> dict[str, str]:
        """Write ``{train,validation,test}.parquet`` and ``split.json`` under a lake prefix.

        Each object is written atomically, so a reader never sees half a file; rewriting
        the same prefix replaces the previous split whole.

        Args:
            lake: Where to write.
            prefix: Lake key prefix, e.g. ``features/churn/2026-11-01/``.

        Returns:
            URI of each written object, keyed by split name (and ``"manifest"``).
        """
        uris: dict[str, str] = {}
        for name in SPLIT_NAMES:
            buffer = io.BytesIO()
            self[name].to_parquet(buffer, index=False)
            uris[name] = lake.write_bytes(_key(prefix, f"{name}.parquet"), buffer.getvalue())
        weighted = self.train_weight is not None
        if weighted:
            buffer = io.BytesIO()
            pd.DataFrame({"weight": np.asarray(self.train_weight, dtype=float)}).to_parquet(
                buffer, index=False
            )
            uris["train_weight"] = lake.write_bytes(_key(prefix, WEIGHTS_NAME), buffer.getvalue())
        # The manifest says whether weights belong to this split (a stale file never does).
        manifest = {**self.info, "rows": self.sizes(), "weighted": weighted}
        uris["manifest"] = lake.write_json(_key(prefix, MANIFEST_NAME), manifest)
        return uris

    @classmethod
    def read(cls, lake: Lake, prefix: str) -> Splits:
        """Read a split written by :meth:`write`.

        Args:
            lake: Where to read.
            prefix: The lake key prefix given to :meth:`write`.

        Returns:
            The three DataFrames and the split's recorded info (empty if no manifest).
        """
        frames = {
            name: pd.read_parquet(io.BytesIO(lake.read_bytes(_key(prefix, f"{name}.parquet"))))
            for name in SPLIT_NAMES
        }
        manifest_key = _key(prefix, MANIFEST_NAME)
        info = json.loads(lake.read_bytes(manifest_key)) if lake.exists(manifest_key) else {}
        info.pop("rows", None)
        weight = None
        if info.pop("weighted", False):
            raw = lake.read_bytes(_key(prefix, WEIGHTS_NAME))
            weight = pd.read_parquet(io.BytesIO(raw))["weight"].to_numpy(dtype=float)
        return cls(frames["train"], frames["validation"], frames["test"], info, weight)


def split_dataset(
    df: pd.DataFrame,
    *,
    target: str,
    problem_type: str,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    time_column: str | None = None,
    weight_column: str | None = None,
) -> Splits:
    """Split a dataset into train, validation and test parts.

    Rows whose target is missing cannot be learned from or scored, so they are dropped
    (and logged). With ``time_column`` the rows are ordered by time and cut in that
    order, oldest to train and newest to test, which is how a model meets the future;
    otherwise the rows are shuffled with ``seed``, stratified by the target for
    classification so each part keeps the class balance.

    Args:
        df: The whole training snapshot, target included.
        target: Name of the target column.
        problem_type: ``binary``, ``multiclass`` or ``regression`` (``auto`` infers it).
        fractions: Shares of train, validation and test; positive, summing to 1.
        seed: Random seed of the shuffle.
        time_column: Column to split by time instead of at random.
        weight_column: Column of sample weights: taken out of every part, the train
            rows' kept as :attr:`Splits.train_weight`.

    Returns:
        The three parts, each with a fresh index, and a record of how they were made.

    Raises:
        ValueError: Unknown columns, bad fractions, or too few rows for three parts.
    """
    if target not in df.columns:
        raise ValueError(f"target column {target!r} is not in the data ({len(df.columns)} columns)")
    if time_column is not None and time_column not in df.columns:
        raise ValueError(f"time column {time_column!r} is not in the data")
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions {tuple(fractions)} must be three positive shares summing to 1"
        )
    labelled = df[df[target].notna()]
    dropped = len(df) - len(labelled)
    if dropped:
        log.warning("dropped %d row(s) with a missing target %r", dropped, target)
    if len(labelled) < 3:
        raise ValueError(f"{len(labelled)} labelled row(s): too few to split in three")
    if problem_type == AUTO:
        problem_type = infer_problem_type(labelled[target])
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type {problem_type!r} must be one of {PROBLEM_TYPES} or auto")

    train_share, validation_share, test_share = fractions
    stratified = False
    if time_column is not None:
        train, validation, test = _split_by_time(labelled, time_column, fractions)
    else:
        stratify = labelled[target] if problem_type != "regression" else None
        # A class with too few rows cannot appear in every part; stratifying would fail.
        if stratify is not None and int(stratify.value_counts().min()) < 3:
            log.warning("a class of %r has fewer than 3 rows: splitting without stratify", target)
            stratify = None
        stratified = stratify is not None
        rest, test = train_test_split(
            labelled, test_size=test_share, random_state=seed, stratify=stratify
        )
        inner_stratify = rest[target] if stratified else None
        train, validation = train_test_split(
            rest,
            test_size=validation_share / (train_share + validation_share),
            random_state=seed,
            stratify=inner_stratify,
        )
    info = {
        "target": target,
        "problem_type": problem_type,
        "fractions": list(fractions),
        "seed": seed,
        "time_column": time_column,
        "stratified": stratified,
        "dropped_missing_target": dropped,
    }
    train_weight = None
    if weight_column is not None:
        train_weight = train[weight_column].to_numpy(dtype=float)
        train, validation, test = (
            part.drop(columns=[weight_column]) for part in (train, validation, test)
        )
    return Splits(
        train.reset_index(drop=True),
        validation.reset_index(drop=True),
        test.reset_index(drop=True),
        info,
        train_weight,
    )


def _split_by_time(
    df: pd.DataFrame, time_column: str, fractions: tuple[float, float, float]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cut time-ordered rows: the oldest to train, the newest to test."""
    when = df[time_column]
    if not pd.api.types.is_numeric_dtype(when):
        when = pd.to_datetime(when, errors="coerce", utc=True)
    # A stable sort keeps ties in their original order, so the cut is reproducible.
    # Rows with no time (NaT) sort last and land in test: never train on an unknown date.
    order = np.argsort(when.to_numpy(), kind="stable")
    ordered = df.iloc[order]
    n = len(ordered)
    n_train = max(1, round(n * fractions[0]))
    n_validation = max(1, round(n * fractions[1]))
    n_train = min(n_train, n - n_validation - 1)
    return (
        ordered.iloc[:n_train],
        ordered.iloc[n_train : n_train + n_validation],
        ordered.iloc[n_train + n_validation :],
    )


def _key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"
