"""Schema decisions: inference, PII by name, key choice, drift, declared schemas."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from include.mlops.etl.declared import declared_schema
from include.mlops.etl.schema import (
    ColumnSpec,
    DatasetSchema,
    SchemaDrift,
    SchemaDriftError,
    compare_schema,
    infer_schema,
    looks_like_pii,
    observe_schema,
)

from .conftest import CHURN_COLUMNS


def strings(**columns: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({k: pa.array(v, pa.string()) for k, v in columns.items()})


def test_infers_each_type() -> None:
    batch = strings(
        i=["1", "2", "-3"],
        f=["1.5", "2", "NaN"],
        b=["true", "False", "yes"],
        d=["2024-01-05", "2024-01-06", ""],
        ts=["2024-01-05 10:00:00", "2024-01-05T11:00:00Z", "2024-01-05"],
        s=["a", "2", "2024-01-05"],
        empty=["", "NA", None],
    )
    schema = infer_schema(batch, "things")
    assert {c.name: c.type for c in schema.columns} == {
        "i": "int64",
        "f": "float64",
        "b": "bool",
        "d": "date",
        "ts": "timestamp",
        "s": "string",
        "empty": "string",
    }
    assert schema.origin == "inferred" and schema.version == 1


def test_zero_one_columns_stay_int() -> None:
    assert infer_schema(strings(flag=["0", "1", "1"]), "t").column("flag").type == "int64"


def test_infers_nullability_from_missing_values() -> None:
    schema = infer_schema(strings(a=["1", "2"], b=["1", "NA"]), "t")
    assert schema.column("a").nullable is False
    assert schema.column("b").nullable is True


def test_infers_categorical_for_low_cardinality_strings() -> None:
    batch = strings(
        plan=["basic", "premium"] * 10,
        name=[f"n{i}" for i in range(20)],
        count=["1", "2"] * 10,
    )
    schema = infer_schema(batch, "t")
    assert schema.column("plan").categorical is True
    assert schema.column("name").categorical is False
    assert schema.column("count").categorical is False  # numbers are not categories
    assert schema.column("plan").allowed is None  # a new category is not an error


@pytest.mark.parametrize(
    ("name", "pii"),
    [
        ("email", True),
        ("customer_email", True),
        ("eMail", True),
        ("phone_number", True),
        ("mobile", True),
        ("ssn", True),
        ("first_name", True),
        ("lastName", True),
        ("date_of_birth", True),
        ("ip_address", True),
        ("credit_card_number", True),
        ("plan", False),
        ("product_name", False),
        ("region", False),
        ("churned", False),
    ],
)
def test_detects_pii_by_column_name(name: str, pii: bool) -> None:
    assert looks_like_pii(name) is pii


def test_inferred_pii_column_is_flagged() -> None:
    schema = infer_schema(strings(email=["a@x.io", "b@x.io"], plan=["a", "b"]), "t")
    assert schema.column("email").pii and not schema.column("plan").pii


def test_key_prefers_id_names_and_requires_unique_non_null() -> None:
    batch = strings(
        row=["1", "2", "3"],
        order_id=["a", "b", "c"],
        dup_id=["1", "1", "2"],
        null_id=["1", None, "3"],
    )
    schema = infer_schema(batch, "t")
    assert schema.key == ["order_id"]
    assert schema.column("order_id").nullable is False
    assert infer_schema(strings(id=["1", "2"], order_id=["a", "b"]), "t").key == ["id"]


def test_no_key_without_evidence() -> None:
    # A unique int column without an id-like name is a coincidence in a small sample.
    assert infer_schema(strings(amount=["1", "2", "3"]), "t").key == []
    assert infer_schema(strings(x_id=["1", "1"]), "t").key == []


def test_schema_round_trips_through_json() -> None:
    schema = declared_schema("churn")
    assert schema is not None
    again = DatasetSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert again.same_structure(schema)


def test_arrow_schema_types_and_nullability() -> None:
    schema = declared_schema("churn")
    assert schema is not None
    arrow = schema.arrow_schema()
    assert arrow.names == CHURN_COLUMNS
    assert arrow.field("signup_date").type == pa.date32()
    assert arrow.field("customer_id").nullable is False
    assert arrow.field("total_charges").nullable is True
    assert arrow.field("email").type == pa.string()  # hashed


def test_declared_churn_schema_matches_the_contract() -> None:
    schema = declared_schema("churn")
    assert schema is not None and schema.origin == "declared" and schema.key == ["customer_id"]
    by_name = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns] == CHURN_COLUMNS
    assert by_name["age"].min == 18 and by_name["age"].max == 100
    assert by_name["plan"].allowed == ["basic", "standard", "premium"]
    assert by_name["churned"].allowed == [0, 1] and not by_name["churned"].nullable
    assert by_name["email"].pii and by_name["email"].nullable
    assert by_name["region"].nullable and by_name["region"].categorical
    assert declared_schema("unknown_dataset") is None


def test_invalid_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="type 'integer'"):
        ColumnSpec("a", "integer")
    with pytest.raises(ValueError, match="min/max"):
        ColumnSpec("a", "string", min=1)
    with pytest.raises(ValueError, match="key column"):
        DatasetSchema("t", [ColumnSpec("a", "int64")], key=["b"])
    with pytest.raises(ValueError, match="dataset"):
        DatasetSchema("Bad-Name", [])


def expected() -> DatasetSchema:
    return DatasetSchema(
        "t",
        [ColumnSpec("id", "int64"), ColumnSpec("amount", "float64"), ColumnSpec("day", "date")],
        key=["id"],
    )


def test_no_drift_for_matching_or_widened_data() -> None:
    batch = strings(id=["1", "2"], amount=["1", "2"], day=["2024-01-01", "2024-01-02"])
    drift = compare_schema(expected(), observe_schema(batch, expected()))
    assert not drift.is_drift


def test_a_few_bad_values_are_row_errors_not_drift() -> None:
    batch = strings(id=["1", "2", "x"], amount=["1.5", "2", "3"], day=["2024-01-01"] * 3)
    assert not compare_schema(expected(), observe_schema(batch, expected())).is_drift


def test_drift_added_missing_retyped() -> None:
    batch = strings(id=["1", "2"], amount=["cheap", "dear"], extra=["a", "b"])
    drift = compare_schema(expected(), observe_schema(batch, expected()), source="f.csv")
    assert drift.is_drift
    assert drift.added == ["extra"]
    assert drift.missing == ["day"]
    assert drift.retyped == [{"column": "amount", "expected": "float64", "observed": "string"}]
    assert drift.to_dict()["is_drift"] is True


def test_typed_parquet_drift() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, 2], pa.int32()), "amount": [True, False], "day": ["2024-01-01"] * 2}
    )
    drift = compare_schema(expected(), observe_schema(batch, expected()))
    assert drift.retyped == [{"column": "amount", "expected": "float64", "observed": "bool"}]


def test_drift_error_names_columns_types_and_report() -> None:
    drift = SchemaDrift(
        "t",
        added=["extra"],
        missing=["day"],
        retyped=[{"column": "amount", "expected": "float64", "observed": "string"}],
        source="f.csv",
        expected_version=3,
    )
    error = SchemaDriftError(drift, "s3://lake/reports/quality/t/r/schema_drift.json")
    message = str(error)
    assert isinstance(error, ValueError)
    for part in (
        "'extra'",
        "'day'",
        "'amount'",
        "expected float64, observed string",
        "f.csv",
        "version 3",
        "s3://lake/reports/quality/t/r/schema_drift.json",
    ):
        assert part in message


def test_inference_tolerates_a_few_bad_values_but_not_many() -> None:
    import pyarrow as pa

    from include.mlops.etl.schema import infer_schema

    ages = [str(20 + i % 50) for i in range(1000)]
    few_bad = ages[:995] + ["abc"] * 5  # 0.5%: typos, quarantined later as type_cast
    many_bad = ages[:900] + ["abc"] * 100  # 10%: really a text column
    sample = pa.table({"few": few_bad, "many": many_bad})
    tiny = pa.table({"tiny": ["1", "x"] + ["2"] * 8})  # too small to tolerate anything
    types = {c.name: c.type for c in infer_schema(sample, "t").columns}
    assert types == {"few": "int64", "many": "string"}
    assert infer_schema(tiny, "t").columns[0].type == "string"
