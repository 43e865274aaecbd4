"""The feature pipeline: raw columns in, a numeric matrix out, saved with the model.

Column roles are inferred from dtypes and content (:func:`infer_column_roles`):

- numeric: median imputation, plus standard scaling for algorithms that need it;
- low-cardinality categorical: most-frequent imputation, one-hot encoding with rare
  categories grouped into one "infrequent" column, which also receives categories never
  seen in training;
- high-cardinality categorical (more than :data:`HIGH_CARDINALITY` distinct values):
  scikit-learn's ``TargetEncoder`` (cross-fitted, so the encoding does not leak the
  target of the row being encoded);
- dates (datetime dtype, or text that parses as ISO-8601 dates): year, month, day of
  week, day of year and days since 1970-01-01;
- dropped: identifiers (``id``/``*_id`` names, or text/integers unique per row), empty
  and constant columns, and whatever the caller excludes (the target, PII).

Serving applies the fitted pipeline to raw request records, whose types are looser than
the curated Parquet (numbers may arrive as text, dates as strings), so each branch first
coerces its columns. Every step is a module-level function or a scikit-learn object, so
the fitted pipeline pickles and unpickles in another process.

Scoring compiles the fitted pipeline to plain NumPy: see
:mod:`include.mlops.features.fast_path`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

log = logging.getLogger(__name__)

#: Categorical columns with more distinct values than this get target encoding.
HIGH_CARDINALITY = 30
#: Algorithms whose fit depends on feature scale (regularised linear models).
SCALED_ALGORITHMS = frozenset({"logistic_regression", "ridge", "linear_regression"})
#: A category seen in fewer training rows than this (and than 1% of rows) is "infrequent".
RARE_CATEGORY_MIN_ROWS = 5
RARE_CATEGORY_MIN_SHARE = 0.01
#: Share of non-missing text values that must parse as dates for a column to be a date.
DATE_PARSE_SHARE = 0.95
DATE_PARTS: tuple[str, ...] = ("year", "month", "day_of_week", "day_of_year", "days_since_epoch")

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid)$|^(id|uuid|guid)_", re.IGNORECASE)
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
# Strings that merely look numeric ("12", "3.5") must not count as dates.
_NUMERIC_TEXT = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")


@dataclass
class ColumnRoles:
    """What the pipeline does with each input column.

    Attributes:
        numeric: Numeric columns (imputed, maybe scaled).
        categorical: Low-cardinality categorical columns (one-hot encoded).
        high_cardinality: Categorical columns with many values (target encoded).
        dates: Date or datetime columns (expanded into date parts).
        dropped: Column → why it is not used.
    """

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    high_cardinality: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def used(self) -> list[str]:
        """Every column the pipeline reads, in role order."""
        return [*self.numeric, *self.categorical, *self.high_cardinality, *self.dates]


def infer_column_roles(
    X: pd.DataFrame, *, exclude: Iterable[str] = (), high_cardinality: int = HIGH_CARDINALITY
) -> ColumnRoles:
    """Decide each column's role from its dtype, its name and its values.

    Args:
        X: Training features (the target may be present if listed in ``exclude``).
        exclude: Columns never used as features (the target, PII, leakage).
        high_cardinality: Distinct values above which a categorical is target encoded.

    Returns:
        The columns of each role, and why each dropped column is dropped.
    """
    excluded = set(exclude)
    roles = ColumnRoles()
    n_rows = len(X)
    for name in X.columns:
        column = X[name]
        values = column.dropna()
        n_distinct = int(values.nunique())
        if name in excluded:
            roles.dropped[name] = "excluded"
        elif n_distinct == 0:
            roles.dropped[name] = "empty"
        elif n_distinct == 1:
            roles.dropped[name] = "constant"
        elif _ID_NAME.search(str(name)):
            roles.dropped[name] = "identifier (name)"
        elif _is_date(column):
            roles.dates.append(name)
        elif pd.api.types.is_bool_dtype(column):
            roles.categorical.append(name)
        elif pd.api.types.is_numeric_dtype(column):
            if _is_row_number(values, n_rows):
                roles.dropped[name] = "identifier (row number)"
            else:
                roles.numeric.append(name)
        elif n_rows >= 10 and n_distinct == n_rows:
            # Text unique to every row (keys, e-mails, free text) cannot generalise.
            roles.dropped[name] = "identifier (unique per row)"
        elif n_distinct > high_cardinality:
            roles.high_cardinality.append(name)
        else:
            roles.categorical.append(name)
    return roles


def build_preprocessor(
    X: pd.DataFrame,
    *,
    algorithm: str,
    exclude: Iterable[str] = (),
    problem_type: str | None = None,
    seed: int = 0,
) -> ColumnTransformer:
    """Build the (unfitted) column transformer for a training frame.

    Args:
        X: Training features; roles and the rare-category cut are read from it.
        algorithm: Algorithm name; linear ones get standard scaling.
        exclude: Columns never used as features (the target, PII).
        problem_type: ``binary``, ``multiclass`` or ``regression``; tells the target
            encoder what kind of target it encodes (``None`` lets it guess, which reads
            a whole-numbered regression target as classes).
        seed: Seed of the target encoder's cross-fitting folds.

    Returns:
        A ``ColumnTransformer`` that outputs a dense float matrix.

    Raises:
        ValueError: No usable feature column is left.
    """
    roles = infer_column_roles(X, exclude=exclude)
    if not roles.used:
        raise ValueError(
            f"no usable feature columns: every column was dropped ({roles.dropped or 'none given'})"
        )
    numeric_steps: list[tuple[str, Any]] = [
        ("coerce", FunctionTransformer(to_numeric_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if algorithm in SCALED_ALGORITHMS:
        numeric_steps.append(("scale", StandardScaler()))
    min_rows = max(RARE_CATEGORY_MIN_ROWS, int(RARE_CATEGORY_MIN_SHARE * len(X)))
    transformers: list[tuple[str, Any, list[str]]] = []
    if roles.numeric:
        transformers.append(("num", Pipeline(numeric_steps), roles.numeric))
    if roles.categorical:
        categorical = Pipeline(
            [
                ("as_text", FunctionTransformer(to_text_frame, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="most_frequent", missing_values=np.nan)),
                (
                    "onehot",
                    OneHotEncoder(
                        min_frequency=min_rows,
                        handle_unknown="infrequent_if_exist",
                        sparse_output=False,
                    ),
                ),
            ]
        )
        transformers.append(("cat", categorical, roles.categorical))
    if roles.high_cardinality:
        target_type = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}
        folds = (
            KFold(5, shuffle=True, random_state=seed)
            if problem_type == "regression"
            else StratifiedKFold(5, shuffle=True, random_state=seed)
        )
        encoder = Pipeline(
            [
                ("as_text", FunctionTransformer(to_text_frame, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="most_frequent", missing_values=np.nan)),
                (
                    "target",
                    TargetEncoder(
                        target_type=target_type.get(problem_type or "", "auto"), cv=folds
                    ),
                ),
            ]
        )
        transformers.append(("high", encoder, roles.high_cardinality))
    if roles.dates:
        date_steps: list[tuple[str, Any]] = [
            ("parts", FunctionTransformer(date_parts, feature_names_out=date_part_names)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ]
        if algorithm in SCALED_ALGORITHMS:
            # Days since 1970 are ~20,000: unscaled, they swamp a regularised linear fit.
            date_steps.append(("scale", StandardScaler()))
        transformers.append(("date", Pipeline(date_steps), roles.dates))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def feature_names(pipeline: Pipeline | ColumnTransformer) -> list[str]:
    """Names of the columns the model sees, readable in an importance plot.

    The transformer prefix (``num__``) is removed: ``num__age`` becomes ``age``,
    ``cat__plan_basic`` becomes ``plan_basic``, ``date__signup_date_year`` becomes
    ``signup_date_year``.

    Args:
        pipeline: A fitted model pipeline (with a ``features`` step) or its column transformer.

    Returns:
        One name per model input column, in order.
    """
    transformer = pipeline.named_steps["features"] if isinstance(pipeline, Pipeline) else pipeline
    return [str(name).split("__", 1)[-1] for name in transformer.get_feature_names_out()]


def input_columns(pipeline: Pipeline | ColumnTransformer) -> list[str]:
    """The raw columns a fitted pipeline reads (what a request must carry).

    Args:
        pipeline: A fitted model pipeline (with a ``features`` step) or its column transformer.

    Returns:
        Column names in the order the transformer lists them.
    """
    transformer = pipeline.named_steps["features"] if isinstance(pipeline, Pipeline) else pipeline
    columns: list[str] = []
    for _, step, cols in transformer.transformers_:
        if isinstance(cols, list) and not (isinstance(step, str) and step == "drop"):
            columns.extend(str(c) for c in cols)
    return columns


# -- picklable column transforms (module level on purpose: no lambdas) ----------------------
def to_numeric_frame(X: Any) -> pd.DataFrame:
    """Coerce every column to float; text that is not a number becomes missing."""
    frame = pd.DataFrame(X)
    return frame.apply(lambda col: pd.to_numeric(col, errors="coerce")).astype(float)


def to_text_frame(X: Any) -> np.ndarray:
    """Turn every value into text (``True`` → ``"True"``, ``3`` → ``"3"``), keep missing.

    One-hot and target encoders need one value type per column; requests may send the
    same category as ``1`` or ``"1"``, which must land in the same column.
    """
    frame = pd.DataFrame(X)
    out = np.empty(frame.shape, dtype=object)
    for j, name in enumerate(frame.columns):
        column = frame[name]
        missing = column.isna().to_numpy()
        out[:, j] = np.where(missing, np.nan, column.astype(object).map(_as_text).to_numpy())
    return out


def date_parts(X: Any) -> np.ndarray:
    """Expand each date column into :data:`DATE_PARTS` (floats; unparseable → NaN)."""
    frame = pd.DataFrame(X)
    blocks = []
    for name in frame.columns:
        when = _to_utc_datetime(frame[name])
        days = (when - _EPOCH).dt.total_seconds() / 86400.0
        blocks.append(
            np.column_stack(
                [
                    when.dt.year.astype(float),
                    when.dt.month.astype(float),
                    when.dt.day_of_week.astype(float),
                    when.dt.day_of_year.astype(float),
                    days.astype(float),
                ]
            )
        )
    return np.hstack(blocks) if blocks else np.empty((len(frame), 0))


def date_part_names(transformer: Any, input_features: Any) -> np.ndarray:
    """Output names of :func:`date_parts` (``signup_date_year``, ...)."""
    return np.asarray([f"{name}_{part}" for name in input_features for part in DATE_PARTS])


def _as_text(value: Any) -> str:
    # 3.0 and 3 are the same category whether it came from Parquet or JSON.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_utc_datetime(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column, errors="coerce", utc=True)
    text = column.astype(object).where(column.notna(), None)
    return pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")


def _is_date(column: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return False
    sample = column.dropna().astype(str).head(500)
    if sample.empty or sample.str.match(_NUMERIC_TEXT).any():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="ISO8601")
    return bool(parsed.notna().mean() >= DATE_PARSE_SHARE)


def _is_row_number(values: pd.Series, n_rows: int) -> bool:
    """Whole numbers unique per row and densely packed: a row counter, not a measurement.

    The training split is a shuffled subset of the rows, so a counter over the whole
    dataset is not consecutive within it; "dense" allows gaps up to half the range.
    """
    if n_rows < 10 or len(values) != n_rows or int(values.nunique()) != n_rows:
        return False
    numbers = values.astype(float).to_numpy()
    if not np.all(numbers == np.round(numbers)):
        return False
    return bool(numbers.max() - numbers.min() + 1 <= 2 * n_rows)
