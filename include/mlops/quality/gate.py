"""The data-quality gate: run a suite with Great Expectations, publish the reports.

Every run writes, under ``reports/quality/<dataset>/<run_id>/``:

- ``results.json``: the Great Expectations validation result, as GX wrote it;
- ``summary.json``: score, verdict and one plain record per expectation;
- ``docs/``: the Data Docs HTML site; ``docs/validations/.../*.html`` is this run's
  result page (``docs_uri``), readable offline, unlike ``docs/index.html``.

Great Expectations is imported inside the functions that need it: it costs
4-6 s and ~265 MB, and DAG parsing or a task that never gates must not pay that.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.mlops.etl.naming import quality_report_prefix
from include.mlops.quality.sampling import DEFAULT_MAX_ROWS
from include.mlops.quality.suites import Expectation, suite_key, validate_suite

if TYPE_CHECKING:
    import pandas as pd

    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

# Loggers Great Expectations fills with INFO lines on import and on every run. One
# of them sets its own level to INFO when imported, so this runs again after import.
_NOISY_GX_LOGGERS = (
    "great_expectations",
    "great_expectations._docs_decorators",
    "great_expectations.data_context.types.base",
)
DOCS_SITE = "local_site"
# How many offending values a report keeps per expectation.
PARTIAL_UNEXPECTED_COUNT = 20
_STATIC_REF = re.compile(r"(static/[A-Za-z0-9_./-]+)")


def quiet_gx_logging() -> None:
    """Keep Great Expectations' INFO chatter out of task logs (warnings still show)."""
    for name in _NOISY_GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_gx_logging()


class DataQualityError(Exception):
    """A blocking expectation failed: the data must not flow downstream.

    Attributes:
        result: The gate's result, with the report locations.
    """

    def __init__(self, message: str, result: QualityResult) -> None:
        super().__init__(message)
        self.result = result


