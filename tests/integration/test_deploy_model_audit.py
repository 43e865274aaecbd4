"""deploy_model's audit trail, through real runs (``dag.test()``) against a real endpoint.

Deployments, manual and automatic rollbacks and failed rollouts land in the model's
``audit/<model>/`` in the session's lake, each written before what it records. ``dag.test()``
records its runs as triggered by ``dag_test``: that is the actor of a manual run.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.deployment.faulty import CRASH_PLAN
from tests.deployment.test_deployment_rollout import _register_crashing
from tests.integration.conftest import task_states
from tests.integration.test_deploy_model import (  # noqa: F401  (fixtures, registered by import)
    deploy,
    endpoint,
)
from tests.serving.conftest import (  # noqa: F401  (fixtures, registered by import)
    live_server,
    serving_store,
    serving_template,
)

pytestmark = pytest.mark.integration


def events_of(s3_server: Any, run: Any) -> list[Any]:
    """The run's audit events, oldest first."""
    from include.mlops.lake.audit import read_events

    found = [e for e in read_events(s3_server.lake(), "churn") if e.details["run_id"] == run.run_id]
    return sorted(found, key=lambda e: e.at)


def test_deployments_and_a_manual_rollback_are_audited(
    dags: dict,
    endpoint: Any,  # noqa: F811
    s3_server: Any,
) -> None:
    first = deploy(dags, version="1")
    second = deploy(dags, version="2", strategy="canary", traffic_percent=20)
    back = deploy(dags, version="previous")
    for run in (first, second, back):
        assert run.state == "success", task_states(run)

    [deployed] = events_of(s3_server, first)
    assert (deployed.event, deployed.actor) == ("deployment", "dag_test")
    assert deployed.reason == "deployed by hand (version=1)"
    assert deployed.details | {"run_id": None} == {
        "version": 1, "strategy": "all_at_once", "previous_champion": None, "requested": "1",
        "run_id": None,
    }  # fmt: skip
    [canary] = events_of(s3_server, second)
    assert canary.event == "deployment" and canary.details["version"] == 2
    assert (canary.details["previous_champion"], canary.details["traffic_percent"]) == (1, 20)
    [rollback] = events_of(s3_server, back)
    assert (rollback.event, rollback.actor) == ("rollback", "dag_test")
    assert rollback.reason == "rollback from v2 to v1 (version=previous)"
    assert (rollback.details["version"], rollback.details["previous_champion"]) == (1, 2)
    answer = httpx.post(f"{endpoint.url}/invocations",
                        json={"dataframe_records": endpoint.store.churn_rows[:1]})  # fmt: skip
    assert answer.json()["model_version"] == 1


def test_a_canary_rolled_back_live_is_audited_before_the_rollback_and_as_failed(
    dags: dict,
    endpoint: Any,  # noqa: F811
    s3_server: Any,
) -> None:
    assert deploy(dags, version="1").state == "success"
    crashing = _register_crashing(endpoint.store)
    good = endpoint.store.churn_rows[:40]
    bad = [{**row, "plan": CRASH_PLAN} for row in good]
    stop = threading.Event()

    def traffic() -> None:  # half the requests carry the plan the canary cannot handle
        with httpx.Client(base_url=endpoint.url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                rows = bad if i % 2 else good
                http.post("/invocations", json={"dataframe_records": rows[i % 40 : i % 40 + 1]})
                i += 1

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        run = deploy(dags, version=str(crashing), strategy="canary", traffic_percent=50,
                     bake_minutes=0.5)  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert task_states(run)["roll_out"] == "failed"

    deployed, rolled_back, failed = events_of(s3_server, run)
    assert (deployed.event, deployed.actor) == ("deployment", "dag_test")
    assert deployed.details["version"] == crashing and deployed.details["strategy"] == "canary"
    assert (rolled_back.event, rolled_back.actor) == ("rollback", "system:deploy_model")
    assert rolled_back.details["version"] == 1 and rolled_back.details["from_version"] == crashing
    assert (
        rolled_back.details["automatic"] is True
        and rolled_back.details["deployed_by"] == "dag_test"
    )
    assert "error rate" in rolled_back.reason and "restoring v1" in rolled_back.reason
    assert (failed.event, failed.actor) == ("deployment_failed", "dag_test")
    assert failed.reason.startswith("RolledBackError: ") and "rolled back" in failed.reason
