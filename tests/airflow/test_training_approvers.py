"""resolve_request refuses a manual run whose approval no one may give, before any work."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.mlops.airflow.training import resolve_request

CONF = {"dataset": "churn", "target": "churned", "model_name": "churn_model",
        "algorithms": ["logistic_regression"], "approval": "manual"}  # fmt: skip


def test_the_only_approver_cannot_approve_the_run_they_triggered(monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_APPROVERS", "admin")
    run = SimpleNamespace(run_type="manual", triggering_user_name="admin")
    with pytest.raises(AirflowFailException) as refused:
        resolve_request(CONF, dag_run=run, triggering_asset_events={})
    message = str(refused.value)
    assert "MLOPS_APPROVERS lists only admin, and admin triggered the run" in message
    assert "Add another user to MLOPS_APPROVERS" in message
