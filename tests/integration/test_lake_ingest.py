"""lake_ingest through Airflow (``dag.test()``) against a real SeaweedFS process.

Each test uses its own dataset name, so tests share one store without interfering.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from include.mlops.demo.landing import write_landing_file
from tests.integration.conftest import run_dag, task_states

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
#: How each injected defect shows up as a quarantine reason.
REASON_OF = {
    "wrong_type": "type_cast",
    "missing_required": "missing_required",
    "duplicate_key": "duplicate_key",
    "out_of_domain": "out_of_domain",
    "broken_quoting": "malformed_row",
    "wrong_encoding": "invalid_encoding",
}


def catalog(lake: Any, dataset: str) -> dict:
    return lake.read_json(f"catalog/{dataset}/schema.json")


def ingest(dags: dict, dataset: str, source: Path | str, partition: str, **conf: Any) -> Any:
    return run_dag(
        dags["lake_ingest"],
        {"dataset": dataset, "source": str(source), "partition": partition, **conf},
    )


def test_clean_file_lands_typed_partition_and_emits_asset(dags, s3_server, tmp_path) -> None:
    src = tmp_path / "clean.csv"
    report = write_landing_file(src, fmt="csv", n_rows=3000, seed=1)
    run = ingest(dags, "clean_churn", src, "2026-11-01")
    assert run.state == "success", task_states(run)

    lake = s3_server.lake()
    part = catalog(lake, "clean_churn")["partitions"]["2026-11-01"]
    assert (part["rows"], part["quarantined"]) == (report.rows_total, 0)
    assert part["quality_score"] == 1.0
    assert "/docs/validations/" in part["quality_report"]  # the run's page, readable offline
    page = lake.read_bytes(lake.key_of(part["quality_report"].split("://", 1)[1]))
    assert b"Expectation Validation Result" in page

    # Readable by other tools straight from S3 (no zero-byte "directory" objects in the way).
    import pandas as pd

    df = pd.read_parquet(
        "s3://lake/curated/clean_churn/",
        storage_options={
            "key": s3_server.access_key,
            "secret": s3_server.secret_key,
            "client_kwargs": {"endpoint_url": s3_server.endpoint},
        },
    )
    assert len(df) == 3000 and df["customer_id"].is_unique
    assert str(df["age"].dtype) == "int64" and str(df["monthly_charges"].dtype) == "float64"
    emails = df["email"].dropna()
    assert not emails.str.contains("@").any(), "PII must be hashed in the curated zone"

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).order_by(AssetEvent.id)).all()
        extras = [e.extra for e in events if e.extra.get("dataset") == "clean_churn"]
    assert extras and extras[-1]["partition"] == "2026-11-01" and extras[-1]["rows"] == 3000
    assert extras[-1]["snapshot_id"] == catalog(lake, "clean_churn")["snapshot_id"]


def test_defects_are_quarantined_with_exact_accounting(dags, s3_server, tmp_path) -> None:
    defects = {kind: n for kind, n in zip(REASON_OF, (7, 5, 6, 8, 4, 3), strict=True)}
    src = tmp_path / "dirty.csv"
    report = write_landing_file(src, fmt="csv", n_rows=4000, seed=2, defects=defects)
    # `churn` has a declared schema (types, required fields, domains, key): every rule applies.
    run = ingest(dags, "churn", src, "2026-11-02")
    assert run.state == "success", task_states(run)

    lake = s3_server.lake()
    part = catalog(lake, "churn")["partitions"]["2026-11-02"]
    assert part["rows"] + part["quarantined"] == report.rows_total == 4000
    assert part["quarantined"] == sum(defects.values())
    assert part["rows"] == report.expected_good

    quarantine = pq.read_table(
        lake.path("quarantine/churn/dt=2026-11-02/part-00000.parquet"), filesystem=lake.fs
    ).to_pandas()
    assert len(quarantine) == sum(defects.values())
    assert quarantine["_reason"].notna().all()
    for kind, count in defects.items():
        hits = quarantine["_reason"].str.contains(REASON_OF[kind]).sum()
        assert hits == count, (
            f"{kind}: {hits} rows quarantined as {REASON_OF[kind]}, expected {count}"
        )


def test_jsonl_and_parquet_sources(dags, s3_server, tmp_path) -> None:
    lake = s3_server.lake()
    for i, fmt in enumerate(("jsonl", "parquet")):
        src = tmp_path / f"day.{fmt}"
        write_landing_file(src, fmt=fmt, n_rows=1500, seed=3 + i, start_id=1 + 10_000 * i)
        # From the S3 landing zone this time: the default source when `source` is empty.
        partition = f"2026-11-0{i + 1}"
        lake.write_bytes(f"landing/multi_churn/dt={partition}/day.{fmt}", src.read_bytes())
        run = ingest(dags, "multi_churn", "", partition)
        assert run.state == "success", task_states(run)
    parts = catalog(lake, "multi_churn")["partitions"]
    assert {p: v["rows"] for p, v in parts.items()} == {"2026-11-01": 1500, "2026-11-02": 1500}


def test_schema_drift_stops_the_run_with_a_report(dags, s3_server, tmp_path) -> None:
    import pandas as pd

    base = pd.DataFrame({"order_id": range(1, 501), "amount": [1.5] * 500, "note": ["x"] * 500})
    first = tmp_path / "first.csv"
    base.to_csv(first, index=False)
    assert ingest(dags, "orders", first, "2026-11-01").state == "success"

    drifted = base.drop(columns=["note"]).assign(amount=["lots"] * 500, channel="web")
    second = tmp_path / "second.csv"
    drifted.to_csv(second, index=False)
    run = ingest(dags, "orders", second, "2026-11-02")
    assert run.state == "failed"
    assert task_states(run)["stage"] == "failed"

    lake = s3_server.lake()
    reports = [
        k for k in lake.list_files("reports/quality/orders/") if k.endswith("schema_drift.json")
    ]
    assert reports, "schema drift must be reported"
    drift = lake.read_json(reports[-1])
    text = json.dumps(drift)
    assert "channel" in text and "note" in text and "amount" in text
    assert "2026-11-02" not in catalog(lake, "orders")["partitions"]
    assert not lake.exists("curated/orders/dt=2026-11-02/part-00000.parquet")


def test_empty_file_skips_and_writes_nothing(dags, s3_server, tmp_path) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("customer_id,signup_date,age\n")
    run = ingest(dags, "empty_churn", src, "2026-11-01")
    states = task_states(run)
    assert states["stage"] == "skipped", states
    assert run.state == "success"
    lake = s3_server.lake()
    assert lake.list_files("curated/empty_churn/") == []
    assert not lake.exists("catalog/empty_churn/schema.json")


def test_three_reruns_give_an_identical_partition(dags, s3_server, tmp_path) -> None:
    src = tmp_path / "day.csv"
    write_landing_file(src, fmt="csv", n_rows=2000, seed=5, defects={"duplicate_key": 10})
    lake = s3_server.lake()
    key = "curated/churn/dt=2026-11-03/part-00000.parquet"
    hashes, blobs = set(), set()
    for _ in range(3):
        run = ingest(dags, "churn", src, "2026-11-03")
        assert run.state == "success", task_states(run)
        part = catalog(lake, "churn")["partitions"]["2026-11-03"]
        hashes.add(part["content_hash"])
        blobs.add(lake.read_bytes(key))
        assert part["rows"] == 1990 and part["quarantined"] == 10
    assert len(hashes) == 1 and len(blobs) == 1
    assert lake.list_files("curated/churn/dt=2026-11-03/") == [key]
    assert pq.read_metadata(lake.path(key), filesystem=lake.fs).num_rows == 1990


def test_write_killed_midway_leaves_previous_partition(dags, s3_server, tmp_path) -> None:
    """SIGKILL an `airflow dags test` while it stages a big file: readers keep the old partition."""
    lake = s3_server.lake()
    small = tmp_path / "small.csv"
    write_landing_file(small, fmt="csv", n_rows=1000, seed=6)
    assert ingest(dags, "killed_churn", small, "2026-11-04").state == "success"
    key = "curated/killed_churn/dt=2026-11-04/part-00000.parquet"
    before = lake.read_bytes(key)

    big = tmp_path / "big.csv"
    write_landing_file(big, fmt="csv", n_rows=1_500_000, seed=7)
    conf = {"dataset": "killed_churn", "source": str(big), "partition": "2026-11-04"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "lake_ingest",
         "-c", json.dumps(conf)],
        cwd=REPO, env=os.environ.copy(), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + 180
    while not any("rows/s" in line for line in seen):  # progress logged mid-write
        assert proc.poll() is None, "".join(seen[-40:])
        assert time.monotonic() < deadline, "ingest never reported progress"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    assert lake.read_bytes(key) == before, "a killed write must not change the partition"
    assert lake.list_files("curated/killed_churn/") == [key]
    assert pq.read_metadata(lake.path(key), filesystem=lake.fs).num_rows == 1000
    part = catalog(lake, "killed_churn")["partitions"]["2026-11-04"]
    assert part["rows"] == 1000


def _start_when_retrying(s3_server, task_id: str, timeout: float = 180) -> None:
    """Start the store when ``task_id`` of the newest lake_ingest run waits for a retry."""
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    query = sa.text(
        "SELECT ti.state FROM task_instance ti JOIN dag_run r ON r.run_id = ti.run_id "
        "AND r.dag_id = ti.dag_id WHERE ti.dag_id = 'lake_ingest' AND ti.task_id = :task "
        "ORDER BY r.id DESC LIMIT 1"
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(query, {"task": task_id}).scalar() == "up_for_retry":
                    break
            time.sleep(0.2)
    finally:
        engine.dispose()
        s3_server.start()


def test_store_down_at_task_start_then_back_retry_succeeds(dags, s3_server, tmp_path) -> None:
    src = tmp_path / "day.csv"
    write_landing_file(src, fmt="csv", n_rows=500, seed=8)
    s3_server.stop()
    # The store comes back once the first attempt of `plan` has failed on it (watched in
    # the metadata DB), not after a fixed delay a busy machine may outrun.
    restarter = threading.Thread(target=_start_when_retrying, args=(s3_server, "plan"))
    restarter.start()
    try:
        run = ingest(dags, "outage_churn", src, "2026-11-05")
    finally:
        restarter.join()
    assert run.state == "success", task_states(run)
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["plan"] >= 2, f"the first attempt should have failed on the dead store: {tries}"
    assert catalog(s3_server.lake(), "outage_churn")["partitions"]["2026-11-05"]["rows"] == 500


def test_failed_quality_gate_stops_before_publishing(dags, s3_server, tmp_path) -> None:
    """Nearly every customer churned: rows are valid one by one, the partition is not."""
    import pandas as pd

    from include.mlops.demo.churn import generate_churn

    df = generate_churn(800, seed=9, start_id=900_001)
    df["churned"] = 1
    df["signup_date"] = df["signup_date"].dt.strftime("%Y-%m-%d")
    src = tmp_path / "broken_upstream.csv"
    pd.DataFrame(df).to_csv(src, index=False)
    lake = s3_server.lake()
    staged_before = set(lake.list_staged())
    run = ingest(dags, "churn", src, "2026-11-20")
    states = task_states(run)
    assert run.state == "failed"
    assert states["stage"] == "success" and states["quality_gate"] == "failed"
    assert states["publish"] == "upstream_failed"

    assert not lake.exists("curated/churn/dt=2026-11-20/part-00000.parquet")
    entry = lake.read_json("catalog/churn/schema.json", default={"partitions": {}})
    assert "2026-11-20" not in entry["partitions"]
    assert set(lake.list_staged()) == staged_before, "the rejected staged file is discarded"
    summaries = [k for k in lake.list_files("reports/quality/churn/") if k.endswith("summary.json")]
    failed = [s for s in (lake.read_json(k) for k in summaries) if s["partition"] == "2026-11-20"]
    assert failed and failed[-1]["passed"] is False
    names = {e["type"] for e in failed[-1]["expectations"] if not e["success"]}
    assert "expect_column_mean_to_be_between" in names