@dataclasses.dataclass(frozen=True)
class QualityResult:
    """Outcome of one gate run.

    Attributes:
        dataset: Dataset checked.
        partition: Partition checked (``YYYY-MM-DD``), or a label such as a snapshot.
        run_id: Run that checked it (names the report folder).
        score: Share of expectations that passed, 0..1.
        passed: True when no blocking expectation failed.
        evaluated: Number of expectations evaluated.
        failed_blocking: One summary record per failed blocking expectation.
        warnings: One summary record per failed non-blocking expectation.
        results_uri: The Great Expectations validation result JSON.
        docs_uri: The Data Docs page to open: this run's validation result page.
        summary_uri: The gate's summary JSON.
        rows_evaluated: Rows the suite ran on.
        rows_total: Rows in the data (more than ``rows_evaluated`` when sampled).
        sampled: Whether the suite ran on a random sample.
    """

    dataset: str
    partition: str
    run_id: str
    score: float
    passed: bool
    evaluated: int
    failed_blocking: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    results_uri: str
    docs_uri: str
    summary_uri: str
    rows_evaluated: int
    rows_total: int
    sampled: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for XCom, logs and reports)."""
        return dataclasses.asdict(self)


def report_prefix(dataset: str, run_id: str) -> str:
    """Lake prefix of a gate run's reports.

    Airflow run ids contain ``:`` and ``+``, which some S3 servers and browsers
    mangle in keys and links, so they are replaced with ``_``.
    """
    return quality_report_prefix(dataset, run_id)


def run_quality_gate(
    lake: Lake,
    *,
    dataset: str,
    partition: str,
    run_id: str,
    df: pd.DataFrame,
    suite: list[Expectation],
    total_rows: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
) -> QualityResult:
    """Validate data against a suite and publish the results, summary and Data Docs.

    Does not raise on failed expectations: call :func:`raise_for_quality` after
    recording the report locations, so a failed task still links to its report.

    Args:
        lake: Where the reports go.
        dataset: Dataset name (names the report folder and the GX suite).
        partition: Partition checked, recorded in the summary.
        run_id: Run id; reports go to ``reports/quality/<dataset>/<run_id>/``.
        df: The data. Above ``max_rows`` rows a seeded uniform sample is checked.
        suite: The expectations (see :mod:`include.mlops.quality.suites`).
        total_rows: Rows in the full data when ``df`` is already a sample
            (from :func:`read_for_quality`); defaults to ``len(df)``.
        max_rows: Largest number of rows validated at once.
        seed: Seed of the sample.

    Returns:
        Score, verdict, failures and report URIs.

    Raises:
        ValueError: The suite is malformed or names an unknown expectation.
    """
    suite = validate_suite(suite, origin=f"suite for {dataset}")
    rows_total = max(len(df), total_rows or 0)
    if len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed)
    sampled = len(df) < rows_total

    prefix = report_prefix(dataset, run_id)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gx-docs-") as docs_dir:
        validation = _validate(df, suite, dataset=dataset, docs_dir=Path(docs_dir))
        validated = time.monotonic()
        # A retry of the same run replaces the site instead of leaving the previous
        # attempt's validation page beside the new one.
        lake.delete(f"{prefix}/docs")
        docs_files = _upload_docs(lake, Path(docs_dir), f"{prefix}/docs")
    results_uri = lake.write_json(f"{prefix}/results.json", validation)

    records = [_summarise(r) for r in validation.get("results", [])]
    evaluated = len(records)
    passed_count = sum(1 for r in records if r["success"])
    failed_blocking = [r for r in records if not r["success"] and r["blocking"]]
    warnings = [r for r in records if not r["success"] and not r["blocking"]]
    score = round(passed_count / evaluated, 4) if evaluated else 1.0
    # The run's validation page is what a person opens: it is rendered server-side,
    # whereas the site index draws its tables with scripts from a CDN and shows
    # nothing offline.
    validation_pages = [k for k in docs_files if "/docs/validations/" in k and k.endswith(".html")]
    docs_key = validation_pages[0] if validation_pages else f"{prefix}/docs/index.html"
    summary = {
        "dataset": dataset,
        "partition": partition,
        "run_id": run_id,
        "score": score,
        "passed": not failed_blocking,
        "evaluated": evaluated,
        "successful": passed_count,
        "failed_blocking": len(failed_blocking),
        "warnings": len(warnings),
        "rows": {
            "evaluated": len(df),
            "total": rows_total,
            "sampled": sampled,
            "sample_fraction": round(len(df) / rows_total, 6) if rows_total else 1.0,
            "seed": seed if sampled else None,
        },
        "suite": lake.uri(suite_key(dataset)),
        "results_uri": results_uri,
        "docs_uri": lake.uri(docs_key),
        "docs_pages": [lake.uri(k) for k in docs_files if k.endswith(".html")],
        "gx_version": validation.get("meta", {}).get("great_expectations_version"),
        "expectations": records,
    }
    summary_uri = lake.write_json(f"{prefix}/summary.json", summary)
    log.info(
        "quality gate %s %s: score %.3f, %d of %d expectations passed, %d blocking "
        "failure(s), %d warning(s) on %d%s rows (validate %.2f s, reports %.2f s); docs %s",
        dataset,
        partition,
        score,
        passed_count,
        evaluated,
        len(failed_blocking),
        len(warnings),
        len(df),
        f" sampled of {rows_total:,}" if sampled else "",
        validated - started,
        time.monotonic() - validated,
        lake.uri(docs_key),
    )
    return QualityResult(
        dataset=dataset,
        partition=partition,
        run_id=run_id,
        score=score,
        passed=not failed_blocking,
        evaluated=evaluated,
        failed_blocking=failed_blocking,
        warnings=warnings,
        results_uri=results_uri,
        docs_uri=lake.uri(docs_key),
        summary_uri=summary_uri,
        rows_evaluated=len(df),
        rows_total=rows_total,
        sampled=sampled,
    )


def _validate(
    df: pd.DataFrame, suite: list[Expectation], *, dataset: str, docs_dir: Path
) -> dict[str, Any]:
    """Run the suite in an ephemeral GX context; build Data Docs into ``docs_dir``."""
    started = time.monotonic()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quiet_gx_logging()
    if (elapsed := time.monotonic() - started) > 0.5:
        log.info("imported Great Expectations %s in %.1f s", gx.__version__, elapsed)

    context = gx.get_context(mode="ephemeral")
    # tqdm bars would print one line per metric batch into the task log.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    site = dict(context.list_data_docs_sites()[DOCS_SITE])
    site["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(docs_dir),
    }
    site["show_how_to_buttons"] = False
    context.update_data_docs_site(DOCS_SITE, site)  # type: ignore[arg-type]

    batch_definition = (
        context.data_sources.add_pandas(dataset)
        .add_dataframe_asset(dataset)
        .add_batch_definition_whole_dataframe("whole partition")
    )
    gx_suite = context.suites.add(gx.ExpectationSuite(name=dataset))
    for i, item in enumerate(suite, start=1):
        gx_suite.add_expectation(_to_gx(item, position=i))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{dataset} quality", data=batch_definition, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{dataset} gate",
            validation_definitions=[validation],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data docs", site_names=[DOCS_SITE])],
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
            },
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": df})
    (result,) = outcome.run_results.values()
    as_json: dict[str, Any] = result.to_json_dict()
    # GX returns results grouped by metric, not in suite order; suite order puts the
    # table-level checks (a missing column) before the failures they explain.
    position = {e.id: i for i, e in enumerate(gx_suite.expectations)}
    as_json["results"] = sorted(
        as_json.get("results", []),
        key=lambda r: position.get(r.get("expectation_config", {}).get("id"), len(position)),
    )
    return as_json


def _to_gx(item: Expectation, *, position: int) -> Any:
    """A GX expectation object from a suite entry; unknown types name the entry."""
    from great_expectations.expectations.metadata_types import FailureSeverity
    from great_expectations.expectations.registry import get_expectation_impl

    blocking = item["meta"]["blocking"]
    column = item["kwargs"].get("column")
    where = f"expectation {position} ({item['type']}{f' on {column!r}' if column else ''})"
    try:
        cls = get_expectation_impl(item["type"])
    except Exception as exc:
        raise ValueError(f"{where}: unknown expectation type ({exc})") from exc
    try:
        return cls(
            **item["kwargs"],
            meta=item["meta"],
            # Shown in Data Docs, so the HTML report tells blocking from warning too.
            severity=FailureSeverity.CRITICAL if blocking else FailureSeverity.WARNING,
        )
    except Exception as exc:
        raise ValueError(f"{where}: invalid arguments {item['kwargs']}: {exc}") from exc


def _upload_docs(lake: Lake, folder: Path, prefix: str) -> list[str]:
    """Copy the Data Docs site under ``folder`` to ``prefix`` in the lake; returns the keys.

    GX copies ~4 MB of fonts and animated GIFs into ``static/`` that its pages never
    reference (they load styles from a CDN); a daily ingest would store them every
    run. Only the pages and the static files a page names are uploaded.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    pages = [p for p in files if p.suffix == ".html"]
    referenced = set()
    for page in pages:
        referenced.update(_STATIC_REF.findall(page.read_text(errors="replace")))
    keys = []
    for path in files:
        relative = path.relative_to(folder).as_posix()
        if relative.startswith("static/") and relative not in referenced:
            continue
        key = f"{prefix}/{relative}"
        lake.write_bytes(key, path.read_bytes())
        keys.append(key)
    return keys


