"""Curated partitions written the way the lake writes them (Parquet + catalog entry),
for tests of the training data policy: a base dataset and a model's feedback dataset."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from include.mlops.lake import Lake


def churn_rows(n: int, *, seed: int, start_id: int, flip: bool = False) -> pd.DataFrame:
    """Rows whose label follows ``x`` (or its opposite with ``flip``)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    noise = rng.normal(0, 0.7, n)
    churned = ((-x if flip else x) + noise > 0).astype("int64")
    return pd.DataFrame({
        "customer_id": np.arange(start_id, start_id + n, dtype="int64"),
        "x": x, "tenure": rng.integers(1, 60, n).astype("int64"),
        "plan": rng.choice(["basic", "pro"], n), "churned": churned,
    })  # fmt: skip


def write_partition(lake: Lake, dataset: str, day: str, df: pd.DataFrame) -> None:
    """Publish ``df`` as ``curated/<dataset>/dt=<day>/`` and record it in the catalog."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.mlops.etl.catalog import load_catalog, record_partition
    from include.mlops.etl.naming import curated_key
    from include.mlops.etl.schema import DatasetSchema, infer_schema

    table = pa.Table.from_pandas(df, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    data = buffer.getvalue()
    lake.write_bytes(curated_key(dataset, day), data)
    catalog = load_catalog(lake, dataset)
    schema = DatasetSchema.from_dict(catalog["schema"]) if catalog else infer_schema(table, dataset)
    result = {
        "dataset": dataset, "partition": day, "rows_curated": len(df), "rows_quarantined": 0,
        "content_hash": hashlib.sha256(data).hexdigest(), "bytes": len(data), "run_id": f"t-{day}",
    }  # fmt: skip
    record_partition(lake, dataset, schema, result)


def feedback_rows(n: int, *, seed: int, start_id: int, day: str) -> pd.DataFrame:
    """Labelled traffic as the feedback contract has it: the base columns + serving ones."""
    rows = churn_rows(n, seed=seed, start_id=start_id)
    rows["inference_id"] = [f"inf-{start_id + i}" for i in range(n)]
    rows["served_at"] = pd.Timestamp(day, tz="UTC")
    rows["model_version"] = "1"
    return rows
