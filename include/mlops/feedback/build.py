"""Feedback: a model's served requests that have a label, as a curated dataset to retrain on.

Capture (``capture/<model>/``, every variant and version) is joined with the model's
ground truth (``curated/<model>_ground_truth/``, landed by ``lake_ingest``) on
``inference_id``. The labelled rows become ``curated/<model>_feedback/dt=<capture day>/``:
the columns of the champion's training dataset (names and types from that dataset's
catalog schema; feature values from capture's ``feature.<name>`` columns; columns capture
never holds, such as keys and PII, are null), then ``inference_id``, ``served_at`` and
``model_version``. Each day goes through the steps ``lake_ingest`` uses: every row is
checked against the training schema's row rules (``validate.row_checks``: ``type_cast``,
``missing_required``, ``out_of_domain`` per column, the same reason labels), so live
traffic the training data would refuse (a category the schema does not allow, say) goes to
``quarantine/<model>_feedback/dt=<day>/`` with its reasons, in ``lake_ingest``'s quarantine
format; the rest is staged, gated with the dataset's Great Expectations suite, published
atomically and recorded in ``catalog/<model>_feedback/schema.json`` (partitions with their
quarantined counts and reasons, snapshot id), so ``load_curated(lake, "<model>_feedback")``
reads it like any dataset.

Nothing is lost, and the accounting in :class:`FeedbackResult` (also written to
``reports/feedback/<model>/<run>/report.json``) says where every row went:

- capture rows = captured requests + repeated capture rows (a shadow's copy of a request
  the champion answered carries the same id; the answered row is the one kept);
- captured requests = labelled rows + unlabelled rows (counted per capture day);
- labelled rows = feedback rows + quarantined rows (counted per capture day);
- label rows = labelled rows + labels without a captured row + superseded duplicate labels
  + labels without a value (a later label for an id replaces an earlier one, as in
  ``monitor_model``'s model quality).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.mlops.etl.catalog import catalog_schema, load_catalog, record_partition
from include.mlops.etl.load import (
    QUARANTINE_META_COLUMNS,
    QUARANTINE_ROW_GROUP_ROWS,
    ParquetSink,
    discard_staged,
    open_staged,
    publish_partition,
    quarantine_rows,
    quarantine_schema,
    remove_staged,
    staged_curated_path,
)
from include.mlops.etl.naming import (
    FEEDBACK_SUFFIX,
    INFERENCE_ID,
    curated_key,
    feedback_dataset,
    ground_truth_dataset,
    quarantine_key,
    safe_run_id,
)
from include.mlops.etl.result import IngestResult
from include.mlops.etl.schema import ColumnSpec, DatasetSchema, clean_strings
from include.mlops.etl.transform import cast_typed, is_string_type, parse_values
from include.mlops.etl.validate import rejection_reasons, row_checks
from include.mlops.jsonable import jsonable
from include.mlops.lake.capture import EPOCH, FEATURE_PREFIX, read_capture

if TYPE_CHECKING:
    import mlflow

    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

SERVED_AT = "served_at"
MODEL_VERSION = "model_version"
#: Columns feedback adds after the training dataset's own.
TRAFFIC_COLUMNS = (INFERENCE_ID, SERVED_AT, MODEL_VERSION)
SHADOW = "shadow"
#: How many ids a report lists as examples of labels without a captured row, or duplicates.
SAMPLE_IDS = 20
#: Read capture up to here unless told otherwise: all of it.
CAPTURE_END = datetime(9000, 1, 1, tzinfo=UTC)


class FeedbackError(Exception):
    """Feedback cannot be built from what is there (no training spec, a dataset not
    catalogued, a needed column missing)."""


class NoChampionError(FeedbackError):
    """The model serves no champion yet: the training columns are unknown. Not a fault:
    the labels stay in ``<model>_ground_truth`` for the next build."""


@dataclass
class FeedbackResult:
    """What one feedback build did; ``to_dict()`` is the report and (trimmed) the XCom.

    Attributes:
        model_name: The model (= endpoint) whose traffic was joined.
        dataset: ``<model>_feedback``.
        ground_truth_dataset: ``<model>_ground_truth``.
        training_dataset: The champion's training dataset (its columns are feedback's).
        target: The label column.
        champion_version: The version whose training spec named the dataset.
        run_id: The build's run.
        capture_rows: Rows read from capture (every variant and version).
        repeated_capture_rows: Rows of an id already counted (a shadow's copy).
        captured_requests: Distinct captured inference ids.
        labelled_rows: Captured requests with a label (the feedback rows).
        unlabelled_rows: Captured requests without a label yet.
        unlabelled_per_day: Unlabelled requests per capture day.
        label_rows: Rows of the ground-truth dataset.
        duplicate_labels: Label rows replaced by a later label for the same id.
        duplicate_label_sample: Some ids labelled more than once.
        labels_without_value: Label rows whose label is null.
        labels_without_capture: Labelled ids with no captured request.
        labels_without_capture_sample: Some of those ids.
        cast_failures: Per column, values that did not convert to the training type
            (their rows are quarantined as ``type_cast:<column>``).
        quarantined_rows: Labelled rows that broke a row rule of the training schema,
            in ``quarantine/<model>_feedback/dt=<day>/``.
        quarantine_reasons: Quarantined rows per single reason (a row may have several).
        partitions: Per capture day: ``rows`` (curated), ``quarantined``, ``reasons``,
            ``status`` (written/unchanged), ``content_hash``, ``quality_score``,
            ``quality_report``.
        snapshot_id: The feedback dataset's snapshot id after the build.
        report_uri: Where the report is.
    """

    model_name: str
    dataset: str
    ground_truth_dataset: str
    training_dataset: str
    target: str
    champion_version: int | None
    run_id: str
    capture_rows: int = 0
    repeated_capture_rows: int = 0
    captured_requests: int = 0
    labelled_rows: int = 0
    unlabelled_rows: int = 0
    unlabelled_per_day: dict[str, int] = field(default_factory=dict)
    label_rows: int = 0
    duplicate_labels: int = 0
    duplicate_label_sample: list[str] = field(default_factory=list)
    labels_without_value: int = 0
    labels_without_capture: int = 0
    labels_without_capture_sample: list[str] = field(default_factory=list)
    cast_failures: dict[str, int] = field(default_factory=dict)
    quarantined_rows: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshot_id: str | None = None
    report_uri: str | None = None

    @property
    def written(self) -> list[str]:
        """The partitions this build (re)wrote."""
        return [day for day, p in self.partitions.items() if p["status"] == "written"]

    def accounting(self) -> dict[str, bool]:
        """Each "nothing lost" identity and whether it holds."""
        return {
            "capture rows = captured requests + repeated capture rows": self.capture_rows
            == self.captured_requests + self.repeated_capture_rows,
            "captured requests = labelled + unlabelled": self.captured_requests
            == self.labelled_rows + self.unlabelled_rows,
            "unlabelled = sum of unlabelled per day": self.unlabelled_rows
            == sum(self.unlabelled_per_day.values()),
            "label rows = labelled + without capture + duplicates + without value": self.label_rows
            == self.labelled_rows
            + self.labels_without_capture
            + self.duplicate_labels
            + self.labels_without_value,
            "labelled rows = feedback rows + quarantined rows": self.labelled_rows
            == sum(p["rows"] for p in self.partitions.values()) + self.quarantined_rows,
            "quarantined rows = sum of quarantined per day": self.quarantined_rows
            == sum(p["quarantined"] for p in self.partitions.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the report)."""
        return dict(jsonable({**asdict(self), "accounting": self.accounting()}))


def feedback_schema(
    training: DatasetSchema, *, model_name: str, target: str, captured: Iterable[str]
) -> DatasetSchema:
    """The feedback dataset's schema: the training dataset's columns, then the traffic's.

    The training columns keep their types and rules; a column capture does not hold
    (keys, PII, anything the model does not read) becomes nullable, and is null. PII is
    always null: raw personal data never enters the curated zone this way.

    Args:
        training: The training dataset's catalog schema.
        model_name: The model.
        target: The label column (must be a training column).
        captured: Feature names capture holds (``feature.<name>`` without the prefix).

    Returns:
        The schema of ``<model>_feedback``, keyed on ``inference_id``.

    Raises:
        FeedbackError: The target is not a training column, or a training column is
            named like one of :data:`TRAFFIC_COLUMNS` (unless the training dataset is
            itself a feedback dataset: its traffic columns are replaced).
    """
    if target not in training.names:
        raise FeedbackError(
            f"target {target!r} is not a column of dataset {training.dataset!r} "
            f"(columns: {training.names})"
        )
    clash = [n for n in TRAFFIC_COLUMNS if n in training.names]
    if clash and not training.dataset.endswith(FEEDBACK_SUFFIX):
        raise FeedbackError(
            f"dataset {training.dataset!r} already has column(s) {clash}, which feedback adds"
        )
    present = set(captured)
    columns = []
    for spec in training.columns:
        if spec.name in TRAFFIC_COLUMNS:
            continue  # a model trained on feedback: these are added below, from this traffic
        column = ColumnSpec.from_dict(spec.to_dict())
        if column.name != target and (column.pii or column.name not in present):
            column.nullable = True
        columns.append(column)
    columns += [
        ColumnSpec(INFERENCE_ID, "string", nullable=False),
        ColumnSpec(SERVED_AT, "timestamp", nullable=False),
        ColumnSpec(MODEL_VERSION, "int64", nullable=False),
    ]
    return DatasetSchema(
        dataset=feedback_dataset(model_name), columns=columns, key=[INFERENCE_ID],
        origin="declared",
    )  # fmt: skip


def build_feedback(
    lake: Lake,
    client: mlflow.MlflowClient | str,
    model_name: str,
    *,
    run_id: str,
    until: datetime | None = None,
) -> FeedbackResult:
    """Materialise ``<model>_feedback`` from the champion's training spec (dataset, target).

    Args:
        lake: The lake.
        client: MLflow client or tracking URI.
        model_name: The model (= endpoint).
        run_id: The run (report folder, quality reports, catalog ``run_id``).
        until: Read capture up to here (exclusive); default all of it.

    Returns:
        The result (see :func:`materialise_feedback`).

    Raises:
        NoChampionError: The model has no champion.
        FeedbackError: The champion's spec names no dataset/target, or see
            :func:`materialise_feedback`.
        DataQualityError: A blocking expectation failed; nothing was published.
    """
    from include.mlops.registry.versions import RegistryError, champion, training_spec

    current = champion(client, model_name)
    if current is None:
        raise NoChampionError(
            f"model {model_name!r} has no champion, so the training columns feedback "
            f"follows are unknown; the labels stay in {ground_truth_dataset(model_name)} "
            "and the next build after a deploy uses them"
        )
    try:
        spec = training_spec(client, model_name, current.version)
    except RegistryError as error:
        raise FeedbackError(
            f"model {model_name!r} champion v{current.version} has no training spec: {error}"
        ) from error
    if not spec.get("dataset") or not spec.get("target"):
        raise FeedbackError(
            f"model {model_name!r} champion v{current.version}'s training spec names no "
            f"dataset and target: {sorted(spec)}"
        )
    return materialise_feedback(
        lake, model_name, training_dataset=spec["dataset"], target=spec["target"],
        run_id=run_id, champion_version=current.version, until=until,
    )  # fmt: skip


def materialise_feedback(
    lake: Lake,
    model_name: str,
    *,
    training_dataset: str,
    target: str,
    run_id: str,
    champion_version: int | None = None,
    until: datetime | None = None,
) -> FeedbackResult:
    """Join all capture with all ground truth; write, gate and catalogue the feedback.

    Every capture day with labelled rows is rebuilt whole; a day whose file comes out
    byte-identical to the catalogued one is left as it is (status ``unchanged``). All
    days are gated before any is published, so a failed gate publishes nothing.

    Args:
        lake: The lake.
        model_name: The model (= endpoint).
        training_dataset: Dataset whose catalog schema gives feedback's columns.
        target: The label column (in the ground truth and the training dataset).
        run_id: The run.
        champion_version: Recorded in the report.
        until: Read capture up to here (exclusive); default all of it.

    Returns:
        The result, its report written.

    Raises:
        FeedbackError: A dataset is not catalogued or lacks a needed column.
        DataQualityError: A blocking expectation failed; nothing was published.
    """
    from include.mlops.quality import check_partition, raise_for_quality
    from include.mlops.training.data import load_curated

    started = time.monotonic()
    safe_run = safe_run_id(run_id)
    name = feedback_dataset(model_name)
    truth_name = ground_truth_dataset(model_name)
    training = catalog_schema(load_catalog(lake, training_dataset))
    if training is None:
        raise FeedbackError(
            f"training dataset {training_dataset!r} of {model_name!r} has no catalog schema "
            f"({lake.uri(f'catalog/{training_dataset}/schema.json')})"
        )
    try:
        labels, _ = load_curated(lake, truth_name)
    except FileNotFoundError as error:
        raise FeedbackError(str(error)) from error
    missing = [c for c in (INFERENCE_ID, target) if c not in labels.columns]
    if missing:
        raise FeedbackError(
            f"ground truth {truth_name!r} lacks column(s) {missing} (columns: "
            f"{list(labels.columns)}); it needs {INFERENCE_ID!r} and the target {target!r}"
        )
    capture = read_capture(lake, model_name, EPOCH, until or CAPTURE_END)
    present = [c[len(FEATURE_PREFIX) :] for c in capture.columns if c.startswith(FEATURE_PREFIX)]
    schema = feedback_schema(training, model_name=model_name, target=target, captured=present)
    result = FeedbackResult(
        model_name=model_name, dataset=name, ground_truth_dataset=truth_name,
        training_dataset=training_dataset, target=target, champion_version=champion_version,
        run_id=run_id,
    )  # fmt: skip

    # One row per request: the answered one (champion/canary) before a shadow's copy.
    result.capture_rows = len(capture)
    ranked = capture.assign(_shadow=capture["variant"].eq(SHADOW).to_numpy())
    served = ranked.sort_values(["_shadow", "captured_at"], kind="stable").drop_duplicates(
        INFERENCE_ID, keep="first"
    )
    result.captured_requests = len(served)
    result.repeated_capture_rows = result.capture_rows - result.captured_requests

    # One label per id: a later label replaces an earlier one (partition order, then file order).
    result.label_rows = len(labels)
    valued = labels.loc[labels[target].notna(), [INFERENCE_ID, target]]
    result.labels_without_value = result.label_rows - len(valued)
    superseded = valued[INFERENCE_ID].duplicated(keep="last").to_numpy()
    result.duplicate_labels = int(superseded.sum())
    result.duplicate_label_sample = _sample(valued.loc[superseded, INFERENCE_ID])
    latest = valued.loc[~superseded].rename(columns={target: "_label"})
    captured_ids = set(served[INFERENCE_ID].dropna())
    orphan = ~latest[INFERENCE_ID].isin(captured_ids).to_numpy()
    result.labels_without_capture = int(orphan.sum())
    result.labels_without_capture_sample = _sample(latest.loc[orphan, INFERENCE_ID])

    labelled = served[INFERENCE_ID].isin(set(latest[INFERENCE_ID])).to_numpy()
    result.unlabelled_per_day = {
        str(day): int(n)
        for day, n in sorted(_days(served.loc[~labelled, "captured_at"]).value_counts().items())
    }
    result.unlabelled_rows = int((~labelled).sum())
    joined = served.loc[labelled].merge(latest, on=INFERENCE_ID, how="inner", validate="1:1")
    joined = joined.sort_values(["captured_at", INFERENCE_ID], kind="stable")
    result.labelled_rows = len(joined)
    log.info(
        "feedback %s: %d capture rows = %d requests + %d repeated; %d labelled, %d unlabelled; "
        "%d label rows (%d without a captured row, %d superseded, %d without a value)",
        model_name, result.capture_rows, result.captured_requests, result.repeated_capture_rows,
        result.labelled_rows, result.unlabelled_rows, result.label_rows,
        result.labels_without_capture, result.duplicate_labels, result.labels_without_value,
    )  # fmt: skip

    table, raw, failed = _feedback_table(
        joined, schema, target=target, present=set(present), result=result
    )
    days = _days(joined["captured_at"]).to_numpy() if len(joined) else np.array([], dtype=object)
    previous = (load_catalog(lake, name) or {}).get("partitions") or {}
    q_schema = quarantine_schema(schema.names)
    capture_uri = lake.uri(f"capture/{model_name}/")
    reasons: Counter[str] = Counter()
    staged: list[IngestResult] = []
    quarantined: dict[str, pa.RecordBatch] = {}
    try:
        for day in sorted(set(days)):
            in_day = days == day
            part = table.filter(pa.array(in_day))
            # The row rules lake_ingest applies, from the same function: one rule, one place.
            checks = row_checks(
                schema,
                {n: part.column(n).combine_chunks() for n in schema.names},
                {n: mask[in_day] for n, mask in failed.items()},
            )
            rejected, why, counts = rejection_reasons(checks, part.num_rows)
            keep = np.ones(part.num_rows, dtype=bool)
            keep[rejected] = False
            curated = part.filter(pa.array(keep))
            # Quarantine's source is capture; a row's number is its place in the day (1-based).
            rejects = quarantine_rows(
                raw.filter(pa.array(in_day)), rejected, why,
                np.arange(1, part.num_rows + 1, dtype=np.int64), schema=q_schema,
                source_file=capture_uri, run_id=run_id,
            )  # fmt: skip
            day_reasons = dict(sorted(counts.items()))
            reasons.update(counts)
            result.quarantined_rows += len(rejected)
            ingest = _stage_day(
                lake, curated, dataset=name, day=day, run_id=run_id, schema=schema,
                rows_read=part.num_rows, reasons=day_reasons,
            )  # fmt: skip
            result.partitions[day] = {
                "rows": curated.num_rows, "quarantined": len(rejected), "reasons": day_reasons,
                "content_hash": ingest.content_hash,
            }  # fmt: skip
            before = previous.get(day) or {}
            if (
                before.get("content_hash") == ingest.content_hash
                and before.get("quarantined", 0) == len(rejected)
                and (before.get("reasons") or {}) == day_reasons
                and _same_quarantine(lake, ingest.quarantine_key, rejects)
            ):
                discard_staged(lake, ingest)
                result.partitions[day].update(status="unchanged", **_kept(before))
                continue
            staged.append(ingest)
            quarantined[day] = rejects
        result.quarantine_reasons = dict(sorted(reasons.items()))
        if result.quarantined_rows:
            log.warning(
                "feedback %s: %d labelled row(s) break the training schema's row rules "
                "(%s); quarantined to %s",
                model_name, result.quarantined_rows,
                ", ".join(f"{r}={n:,}" for r, n in reasons.most_common(5)),
                lake.uri(f"quarantine/{name}/"),
            )  # fmt: skip
        for ingest in staged:
            quality = check_partition(
                lake, dataset=name, partition=ingest.partition,
                run_id=f"{safe_run}_dt={ingest.partition}", schema=schema.to_dict(),
                key=lake.key_of(ingest.staged_path),
            )  # fmt: skip
            raise_for_quality(quality)  # DataQualityError: nothing is published
            result.partitions[ingest.partition].update(
                status="written", quality_score=quality.score, quality_report=quality.docs_uri
            )
    except BaseException:
        for ingest in staged:
            discard_staged(lake, ingest)
        raise
    catalog = load_catalog(lake, name)
    for ingest in staged:
        _write_quarantine(lake, ingest.quarantine_key, quarantined[ingest.partition])
        publish_partition(lake, ingest)
        entry = result.partitions[ingest.partition]
        catalog = record_partition(
            lake, name, schema, ingest, quality_score=entry["quality_score"],
            quality_report_uri=entry["quality_report"],
        )  # fmt: skip
    result.snapshot_id = None if catalog is None else catalog.get("snapshot_id")
    broken = [rule for rule, holds in result.accounting().items() if not holds]
    if broken:
        raise AssertionError(f"feedback accounting broken for {model_name}: {broken}")
    result.report_uri = lake.uri(f"reports/feedback/{model_name}/{safe_run}/report.json")
    lake.write_json(f"reports/feedback/{model_name}/{safe_run}/report.json", result.to_dict())
    log.info(
        "feedback %s: %d partition(s) written %s, %d unchanged; snapshot %s; %.1f s; report %s",
        name, len(result.written), result.written or "",
        len(result.partitions) - len(result.written), result.snapshot_id,
        time.monotonic() - started, result.report_uri,
    )  # fmt: skip
    return result


# -- helpers ------------------------------------------------------------------------------
def _days(stamps: pd.Series) -> pd.Series:
    """Capture day (UTC, ``YYYY-MM-DD``) of each timestamp."""
    stamps = pd.to_datetime(stamps, utc=True)
    return stamps.dt.strftime("%Y-%m-%d")


def _sample(ids: pd.Series) -> list[str]:
    return [str(i) for i in sorted(set(ids.dropna()))[:SAMPLE_IDS]]


def _kept(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "quality_score": entry.get("quality_score"),
        "quality_report": entry.get("quality_report"),
    }


def _feedback_table(
    joined: pd.DataFrame,
    schema: DatasetSchema,
    *,
    target: str,
    present: set[str],
    result: FeedbackResult,
) -> tuple[pa.Table, pa.RecordBatch, dict[str, np.ndarray]]:
    """The labelled rows in feedback's columns and types (cast failures counted).

    Returns:
        The typed rows, the same rows as they came (for quarantine) and, per column,
        which present values did not convert to its type.
    """
    sources = {INFERENCE_ID: INFERENCE_ID, SERVED_AT: "captured_at", MODEL_VERSION: MODEL_VERSION}
    arrays, raws = [], []
    failed: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        if spec.name == target:
            column = "_label"
        elif spec.name in sources:
            column = sources[spec.name]
        elif spec.pii or spec.name not in present:
            arrays.append(pa.nulls(len(joined), spec.arrow_type))
            raws.append(pa.nulls(len(joined), pa.string()))
            failed[spec.name] = np.zeros(len(joined), dtype=bool)
            continue
        else:
            column = FEATURE_PREFIX + spec.name
        typed, failures, original = _typed(joined[column], spec)
        if failures.any():
            result.cast_failures[spec.name] = int(failures.sum())
        arrays.append(typed)
        raws.append(original)
        failed[spec.name] = failures
    # Every field nullable in the file: rows breaking a rule are quarantined before staging,
    # and anything else must fail the quality gate with a report, not the Parquet writer.
    fields = [pa.field(f.name, f.type, nullable=True) for f in schema.arrow_schema()]
    return (
        pa.Table.from_arrays(arrays, schema=pa.schema(fields)),
        pa.RecordBatch.from_arrays(raws, names=schema.names),
        failed,
    )


def _typed(values: pd.Series, spec: ColumnSpec) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """One column converted to ``spec``'s type, which present values did not convert, and
    the values as they came."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)  # naive UTC, as the lake stores timestamps
    raw = pa.array(values, from_pandas=True)
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if pa.types.is_null(raw.type):
        return pa.nulls(len(raw), spec.arrow_type), np.zeros(len(raw), dtype=bool), raw
    typed, failed = _convert(raw, spec.type)
    if spec.type == "date" and pc.any(failed).as_py():
        # The endpoint may hand a date feature on as a midnight timestamp.
        stamps, still_failed = _convert(raw, "timestamp")
        typed = pc.coalesce(typed, pc.cast(stamps, pa.date32(), safe=False))
        failed = pc.and_(failed, still_failed)
    failures = np.asarray(pc.fill_null(failed, False).to_numpy(zero_copy_only=False), dtype=bool)
    return typed.cast(spec.arrow_type), failures, raw


def _convert(raw: pa.Array, type_name: str) -> tuple[pa.Array, pa.Array]:
    """``raw`` as ``type_name`` (typed casts when lossless, else the ingest's parsers)."""
    if not is_string_type(raw.type):
        cast = cast_typed(raw, type_name)
        if cast is not None:
            return cast, pa.repeat(False, len(raw))
    return parse_values(clean_strings(raw, ()), type_name)


def _stage_day(
    lake: Lake,
    part: pa.Table,
    *,
    dataset: str,
    day: str,
    run_id: str,
    schema: DatasetSchema,
    rows_read: int,
    reasons: dict[str, int],
) -> IngestResult:
    """Write one day's curated rows to a staged file, as ``lake_ingest``'s stage step does.

    ``rows_read`` is the day's labelled rows; those not in ``part`` were quarantined.
    """
    path = staged_curated_path(lake)
    sink = open_staged(lake, path, part.schema, unique_columns=[INFERENCE_ID, SERVED_AT])
    try:
        for batch in part.to_batches():
            sink.write(batch)
        content_hash, size = sink.close()
    except BaseException:
        sink.abort()
        remove_staged(lake, path)
        raise
    return IngestResult(
        dataset=dataset, partition=day, run_id=run_id, rows_read=rows_read,
        rows_curated=part.num_rows, rows_quarantined=rows_read - part.num_rows,
        reasons=reasons, staged_path=path,
        curated_key=curated_key(dataset, day), quarantine_key=quarantine_key(dataset, day),
        schema_version=schema.version, content_hash=content_hash, bytes=size, seconds=0.0,
        schema=schema.to_dict(),
    )  # fmt: skip


def _write_quarantine(lake: Lake, key: str, rows: pa.RecordBatch) -> None:
    """A day's quarantined rows, written whole as ``lake_ingest`` writes them (even none)."""
    with lake.atomic_output(key) as out:
        sink = ParquetSink(out, rows.schema, QUARANTINE_ROW_GROUP_ROWS)
        try:
            sink.write(rows)
            sink.close(close_stream=False)  # atomic_output closes and publishes it
        except BaseException:
            sink.abort(close_stream=False)
            raise


def _same_quarantine(lake: Lake, key: str, rows: pa.RecordBatch) -> bool:
    """Whether ``key`` already holds exactly ``rows`` (whichever run wrote them)."""
    if not lake.exists(key):
        return rows.num_rows == 0
    with lake.fs.open_input_file(lake.path(key)) as source:
        held = pq.read_table(source)
    run_column = QUARANTINE_META_COLUMNS[-1]
    return held.drop_columns([run_column]).equals(
        pa.Table.from_batches([rows]).drop_columns([run_column])
    )