def _summarise(result: dict[str, Any]) -> dict[str, Any]:
    """One plain record per expectation result, for summary.json and error messages."""
    config = result.get("expectation_config", {})
    kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
    meta = config.get("meta", {}) or {}
    detail = result.get("result", {}) or {}
    exception = result.get("exception_info", {}) or {}
    record: dict[str, Any] = {
        "type": config.get("type"),
        "column": kwargs.get("column") or kwargs.get("column_list"),
        "kwargs": kwargs,
        "success": bool(result.get("success")),
        "blocking": bool(meta.get("blocking", True)),
        "why": meta.get("why"),
        "observed_value": detail.get("observed_value"),
        "element_count": detail.get("element_count"),
        "unexpected_count": detail.get("unexpected_count"),
        "unexpected_percent": detail.get("unexpected_percent"),
        "partial_unexpected_list": detail.get("partial_unexpected_list"),
        "details": detail.get("details"),
        "exception": _exception_message(exception),
    }
    record["observed"] = describe_observation(record)
    return record


def _exception_message(info: dict[str, Any]) -> str | None:
    """The error(s) that kept an expectation from being evaluated, if any."""
    # GX reports one exception flat, or several keyed by the metric that raised.
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = dict.fromkeys(
        str(e.get("exception_message"))
        for e in entries
        if isinstance(e, dict) and (e.get("raised_exception") or e.get("exception_message"))
    )
    return "; ".join(messages) or None


