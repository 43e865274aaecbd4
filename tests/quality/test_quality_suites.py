"""Suites: generation from a profile, the declared churn suite, storage and validation.

No Great Expectations run here: these are plain-Python checks and stay fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from include.mlops.lake.store import Lake
from include.mlops.quality import (
    build_suite_from_profile,
    declared_suite,
    load_suite,
    resolve_suite,
    suite_key,
    validate_suite,
)


def _find(suite: list[dict[str, Any]], type_: str, column: str | None = None) -> list[dict]:
    return [
        e
        for e in suite
        if e["type"] == type_ and (column is None or e["kwargs"].get("column") == column)
    ]


def test_import_is_cheap() -> None:
    # DAG files and tasks that never gate must not pay for GX (4-6 s) or pandas.
    code = (
        "import sys, include.mlops.quality; "
        "heavy = [m for m in ('great_expectations', 'pandas', 'pyarrow') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_generated_expectation_says_blocking_or_warning(churn_df, schema) -> None:
    suite = build_suite_from_profile(churn_df, schema)
    assert validate_suite(suite) == suite
    for item in suite:
        assert isinstance(item["meta"]["blocking"], bool)
        assert item["meta"]["why"]
    json.dumps(suite)  # storable as-is: no numpy scalars


def test_generated_suite_declared_facts_are_blocking(churn_df, schema) -> None:
    suite = build_suite_from_profile(churn_df, schema)

    (columns,) = _find(suite, "expect_table_columns_to_match_set")
    assert columns["kwargs"]["column_set"] == [c["name"] for c in schema["columns"]]
    assert columns["meta"]["blocking"]
    (rows,) = _find(suite, "expect_table_row_count_to_be_between")
    assert rows["kwargs"]["min_value"] == 1 and rows["meta"]["blocking"]
    (key,) = _find(suite, "expect_column_values_to_be_unique", "customer_id")
    assert key["meta"]["blocking"]

    (age_null,) = _find(suite, "expect_column_values_to_not_be_null", "age")
    assert age_null["meta"]["blocking"] and "mostly" not in age_null["kwargs"]
    (age_range,) = _find(suite, "expect_column_values_to_be_between", "age")
    assert age_range["kwargs"] == {"column": "age", "min_value": 18, "max_value": 100}
    assert age_range["meta"]["blocking"]
    (plan,) = _find(suite, "expect_column_values_to_be_in_set", "plan")
    assert plan["kwargs"]["value_set"] == ["basic", "standard", "premium"]
    assert plan["meta"]["blocking"]


def test_generated_suite_profiled_facts_are_warnings(churn_df, schema) -> None:
    suite = build_suite_from_profile(churn_df, schema)

    # Categories seen in the profile (no declared list): a warning, not a stop.
    (region,) = _find(suite, "expect_column_values_to_be_in_set", "region")
    assert region["kwargs"]["value_set"] == ["central", "east", "north", "south", "west"]
    assert not region["meta"]["blocking"]

    # Observed range widened by 10% of its span; ints rounded outwards; never below
    # zero for a column that was never negative.
    lo, hi = churn_df["age"].min(), churn_df["age"].max()
    (age_min,) = _find(suite, "expect_column_min_to_be_between", "age")
    (age_max,) = _find(suite, "expect_column_max_to_be_between", "age")
    assert age_min["kwargs"]["min_value"] <= lo - 0.1 * (hi - lo)
    assert age_max["kwargs"]["max_value"] >= hi + 0.1 * (hi - lo)
    assert float(age_max["kwargs"]["max_value"]).is_integer()
    assert not age_min["meta"]["blocking"] and not age_max["meta"]["blocking"]
    (calls_min,) = _find(suite, "expect_column_min_to_be_between", "support_calls")
    assert calls_min["kwargs"]["min_value"] == 0

    # Null-share ceiling from the profile for nullable columns.
    (region_nulls,) = _find(suite, "expect_column_values_to_not_be_null", "region")
    observed = churn_df["region"].isna().mean()
    assert not region_nulls["meta"]["blocking"]
    assert 1 - region_nulls["kwargs"]["mostly"] >= observed + 0.05 - 1e-9


def test_generated_suite_keeps_pii_values_out_of_reports(churn_df, schema) -> None:
    suite = build_suite_from_profile(churn_df, schema)
    email = [e for e in suite if e["kwargs"].get("column") == "email"]
    # Only a null-share check: nothing that would list email values in a report.
    assert [e["type"] for e in email] == ["expect_column_values_to_not_be_null"]


def test_compound_key_and_empty_profile(schema, churn_df) -> None:
    schema = schema | {"key": ["customer_id", "signup_date"]}
    suite = build_suite_from_profile(churn_df.iloc[:0], schema)
    (key,) = _find(suite, "expect_compound_columns_to_be_unique")
    assert key["kwargs"]["column_list"] == ["customer_id", "signup_date"]
    # No rows, no profile: only declared facts, nothing learnt from data.
    assert not _find(suite, "expect_column_min_to_be_between")
    assert all(e["meta"]["blocking"] for e in suite)


def test_declared_churn_suite_guards_the_label() -> None:
    suite = declared_suite("churn")
    assert suite is not None and validate_suite(suite) == suite
    (label,) = _find(suite, "expect_column_values_to_not_be_null", "churned")
    assert label["meta"]["blocking"]
    (rate,) = _find(suite, "expect_column_mean_to_be_between", "churned")
    assert (rate["kwargs"]["min_value"], rate["kwargs"]["max_value"]) == (0.02, 0.6)
    assert rate["meta"]["blocking"]
    assert declared_suite("no_such_dataset") is None
    # Callers get a copy: mutating it does not change the declaration.
    suite.clear()
    assert declared_suite("churn")


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ({"type": "x"}, "expected a JSON list"),
        ([{"type": "expect_foo", "kwargs": {"column": "a"}, "meta": {}}], "on 'a'): set \"meta\""),
        ([{"type": "check_things", "meta": {"blocking": True}}], "expectation 1: 'type' must be"),
        ([{"type": "expect_foo", "kwargs": [], "meta": {"blocking": True}}], "must be objects"),
    ],
)
def test_validate_suite_names_the_bad_entry(suite: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"catalog/x/expectations\.json") as err:
        validate_suite(suite, origin="catalog/x/expectations.json")
    assert message in str(err.value)


def test_resolve_suite_declared_then_stored(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    suite, source = resolve_suite(lake, "churn")
    assert source == "declared"
    # Written to the lake so people can read and edit it; later runs use the stored one.
    assert lake.read_json(suite_key("churn")) == suite
    again, source = resolve_suite(lake, "churn")
    assert (again, source) == (suite, "stored")


def test_resolve_suite_generates_once(tmp_path, churn_df, schema) -> None:
    lake = Lake.local(tmp_path)
    with pytest.raises(ValueError, match="no expectation suite"):
        resolve_suite(lake, "orders")
    suite, source = resolve_suite(lake, "orders", df=churn_df, schema=schema)
    assert source == "generated"
    assert load_suite(lake, "orders") == suite
    # A later partition with different data does not regenerate the suite.
    _, source = resolve_suite(lake, "orders", df=churn_df.iloc[:10], schema=schema)
    assert source == "stored"


def test_load_suite_rejects_a_bad_hand_edit(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    lake.write_json(suite_key("orders"), [{"type": "expect_column_values_to_be_unique"}])
    with pytest.raises(ValueError, match=r"orders/expectations.json, expectation 1"):
        load_suite(lake, "orders")
