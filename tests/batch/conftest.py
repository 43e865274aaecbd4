"""A local lake with two curated churn partitions and a real local MLflow store holding
one model in three versions: v1 Approved (champion), v2 Pending, v3 Rejected."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from include.mlops.batch import BatchRequest
from include.mlops.lake.store import Lake
from include.mlops.training.fit import FittedCandidate
from tests.batch.churn_models import (
    fit_on,
    ingest_churn,
    new_store,
    read_curated,
    register_version,
)

MODEL = "churn_model"
DATASET = "churn"
PARTITIONS = {"2026-11-01": (1_500, 1), "2026-11-02": (900, 2)}


def request(**params) -> BatchRequest:
    """A batch request for this world's model and dataset."""
    return BatchRequest.from_params({"model_name": MODEL, "dataset": DATASET, **params})


@dataclass
class World:
    """Everything a batch transform needs, built once per session."""

    lake: Lake
    client: Any
    uri: str
    experiment_id: str
    rows: dict[str, int]
    frame: pd.DataFrame
    candidate: FittedCandidate
    approved: int
    pending: int
    rejected: int


@pytest.fixture(scope="session", autouse=True)
def _quiet_mlflow() -> Iterator[None]:
    # MLflow logs schema migrations and a pickle advisory on every store and save, and
    # draws a progress bar on every download.
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)
    if bar is None:
        os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
    else:
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, _quiet_mlflow: None) -> World:
    root = tmp_path_factory.mktemp("batch")
    lake = Lake.local(root / "lake")
    rows = ingest_churn(lake, DATASET, PARTITIONS, root)
    frame = read_curated(lake, DATASET)
    candidate = fit_on(frame)
    client, uri, experiment_id = new_store(root / "mlflow")
    common = {"model_name": MODEL, "dataset": DATASET}
    approved = register_version(client, experiment_id, candidate, frame, champion=True, **common)
    pending = register_version(client, experiment_id, candidate, frame, status="Pending", **common)
    rejected = register_version(
        client, experiment_id, candidate, frame, status="Rejected", **common
    )
    return World(lake, client, uri, experiment_id, rows, frame, candidate, approved, pending,
                 rejected)  # fmt: skip
