"""The training snapshot: the curated partitions a run trains on (its data policy), the
columns that are never features, and the single-feature leakage check of the
training-data gate.

Data policy (the training spec's ``data_window_days``, ``use_feedback``,
``recency_half_life_days``): the base dataset's partitions, all or the newest N days,
plus the model's feedback dataset ``<model>_feedback`` (labelled traffic: captured
requests joined with ground truth), each row optionally weighted by the age of its
partition. :func:`plan_training_data` names that data (snapshots, partitions) before a
row is read, so an unattended retrain can tell it would train on exactly what the
champion saw and skip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.mlops.lake import Lake

#: A single feature that alone separates the target this well is a leak, not a signal.
LEAKAGE_AUC = 0.99
#: Column holding each row's partition day while the training data is assembled; it is
#: dropped before the split is written, so it never reaches a model as a feature.
PARTITION_DAY_COLUMN = "__partition_day__"


def feedback_dataset(model_name: str) -> str:
    """The model's labelled traffic (captured requests joined with ground truth)."""
    return f"{model_name}_feedback"


def ground_truth_dataset(model_name: str) -> str:
    """Where the labels of served predictions land (``lake_ingest``)."""
    return f"{model_name}_ground_truth"


def window_partitions(partitions: Iterable[str], days: int | None) -> list[str]:
    """The partitions of the newest ``days`` days, counted back from the newest partition.

    Counting from the newest partition, not from today, keeps a rerun on the same data
    choosing the same rows (no clock in the logic).

    Args:
        partitions: ``YYYY-MM-DD`` partition names.
        days: Window length; ``None`` for every partition.

    Returns:
        The chosen partitions, oldest first.
    """
    ordered = sorted(partitions)
    if days is None or not ordered:
        return ordered
    first = dt.date.fromisoformat(ordered[-1]) - dt.timedelta(days=days - 1)
    return [p for p in ordered if dt.date.fromisoformat(p) >= first]


def partitions_snapshot(catalog: Mapping[str, Any], partitions: Iterable[str]) -> str:
    """The snapshot id of some of a dataset's partitions (all of them: the catalog's own)."""
    from include.mlops.etl.catalog import snapshot_id

    entries = catalog.get("partitions") or {}
    return snapshot_id({"partitions": {p: entries[p] for p in partitions}})


def combined_snapshot(base: str, feedback: str | None) -> str:
    """One id for base + feedback data (the base snapshot itself without feedback)."""
    if not feedback:
        return base
    return hashlib.sha256(f"{base}+{feedback}".encode()).hexdigest()


@dataclass(frozen=True)
class DataPlan:
    """What a run would train on, named before a row is read.

    Attributes:
        base: ``{"dataset", "snapshot_id", "partitions"}`` of the base dataset (windowed).
        feedback: The same for ``<model>_feedback``, or ``None`` when it is not used or
            holds nothing yet.
    """

    base: dict[str, Any]
    feedback: dict[str, Any] | None

    @property
    def snapshot_id(self) -> str:
        """The combined snapshot (:func:`combined_snapshot`)."""
        return combined_snapshot(self.base["snapshot_id"], (self.feedback or {}).get("snapshot_id"))

    def snapshots(self) -> dict[str, str]:
        """``{dataset: snapshot_id}`` of every dataset used."""
        out = {self.base["dataset"]: self.base["snapshot_id"]}
        if self.feedback:
            out[self.feedback["dataset"]] = self.feedback["snapshot_id"]
        return out


