"""The training snapshot: every curated partition of a dataset, the columns that are never
features, and the single-feature leakage check of the training-data gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from include.mlops.lake import Lake

#: A single feature that alone separates the target this well is a leak, not a signal.
LEAKAGE_AUC = 0.99


def load_curated(lake: Lake, dataset: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every curated partition of a dataset and its catalog entry (the snapshot)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.mlops.etl.catalog import curated_paths, load_catalog

    catalog = load_catalog(lake, dataset)
    if not catalog or not catalog.get("partitions"):
        raise FileNotFoundError(
            f"dataset {dataset!r} has no curated partitions (catalog {lake.uri(f'catalog/{dataset}/schema.json')}); "
            "ingest it with lake_ingest first"
        )
    paths = curated_paths(lake, dataset)
    tables = [pq.read_table(p, filesystem=lake.fs) for p in paths]
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    return table.to_pandas(), catalog


def excluded_columns(catalog: Mapping[str, Any], target: str) -> list[str]:
    """Columns never used as features: PII and keys (the target is handled separately)."""
    schema = catalog.get("schema") or {}
    out = [c["name"] for c in schema.get("columns", []) if c.get("pii")]
    out += [k for k in schema.get("key", []) if k != target]
    return out


def leakage_scores(
    df: pd.DataFrame, *, target: str, features: Sequence[str], seed: int = 0
) -> dict[str, float]:
    """Single-feature ROC-AUC of each feature against the target (classification).

    Numeric and date features are scored as they are; categorical ones through their
    per-category target rate, computed out of fold (5 folds) so that a near-unique
    column cannot "predict" the labels it was encoded from. ``max(auc, 1 - auc)``, so
    a feature predicting the negative class counts too. Multiclass targets are scored
    one-vs-rest on the most frequent class.
    """
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold

    y_raw = df[target]
    positive = (
        y_raw.value_counts().index[0]
        if y_raw.nunique() > 2
        else sorted(y_raw.dropna().unique())[-1]
    )
    y = pd.Series((y_raw == positive).to_numpy(dtype=float), index=df.index)
    if y.nunique() < 2:
        return {}
    folds = list(KFold(n_splits=5, shuffle=True, random_state=seed).split(df))
    scores: dict[str, float] = {}
    for name in features:
        col = df[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            col = col.astype("int64").where(col.notna())
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            as_float = col.astype("float64")
            values = as_float.fillna(as_float.median()).to_numpy()
        else:
            codes = col.astype("string").fillna("__missing__")
            values = np.full(len(df), y.mean())
            for train_idx, test_idx in folds:
                rates = y.iloc[train_idx].groupby(codes.iloc[train_idx].to_numpy()).mean()
                mapped = codes.iloc[test_idx].map(rates).astype("float64")
                values[test_idx] = mapped.fillna(y.iloc[train_idx].mean()).to_numpy()
        if np.nanstd(values) == 0:
            continue
        auc = float(roc_auc_score(y, values))
        scores[name] = round(max(auc, 1 - auc), 4)
    return scores
