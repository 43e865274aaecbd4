"""Row rules: each reason, all reasons per row, duplicate keys across batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from include.mlops.etl.declared import declared_schema
from include.mlops.etl.schema import ColumnSpec, DatasetSchema
from include.mlops.etl.validate import KeyRegistry, ValidatedBatch, validate_batch
from include.mlops.settings import DEFAULT_MISSING_TOKENS

from .conftest import CHURN_COLUMNS, churn_row


def churn_batch(rows: list[dict]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {c: pa.array([r[c] for r in rows], pa.string()) for c in CHURN_COLUMNS}
    )


def check(rows: list[dict], keys: KeyRegistry | None = None) -> ValidatedBatch:
    schema = declared_schema("churn")
    assert schema is not None
    return validate_batch(
        churn_batch(rows),
        schema,
        missing_tokens=DEFAULT_MISSING_TOKENS,
        pii_salt="s",
        keys=keys if keys is not None else KeyRegistry(),
    )


def reasons_by_row(out: ValidatedBatch) -> dict[int, str]:
    return dict(zip(out.rejected_rows.tolist(), out.reasons, strict=True))


def test_clean_rows_are_typed_and_masked() -> None:
    out = check([churn_row(1, plan=" premium ", total_charges="NA")])
    assert out.rejected_rows.size == 0
    row = out.curated.to_pylist()[0]
    assert row["customer_id"] == 1 and row["plan"] == "premium"
    assert row["total_charges"] is None
    assert row["email"] != "user1@example.com" and len(row["email"]) == 32


def test_each_reason() -> None:
    out = check(
        [
            churn_row(1),
            churn_row(2, age="thirty"),
            churn_row(3, plan=""),
            churn_row(4, age="17"),
            churn_row(5, plan="gold"),
            churn_row(6, churned="2"),
            churn_row(7, monthly_charges="-1"),
            churn_row(8, signup_date="2024-02-30"),
            churn_row(9, region="NA"),  # nullable: missing is fine
        ]
    )
    assert reasons_by_row(out) == {
        1: "type_cast:age",
        2: "missing_required:plan",
        3: "out_of_domain:age",
        4: "out_of_domain:plan",
        5: "out_of_domain:churned",
        6: "out_of_domain:monthly_charges",
        7: "type_cast:signup_date",
    }
    assert [r["customer_id"] for r in out.curated.to_pylist()] == [1, 9]


def test_a_row_gets_all_its_reasons() -> None:
    out = check([churn_row(1), churn_row(1, age="x", plan="gold", tenure_months="")])
    assert reasons_by_row(out) == {
        1: "type_cast:age;missing_required:tenure_months;out_of_domain:plan;duplicate_key"
    }
    assert out.reason_counts == {
        "type_cast:age": 1,
        "missing_required:tenure_months": 1,
        "out_of_domain:plan": 1,
        "duplicate_key": 1,
    }


def test_duplicate_keys_within_and_across_batches_keep_the_first() -> None:
    keys = KeyRegistry()
    first = check([churn_row(1), churn_row(2), churn_row(1, age="40")], keys)
    assert reasons_by_row(first) == {2: "duplicate_key"}
    second = check([churn_row(2), churn_row(3), churn_row(3)], keys)
    assert reasons_by_row(second) == {0: "duplicate_key", 2: "duplicate_key"}
    assert [r["customer_id"] for r in second.curated.to_pylist()] == [3]


def test_an_invalid_first_occurrence_does_not_block_a_valid_one() -> None:
    out = check([churn_row(1, age="x"), churn_row(1)])
    assert reasons_by_row(out) == {0: "type_cast:age;duplicate_key"}
    assert out.curated.num_rows == 1


def test_string_and_compound_keys() -> None:
    schema = DatasetSchema(
        "t", [ColumnSpec("a", "string"), ColumnSpec("b", "int64")], key=["a", "b"]
    )
    batch = pa.RecordBatch.from_pydict(
        {"a": ["x", "x", "y", "x", " x"], "b": ["1", "2", "1", "1", "2"]}
    )
    out = validate_batch(batch, schema, missing_tokens=[], pii_salt="", keys=KeyRegistry())
    assert reasons_by_row(out) == {3: "duplicate_key", 4: "duplicate_key"}


def test_key_columns_are_required() -> None:
    schema = DatasetSchema("t", [ColumnSpec("id", "int64", nullable=True)], key=["id"])
    batch = pa.RecordBatch.from_pydict({"id": ["1", ""]})
    out = validate_batch(batch, schema, missing_tokens=[""], pii_salt="", keys=KeyRegistry())
    assert reasons_by_row(out) == {1: "missing_required:id"}


def test_missing_column_counts_as_missing_values() -> None:
    schema = DatasetSchema("t", [ColumnSpec("a", "int64"), ColumnSpec("b", "int64", False)])
    out = validate_batch(
        pa.RecordBatch.from_pydict({"a": ["1"]}), schema, missing_tokens=[], pii_salt=""
    )
    assert reasons_by_row(out) == {0: "missing_required:b"}


def test_typed_parquet_values_are_validated() -> None:
    schema = DatasetSchema(
        "t", [ColumnSpec("n", "int64", min=0), ColumnSpec("x", "float64", nullable=False)]
    )
    batch = pa.RecordBatch.from_pydict(
        {"n": pa.array([1.0, 2.5, -1.0, None]), "x": pa.array([1, 2, 3, float("nan")])}
    )
    out = validate_batch(batch, schema, missing_tokens=DEFAULT_MISSING_TOKENS, pii_salt="")
    assert reasons_by_row(out) == {
        1: "type_cast:n",
        2: "out_of_domain:n",
        3: "missing_required:x",
    }
    assert out.curated.to_pylist() == [{"n": 1, "x": 1.0}]


def test_key_registry() -> None:
    registry = KeyRegistry()
    for start in range(0, 10_000, 1_000):
        keys = np.arange(start, start + 1_000, dtype=np.int64)
        assert not registry.contains(keys).any()
        registry.add(keys)
    assert registry.contains(np.array([0, 9_999, 10_000], dtype=np.int64)).tolist() == [
        True,
        True,
        False,
    ]
    assert registry.size == 10_000
    assert len(registry._runs) < 5  # runs merge: lookups stay a few binary searches
