"""A new user's first minutes, several times in a row: `make up` from an empty state
folder, then REST writes at once, while the scheduler starts its first runs.

On the SQLite-era stack the first `PATCH /api/v2/dags/lake_ingest` answered 500
("Database error") 2 times out of 2 on a fresh clone: the audit-log INSERT met the
scheduler's write lock as it created the first daily runs. Here each round starts a
stack from nothing (initdb, migrations, every component), and at once unpauses every
DAG, triggers `lake_ingest` and `monitor_model` and answers nothing twice: the client
has no retry, so any 5xx fails the test. The ingest run must then succeed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from include.mlops.stack import ADMIN_PASSWORD, ADMIN_USER, StackConfig, down, up
from include.mlops.stack.airflow_api import AirflowClient

pytestmark = pytest.mark.integration
#: Two dedicated rounds; the shared stacks of the other stack tests are cold starts too,
#: their first REST writes landing as the scheduler starts its first runs.
ROUNDS = 2
DAGS = ("lake_ingest", "train_model", "deploy_model", "batch_transform", "monitor_model")


@pytest.mark.parametrize("round_", range(1, ROUNDS + 1))
def test_first_rest_writes_on_a_cold_stack_never_fail(
    round_: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from include.mlops.demo.landing import write_landing_file

    state = tmp_path_factory.mktemp(f"cold-{round_}")
    config = StackConfig.on_free_ports(state)
    source = Path(state) / "day.csv"
    write_landing_file(source, fmt="csv", n_rows=300, seed=round_, defects={"wrong_type": 2})
    try:
        up(config)
        client = AirflowClient(config.airflow_url, ADMIN_USER, ADMIN_PASSWORD)
        # The scheduler is creating the first daily/hourly runs of the DAGs it just
        # parsed (they are unpaused at creation) while these writes land.
        for dag_id in DAGS:
            client.unpause(dag_id)
        ingest = client.trigger(
            "lake_ingest", {"dataset": "churn", "source": str(source), "partition": "2026-11-02"}
        )
        monitor = client.trigger("monitor_model", {"model_name": "all", "window_hours": 1})
        assert client.wait("lake_ingest", ingest, timeout=300, poll=1.0) == "success"
        # No model is deployed yet: the monitor's plan skips, and the run succeeds.
        assert client.wait("monitor_model", monitor, timeout=300, poll=1.0) == "success"
        states = {t["task_id"]: t["state"] for t in client.task_instances("monitor_model", monitor)}
        assert states["plan"] == "skipped", states
        scheduled = [r for r in client.runs("lake_ingest") if r["run_type"] == "scheduled"]
        assert scheduled, "the scheduler's own first run was not created alongside"
    finally:
        down(config)
