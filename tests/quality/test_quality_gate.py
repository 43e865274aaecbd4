"""The gate end to end with Great Expectations: verdicts, messages, reports in the lake.

Importing GX costs ~5 s, so every GX run happens once in a module-scoped fixture
and the tests only inspect the outcomes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.mlops.lake.store import Lake
from include.mlops.quality import (
    DataQualityError,
    QualityResult,
    check_partition,
    declared_suite,
    raise_for_quality,
    resolve_suite,
    run_quality_gate,
    suite_key,
)

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


@dataclass
class Runs:
    lake: Lake
    passing: QualityResult
    failing: QualityResult
    warning: QualityResult
    edited: QualityResult
    edited_source: str
    sampled: QualityResult


@pytest.fixture(scope="module")
def runs(tmp_path_factory, churn_factory, schema_factory) -> Runs:
    lake = Lake.local(tmp_path_factory.mktemp("lake"))
    good = churn_factory(1000, seed=1)
    churn_suite = declared_suite("churn")
    assert churn_suite is not None

    def gate(df, suite, run_id, dataset="churn") -> QualityResult:
        return run_quality_gate(
            lake, dataset=dataset, partition="2026-01-01", run_id=run_id, df=df, suite=suite
        )

    passing = gate(good, churn_suite, RUN_ID)

    # Upstream broke: nearly everyone churned and 12 ages went negative.
    bad = good.copy()
    bad.loc[:969, "churned"] = 1
    bad.loc[:11, "age"] = -5
    failing = gate(bad, churn_suite, "bad_run")

    # A generated suite: a charge far above the profiled range and a region never
    # seen before are worth a look, but declared rules still hold, so no stop.
    orders_suite, source = resolve_suite(lake, "orders", df=good, schema=schema_factory())
    assert source == "generated"
    unusual = good.copy()
    unusual.loc[0, "monthly_charges"] = 900.0
    unusual.loc[1, "region"] = "atlantis"
    warning = gate(unusual, orders_suite, "unusual_run", dataset="orders")

    # A user decides the charge ceiling matters: they edit the stored JSON in the lake.
    stored = lake.read_json(suite_key("orders"))
    for item in stored:
        if item["type"] == "expect_column_max_to_be_between" and (
            item["kwargs"]["column"] == "monthly_charges"
        ):
            item["meta"]["blocking"] = True
    lake.write_json(suite_key("orders"), stored)
    edited_suite, edited_source = resolve_suite(lake, "orders", df=good, schema=schema_factory())
    edited = gate(unusual, edited_suite, "edited_run", dataset="orders")

    # A partition bigger than max_rows: read by row groups, checked on a sample.
    big = churn_factory(3000, seed=2)
    key = lake.path("curated/churn/dt=2026-01-02/part-00000.parquet")
    Path(key).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), key, row_group_size=500)
    sampled = check_partition(
        lake, dataset="churn", partition="2026-01-02", run_id="big_run", max_rows=1000
    )
    return Runs(lake, passing, failing, warning, edited, edited_source, sampled)


def _local(uri: str) -> Path:
    return Path(urlsplit(uri).path)


def test_clean_partition_passes_with_full_score(runs: Runs) -> None:
    result = runs.passing
    assert result.passed and result.score == 1.0
    assert result.evaluated == len(declared_suite("churn") or [])
    assert not result.failed_blocking and not result.warnings
    raise_for_quality(result)  # no exception
    json.dumps(result.to_dict())  # XCom-safe


def test_reports_are_in_the_lake(runs: Runs) -> None:
    result = runs.passing
    prefix = "reports/quality/churn/manual__2026-01-01T00_00_00_00_00"
    # The link people get is this run's validation page (readable offline).
    assert result.docs_uri.startswith(runs.lake.uri(f"{prefix}/docs/validations/"))
    assert result.docs_uri.endswith(".html")
    assert result.results_uri == runs.lake.uri(f"{prefix}/results.json")
    assert result.summary_uri == runs.lake.uri(f"{prefix}/summary.json")

    page = _local(result.docs_uri).read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "</html>" in page
    assert "Expectation Validation Result" in page and "Successful Expectations" in page
    assert runs.lake.exists(f"{prefix}/docs/index.html")
    docs = runs.lake.list_files(f"{prefix}/docs")
    assert any("/validations/" in k and k.endswith(".html") for k in docs)

    gx_results = json.loads(_local(result.results_uri).read_text())
    assert gx_results["success"] is True
    summary = json.loads(_local(result.summary_uri).read_text())
    assert summary["score"] == 1.0 and summary["passed"] is True
    assert summary["rows"] == {
        "evaluated": 1000,
        "total": 1000,
        "sampled": False,
        "sample_fraction": 1.0,
        "seed": None,
    }
    record = next(e for e in summary["expectations"] if e["type"].endswith("mean_to_be_between"))
    assert record["column"] == "churned" and record["blocking"] is True
    assert 0.02 < record["observed_value"] < 0.6


def test_blocking_failure_raises_a_readable_error(runs: Runs) -> None:
    result = runs.failing
    assert not result.passed and result.score < 1
    failed = {(r["type"], r["column"]) for r in result.failed_blocking}
    assert failed == {
        ("expect_column_mean_to_be_between", "churned"),
        ("expect_column_values_to_be_between", "age"),
    }
    with pytest.raises(DataQualityError) as err:
        raise_for_quality(result)
    message = str(err.value)
    assert err.value.result is result
    assert "Data quality gate failed for churn partition 2026-01-01" in message
    assert "expect_column_values_to_be_between on 'age' (min 18, max 100)" in message
    assert "unexpected 12 of 1,000 rows (1.2%), e.g. -5" in message
    assert "expect_column_mean_to_be_between on 'churned'" in message
    assert "observed mean 0.97" in message
    assert "Why it matters: the churn rate is normally a minority share" in message
    assert result.docs_uri in message
    assert "/bad_run/docs/validations/" in result.docs_uri


def test_warning_only_failure_passes_with_lower_score(runs: Runs) -> None:
    result = runs.warning
    assert result.passed and 0 < result.score < 1
    assert not result.failed_blocking
    warned = {(r["type"], r["column"]): r for r in result.warnings}
    assert set(warned) == {
        ("expect_column_max_to_be_between", "monthly_charges"),
        ("expect_column_values_to_be_in_set", "region"),
    }
    assert warned["expect_column_max_to_be_between", "monthly_charges"]["observed"] == (
        "observed max 900"
    )
    raise_for_quality(result)  # warnings never raise


def test_edited_stored_suite_takes_effect(runs: Runs) -> None:
    assert runs.edited_source == "stored"
    result = runs.edited
    assert not result.passed
    (failure,) = result.failed_blocking
    assert (failure["type"], failure["column"]) == (
        "expect_column_max_to_be_between",
        "monthly_charges",
    )
    with pytest.raises(DataQualityError, match="observed max 900"):
        raise_for_quality(result)


def test_large_partition_is_checked_on_a_sample(runs: Runs) -> None:
    result = runs.sampled
    assert result.passed, result.failed_blocking
    assert (result.sampled, result.rows_evaluated, result.rows_total) == (True, 1000, 3000)
    summary = json.loads(_local(result.summary_uri).read_text())
    assert summary["rows"]["sampled"] is True
    assert summary["rows"]["sample_fraction"] == pytest.approx(1 / 3, abs=1e-4)
    (rows,) = [e for e in summary["expectations"] if e["type"].startswith("expect_table_row")]
    assert rows["observed_value"] == 1000


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"type": "expect_column_to_be_wonderful", "kwargs": {"column": "age"}},
            "expectation 1 (expect_column_to_be_wonderful on 'age'): unknown expectation type",
        ),
        (
            {"type": "expect_column_values_to_be_between", "kwargs": {"colum": "age"}},
            "expectation 1 (expect_column_values_to_be_between): invalid arguments",
        ),
    ],
)
def test_bad_suite_entry_is_named_before_any_report(tmp_path, churn_df, item, message) -> None:
    lake = Lake.local(tmp_path)
    item = item | {"meta": {"blocking": True}}
    with pytest.raises(ValueError, match=re.escape(message)):
        run_quality_gate(
            lake, dataset="churn", partition="2026-01-01", run_id="r", df=churn_df, suite=[item]
        )
    assert not lake.list_files("reports")
