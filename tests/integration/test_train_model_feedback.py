"""train_model's data policy through Airflow (``dag.test()``): real SeaweedFS lake, real
MLflow store. A first version trains on the base dataset; an unattended retrain with
nothing new skips and alerts; labelled traffic lands as ``<model>_feedback`` (through
the ingest path); the next run trains on base + feedback and judges the challenger and
the champion on the recent window; then the unattended retrain skips again, naming the
feedback snapshot it already has.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from tests.integration.conftest import run_dag, task_states
from tests.lake_seed import ingest_file

pytestmark = pytest.mark.integration
DATASET = "policy_churn"
MODEL = "policy_it"
FEEDBACK = f"{MODEL}_feedback"


@pytest.fixture(scope="module")
def policy_env(s3_server, pg_server, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """MLflow + Optuna stores for this module, two days of base churn data, a webhook."""
    from include.mlops.demo.landing import write_landing_file

    root = tmp_path_factory.mktemp("policy")
    received: list[Any] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLOPS_OPTUNA_STORAGE": pg_server.url("optuna"),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "AIRFLOW_CONN_ALERTS_WEBHOOK": json.dumps(
            {"conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}/hook"}
        ),
    }
    os.environ.update(env)
    lake = s3_server.lake()
    for day, seed in (("2026-11-01", 21), ("2026-11-02", 22)):
        src = root / f"{day}.csv"
        write_landing_file(src, fmt="csv", n_rows=1500, seed=seed, start_id=1 + 10_000 * seed)
        ingest_file(lake, DATASET, src, day)
    yield {"root": root, "received": received, "lake": lake}
    server.shutdown()
    for name in env:
        os.environ.pop(name, None)


def land_feedback(env: dict[str, Any], day: str, *, rows: int, seed: int) -> None:
    """Labelled traffic as the feedback contract has it (the base columns + inference_id,
    served_at, model_version), ingested like any dataset."""
    from include.mlops.demo.landing import write_landing_file

    raw = env["root"] / f"raw-{day}.csv"
    write_landing_file(raw, fmt="csv", n_rows=rows, seed=seed, start_id=1 + 10_000 * seed)
    src = env["root"] / f"feedback-{day}.csv"
    with raw.open() as fin, src.open("w", newline="") as fout:
        reader = csv.DictReader(fin)
        names = [*(reader.fieldnames or []), "inference_id", "served_at", "model_version"]
        writer = csv.DictWriter(fout, fieldnames=names)
        writer.writeheader()
        for i, row in enumerate(reader):
            writer.writerow({**row, "inference_id": f"inf-{seed}-{i}",
                             "served_at": f"{day}T12:00:00Z", "model_version": "1"})  # fmt: skip
    ingest_file(env["lake"], FEEDBACK, src, day)


def train(dags: dict, **conf: Any) -> Any:
    base = {
        "dataset": DATASET, "target": "churned", "model_name": MODEL,
        "algorithms": ["logistic_regression"], "tuning_strategy": "random",
        "max_trials": 2, "max_parallel_trials": 1, "objective_metric": "roc_auc",
        "approval": "auto", "problem_type": "auto", "min_objective": None, "seed": 42,
        "bias_facets": [], "bias_group_column": None, "bias_gate": "off",
        # Synthetic traffic is as hard as the base data; the gate itself is tested elsewhere.
        "champion_tolerance": 0.2,
    }  # fmt: skip
    return run_dag(dags["train_model"], {**base, **conf})


def client() -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def unattended_retrain() -> dict:
    from include.mlops.airflow.training import resolve_request

    return resolve_request(
        {"model_name": MODEL, "dataset": "churn", "target": "churned"},
        dag_run=SimpleNamespace(run_type="scheduled", run_id="scheduled__policy"),
        triggering_asset_events={},
    )


def test_retrain_trains_on_base_and_feedback_and_judges_the_recent_window(dags, policy_env) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from include.mlops.evaluation.gates import MIN_RECENT_ROWS
    from include.mlops.registry import get_version, set_champion, training_spec

    first = train(dags)
    assert first.state == "success", task_states(first)
    spec = training_spec(client(), MODEL, 1)
    assert spec["data"]["feedback"] is None and spec["use_feedback"] is True
    assert spec["data"]["base"]["partitions"] == ["2026-11-01", "2026-11-02"]
    set_champion(client(), MODEL, 1)

    # Nothing new: the unattended retrain skips, says what it waits for, and alerts.
    with pytest.raises(AirflowSkipException) as skipped:
        unattended_retrain()
    waiting = str(skipped.value)
    assert waiting.startswith(f"{MODEL} v1 already trained on {DATASET} snapshot ")
    assert f"no labelled traffic yet: {FEEDBACK} is empty" in waiting
    assert waiting.endswith(f"waiting for new data in {DATASET} or labels in {MODEL}_ground_truth")
    assert policy_env["received"][-1]["text"] == f"Retraining skipped: {waiting}."

    # Labelled traffic lands: enough that its held-out share reaches the minimum.
    land_feedback(policy_env, "2026-11-03", rows=10 * MIN_RECENT_ROWS + 500, seed=23)
    second = train(dags, seed=7)
    assert second.state == "success", task_states(second)
    prepared = second.get_task_instance("prepare_data").xcom_pull(
        task_ids="prepare_data", key="prepared"
    )
    assert prepared["data"]["feedback"]["dataset"] == FEEDBACK
    assert prepared["rows"] > 3000 + 4000  # base + feedback (less what ingest rejected)
    evaluation = second.get_task_instance("evaluate").xcom_pull(task_ids="evaluate")
    recent = evaluation["recent"]
    assert recent["rows"] >= MIN_RECENT_ROWS and recent["min_rows"] == MIN_RECENT_ROWS
    assert recent["used_for_gate"] is True and recent["partitions"] == ["2026-11-03"]
    assert recent["candidate"]["roc_auc"] > 0.6 and recent["champion"]["roc_auc"] > 0.6
    assert evaluation["decision"]["evaluated_on"] == "recent window"

    info = get_version(client(), MODEL, 2)
    snapshots = json.loads(info.tags["data_snapshots"])
    assert set(snapshots) == {DATASET, FEEDBACK}
    assert info.tags["data_snapshot"] not in snapshots.values()  # the combined id
    card = policy_env["lake"].read_bytes(f"reports/evaluation/{MODEL}/2/model_card.md").decode()
    assert "## Test split and recent window" in card and "| Feedback data | " in card
    registered = second.get_task_instance("register").xcom_pull(task_ids="register")
    assert "**Recent window**" in registered["approval_body"]

    # v2 serves: retraining again would repeat it, so it skips naming both snapshots.
    set_champion(client(), MODEL, 2)
    with pytest.raises(AirflowSkipException) as again:
        unattended_retrain()
    assert f"and {FEEDBACK} snapshot {snapshots[FEEDBACK][:12]}" in str(again.value)