# -- messages ---------------------------------------------------------------------

_STATISTIC = {
    "expect_column_min_to_be_between": "min",
    "expect_column_max_to_be_between": "max",
    "expect_column_mean_to_be_between": "mean",
    "expect_column_median_to_be_between": "median",
    "expect_column_stdev_to_be_between": "standard deviation",
    "expect_column_sum_to_be_between": "sum",
    "expect_column_unique_value_count_to_be_between": "distinct values",
    "expect_column_proportion_of_unique_values_to_be_between": "share of distinct values",
    "expect_table_row_count_to_be_between": "row count",
    "expect_table_column_count_to_equal": "column count",
}


def describe_observation(record: dict[str, Any]) -> str:
    """What the data showed, in words: ``unexpected 12 of 1000 rows (1.2%)``, ``observed min -5``."""
    if record.get("exception"):
        return f"could not be evaluated: {record['exception']}"
    count, total = record.get("unexpected_count"), record.get("element_count")
    if count is not None and total:
        text = f"unexpected {count:,} of {total:,} rows ({_percent(count / total)})"
        # Distinct, non-null offenders: "-5, -5, -5" tells less than "-5, 130".
        examples = list(
            dict.fromkeys(
                repr(v) for v in (record.get("partial_unexpected_list") or []) if v is not None
            )
        )
        if examples and count:
            text += f", e.g. {', '.join(examples[:5])}"
        return text
    observed = record.get("observed_value")
    details = record.get("details") or {}
    if record.get("type", "").startswith("expect_table_columns_to_match"):
        mismatch = details.get("mismatched") or {}
        parts = []
        if mismatch.get("missing"):
            parts.append(f"missing columns {sorted(mismatch['missing'])}")
        if mismatch.get("unexpected"):
            parts.append(f"unexpected columns {sorted(mismatch['unexpected'])}")
        return "; ".join(parts) or f"observed columns {observed}"
    statistic = _STATISTIC.get(record.get("type") or "")
    if statistic and observed is not None:
        return f"observed {statistic} {_number(observed)}"
    return f"observed {observed!r}" if observed is not None else "no observation recorded"


