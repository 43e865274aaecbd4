"""Task bodies of ``lake_ingest``: read params and context, call ``include.mlops``, return refs.

Foreseen conditions become clear task outcomes, never bare tracebacks: nothing to
ingest → skipped with a message; schema drift or a failed quality gate → the task
fails with the domain error's message (what failed, the numbers, where the report is).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.mlops.airflow.hooks import LakeHook

log = logging.getLogger(__name__)


def _partition_for(params: dict[str, Any], dag_run: Any, data_interval_start: Any) -> str:
    """The explicit param, else the day the run covers (never the wall clock)."""
    if params.get("partition"):
        return str(params["partition"])
    when = data_interval_start or getattr(dag_run, "logical_date", None)
    when = when or getattr(dag_run, "run_after", None)
    if when is None:
        raise AirflowFailException("cannot tell which partition to write: set 'partition'")
    return str(when.date().isoformat())


def plan_ingest(params: dict[str, Any], *, dag_run: Any, data_interval_start: Any) -> dict:
    """Resolve dataset, partition, format and the source files (a small dict for XCom)."""
    from include.mlops.etl.naming import validate_dataset_name, validate_format, validate_partition
    from include.mlops.lake.sources import SourceNotFoundError, landing_uri, resolve_source

    hook = LakeHook()
    settings = hook.get_settings()
    lake = hook.get_lake()
    try:
        dataset = validate_dataset_name(params["dataset"])
        fmt = validate_format(params.get("format") or "auto")
        partition = validate_partition(_partition_for(params, dag_run, data_interval_start))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc
    source = params.get("source") or landing_uri(lake, dataset, partition)
    try:
        resolved = resolve_source(source, settings)
    except SourceNotFoundError as exc:
        if params.get("source"):
            raise AirflowFailException(str(exc)) from exc
        # A scheduled day with nothing landed is normal: skip, don't page anyone.
        raise AirflowSkipException(f"nothing landed for {dataset} dt={partition}: {exc}") from exc
    log.info("ingest %s dt=%s: %s (format %s)", dataset, partition, resolved.describe(), fmt)
    return {
        "dataset": dataset,
        "partition": partition,
        "format": fmt,
        "source": source,
        "files": resolved.paths,
    }


def stage_partition(plan: dict[str, Any], *, run_id: str) -> dict:
    """Extract → validate → transform → stage; quarantine is published here."""
    from include.mlops.etl.extract import EmptySourceError
    from include.mlops.etl.pipeline import ingest_partition
    from include.mlops.etl.schema import SchemaDriftError
    from include.mlops.lake.store import filesystem_for_uri

    hook = LakeHook()
    settings = hook.get_settings()
    lake = hook.get_lake()
    source_fs, _ = filesystem_for_uri(plan["source"], settings)  # files listed by `plan`
    try:
        result = ingest_partition(
            lake,
            dataset=plan["dataset"],
            source_fs=source_fs,
            source_paths=plan["files"],
            fmt=plan["format"],
            partition=plan["partition"],
            run_id=run_id,
            missing_tokens=settings.missing_tokens,
            pii_salt=settings.pii_salt,
        )
    except EmptySourceError as exc:
        raise AirflowSkipException(str(exc)) from exc
    except SchemaDriftError as exc:
        raise AirflowFailException(str(exc)) from exc  # retrying cannot fix drift
    log.info(
        "accounting %s dt=%s: read %d = curated %d + quarantined %d; reasons %s; quarantine %s",
        result.dataset,
        result.partition,
        result.rows_read,
        result.rows_curated,
        result.rows_quarantined,
        result.reasons or "none",
        lake.uri(result.quarantine_key),
    )
    return result.to_dict()


def check_quality(staged: dict[str, Any], *, run_id: str) -> dict:
    """Gate the staged partition; fail (no retry) when a blocking expectation fails."""
    from include.mlops.quality import DataQualityError, check_partition, raise_for_quality

    lake = LakeHook().get_lake()
    result = check_partition(
        lake,
        dataset=staged["dataset"],
        partition=staged["partition"],
        run_id=run_id,
        schema=staged["schema"],
        key=lake.key_of(staged["staged_path"]),
    )
    log.info(
        "quality %s dt=%s: score %.0f%% (%d expectations); Data Docs %s",
        staged["dataset"],
        staged["partition"],
        100 * result.score,
        result.evaluated,
        result.docs_uri,
    )
    try:
        raise_for_quality(result)
    except DataQualityError as exc:
        from include.mlops.etl.load import discard_staged
        from include.mlops.etl.result import IngestResult

        discard_staged(lake, IngestResult.from_dict(staged))
        raise AirflowFailException(str(exc)) from exc
    return result.to_dict()


def publish_staged(staged: dict[str, Any]) -> str:
    """Atomically replace the curated partition; returns its URI."""
    from include.mlops.etl.load import publish_partition
    from include.mlops.etl.result import IngestResult

    lake = LakeHook().get_lake()
    uri = publish_partition(lake, IngestResult.from_dict(staged))
    log.info("published %s (%d rows)", uri, staged["rows_curated"])
    return uri


def record_in_catalog(
    staged: dict[str, Any], quality: dict[str, Any], *, outlet_events: Any
) -> dict:
    """Record the partition in the catalog; emit the curated-dataset asset event."""
    from include.mlops.airflow.assets import curated_alias, curated_asset
    from include.mlops.etl.catalog import record_partition

    hook = LakeHook()
    lake = hook.get_lake()
    catalog = record_partition(
        lake,
        staged["dataset"],
        staged["schema"],
        staged,
        quality_score=quality.get("score"),
        quality_report_uri=quality.get("docs_uri"),
    )
    extra = {
        "dataset": staged["dataset"],
        "partition": staged["partition"],
        "rows": staged["rows_curated"],
        "quarantined": staged["rows_quarantined"],
        "partition_hash": staged["content_hash"],
        "snapshot_id": catalog["snapshot_id"],
    }
    outlet_events[curated_alias].add(
        curated_asset(hook.get_settings().lake_bucket, staged["dataset"]), extra=extra
    )
    log.info("catalog %s: %s", lake.uri(f"catalog/{staged['dataset']}/schema.json"), extra)
    return extra
