"""A real MLflow store on local files per test, and one small fitted churn pipeline."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.features.pipeline import input_columns
from include.mlops.features.split import Splits, split_dataset
from include.mlops.registry import RegisteredVersion, register_candidate
from include.mlops.training.fit import FittedCandidate, fit_candidate


@dataclass
class Fitted:
    """A fitted candidate with the data it came from."""

    candidate: FittedCandidate
    splits: Splits

    @property
    def test_features(self) -> pd.DataFrame:
        return self.splits.test.drop(columns=[TARGET_COLUMN])


@pytest.fixture(scope="session")
def fitted() -> Fitted:
    """Logistic regression on 500 demo rows: the real feature pipeline, fitted in ~0.1 s."""
    splits = split_dataset(generate_churn(500), target=TARGET_COLUMN, problem_type="binary", seed=0)
    candidate = fit_candidate(
        "logistic_regression",
        None,
        splits,
        target=TARGET_COLUMN,
        problem_type="binary",
        exclude=["email"],
    )
    return Fitted(candidate=candidate, splits=splits)


@pytest.fixture(autouse=True)
def _quiet_mlflow() -> Iterator[None]:
    # MLflow logs schema migrations and a pickle advisory on every store and save.
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


@pytest.fixture(autouse=True)
def _no_global_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if anything falls back to MLflow's global store (./mlflow.db, ./mlruns)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    yield
    assert sorted(p.name for p in cwd.iterdir()) == [], "something used MLflow's global store"


@dataclass
class Store:
    """A local MLflow tracking + registry store and one experiment."""

    client: mlflow.MlflowClient
    uri: str
    experiment_id: str
    artifacts: Path

    def new_run(self, name: str = "tune") -> str:
        """A finished run, as the tuning run is when registration happens."""
        run = self.client.create_run(self.experiment_id, run_name=name)
        self.client.set_terminated(run.info.run_id)
        return str(run.info.run_id)


@pytest.fixture(scope="session")
def empty_store_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema: migrating one takes 1-3 s, copying it ms."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


@pytest.fixture
def store(tmp_path: Path, empty_store_db: Path) -> Store:
    shutil.copyfile(empty_store_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifacts = tmp_path / "artifacts"
    experiment_id = client.create_experiment("train_model", artifact_location=str(artifacts))
    return Store(client=client, uri=uri, experiment_id=experiment_id, artifacts=artifacts)


EVALUATION_FILES = {
    "metrics.json": b'{"metrics": {"roc_auc": 0.8}}',
    "roc.png": b"\x89PNG fake",
    "model_card.md": "# churn\nA card.",
}


def _register(store: Store, fitted: Fitted, **overrides: Any) -> RegisteredVersion:
    pipeline = fitted.candidate.pipeline
    train = fitted.splits.train
    arguments: dict[str, Any] = {
        "model_name": "churn",
        "run_id": store.new_run(),
        "pipeline": pipeline,
        "input_example": fitted.test_features.head(3),
        "metrics": {
            "roc_auc": 0.81,
            "f1": 0.62,
            "confusion_matrix": [[1, 2], [3, 4]],
            "threshold": 0.4,
        },
        "baseline_metrics": {"roc_auc": 0.5, "f1": 0.0},
        "evaluation_dir_or_files": EVALUATION_FILES,
        "drift_baseline": compute_drift_baseline(
            train, features=input_columns(pipeline), target=TARGET_COLUMN
        ),
        "training_spec": {
            "dataset": "churn",
            "target": TARGET_COLUMN,
            "algorithm": "logistic_regression",
            "params": fitted.candidate.params,
        },
        "dataset": "churn",
        "data_snapshot": "snap-0001",
        "git_sha": "abc1234",
        "objective": "roc_auc",
        "objective_value": 0.81,
    }
    arguments.update(overrides)
    return register_candidate(store.client, **arguments)


Register = Callable[..., RegisteredVersion]


@pytest.fixture
def register(store: Store, fitted: Fitted) -> Register:
    """``register(**overrides)``: register the fitted pipeline with realistic arguments."""
    return lambda **overrides: _register(store, fitted, **overrides)
