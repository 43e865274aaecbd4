"""Real registered models in a real MLflow store, and the endpoint on real uvicorn.

A session template store is built once (~5 s): ``churn`` versions 1 and 2 (Approved,
two different logistic regressions), 3 (PendingManualApproval), 4 (Approved, raises on
``age == 999``) and ``charges`` version 1 (an Approved ridge regression). Each test (or module) gets a copy of its SQLite file, so
aliases and tags set by one test never leak into another; the model files are shared
read-only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.features.pipeline import input_columns
from include.mlops.features.split import split_dataset
from include.mlops.registry import approve_version, register_candidate
from include.mlops.stack.process import free_port

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
#: An API key the capture tests' replicas register at start, and its holder's name.
API_KEY = "mlk_capture-tests-key-0123456789abcdefghijklmnopq"
KEY_NAME = "capture-tests"


@dataclass
class Template:
    """The session's registered models (a SQLite file + shared artifacts)."""

    db: Path
    artifacts: Path
    #: Raw request rows (as JSON would carry them) the models were trained on.
    churn_rows: list[dict[str, Any]]
    charges_rows: list[dict[str, Any]]


@dataclass
class ServingStore:
    """A private copy of the template store."""

    uri: str
    client: mlflow.MlflowClient
    template: Template

    @property
    def churn_rows(self) -> list[dict[str, Any]]:
        return self.template.churn_rows

    @property
    def charges_rows(self) -> list[dict[str, Any]]:
        return self.template.charges_rows


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _register(
    client: mlflow.MlflowClient,
    experiment_id: str,
    *,
    model_name: str,
    candidate: Any,
    train: pd.DataFrame,
    example: pd.DataFrame,
    target: str,
    metrics: dict[str, Any],
) -> int:
    run = client.create_run(experiment_id, run_name="tune")
    client.set_terminated(run.info.run_id)
    registered = register_candidate(
        client,
        model_name=model_name,
        run_id=run.info.run_id,
        pipeline=candidate.pipeline,
        input_example=example,
        metrics=metrics,
        baseline_metrics={},
        evaluation_dir_or_files={"metrics.json": b"{}"},
        drift_baseline=compute_drift_baseline(
            train, features=input_columns(candidate.pipeline), target=target
        ),
        training_spec={"dataset": "churn", "target": target, "algorithm": candidate.algorithm},
        dataset="churn",
        data_snapshot="snap-0001",
        git_sha="abc1234",
        objective=next(iter(metrics)),
        objective_value=float(next(iter(metrics.values()))),
    )
    return registered.version


@pytest.fixture(scope="session")
def serving_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Register the session's models once."""
    from include.mlops.training.fit import fit_candidate

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    folder = tmp_path_factory.mktemp("serving-store")
    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "train_model", artifact_location=str(folder / "artifacts")
    )

    data = generate_churn(600, seed=3)
    splits = split_dataset(data, target=TARGET_COLUMN, problem_type="binary", seed=0)
    example = splits.test.drop(columns=[TARGET_COLUMN]).head(3)
    candidates = []
    for params in ({"C": 1.0}, {"C": 0.02}, {"C": 5.0}):
        candidate = fit_candidate(
            "logistic_regression", params, splits, target=TARGET_COLUMN,
            problem_type="binary", exclude=["email"],
        )  # fmt: skip
        candidates.append(candidate)
        _register(
            client, experiment, model_name="churn", candidate=candidate, train=splits.train,
            example=example, target=TARGET_COLUMN, metrics={"roc_auc": 0.8, "threshold": 0.5},
        )  # fmt: skip
    candidate_1 = candidates[0]
    # Version 4: version 1's fitted pipeline behind a guard that raises on age == 999, a
    # model that fails on some valid input (the endpoint must answer 500 for that request
    # alone).
    guard = FunctionTransformer(refuse_sentinel_age).fit(splits.train.drop(columns=[TARGET_COLUMN]))
    guarded = Pipeline([("guard", guard), *candidate_1.pipeline.steps])
    _register(
        client, experiment, model_name="churn", candidate=_Refit(guarded, candidate_1.algorithm),
        train=splits.train, example=example, target=TARGET_COLUMN,
        metrics={"roc_auc": 0.8, "threshold": 0.5},
    )  # fmt: skip
    for version in (1, 2, 4):  # version 3 stays Pending
        approve_version(client, "churn", version, actor="test")

    target = "monthly_charges"
    reg_splits = split_dataset(
        data.drop(columns=[TARGET_COLUMN]), target=target, problem_type="regression", seed=0
    )
    ridge = fit_candidate(
        "ridge", None, reg_splits, target=target, problem_type="regression", exclude=["email"]
    )
    reg_example = reg_splits.test.drop(columns=[target]).head(3)
    _register(
        client, experiment, model_name="charges", candidate=ridge, train=reg_splits.train,
        example=reg_example, target=target, metrics={"rmse": 10.0},
    )  # fmt: skip
    approve_version(client, "charges", 1, actor="test")
    return Template(
        db=db,
        artifacts=folder / "artifacts",
        churn_rows=_json_rows(splits.test.drop(columns=[TARGET_COLUMN])),
        charges_rows=_json_rows(reg_splits.test.drop(columns=[target])),
    )


