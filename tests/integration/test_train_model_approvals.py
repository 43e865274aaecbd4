"""Approvals a reviewer can trust, through real ``train_model`` runs (``dag.test()``).

Who may answer is Airflow's own decision here: the answers go through its core REST API
(:mod:`tests.integration.hitl`), which refuses users the request does not name (403).
``dag.test()`` records its runs as triggered by the user ``dag_test``, so that is the
user separation of duties leaves out. Every decision must land in the model's audit
trail in the lake before the registry changes.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest

from tests.integration.conftest import run_dag, task_states
from tests.integration.hitl import AirflowAPI, answering
from tests.integration.test_train_model import DATASET, training_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration
MODEL = "churn_reviewed"
TRIGGERED_BY = "dag_test"  # dag.test()'s triggering user


@pytest.fixture(scope="module")
def api(dags: dict) -> AirflowAPI:
    return AirflowAPI.start()


def train(dags: dict, approval: str, seed: int) -> Any:
    conf = {"dataset": DATASET, "target": "churned", "model_name": MODEL,
            "algorithms": ["logistic_regression"], "tuning_strategy": "random",
            "max_trials": 2, "max_parallel_trials": 1, "approval": approval, "seed": seed}  # fmt: skip
    return run_dag(dags["train_model"], conf)


def client() -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def events_of(s3_server: Any, run_id: str) -> list[Any]:
    from include.mlops.lake.audit import read_events

    return [e for e in read_events(s3_server.lake(), MODEL) if e.details.get("run_id") == run_id]


def test_only_a_listed_approver_who_did_not_trigger_the_run_may_approve_it(
    dags,
    api,
    s3_server,
    training_env,  # noqa: F811
    monkeypatch,
) -> None:
    from include.mlops.registry import get_version

    monkeypatch.setenv("MLOPS_APPROVERS", f"{TRIGGERED_BY},reviewer")
    seen: dict[str, Any] = {}

    def answer(run_id: str, api: AirflowAPI) -> None:
        request = api.request("reviewer", "train_model", run_id, "await_approval")
        seen["request"] = request
        for user in ("outsider", TRIGGERED_BY):  # not listed; listed but triggered the run
            refused = api.answer(user, "train_model", run_id, "await_approval", "Approve", "mine")
            seen[user] = (refused.status_code, refused.json()["detail"])
        approved = api.answer("reviewer", "train_model", run_id, "await_approval", "Approve",
                              "beats the baseline on the held-out split")  # fmt: skip
        seen["reviewer"] = approved.status_code

    with answering(api, answer):
        run = train(dags, "manual", seed=1)
    assert run.state == "success", task_states(run)
    request = seen["request"]
    assert request["assigned_users"] == [{"id": "reviewer", "name": "reviewer"}]
    assert "**Who may answer:** reviewer (from MLOPS_APPROVERS)" in request["body"]
    assert f"{TRIGGERED_BY} is a listed approver but triggered this run" in request["body"]
    assert "roc_auc" in request["body"]  # the candidate's metrics are still there
    assert seen["outsider"][0] == 403 and "outsider" in seen["outsider"][1]
    assert seen[TRIGGERED_BY][0] == 403 and TRIGGERED_BY in seen[TRIGGERED_BY][1]
    assert seen["reviewer"] == 200

    version = run.get_task_instance("register").xcom_pull(task_ids="register")["version"]
    info = get_version(client(), MODEL, version)
    assert (info.status, info.tags["approved_by"]) == ("Approved", "reviewer")
    [event] = events_of(s3_server, run.run_id)
    assert (event.event, event.actor) == ("approval", "reviewer")
    assert event.reason == "beats the baseline on the held-out split"
    assert event.details["version"] == version and event.details["mlflow_run_id"]
    # Written before the registry changed: not after the approval's time (whole seconds).
    recorded = dt.datetime.fromisoformat(event.at).replace(microsecond=0)
    assert recorded <= dt.datetime.fromisoformat(info.tags["approval_time"])


def test_a_rejection_is_audited_with_the_reviewers_reason(
    dags,
    api,
    s3_server,
    training_env,  # noqa: F811
    monkeypatch,
) -> None:
    from include.mlops.registry import get_version

    monkeypatch.setenv("MLOPS_APPROVERS", "reviewer")

    def reject(run_id: str, api: AirflowAPI) -> None:
        answer = api.answer("reviewer", "train_model", run_id, "await_approval", "Reject",
                            "the recall on new customers dropped")  # fmt: skip
        assert answer.status_code == 200, answer.text

    with answering(api, reject):
        run = train(dags, "manual", seed=2)
    states = task_states(run)
    assert states["record_rejection"] == "success" and states["approve_version"] == "skipped"
    version = run.get_task_instance("register").xcom_pull(task_ids="register")["version"]
    assert get_version(client(), MODEL, version).status == "Rejected"
    [event] = events_of(s3_server, run.run_id)
    assert (event.event, event.actor) == ("rejection", "reviewer")
    assert event.reason == "the recall on new customers dropped"
    assert event.details["version"] == version


def test_an_auto_approval_is_audited_as_the_system(
    dags,
    s3_server,
    training_env,  # noqa: F811
    monkeypatch,
) -> None:
    monkeypatch.setenv("MLOPS_APPROVERS", TRIGGERED_BY)  # no human answers approval=auto
    run = train(dags, "auto", seed=3)
    assert run.state == "success", task_states(run)
    [event] = events_of(s3_server, run.run_id)
    assert (event.event, event.actor, event.reason) == (
        "approval",
        "system:train_model",
        "every gate passed",
    )


def test_a_manual_run_no_one_else_may_approve_is_refused_before_any_work(
    dags,
    training_env,  # noqa: F811
    monkeypatch,
) -> None:
    monkeypatch.setenv("MLOPS_APPROVERS", TRIGGERED_BY)
    run = train(dags, "manual", seed=4)
    states = task_states(run)
    assert states["resolve_request"] == "failed" and states["prepare_data"] == "upstream_failed"
    assert states["await_approval"] == "upstream_failed"  # no request was ever made
