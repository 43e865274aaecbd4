"""LakeHook's MLflow methods: a client from the settings, the artifact env for a child, no side effects."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.mlops.airflow.hooks import LakeHook

CONNECTION = {
    "conn_type": "aws", "login": "lake-key", "password": "lake-secret",
    "extra": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"},
}  # fmt: skip


@pytest.fixture
def lake_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials only in the ``lake`` connection, none in the plain AWS variables."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps(CONNECTION))
    monkeypatch.setenv("MLOPS_LAKE_BUCKET", "lake")


def test_the_client_tracks_to_the_configured_uri_and_changes_no_environment(
    lake_connection: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = dict(os.environ)
    client = LakeHook().get_mlflow_client()
    assert client.tracking_uri == uri
    assert dict(os.environ) == before


def test_no_tracking_uri_fails_the_task_saying_so(
    lake_connection: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(AirflowFailException, match="MLFLOW_TRACKING_URI is not set"):
        LakeHook().get_mlflow_client()


def test_a_child_process_gets_the_connections_artifact_settings(lake_connection: None) -> None:
    assert LakeHook().get_mlflow_artifact_env() == {
        "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "lake-key",
        "AWS_SECRET_ACCESS_KEY": "lake-secret",
    }


def test_artifacts_go_to_the_lake_unless_a_server_proxies_them(
    lake_connection: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert LakeHook().get_mlflow_artifact_location("churn") == "s3://lake/mlflow/churn"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert LakeHook().get_mlflow_artifact_location("churn") is None
