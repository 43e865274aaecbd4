"""Helpers shared by the batch-transform unit and integration tests (and the benchmark):
curated churn partitions in a lake, a pipeline fitted on them, registered versions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.mlops.demo.churn import TARGET_COLUMN
from include.mlops.demo.landing import write_landing_file
from include.mlops.etl.catalog import curated_paths
from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.features.pipeline import input_columns
from include.mlops.features.split import split_dataset
from include.mlops.lake.store import Lake
from include.mlops.registry import approve_version, register_candidate, reject_version
from include.mlops.training.fit import FittedCandidate, fit_candidate
from tests.lake_seed import ingest_file

#: A quick XGBoost: the real algorithm, fitted in well under a second on a few thousand rows.
FAST_XGBOOST = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2}
THRESHOLD = 0.4


def ingest_churn(
    lake: Lake, dataset: str, partitions: Mapping[str, tuple[int, int]], work_dir: Path
) -> dict[str, int]:
    """Ingest ``{partition: (rows, seed)}`` of demo churn data as curated partitions.

    Returns:
        Curated rows per partition.
    """
    rows: dict[str, int] = {}
    for partition, (n_rows, seed) in partitions.items():
        source = work_dir / f"{dataset}-{partition}.parquet"
        write_landing_file(source, fmt="parquet", n_rows=n_rows, seed=seed,
                           start_id=1 + 1_000_000 * seed)  # fmt: skip
        result = ingest_file(lake, dataset, source, partition, run_id=f"seed_{partition}")
        rows[partition] = result.rows_curated
    return rows


def read_curated(lake: Lake, dataset: str, partitions: list[str] | None = None) -> pd.DataFrame:
    """Curated partitions as one frame, converted the way training converts them."""
    tables = [
        pq.read_table(p, filesystem=lake.fs) for p in curated_paths(lake, dataset, partitions)
    ]
    return pa.concat_tables(tables).to_pandas()


def fit_on(
    frame: pd.DataFrame,
    *,
    algorithm: str = "xgboost",
    target: str = TARGET_COLUMN,
    problem_type: str = "binary",
    params: dict[str, Any] | None = None,
) -> FittedCandidate:
    """Fit the real feature pipeline + algorithm on curated rows (PII excluded)."""
    splits = split_dataset(frame, target=target, problem_type=problem_type, seed=0)
    if params is None and algorithm == "xgboost":
        params = dict(FAST_XGBOOST)
    exclude = ["email"] + ([TARGET_COLUMN] if target != TARGET_COLUMN else [])
    return fit_candidate(algorithm, params, splits, target=target, problem_type=problem_type,
                         exclude=exclude)  # fmt: skip


def register_version(
    client: mlflow.MlflowClient,
    experiment_id: str,
    candidate: FittedCandidate,
    frame: pd.DataFrame,
    *,
    model_name: str,
    dataset: str,
    status: str = "Approved",
    champion: bool = False,
) -> int:
    """Register a fitted pipeline as a new version and give it ``status``.

    Returns:
        The version number.
    """
    from include.mlops.registry import set_champion

    run = client.create_run(experiment_id, run_name="tune")
    client.set_terminated(run.info.run_id)
    pipeline = candidate.pipeline
    columns = input_columns(pipeline)
    metrics: dict[str, Any] = {"roc_auc": 0.8}
    if candidate.problem_type == "binary":
        metrics["threshold"] = THRESHOLD
    registered = register_candidate(
        client,
        model_name=model_name,
        run_id=run.info.run_id,
        pipeline=pipeline,
        input_example=frame[columns].head(5),
        metrics=metrics,
        baseline_metrics={"roc_auc": 0.5},
        evaluation_dir_or_files={"metrics.json": b"{}"},
        drift_baseline=compute_drift_baseline(frame, features=columns, target=candidate.target),
        training_spec={"dataset": dataset, "target": candidate.target,
                       "algorithm": candidate.algorithm, "params": candidate.params},
        dataset=dataset,
        data_snapshot="snap",
        git_sha="abc1234",
        objective="roc_auc",
        objective_value=0.8,
    )  # fmt: skip
    if status == "Approved":
        approve_version(client, model_name, registered.version, actor="tester")
    elif status == "Rejected":
        reject_version(client, model_name, registered.version, actor="tester", comment="no")
    if champion:
        set_champion(client, model_name, registered.version)
    return int(registered.version)


def new_store(folder: Path) -> tuple[mlflow.MlflowClient, str, str]:
    """A local MLflow store (SQLite + artifacts folder): ``(client, uri, experiment_id)``."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        "train_model", artifact_location=str(folder / "artifacts")
    )
    return client, uri, experiment_id
