"""End to end on a local lake: accounting, staging and publish, drift, idempotency."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.mlops.etl import pipeline
from include.mlops.etl.catalog import (
    curated_paths,
    load_catalog,
    record_partition,
    snapshot_id,
)
from include.mlops.etl.extract import EmptySourceError
from include.mlops.etl.load import discard_staged, publish_partition
from include.mlops.etl.result import IngestResult
from include.mlops.etl.schema import SchemaDriftError
from include.mlops.lake.store import Lake

from .conftest import CHURN_HEADER, churn_csv, churn_row, csv_line, run_ingest


def messy_csv(path: Path) -> None:
    lines = [
        CHURN_HEADER,
        csv_line(churn_row(1)),  # line 2: good
        csv_line(churn_row(2, age="abc")),  # 3: type_cast:age
        csv_line(churn_row(3, plan="NA")),  # 4: missing_required:plan
        csv_line(churn_row(1, age="45")),  # 5: duplicate_key
        csv_line(churn_row(4, age="150", region="mars")),  # 6: 2x out_of_domain
        csv_line(churn_row(5)).replace(",basic,", ',"basic,'),  # 7: broken quote
        "6,2024-01-05,30",  # 8: wrong column count
        csv_line(churn_row(7, plan=" premium ", support_calls="")),  # 9: good
        csv_line(churn_row(8, age="x", churned="")),  # 10: two reasons
    ]
    body = ("\n".join(lines) + "\n").encode()
    body += csv_line(churn_row(9)).replace("user9", "us\xe9r9").encode("latin-1") + b"\n"  # 11
    body += (csv_line(churn_row(10)) + "\n").encode()  # 12: good
    path.write_bytes(body)


def test_messy_csv_accounting_is_exact(
    lake: Lake, source_dir: Path, log_lines: Callable[[str], list[str]]
) -> None:
    source = source_dir / "churn.csv"
    messy_csv(source)
    result = run_ingest(lake, [source])
    logged = log_lines("include.mlops.etl.pipeline")

    assert result.rows_read == 11
    assert result.rows_curated == 3
    assert result.rows_quarantined == 8
    assert result.reasons == {
        "type_cast:age": 2,
        "missing_required:plan": 1,
        "missing_required:churned": 1,
        "duplicate_key": 1,
        "out_of_domain:age": 1,
        "out_of_domain:region": 1,
        "malformed_row": 2,
        "invalid_encoding": 1,
    }

    quarantine = pq.read_table(lake.path(result.quarantine_key)).to_pylist()
    by_line = {q["_row_number"]: q for q in quarantine}
    assert {n: q["_reason"] for n, q in by_line.items()} == {
        3: "type_cast:age",
        4: "missing_required:plan",
        5: "duplicate_key",
        6: "out_of_domain:age;out_of_domain:region",
        7: "malformed_row",
        8: "malformed_row",
        10: "type_cast:age;missing_required:churned",
        11: "invalid_encoding",
    }
    assert by_line[3]["age"] == "abc" and by_line[3]["email"] == "user2@example.com"
    assert by_line[8]["_raw"] == "6,2024-01-05,30" and by_line[8]["customer_id"] is None
    assert by_line[11]["_raw"].count("us\\xe9r9") == 1 and by_line[11]["customer_id"] == "9"
    assert all(q["_ingest_run_id"] == "run-1" for q in quarantine)
    assert all(q["_source_file"] == str(source) for q in quarantine)

    # The curated file waits for the quality gate; then it is published whole.
    assert not lake.exists(result.curated_key)
    staged = pq.read_table(result.staged_path, filesystem=lake.fs)
    assert staged.column("customer_id").to_pylist() == [1, 7, 10]
    publish_partition(lake, result)
    curated = pq.read_table(lake.path(result.curated_key))
    assert curated.schema.field("signup_date").type == pa.date32()
    assert curated.column("plan").to_pylist() == ["basic", "premium", "basic"]
    assert curated.column("support_calls").to_pylist() == [2, None, 2]
    assert "@" not in "".join(curated.column("email").to_pylist())
    assert hashlib.sha256(lake.read_bytes(result.curated_key)).hexdigest() == result.content_hash
    assert result.bytes == len(lake.read_bytes(result.curated_key))
    assert lake.list_staged() == []

    assert any("rows/s" in line and "batch 1" in line for line in logged)
    assert "8 quarantined" in logged[-1]
    json.dumps(result.to_dict())  # an XCom value
    assert IngestResult.from_dict(result.to_dict()) == result


def test_jsonl_and_parquet_sources(lake: Lake, source_dir: Path) -> None:
    jsonl = source_dir / "a.jsonl"
    rows = [churn_row(1), churn_row(2, age="x")]
    with jsonl.open("w") as f:
        for row in rows:
            record = {**row, "customer_id": int(row["customer_id"])}
            f.write(json.dumps(record) + "\n")
        f.write("{broken\n")
    parquet = source_dir / "b.parquet"
    table = pa.table(
        {
            **{k: [v] for k, v in churn_row(3).items()},
            "customer_id": pa.array([3], pa.int32()),
            "age": pa.array([31.0]),
            "support_calls": pa.array([float("nan")]),
        }
    )
    pq.write_table(table, parquet)

    result = run_ingest(lake, [jsonl, parquet])
    assert (result.rows_read, result.rows_curated, result.rows_quarantined) == (4, 2, 2)
    assert result.reasons == {"type_cast:age": 1, "malformed_row": 1}
    publish_partition(lake, result)
    curated = pq.read_table(lake.path(result.curated_key)).to_pylist()
    assert [(r["customer_id"], r["age"], r["support_calls"]) for r in curated] == [
        (1, 30, 2),
        (3, 31, None),
    ]


@pytest.mark.parametrize("content", ["", CHURN_HEADER + "\n"])
def test_empty_source_writes_nothing(lake: Lake, source_dir: Path, content: str) -> None:
    source = source_dir / "empty.csv"
    source.write_text(content)
    with pytest.raises(EmptySourceError, match="no records"):
        run_ingest(lake, [source])
    assert lake.list_files("") == []


def test_schema_drift_stops_the_ingest_with_a_report(lake: Lake, source_dir: Path) -> None:
    source = source_dir / "drift.csv"
    text = churn_csv([churn_row(i) for i in range(1, 4)])
    text = text.replace("payment_method", "pay_method").replace(",2024-01-05,", ",soon,")
    source.write_text(text)
    with pytest.raises(SchemaDriftError) as caught:
        run_ingest(lake, [source], run_id="r-drift")
    message = str(caught.value)
    assert "'pay_method'" in message and "'payment_method'" in message
    assert "'signup_date' retyped: expected date, observed string" in message
    report_key = "reports/quality/churn/r-drift/schema_drift.json"
    assert lake.uri(report_key) in message
    report = lake.read_json(report_key)
    assert report["added"] == ["pay_method"] and report["missing"] == ["payment_method"]
    assert not lake.list_files("curated") and not lake.list_files("quarantine")
    assert lake.list_staged() == []


def test_first_ingest_infers_then_the_catalog_rules(lake: Lake, source_dir: Path) -> None:
    first = source_dir / "orders-1.csv"
    first.write_text("order_id,amount,day\n1,9.5,2024-01-01\n2,3,2024-01-02\n")
    result = run_ingest(lake, [first], dataset="orders")
    assert result.schema["origin"] == "inferred" and result.schema["key"] == ["order_id"]
    publish_partition(lake, result)
    entry = record_partition(lake, "orders", result.schema, result, 1.0, "file:///report")
    assert entry["schema"]["version"] == 1 and entry["total_rows"] == 2

    # Later data is held to the catalogued schema: a text amount is drift.
    second = source_dir / "orders-2.csv"
    second.write_text("order_id,amount,day\n3,cheap,2024-01-03\n4,dear,2024-01-03\n")
    with pytest.raises(SchemaDriftError, match="'amount' retyped: expected float64"):
        run_ingest(lake, [second], dataset="orders", partition="2024-01-06")


def test_catalog_versions_snapshots_and_paths(lake: Lake, source_dir: Path) -> None:
    source = source_dir / "c.csv"
    source.write_text(churn_csv([churn_row(1), churn_row(2)]))
    now = dt.datetime(2024, 1, 6, tzinfo=dt.UTC)
    first = run_ingest(lake, [source], partition="2024-01-05")
    publish_partition(lake, first)
    entry = record_partition(lake, "churn", first.schema, first, 0.99, "u", now=now)
    part = entry["partitions"]["2024-01-05"]
    assert part["rows"] == 2 and part["content_hash"] == first.content_hash
    assert part["quality_score"] == 0.99 and part["ingested_at"] == now.isoformat()
    assert entry["snapshot_id"] == snapshot_id(entry)
    assert load_catalog(lake, "churn") == entry

    second = run_ingest(lake, [source], partition="2024-01-06", run_id="run-2")
    publish_partition(lake, second)
    entry2 = record_partition(lake, "churn", second.schema, second.to_dict(), None, None)
    assert entry2["schema"]["version"] == 1  # same schema, same version
    assert entry2["total_rows"] == 4 and entry2["snapshot_id"] != entry["snapshot_id"]
    assert curated_paths(lake, "churn") == [
        lake.path("curated/churn/dt=2024-01-05/part-00000.parquet"),
        lake.path("curated/churn/dt=2024-01-06/part-00000.parquet"),
    ]
    assert pq.read_table(curated_paths(lake, "churn", ["2024-01-06"])).num_rows == 2
    with pytest.raises(ValueError, match="2024-02-01"):
        curated_paths(lake, "churn", ["2024-02-01"])

    changed = dict(second.schema)
    changed["columns"] = [*changed["columns"][:-1], {**changed["columns"][-1], "nullable": True}]
    entry3 = record_partition(lake, "churn", changed, second, None, None)
    assert entry3["schema"]["version"] == 2  # bumped only because the schema changed


def test_rerun_is_byte_identical_and_idempotent(lake: Lake, source_dir: Path) -> None:
    source = source_dir / "c.csv"
    source.write_text(churn_csv([churn_row(i) for i in range(1, 300)] + [churn_row(1)]))
    first = run_ingest(lake, [source], batch_rows=64)
    publish_partition(lake, first)
    published = lake.read_bytes(first.curated_key)
    again = run_ingest(lake, [source], batch_rows=64)
    assert again.content_hash == first.content_hash
    publish_partition(lake, again)
    assert lake.read_bytes(first.curated_key) == published
    assert lake.list_files("curated") == [first.curated_key]
    assert lake.list_files("quarantine") == [first.quarantine_key]
    assert pq.read_table(lake.path(first.quarantine_key)).num_rows == 1
    # A retried publish after success is a no-op, not an error.
    assert publish_partition(lake, again) == lake.uri(first.curated_key)


def test_gate_failure_discards_the_staged_file(lake: Lake, source_dir: Path) -> None:
    source = source_dir / "c.csv"
    source.write_text(churn_csv([churn_row(1)]))
    result = run_ingest(lake, [source])
    discard_staged(lake, result)
    assert lake.list_staged() == [] and not lake.exists(result.curated_key)
    with pytest.raises(FileNotFoundError, match="re-run the ingest"):
        publish_partition(lake, result)


def test_failure_mid_write_keeps_the_published_partition(
    lake: Lake, source_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_dir / "c.csv"
    rows = 2_000
    source.write_text(churn_csv([churn_row(i, age="x" if i == 3 else 30) for i in range(1, rows)]))
    good = run_ingest(lake, [source], batch_rows=64)
    publish_partition(lake, good)
    curated_before = lake.read_bytes(good.curated_key)
    quarantine_before = lake.read_bytes(good.quarantine_key)

    real = pipeline.validate_batch
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "validate_batch", failing)
    source.write_text(churn_csv([churn_row(i, age=31) for i in range(1, rows)]))
    with pytest.raises(RuntimeError, match="disk full"):
        run_ingest(lake, [source], batch_rows=64, run_id="run-2")

    assert lake.read_bytes(good.curated_key) == curated_before
    assert lake.read_bytes(good.quarantine_key) == quarantine_before
    assert pq.read_table(lake.path(good.curated_key)).num_rows == rows - 2
    assert lake.list_staged() == []


def test_invalid_params_are_refused_before_any_work(lake: Lake, source_dir: Path) -> None:
    with pytest.raises(ValueError, match="partition"):
        run_ingest(lake, [source_dir / "x.csv"], partition="2024-1-1")
    with pytest.raises(ValueError, match="dataset"):
        run_ingest(lake, [source_dir / "x.csv"], dataset="Churn")
    with pytest.raises(EmptySourceError):
        run_ingest(lake, [])
