"""deploy_model through Airflow (``dag.test()``) against a real endpoint and MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.integration.conftest import run_dag, task_states
from tests.serving.conftest import (  # noqa: F401  (fixtures, registered by import)
    ADMIN_TOKEN,
    live_server,
    serving_settings,
    serving_store,
    serving_template,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint(serving_store: Any, live_server: Any) -> Iterator[Any]:  # noqa: F811
    from include.mlops.serving.app import create_app

    server = live_server(create_app(serving_settings(serving_store)))
    env = {
        "MLFLOW_TRACKING_URI": serving_store.uri,
        "MLOPS_ENDPOINT_URLS": server.url,
        "MLOPS_ENDPOINT_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield SimpleNamespace(url=server.url, store=serving_store)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def deploy(dags: dict, **conf: Any) -> Any:
    return run_dag(dags["deploy_model"], {"model_name": "churn", "bake_minutes": 0, **conf})


def test_deploys_an_approved_version_and_the_endpoint_serves_it(dags, endpoint) -> None:
    run = deploy(dags, version="2")
    states = task_states(run)
    assert run.state == "success", states
    infra = run.get_task_instance("validate_infra").xcom_pull(task_ids="validate_infra")
    assert infra["load_seconds"] > 0 and infra["rows"] == 3
    rows = endpoint.store.churn_rows[:2]
    answer = httpx.post(f"{endpoint.url}/invocations", json={"dataframe_records": rows})
    assert answer.status_code == 200 and answer.json()["model_version"] == 2


def test_refuses_a_pending_version_before_touching_the_endpoint(dags, endpoint) -> None:
    run = deploy(dags, version="3")
    states = task_states(run)
    assert states["check_version"] == "failed", states
    assert states["validate_infra"] == states["roll_out"] == "upstream_failed"
    assert httpx.get(f"{endpoint.url}/ping").status_code == 503  # still nothing served


def test_an_approval_event_deploys_the_approved_version() -> None:
    from include.mlops.airflow.deploy import resolve_request

    events = {"model_approved": [SimpleNamespace(extra={"model_name": "churn", "version": 4})]}
    request = resolve_request(
        {"model_name": "churn_model", "version": "latest_approved", "strategy": "canary"},
        dag_run=SimpleNamespace(run_type="asset_triggered"),
        triggering_asset_events=events,
    )
    assert (request["model_name"], request["version"], request["strategy"]) == (
        "churn",
        "4",
        "canary",
    )