def describe_expectation(record: dict[str, Any]) -> str:
    """The expectation in words: ``expect_column_max_to_be_between on 'age' (max 100)``."""
    kwargs = record.get("kwargs") or {}
    column = record.get("column")
    text = record.get("type") or "expectation"
    if column:
        text += f" on {column!r}"
    bounds = []
    if kwargs.get("min_value") is not None:
        bounds.append(f"min {_number(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        bounds.append(f"max {_number(kwargs['max_value'])}")
    if kwargs.get("value_set") is not None:
        bounds.append(f"allowed {kwargs['value_set']}")
    if kwargs.get("mostly") is not None:
        bounds.append(f"at least {_percent(kwargs['mostly'])} of rows")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _percent(share: float) -> str:
    pct = share * 100
    # 1 bad row in 500k must not print as "0.0%".
    return f"{pct:.1f}%" if pct >= 0.1 or pct == 0 else f"{pct:.2g}%"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_quality_failure(result: QualityResult) -> str:
    """The multi-line message a user reads in the task log when the gate fails."""
    n = len(result.failed_blocking)
    scope = (
        f"a random sample of {result.rows_evaluated:,} of {result.rows_total:,} rows"
        if result.sampled
        else f"{result.rows_evaluated:,} rows"
    )
    lines = [
        f"Data quality gate failed for {result.dataset} partition {result.partition}: "
        f"{n} blocking expectation{'s' if n != 1 else ''} failed "
        f"(score {result.score:.2f} over {result.evaluated} expectations, checked on {scope}).",
    ]
    for i, record in enumerate(result.failed_blocking, start=1):
        lines.append(f"  {i}. {describe_expectation(record)}: {record['observed']}")
        if record.get("why"):
            lines.append(f"     Why it matters: {record['why']}")
    if result.warnings:
        lines.append(f"Warnings (not blocking): {len(result.warnings)}")
        for record in result.warnings:
            lines.append(f"  - {describe_expectation(record)}: {record['observed']}")
    suite = f"catalog/{result.dataset}/expectations.json"
    lines += [
        f"Report: {result.docs_uri}",
        f"Summary: {result.summary_uri}",
        "Fix the upstream data and rerun; if the data is right and the expectation is "
        f"wrong, edit {suite} in the lake and rerun.",
    ]
    return "\n".join(lines)


def raise_for_quality(result: QualityResult) -> None:
    """Raise :class:`DataQualityError` if a blocking expectation failed.

    Args:
        result: What :func:`run_quality_gate` returned.

    Raises:
        DataQualityError: With a message naming each failed expectation, its column,
            the observed value, why it matters and where the report is.
    """
    if not result.passed:
        raise DataQualityError(format_quality_failure(result), result)


def check_partition(
    lake: Lake,
    *,
    dataset: str,
    partition: str,
    run_id: str,
    schema: dict[str, Any] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
    key: str | None = None,
) -> QualityResult:
    """Gate a curated partition: read (sampled if large), pick the suite, validate.

    The one call a ``lake_ingest`` task makes; follow it with
    :func:`raise_for_quality` once the report URIs are recorded.

    Args:
        lake: The lake.
        dataset: Dataset name.
        partition: Partition date, ``YYYY-MM-DD`` (reads ``curated/<dataset>/dt=<partition>/``).
        run_id: Run id naming the report folder.
        schema: Catalog schema, used only when a suite must be generated; read from
            ``catalog/<dataset>/schema.json`` when None.
        max_rows: Largest number of rows validated; larger partitions are sampled.
        seed: Seed of the sample.
        key: Lake key of the file to gate instead of the published partition (the
            staged file ``lake_ingest`` gates before publishing it).

    Returns:
        The gate's result.
    """
    from include.mlops.quality.sampling import read_for_quality
    from include.mlops.quality.suites import resolve_suite

    df, total = read_for_quality(
        lake, key or f"curated/{dataset}/dt={partition}", max_rows=max_rows, seed=seed
    )
    if schema is None:
        catalog = lake.read_json(f"catalog/{dataset}/schema.json", default={}) or {}
        schema = catalog.get("schema") or None
    suite, source = resolve_suite(lake, dataset, df=df, schema=schema)
    log.info(
        "quality gate %s %s: %d expectations (%s suite %s) on %d of %d rows",
        dataset,
        partition,
        len(suite),
        source,
        lake.uri(suite_key(dataset)),
        len(df),
        total,
    )
    return run_quality_gate(
        lake,
        dataset=dataset,
        partition=partition,
        run_id=run_id,
        df=df,
        suite=suite,
        total_rows=total,
        max_rows=max_rows,
        seed=seed,
    )