def plan_training_data(
    lake: Lake,
    *,
    dataset: str,
    model_name: str,
    window_days: int | None = None,
    use_feedback: bool = True,
) -> DataPlan:
    """Which partitions of the base and feedback datasets a run trains on.

    Raises:
        FileNotFoundError: The base dataset has no curated partition (in the window).
    """
    from include.mlops.etl.catalog import load_catalog

    catalog = load_catalog(lake, dataset)
    if not catalog or not catalog.get("partitions"):
        raise FileNotFoundError(
            f"dataset {dataset!r} has no curated partitions (catalog {lake.uri(f'catalog/{dataset}/schema.json')}); "
            "ingest it with lake_ingest first"
        )
    partitions = window_partitions(catalog["partitions"], window_days)
    base = {
        "dataset": dataset,
        "snapshot_id": partitions_snapshot(catalog, partitions),
        "partitions": partitions,
    }
    feedback = None
    if use_feedback:
        name = feedback_dataset(model_name)
        fb_catalog = load_catalog(lake, name)
        if fb_catalog and fb_catalog.get("partitions"):
            fb_partitions = sorted(fb_catalog["partitions"])
            feedback = {
                "dataset": name,
                "snapshot_id": partitions_snapshot(fb_catalog, fb_partitions),
                "partitions": fb_partitions,
                "rows": int(
                    sum(int(e.get("rows") or 0) for e in fb_catalog["partitions"].values())
                ),
            }
    return DataPlan(base=base, feedback=feedback)


def stored_data_block(spec: Mapping[str, Any], data_snapshot: str | None) -> dict[str, Any]:
    """A version's training data as its stored spec names it.

    Specs written before the data policy have no ``data`` block: their version trained
    on every partition of ``dataset`` (snapshot = the ``data_snapshot`` tag), no feedback.
    """
    block = spec.get("data")
    if isinstance(block, Mapping) and block.get("base"):
        return dict(block)
    return {
        "base": {"dataset": spec.get("dataset"), "snapshot_id": data_snapshot, "partitions": None},
        "feedback": None,
    }


def same_data(plan: DataPlan, stored: Mapping[str, Any]) -> bool:
    """Whether a plan names exactly the snapshots a version trained on."""
    base = stored.get("base") or {}
    feedback = stored.get("feedback") or {}
    return (
        plan.base["dataset"] == base.get("dataset")
        and plan.base["snapshot_id"] == base.get("snapshot_id")
        and (plan.feedback or {}).get("snapshot_id") == (feedback.get("snapshot_id") or None)
    )


def waiting_message(
    model_name: str, version: str | int, plan: DataPlan, *, use_feedback: bool
) -> str:
    """Why an unattended retrain does not train: which data it already has, which it awaits."""
    base = f"{plan.base['dataset']} snapshot {plan.base['snapshot_id'][:12]}"
    if not use_feedback:
        have, wait = base, f"new data in {plan.base['dataset']}"
    else:
        if plan.feedback:
            have = f"{base} and {plan.feedback['dataset']} snapshot {plan.feedback['snapshot_id'][:12]}"
        else:
            have = f"{base} (no labelled traffic yet: {feedback_dataset(model_name)} is empty)"
        wait = f"new data in {plan.base['dataset']} or labels in {ground_truth_dataset(model_name)}"
    return f"{model_name} v{version} already trained on {have}; waiting for {wait}"


def recent_partitions(
    feedback: Iterable[str], champion_feedback: Iterable[str] | None
) -> list[str]:
    """Feedback partitions newer than any the champion trained on (all without any)."""
    seen = sorted(champion_feedback or [])
    return [p for p in sorted(feedback) if not seen or p > seen[-1]]


def load_partitions(lake: Lake, dataset: str, partitions: Sequence[str]) -> pd.DataFrame:
    """Some curated partitions of a dataset, each row tagged with its partition day
    (:data:`PARTITION_DAY_COLUMN`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.mlops.etl.catalog import curated_paths

    paths = curated_paths(lake, dataset, partitions)
    tables = []
    for day, path in zip(sorted(partitions), paths, strict=True):
        table = pq.read_table(path, filesystem=lake.fs)
        tables.append(table.append_column(PARTITION_DAY_COLUMN, pa.array([day] * table.num_rows)))
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    return table.to_pandas()


def recency_weights(days: pd.Series, half_life_days: float) -> np.ndarray:
    """``0.5 ** (age / half_life)`` per row, the age in days behind the newest partition day.

    Args:
        days: Each row's partition day (``YYYY-MM-DD``).
        half_life_days: After this many days a row counts half as much.
    """
    import numpy as np
    import pandas as pd

    when = pd.to_datetime(days)
    age = (when.max() - when).dt.days.to_numpy(dtype=float)
    return np.asarray(0.5 ** (age / float(half_life_days)), dtype=float)


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
