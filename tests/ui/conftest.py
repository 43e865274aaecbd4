"""The UI app over real HTTP: a real lake (SeaweedFS), a real MLflow store, Airflow's auth.

The app is mounted under ``/mlops`` in a parent FastAPI app, as the plugin mounts it in
the API server, and served by uvicorn on a free port. Tokens are minted and validated
by Airflow's own SimpleAuthManager (its revocation check needs the metadata DB).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Names no other test module uses: the session's lake bucket is shared.
MODEL = "ui_view_model"
DATASET = "ui_view_data"


@dataclass
class Reply:
    """An HTTP response, whatever its status."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class UIServer:
    """The served app and how to call it."""

    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def get(
        self,
        path: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        accept: str = "application/json",
    ) -> Reply:
        """GET ``path`` (raw: no normalisation of ``..``), no redirect followed."""
        headers = {"Accept": accept}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cookie:
            headers["Cookie"] = f"_token={cookie}"
        request = urllib.request.Request(self.url + path, headers=headers)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="session")
def auth_manager(airflow_db: Path) -> Any:
    """Airflow's SimpleAuthManager, as the API server creates it."""
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
    from airflow.api_fastapi.app import create_auth_manager

    return create_auth_manager()


@pytest.fixture(scope="session")
def mint(auth_manager: Any) -> Any:
    """``mint(role="admin", seconds=3600)``: a JWT as Airflow's login issues it."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def _mint(role: str | None = "admin", seconds: int = 3600, name: str = "admin") -> str:
        user = SimpleAuthManagerUser(username=name, role=role)
        return str(auth_manager.generate_jwt(user, expiration_time_in_seconds=seconds))

    return _mint


@dataclass
class Registry:
    """A local MLflow store holding one model with two versions."""

    uri: str
    client: Any
    model: str
    run_id: str
    experiment_id: str


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """v1 Approved and champion, v2 Approved and canary at 10 %, v3 pending."""
    import mlflow

    from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
    from include.mlops.evaluation.baseline import compute_drift_baseline
    from include.mlops.features.pipeline import input_columns
    from include.mlops.features.split import split_dataset
    from include.mlops.registry import approve_version, register_candidate, set_champion
    from include.mlops.serving.config import set_variant
    from include.mlops.training.fit import fit_candidate

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    folder = tmp_path_factory.mktemp("ui-mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("ui", artifact_location=str(folder / "artifacts"))
    splits = split_dataset(generate_churn(400), target=TARGET_COLUMN, problem_type="binary", seed=0)
    fitted = fit_candidate(
        "logistic_regression",
        None,
        splits,
        target=TARGET_COLUMN,
        problem_type="binary",
        exclude=["email"],
    )
    columns = input_columns(fitted.pipeline)
    run_ids = []
    for value in (0.81, 0.84, 0.79):
        run = client.create_run(experiment, run_name="tune")
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
        register_candidate(
            client,
            model_name=MODEL,
            run_id=run.info.run_id,
            pipeline=fitted.pipeline,
            input_example=splits.test[columns].head(3),
            metrics={"roc_auc": value, "f1": 0.6},
            baseline_metrics={"roc_auc": 0.5},
            evaluation_dir_or_files={"metrics.json": "{}"},
            drift_baseline=compute_drift_baseline(
                splits.train, features=columns, target=TARGET_COLUMN
            ),
            training_spec={"dataset": DATASET, "target": TARGET_COLUMN},
            dataset=DATASET,
            data_snapshot="f00dfeed" * 8,
            git_sha="abc1234",
            objective="roc_auc",
            objective_value=value,
        )
    approve_version(client, MODEL, 1, actor="alice", comment="baseline <ok>")
    approve_version(client, MODEL, 2, actor="bob", comment=None)
    set_champion(client, MODEL, 1)
    set_variant(client, MODEL, "canary", 2, percent=10)
    return Registry(uri, client, MODEL, run_ids[0], str(experiment))


@pytest.fixture(scope="session")
def ui_lake(s3_server: Any) -> Any:
    """The session lake with this module's catalog entry, reports and monitoring runs."""
    from include.mlops.etl.catalog import record_partition
    from include.mlops.etl.schema import DatasetSchema
    from include.mlops.monitoring.report import write_report

    lake = s3_server.lake()
    schema = DatasetSchema.from_dict(
        {
            "dataset": DATASET,
            "version": 1,
            "columns": [
                {"name": "id", "type": "int64", "nullable": False},
                {"name": "x", "type": "float64", "nullable": True},
            ],
            "key": ["id"],
        }
    )
    docs = f"reports/quality/{DATASET}/run_1/docs/index.html"
    lake.write_bytes(docs, b"<html><body><h1>Data Docs</h1><img src='chart.png'></body></html>")
    lake.write_bytes(f"reports/quality/{DATASET}/run_1/docs/chart.png", b"\x89PNG\r\n\x1a\nfake")
    lake.write_bytes(f"reports/quality/{DATASET}/run_1/summary.json", b'{"score": 0.9}')
    lake.write_bytes(f"reports/evaluation/{MODEL}/1/model_card.html", b"<h1>card v1</h1>")
    lake.write_bytes(f"reports/evaluation/{MODEL}/1/roc.png", b"\x89PNG\r\n\x1a\nroc")
    lake.write_bytes(f"catalog/{DATASET}/secret.json", b'{"not": "a report"}')
    for i, (partition, quarantined, score) in enumerate(
        (("2026-11-01", 3, 1.0), ("2026-11-02", 12, 0.75))
    ):
        record_partition(
            lake,
            DATASET,
            schema,
            {
                "dataset": DATASET,
                "partition": partition,
                "rows_curated": 100 + i,
                "rows_quarantined": quarantined,
                "reasons": {"wrong_type": quarantined},
                "content_hash": f"hash{i}",
                "bytes": 1000,
                "run_id": f"run_{i}",
            },
            quality_score=score,
            quality_report_uri=lake.uri(docs),
            now=dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC),
        )
    for hour, drift in ((9, False), (10, True)):
        report = {
            "model_name": MODEL,
            "version": 1,
            "window": {
                "start": f"2026-11-02T{hour:02d}:00:00+00:00",
                "end": f"2026-11-02T{hour + 1:02d}:00:00+00:00",
                "rows": 500,
            },
            "dataset_drift": drift,
            "features": {
                "tenure": {
                    "drift": drift,
                    "method": "psi",
                    "score": 0.31 if drift else 0.01,
                    "threshold": 0.2,
                },
                "plan": {"drift": False, "method": "chi_square", "score": 0.5, "threshold": 0.05},
            },
            "prediction_drift": {"drift": False},
            "model_quality": None,
            "violations": [{"feature_name": "tenure", "description": "tenure drifted <psi>"}]
            if drift
            else [],
        }
        write_report(lake, report, model_name=MODEL, run_id=f"scheduled__2026-11-02T{hour:02d}")
        time.sleep(0.01)
    return lake


@pytest.fixture(scope="session")
def ui_server(ui_lake: Any, registry: Registry, auth_manager: Any) -> Iterator[UIServer]:
    """The app under ``/mlops`` behind real uvicorn, validating tokens with Airflow."""
    import uvicorn
    from fastapi import FastAPI

    from include.mlops.airflow.ui import AirflowAuthenticator
    from include.mlops.stack.process import free_port
    from include.mlops.ui.app import UIConfig, create_app

    config = UIConfig(
        settings=ui_lake_settings(ui_lake),
        base_path="/mlops",
        mlflow_ui_url="http://mlflow.example:5000",
    )
    root = FastAPI()
    root.mount(
        "/mlops",
        create_app(
            config,
            authenticator=AirflowAuthenticator(),
            lake=ui_lake,
            mlflow_client=registry.client,
        ),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield UIServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ui_lake_settings(lake: Any) -> Any:
    from include.mlops.settings import Settings

    return Settings(lake_bucket=lake.root)
