"""The churn demo generator: determinism, schema, learnable signal, drift, exact defects."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from include.mlops.demo.churn import (
    COLUMNS,
    DEFECT_KINDS,
    generate_churn,
    main,
    write_demo_days,
    write_landing_file,
)

# The contract, spelled out here rather than imported, so a change in the generator
# cannot silently move the goalposts.
EXPECTED_COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "tenure_months",
    "plan",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "region",
    "payment_method",
    "email",
    "churned",
]
PLANS = {"basic", "standard", "premium"}
REGIONS = {"north", "south", "east", "west", "central"}
PAYMENTS = {"card", "bank_transfer", "paypal", "check"}
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


# --------------------------------------------------------------------------- generation


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = generate_churn(3000, seed=7)
    pd.testing.assert_frame_equal(a, generate_churn(3000, seed=7))
    b = generate_churn(3000, seed=8)
    assert not a["age"].equals(b["age"])
    # start_id moves the keys, not the customers.
    shifted = generate_churn(3000, seed=7, start_id=1001)
    assert shifted["customer_id"].tolist() == list(range(1001, 4001))
    pd.testing.assert_frame_equal(
        a.drop(columns=["customer_id", "email"]), shifted.drop(columns=["customer_id", "email"])
    )


def test_a_prefix_is_the_same_rows() -> None:
    """Rows depend on (seed, row index) only, across the generator's internal blocks."""
    long = generate_churn(120_000, seed=3)
    pd.testing.assert_frame_equal(generate_churn(70_000, seed=3), long.iloc[:70_000])


def test_schema_dtypes_and_domains() -> None:
    df = generate_churn(20_000, seed=1, as_of="2026-11-01")
    assert list(df.columns) == EXPECTED_COLUMNS
    for col in ("customer_id", "age", "tenure_months", "churned"):
        assert df[col].dtype == np.int64, col
    assert df["support_calls"].dtype == "Int64"
    assert df["monthly_charges"].dtype == np.float64
    assert df["total_charges"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])
    assert df["customer_id"].is_unique
    assert df["age"].between(18, 100).all()
    assert df["tenure_months"].between(0, 120).all()
    assert df["monthly_charges"].between(0, 1000).all()
    assert (df["total_charges"].dropna() >= 0).all()
    assert df["support_calls"].dropna().between(0, 100).all()
    assert set(df["plan"]) == PLANS
    assert set(df["region"].dropna()) == REGIONS
    assert set(df["payment_method"].dropna()) == PAYMENTS
    assert set(df["churned"]) == {0, 1}
    assert (df["signup_date"] <= pd.Timestamp("2026-11-01")).all()
    # Required columns are never null; each nullable one has a few nulls.
    for col in (
        "customer_id",
        "signup_date",
        "age",
        "tenure_months",
        "plan",
        "monthly_charges",
        "churned",
    ):
        assert df[col].notna().all(), col
    for col in ("total_charges", "support_calls", "region", "payment_method", "email"):
        assert 0.005 < df[col].isna().mean() < 0.1, col
    emails = df["email"].dropna()
    assert emails.str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+").all()
    assert emails.nunique() > 0.99 * len(emails)
    # Plans price differently, and total ≈ tenure × monthly.
    by_plan = df.groupby("plan")["monthly_charges"].mean()
    assert by_plan["basic"] < by_plan["standard"] < by_plan["premium"]
    ok = df.dropna(subset=["total_charges"])
    ratio = ok["total_charges"] / (ok["tenure_months"] * ok["monthly_charges"]).where(
        ok["tenure_months"] > 0
    )
    assert ratio.dropna().between(0.9, 1.05).all()


def _features(df: pd.DataFrame) -> pd.DataFrame:
    x = df[["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]].astype(
        float
    )
    for col in ("plan", "payment_method", "region"):
        x = x.join(pd.get_dummies(df[col], prefix=col, dtype=float))
    return x


def _holdout_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x_train = _features(train)
    x_test = _features(test).reindex(columns=x_train.columns, fill_value=0.0)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(
        x_train, train["churned"]
    )
    return float(roc_auc_score(test["churned"], model.predict_proba(x_test)[:, 1]))


def test_label_is_learnable_and_base_rate_is_realistic() -> None:
    train, test = generate_churn(5000, seed=11), generate_churn(5000, seed=12, start_id=5001)
    assert 0.2 <= train["churned"].mean() <= 0.3
    auc = _holdout_auc(train, test)
    assert 0.75 <= auc <= 0.95, auc


def test_noise_scales_label_noise() -> None:
    test = generate_churn(5000, seed=22, start_id=10_001, noise=0.3)
    sharp = _holdout_auc(generate_churn(5000, seed=21, noise=0.3), test)
    blurred = _holdout_auc(generate_churn(5000, seed=21, noise=3.0), test)
    assert sharp > blurred + 0.03, (sharp, blurred)


def test_drift_moves_distributions_the_stated_way() -> None:
    base = generate_churn(30_000, seed=5)
    same = generate_churn(30_000, seed=6)
    drifted = generate_churn(30_000, seed=5, drift=0.9)

    # drift=0 from another seed: the same distributions.
    assert abs(base["age"].mean() - same["age"].mean()) < 0.5
    assert abs(base["monthly_charges"].mean() - same["monthly_charges"].mean()) < 1.0
    assert abs(base["support_calls"].mean() - same["support_calls"].mean()) < 0.05
    assert "crypto" not in set(same["payment_method"].dropna())

    assert drifted["age"].mean() > base["age"].mean() + 5
    assert drifted["monthly_charges"].mean() > 1.2 * base["monthly_charges"].mean()
    assert drifted["support_calls"].mean() > 1.5 * base["support_calls"].mean()
    share = lambda df, plan: (df["plan"] == plan).mean()  # noqa: E731
    assert share(drifted, "premium") > share(base, "premium") + 0.1
    assert share(drifted, "basic") < share(base, "basic") - 0.1
    assert (drifted["payment_method"] == "crypto").mean() > 0.05
    # Region is not part of the drift: a control.
    assert abs((drifted["region"] == "north").mean() - (base["region"] == "north").mean()) < 0.02
    # Drift is still the same customers, moved: tenure does not change.
    assert drifted["tenure_months"].equals(base["tenure_months"])
    # The new category only appears at high drift.
    assert "crypto" not in set(generate_churn(30_000, seed=5, drift=0.4)["payment_method"].dropna())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="drift"):
        generate_churn(10, drift=1.5)
    with pytest.raises(ValueError, match="noise"):
        generate_churn(10, noise=-1)
    assert len(generate_churn(0)) == 0


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
