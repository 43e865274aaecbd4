"""batch_transform through Airflow (``dag.test()``): real SeaweedFS lake, real MLflow store
(SQLite), a registered churn pipeline in three versions (Approved champion, Pending, Rejected).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import run_dag, task_states

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer"),
]
DATASET = "batch_churn"
MODEL = "batch_it"
PARTITIONS = {"2026-11-01": (2_500, 31), "2026-11-02": (1_700, 32)}


@pytest.fixture(scope="module")
def world(s3_server, tmp_path_factory) -> dict[str, Any]:
    """Curated data in SeaweedFS and the model's versions in a fresh MLflow store."""
    from tests.batch.churn_models import (
        fit_on,
        ingest_churn,
        new_store,
        read_curated,
        register_version,
    )

    root = tmp_path_factory.mktemp("batch_it")
    env = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    lake = s3_server.lake()
    rows = ingest_churn(lake, DATASET, PARTITIONS, root)
    frame = read_curated(lake, DATASET)
    candidate = fit_on(frame)
    client, uri, experiment = new_store(root / "mlflow")
    env["MLFLOW_TRACKING_URI"] = uri
    os.environ.update(env)
    common = {"model_name": MODEL, "dataset": DATASET}
    versions = {
        "approved": register_version(client, experiment, candidate, frame, champion=True, **common),
        "pending": register_version(client, experiment, candidate, frame, status="Pending", **common),
        "rejected": register_version(client, experiment, candidate, frame, status="Rejected", **common),
    }  # fmt: skip
    yield {"lake": lake, "rows": rows, "versions": versions, "client": client}
    for name in env:
        os.environ.pop(name, None)


def transform(dags: dict, *, logical_date: datetime | None = None, **conf: Any) -> Any:
    # Every param explicit: dag.test() runs tasks in this process and writes a run's conf
    # into the task objects' params, so an omitted param would take the previous run's value.
    base = {"model_name": MODEL, "dataset": DATASET, "version": "champion", "partition": "",
            "batch_rows": 1_000}  # fmt: skip
    # dag.test() names the run after run_after: the same instant gives the same run id.
    kwargs = {"logical_date": logical_date, "run_after": logical_date} if logical_date else {}
    return run_dag(dags["batch_transform"], {**base, **conf}, **kwargs)


def output_prefix(run: Any) -> str:
    from include.mlops.batch import predictions_prefix

    return predictions_prefix(MODEL, run.run_id)


def test_row_counts_equal_the_input_and_a_rerun_rewrites_the_same_files(dags, world) -> None:
    lake = world["lake"]
    when = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    run = transform(dags, logical_date=when)  # version: champion, partition: all
    assert run.state == "success", task_states(run)
    manifest_uri = run.get_task_instance("transform").xcom_pull(task_ids="transform")
    prefix = output_prefix(run)
    assert manifest_uri == lake.uri(f"{prefix}/_manifest.json")
    manifest = lake.read_json(f"{prefix}/_manifest.json")
    assert manifest["model_version"] == world["versions"]["approved"]
    total = 0
    for partition in PARTITIONS:
        source = pq.ParquetFile(lake.path(f"curated/{DATASET}/dt={partition}/part-00000.parquet"),
                                filesystem=lake.fs)  # fmt: skip
        output = pq.read_table(lake.path(f"{prefix}/dt={partition}/part-00000.parquet"),
                               filesystem=lake.fs)  # fmt: skip
        assert output.num_rows == source.metadata.num_rows == world["rows"][partition]
        assert manifest["partitions"][partition]["rows_in"] == output.num_rows
        assert manifest["partitions"][partition]["rows_out"] == output.num_rows
        assert output.column_names == ["customer_id", "prediction", "probability", "model_name",
                                       "model_version"]  # fmt: skip
        ids = source.read(columns=["customer_id"]).column("customer_id")
        assert output.column("customer_id").equals(ids)
        total += output.num_rows
    assert manifest["rows_in"] == manifest["rows_out"] == total == sum(world["rows"].values())
    keys = lake.list_files(prefix + "/")

    again = transform(dags, logical_date=when)  # the same run, re-run
    assert again.run_id == run.run_id and again.state == "success", task_states(again)
    rerun = lake.read_json(f"{prefix}/_manifest.json")
    assert lake.list_files(prefix + "/") == keys  # no duplicates, nothing new
    for partition, entry in manifest["partitions"].items():
        assert rerun["partitions"][partition]["sha256"] == entry["sha256"]
    assert lake.list_staged() == []


@pytest.mark.parametrize("which", ["pending", "rejected"])
def test_versions_not_approved_are_refused_before_any_work(dags, world, which: str, capfd) -> None:
    version = world["versions"][which]
    status = {"pending": "PendingManualApproval", "rejected": "Rejected"}[which]
    # A REST/CLI trigger may send the number as text or as an integer: both are understood.
    run = transform(dags, version=str(version) if which == "pending" else version,
                    partition="2026-11-01")  # fmt: skip
    states = task_states(run)
    assert run.state == "failed"
    assert states == {"plan": "failed", "transform": "upstream_failed"}, states
    assert world["lake"].list_files(output_prefix(run) + "/") == []
    out, err = capfd.readouterr()  # the task log, where the refusal is explained
    assert f"version {version} is {status}" in out + err


def test_a_bad_partition_fails_the_first_task(dags, world, capfd) -> None:
    # Passes the form's YYYY-MM-DD pattern, but is not a day: the first task refuses it.
    run = transform(dags, partition="2026-02-30")
    assert task_states(run) == {"plan": "failed", "transform": "upstream_failed"}
    assert "partition '2026-02-30' is not a calendar day" in "".join(capfd.readouterr())
    run = transform(dags, partition="2026-10-31")  # a day the dataset does not have
    assert task_states(run) == {"plan": "failed", "transform": "upstream_failed"}
    assert "has no partition 2026-10-31; catalogued (2)" in "".join(capfd.readouterr())
