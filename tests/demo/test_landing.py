"""Landing files of the churn demo: exact defects per format, chunking, the landing zone,
the CLI; every file judged by a referee that does not share the writer's code."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from include.mlops.demo.churn import COLUMNS, generate_churn
from include.mlops.demo.landing import DEFECT_KINDS, main, write_demo_days, write_landing_file
from tests.demo.contract import EXPECTED_COLUMNS, PAYMENTS, PLANS, REGIONS

NULL_TOKENS = {"", "NA"}
ALL_DEFECTS = {
    "wrong_type": 5,
    "missing_required": 4,
    "duplicate_key": 3,
    "out_of_domain": 4,
    "broken_quoting": 3,
    "wrong_encoding": 2,
}


# --------------------------------------------------------------------------- a referee


def _classify(rec: dict[str, Any], seen_ids: set[str], *, payments: set[str]) -> str:
    """Judge one parsed record independently of the generator: a defect kind or "good"."""

    def present(v: Any) -> bool:
        return v is not None and v not in NULL_TOKENS

    if not present(rec["customer_id"]) or not present(rec["plan"]):
        return "missing_required"
    try:
        age = int(rec["age"])
        tenure = int(rec["tenure_months"])
        monthly = float(rec["monthly_charges"])
        int(rec["customer_id"])
        pd.Timestamp(rec["signup_date"])
        churned = int(rec["churned"])
        total = float(rec["total_charges"]) if present(rec["total_charges"]) else None
        calls = int(rec["support_calls"]) if present(rec["support_calls"]) else None
    except (TypeError, ValueError):
        return "wrong_type"
    if (
        not 18 <= age <= 100
        or not 0 <= tenure <= 120
        or not 0 <= monthly <= 1000
        or rec["plan"] not in PLANS
        or churned not in (0, 1)
        or (total is not None and total < 0)
        or (calls is not None and not 0 <= calls <= 100)
        or (present(rec["region"]) and rec["region"] not in REGIONS)
        or (present(rec["payment_method"]) and rec["payment_method"] not in payments)
        or (present(rec["email"]) and "@" not in rec["email"])
    ):
        return "out_of_domain"
    key = str(rec["customer_id"])
    if key in seen_ids:
        return "duplicate_key"
    seen_ids.add(key)
    return "good"


def _referee_csv(path: Path) -> Counter[str]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    header, *lines = raw[:-1].split(b"\n")
    assert header.decode() == ",".join(EXPECTED_COLUMNS)
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for line in lines:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            counts["wrong_encoding"] += 1
            continue
        fields = next(csv.reader([text]))
        if len(fields) != len(EXPECTED_COLUMNS):
            counts["broken_quoting"] += 1
            continue
        counts[
            _classify(dict(zip(EXPECTED_COLUMNS, fields, strict=True)), seen, payments=PAYMENTS)
        ] += 1
    return counts


def _referee_jsonl(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for line in path.read_bytes().splitlines():
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            counts["wrong_encoding"] += 1
            continue
        rec = json.loads(text)
        assert list(rec) == EXPECTED_COLUMNS
        counts[_classify(rec, seen, payments=PAYMENTS)] += 1
    return counts


def _referee_parquet(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for rec in pq.read_table(path).to_pylist():
        counts[_classify(rec, seen, payments=PAYMENTS)] += 1
    return counts


# --------------------------------------------------------------------------- landing files


def test_csv_defect_counts_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "churn.csv"
    report = write_landing_file(path, fmt="csv", n_rows=3000, seed=4, defects=ALL_DEFECTS)
    assert report.rows_total == 3000
    assert report.defects == ALL_DEFECTS
    assert report.expected_good == 3000 - sum(ALL_DEFECTS.values())
    counts = _referee_csv(path)
    assert counts.pop("good") == report.expected_good
    assert dict(counts) == ALL_DEFECTS
    assert report.to_dict()["defects"] == ALL_DEFECTS

    text = path.read_bytes()
    assert b"\nNA," in text or b",NA," in text, "some nulls are spelled NA"
    assert b",," in text, "some nulls are empty fields"
    assert b"jos\xe9" in text or b"\xe9" in text, "raw latin-1 bytes, not UTF-8"
    # A lenient CSV reader drops just the broken lines and keeps everything after them.
    df = pd.read_csv(path, on_bad_lines="skip", encoding="latin-1", dtype=str)
    assert len(df) == 3000 - ALL_DEFECTS["broken_quoting"]


def test_jsonl_defect_counts_are_exact(tmp_path: Path) -> None:
    defects = {k: v for k, v in ALL_DEFECTS.items() if k != "broken_quoting"}
    path = tmp_path / "churn.jsonl"
    report = write_landing_file(path, fmt="jsonl", n_rows=2000, seed=9, defects=defects)
    counts = _referee_jsonl(path)
    assert counts.pop("good") == report.expected_good == 2000 - sum(defects.values())
    assert dict(counts) == defects


def test_parquet_defect_counts_are_exact(tmp_path: Path) -> None:
    defects = {"missing_required": 4, "duplicate_key": 3, "out_of_domain": 5}
    path = tmp_path / "churn.parquet"
    report = write_landing_file(path, fmt="parquet", n_rows=2000, seed=9, defects=defects)
    counts = _referee_parquet(path)
    assert counts.pop("good") == report.expected_good == 1988
    assert dict(counts) == defects


def test_clean_file_matches_the_generated_frame(tmp_path: Path) -> None:
    path = tmp_path / "churn.csv"
    write_landing_file(path, n_rows=4000, seed=2, start_id=500, drift=0.3)
    read = pd.read_csv(path, keep_default_na=False, na_values=["", "NA"])
    expected = generate_churn(4000, seed=2, start_id=500, drift=0.3)
    assert _referee_csv(path) == Counter(good=4000)
    pd.testing.assert_frame_equal(
        read.astype({"signup_date": "datetime64[ms]", "support_calls": "Int64"}),
        expected,
        check_dtype=False,
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_chunked_writing_equals_one_piece(tmp_path: Path, fmt: str) -> None:
    defects = {"duplicate_key": 7, "missing_required": 5, "out_of_domain": 4}
    if fmt != "parquet":
        defects["wrong_encoding"] = 3
    if fmt == "csv":
        defects["broken_quoting"] = 3
    kwargs: dict[str, Any] = {"fmt": fmt, "n_rows": 130_001, "seed": 13, "defects": defects}
    one = write_landing_file(tmp_path / f"one.{fmt}", chunk_rows=1_000_000, **kwargs)
    many = write_landing_file(tmp_path / f"many.{fmt}", chunk_rows=17_333, **kwargs)
    assert one.to_dict() | {"path": ""} == many.to_dict() | {"path": ""}
    if fmt == "parquet":
        assert pq.read_table(one.path).equals(pq.read_table(many.path))
    else:
        assert Path(one.path).read_bytes() == Path(many.path).read_bytes()


def test_defects_a_format_cannot_carry_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="broken_quoting"):
        write_landing_file(
            tmp_path / "x.jsonl", fmt="jsonl", n_rows=10, defects={"broken_quoting": 1}
        )
    with pytest.raises(ValueError, match="wrong_type"):
        write_landing_file(
            tmp_path / "x.parquet", fmt="parquet", n_rows=10, defects={"wrong_type": 1}
        )
    with pytest.raises(ValueError, match="unknown defect"):
        write_landing_file(tmp_path / "x.csv", n_rows=10, defects={"typo": 1})
    with pytest.raises(ValueError, match="do not fit"):
        write_landing_file(tmp_path / "x.csv", n_rows=3, defects={"wrong_type": 3})
    assert set(DEFECT_KINDS) == set(ALL_DEFECTS)
    assert tuple(EXPECTED_COLUMNS) == COLUMNS


def test_demo_days_lay_out_a_landing_zone(tmp_path: Path) -> None:
    days = write_demo_days(
        tmp_path,
        days=3,
        rows_per_day=500,
        start="2026-11-01",
        seed=1,
        defects_on_days={1: {"wrong_type": 2, "duplicate_key": 1}},
    )
    assert [p for p, _, _ in days] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    for partition, path, _ in days:
        assert path == tmp_path / "churn" / f"dt={partition}" / "churn.csv"
    assert [r.expected_good for _, _, r in days] == [500, 497, 500]
    ids = [
        set(pd.read_csv(path, dtype=str, encoding="latin-1")["customer_id"]) for _, path, _ in days
    ]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert _referee_csv(days[1][1]) == Counter(good=497, wrong_type=2, duplicate_key=1)
    # Each day is a different draw, not the same customers renumbered.
    day0, day2 = (pd.read_csv(path) for path in (days[0][1], days[2][1]))
    assert not day0["age"].equals(day2["age"])


def test_cli_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(
            [
                "--rows",
                "300",
                "--out",
                str(out),
                "--format",
                "csv",
                "--drift",
                "0.2",
                "--defects",
                "wrong_type=3,broken_quoting=1",
            ]
        )
    assert rc == 0
    report = json.loads(buf.getvalue())
    assert report["rows_total"] == 300
    assert report["defects"]["wrong_type"] == 3
    assert report["defects"]["broken_quoting"] == 1
    assert report["expected_good"] == 296
    assert _referee_csv(out) == Counter(good=296, wrong_type=3, broken_quoting=1)