#: An age no customer has: version 4 of ``churn`` raises when it sees it.
SENTINEL_AGE = 999


def refuse_sentinel_age(frame: pd.DataFrame) -> pd.DataFrame:
    """Pass rows through; raise on :data:`SENTINEL_AGE` (module level: it pickles by name)."""
    if "age" in frame and (pd.to_numeric(frame["age"], errors="coerce") == SENTINEL_AGE).any():
        raise ValueError(f"age {SENTINEL_AGE} breaks this model")
    return frame


@dataclass
class _Refit:
    """What ``_register`` reads from a fitted candidate."""

    pipeline: Any
    algorithm: str


def copy_store(template: Template, folder: Path) -> ServingStore:
    """A private, writable copy of the template store in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    shutil.copyfile(template.db, db)
    uri = f"sqlite:///{db}"
    return ServingStore(
        uri=uri, client=mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), template=template
    )


def champions_store(template: Template, folder: Path) -> ServingStore:
    """A private store copy whose champions are ``churn`` v1 and ``charges`` v1."""
    from include.mlops.registry import set_champion

    store = copy_store(template, folder)
    set_champion(store.client, "churn", 1)
    set_champion(store.client, "charges", 1)
    return store


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def serving_store(serving_template: Template, tmp_path: Path) -> ServingStore:
    """This test's own store (aliases and tags start empty)."""
    return copy_store(serving_template, tmp_path / "store")


@dataclass
class LiveServer:
    """The endpoint app on a real uvicorn server in a thread of this process."""

    app: Any
    port: int = field(default_factory=free_port)
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, lifespan="on",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(30)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def wait_for(self, predicate: Callable[[httpx.Client], bool], timeout: float = 30) -> None:
        """Poll until ``predicate(client)`` holds (e.g. the first registry load)."""
        with self.client() as client:
            deadline = time.monotonic() + timeout
            while not predicate(client):
                if time.monotonic() > deadline:
                    raise AssertionError(f"condition not met within {timeout}s")
                time.sleep(0.05)


def serving_settings(store: ServingStore, **overrides: Any) -> Any:
    """Settings for a test replica: this store, no lake unless asked, quick polling."""
    from include.mlops.serving.config import ServingSettings

    values: dict[str, Any] = {
        "tracking_uri": store.uri,
        "admin_token": ADMIN_TOKEN,
        "capture": False,
        "poll_seconds": 60.0,
        "replica_id": "test-replica",
        # The contract tests here are about scoring; API keys have their own tests
        # (test_app_access.py) with the key store in a real lake.
        "require_api_key": False,
    }
    values.update(overrides)
    return ServingSettings(**values)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``live_server(app)``: start the app on uvicorn; stopped after the test."""
    started: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        server = LiveServer(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def key_headers(key: str = API_KEY) -> dict[str, str]:
    """Headers that present an endpoint API key."""
    return {"Authorization": f"Bearer {key}"}


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ServerProcess:
    """``python -m include.mlops.serving`` as a child process (graceful-stop tests)."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"endpoint exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"endpoint not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 60) -> bool:
        """SIGTERM and wait; True when the shutdown was graceful and complete.

        uvicorn re-raises the signal after its graceful shutdown, so the exit status is
        -SIGTERM; the log says whether the app's shutdown (capture flush) completed.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in (
            self.log.read_text(errors="replace")
        )


def start_server_process(env: dict[str, str], log_dir: Path) -> ServerProcess:
    """Start the endpoint module with ``env`` on top of this process's environment."""
    port = free_port()
    log = log_dir / f"endpoint-{port}.log"
    full = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # As in serving_settings: these processes are about scoring and swaps; the keys
        # have their own tests (test_app_access.py).
        "MLOPS_ENDPOINT_REQUIRE_API_KEY": "false",
        **env,
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "include.mlops.serving", "--host", "127.0.0.1",
             "--port", str(port)],
            env=full, cwd=log_dir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return ServerProcess(port=port, proc=proc, log=log)
