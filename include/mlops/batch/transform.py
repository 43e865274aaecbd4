"""Batch transform: score curated partitions with a registered version, write predictions.

SageMaker Batch Transform's role, on the lake. For each requested partition of
``curated/<dataset>/``, the curated Parquet is streamed in record batches (one Parquet
row group decoded at a time, ``batch_rows`` rows scored at a time) through the version's
pipeline via :class:`~include.mlops.serving.scoring.Scorer` (the endpoint's prediction
path: same verified load, same decision threshold), and written to::

    predictions/<model>/<safe run id>/dt=YYYY-MM-DD/part-00000.parquet
    predictions/<model>/<safe run id>/_manifest.json

Output columns: the dataset's key column(s) (``row_number``, the row's position in the
partition, when the dataset has no key), ``prediction``, ``probability`` (the positive
class's for binary, the predicted class's for multiclass, null for regression),
``model_name``, ``model_version``, and for multiclass ``probability_<class>`` per class.
``dt`` is the Hive partition in the path, as in the input.

Guarantees:

- only an Approved version is scored (the endpoint's rule); its files must match the
  sha256 recorded at registration;
- every partition file is written to a hidden staging key and moved into place whole,
  so readers never see a half partition; rows out must equal rows in or nothing is
  published;
- a rerun of the same run rewrites the same keys (byte-identical for the same input and
  version) and leaves no duplicates; the manifest is written last, so its presence means
  the run completed (it starts with ``_`` so Parquet dataset readers skip it);
- memory is bounded by a few batches (``SCORING_THREADS + 1`` being scored), not by the
  data: a 3x larger partition takes 3x the time and the same RAM (benchmarks/bench_batch.py).

The plan, the output keys and the output columns are :mod:`include.mlops.batch.plan`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from include.mlops.batch.plan import (
    BATCH_USE,
    EXPLANATION_OUTPUT,
    ROW_NUMBER_COLUMN,
    BatchPlan,
    manifest_key,
    output_schema,
    plan_batch_transform,
    predictions_batch,
    predictions_key,
)
from include.mlops.batch.request import BatchInputError, BatchRequest, RowCountMismatchError
from include.mlops.etl.load import ROW_GROUP_ROWS, ParquetSink
from include.mlops.lake.store import Lake
from include.mlops.registry.versions import (
    ClientOrUri,
    get_version,
    registry_client,
    require_approved,
)
from include.mlops.serving.scoring import Scorer

log = logging.getLogger(__name__)


#: Progress lines at most this often (and at the end of each partition).
PROGRESS_EVERY_SECONDS = 5.0
#: Batches scored at once. The pipeline's feature step is Python (it holds the GIL) while
#: a tree model's predict releases it, so two threads keep two cores busy where one
#: thread alternates between them; each predict then runs on one thread (see
#: :func:`one_thread_per_predict`), which also spares OpenMP barrier stalls on a busy
#: machine. Measured on 2 busy cores, 1M rows: best of 3, 2.9 s vs 3.6 s sequential.
SCORING_THREADS = 2


# -- results ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionResult:
    """One partition's predictions.

    Attributes:
        partition: ``YYYY-MM-DD``.
        sources: Input file URIs.
        output_uri: The predictions file's URI.
        rows_in: Rows read.
        rows_out: Rows written (equal to ``rows_in``, checked).
        bytes: Output file size.
        sha256: Output file checksum.
        seconds: Wall time of the partition.
    """

    partition: str
    sources: list[str]
    output_uri: str
    rows_in: int
    rows_out: int
    bytes: int
    sha256: str
    seconds: float


@dataclass
class BatchManifest:
    """What a batch transform run wrote (``_manifest.json``).

    Attributes:
        model_name: Registered model name.
        model_version: The version scored with.
        requested_version: What the user asked for.
        model_sha256: The verified checksum of the version's files.
        dataset: The scored dataset.
        run_id: The run.
        output_uri: The run's predictions prefix.
        manifest_uri: Where this manifest is.
        columns: Output columns, in order.
        partitions: Per-partition results, by partition.
        rows_in: Rows read over all partitions.
        rows_out: Rows written over all partitions.
        batch_rows: Rows per streamed batch.
        load_seconds: Model download + verify + load time.
        seconds: Scoring time over all partitions (load excluded).
    """

    model_name: str
    model_version: int
    requested_version: str
    model_sha256: str | None
    dataset: str
    run_id: str
    output_uri: str
    manifest_uri: str
    columns: list[str]
    partitions: dict[str, PartitionResult] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    batch_rows: int = 0
    load_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        """Scoring throughput over the run (load excluded)."""
        return self.rows_out / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the manifest file's content)."""
        data = asdict(self)
        data["rows_per_second"] = round(self.rows_per_second, 1)
        return data


# -- scoring ----------------------------------------------------------------------------
def _model_inputs(scorer: Scorer, available: pa.Schema, where: str) -> tuple[list[str], list[str]]:
    """Input columns present in the data, and optional ones it lacks (filled with nulls)."""
    names = set(available.names)
    missing_required = [c.name for c in scorer.inputs if c.required and c.name not in names]
    if missing_required:
        raise BatchInputError(
            f"{where} lacks column(s) {missing_required} that model "
            f"{scorer.model_name!r} v{scorer.version} requires (its signature: "
            f"{', '.join(scorer.input_names)}); score a dataset with these columns"
        )
    present = [c.name for c in scorer.inputs if c.name in names]
    absent = [c.name for c in scorer.inputs if c.name not in names]
    return present, absent


class _Progress:
    """Rows done of total and rows/s, at most every few seconds."""

    def __init__(self, total: int, started: float) -> None:
        self.total = total
        self.started = started
        self.done = 0
        self.last = started

    def add(self, rows: int, partition: str, *, final: bool = False) -> None:
        self.done += rows
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        total = max(self.total, self.done)
        rate = self.done / max(now - self.started, 1e-9)
        left = (total - self.done) / rate if rate > 0 else 0.0
        log.info(
            "%s",
            f"dt={partition}: {self.done:,} of {total:,} rows "
            f"({100 * self.done / max(total, 1):.0f}%), {rate:,.0f} rows/s"
            + (f", ~{left:,.0f} s left" if self.done < total else ""),
        )


def _score_batch(
    batch: pa.RecordBatch,
    scorer: Scorer,
    *,
    present: Sequence[str],
    absent: Sequence[str],
    schema: pa.Schema,
    id_columns: Sequence[str],
    first_row: int,
) -> pa.RecordBatch:
    """One input batch → its predictions batch (runs on a scoring thread)."""
    # The conversion training used (Table.to_pandas defaults), model inputs only.
    frame = batch.select(list(present)).to_pandas()
    for name in absent:  # optional inputs the data does not carry
        frame[name] = None
    scored = scorer.score(frame)
    attributions = scorer.explain(frame) if EXPLANATION_OUTPUT in schema.names else None
    return predictions_batch(batch, scored, schema=schema, id_columns=id_columns,
                             first_row=first_row, scorer=scorer, attributions=attributions)  # fmt: skip


def _score_file(
    parquet: pq.ParquetFile,
    sink: ParquetSink,
    scorer: Scorer,
    pool: ThreadPoolExecutor,
    *,
    in_flight: int,
    where: str,
    id_columns: Sequence[str],
    first_row: int,
    batch_rows: int,
    progress: _Progress | None,
    partition: str,
) -> int:
    """Stream one Parquet file through the scorer into ``sink``; returns rows read.

    This thread decodes batches and writes results in input order; the pool scores.
    At most ``in_flight`` batches are being scored, so memory does not grow with the file.
    """
    names = parquet.schema_arrow.names
    missing_ids = [c for c in id_columns if c != ROW_NUMBER_COLUMN and c not in names]
    if missing_ids:
        raise BatchInputError(f"{where} lacks id column(s) {missing_ids}")
    present, absent = _model_inputs(scorer, parquet.schema_arrow, where)
    read = list(dict.fromkeys([*(c for c in id_columns if c in names), *present]))
    pending: deque[tuple[int, Future[pa.RecordBatch]]] = deque()

    def collect() -> None:
        rows, future = pending.popleft()
        sink.write(future.result())
        if progress is not None:
            progress.add(rows, partition)

    rows = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=read):
            future = pool.submit(
                _score_batch, batch, scorer, present=present, absent=absent,
                schema=sink.schema, id_columns=id_columns, first_row=first_row + rows,
            )  # fmt: skip
            pending.append((batch.num_rows, future))
            rows += batch.num_rows
            while len(pending) >= in_flight:
                collect()
        while pending:
            collect()
    except BaseException:
        for _, future in pending:
            future.cancel()
        raise
    if rows != parquet.metadata.num_rows:
        raise RowCountMismatchError(
            f"{where}: read {rows:,} rows but its footer says {parquet.metadata.num_rows:,}; "
            "nothing was published"
        )
    return rows


def transform_partition(
    lake: Lake,
    scorer: Scorer,
    *,
    source_keys: Sequence[str],
    output_key: str,
    id_columns: Sequence[str],
    partition: str,
    batch_rows: int,
    progress: _Progress | None = None,
    threads: int = SCORING_THREADS,
    explain: bool = False,
) -> PartitionResult:
    """Stream one partition's files through the scorer into one predictions file.

    Args:
        lake: The lake (input and output).
        scorer: The loaded version.
        source_keys: The partition's curated Parquet files (lake keys), read in order.
        output_key: Where the predictions file goes (written atomically).
        id_columns: Input columns copied to the output (``row_number`` is generated).
        partition: The partition (for messages).
        batch_rows: Rows per streamed batch.
        progress: Shared progress over the run.
        threads: Batches scored at once (see :data:`SCORING_THREADS`).
        explain: Also write each row's attributions (the ``explanation_*`` columns).

    Returns:
        The partition's result.

    Raises:
        BatchInputError: A file lacks an id or a required model input column.
        RowCountMismatchError: Rows written differ from rows read (nothing published).
    """
    started = time.monotonic()
    if not source_keys:
        raise BatchInputError(f"dt={partition} has no curated file to score")
    rows_in = 0
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(threads, thread_name_prefix="batch-score"))
        files = [
            (key, pq.ParquetFile(stack.enter_context(lake.fs.open_input_file(lake.path(key))),
                                 pre_buffer=True))
            for key in source_keys
        ]  # fmt: skip
        first = files[0][1].schema_arrow
        id_fields = [
            first.field(c) if c in first.names
            else pa.field(ROW_NUMBER_COLUMN, pa.int64(), nullable=False)
            for c in id_columns
        ]  # fmt: skip
        schema = output_schema(scorer, id_fields, explain=explain)
        dictionary = ["model_name", "model_version"] + (
            ["prediction"] if scorer.is_classifier else []
        )
        # Exits run in reverse: on failure the sink stops, then the staged file is dropped.
        out = stack.enter_context(lake.atomic_output(output_key))
        sink = ParquetSink(out, schema, ROW_GROUP_ROWS, dictionary)
        stack.callback(sink.abort, close_stream=False)  # a no-op once closed
        for key, parquet in files:
            rows_in += _score_file(
                parquet, sink, scorer, pool, in_flight=threads + 1,
                where=f"{lake.uri(key)} (dt={partition})",
                id_columns=id_columns, first_row=rows_in, batch_rows=batch_rows,
                progress=progress, partition=partition,
            )  # fmt: skip
        rows_out = sink.rows
        if rows_out != rows_in:
            raise RowCountMismatchError(
                f"dt={partition}: wrote {rows_out:,} predictions for {rows_in:,} input "
                "rows; nothing was published"
            )
        sha256, size = sink.close(close_stream=False)  # atomic_output publishes it
    seconds = time.monotonic() - started
    if progress is not None:
        progress.add(0, partition, final=True)
    log.info(
        "%s",
        f"dt={partition}: {rows_in:,} rows in, {rows_out:,} predictions out, {size:,} bytes, "
        f"{seconds:.1f} s ({rows_in / max(seconds, 1e-9):,.0f} rows/s) -> {lake.uri(output_key)}",
    )
    return PartitionResult(
        partition=partition,
        sources=[lake.uri(k) for k in source_keys],
        output_uri=lake.uri(output_key),
        rows_in=rows_in,
        rows_out=rows_out,
        bytes=size,
        sha256=sha256,
        seconds=round(seconds, 3),
    )


def partition_files(lake: Lake, dataset: str, partition: str) -> list[str]:
    """Lake keys of a curated partition's Parquet files, sorted."""
    return lake.list_files(f"curated/{dataset}/dt={partition}/", suffix=".parquet")


def score_partitions(
    lake: Lake,
    scorer: Scorer,
    plan: BatchPlan,
    *,
    threads: int = SCORING_THREADS,
) -> BatchManifest:
    """Score every planned partition with a loaded scorer and write the manifest.

    Args:
        lake: The lake.
        scorer: The loaded version (``plan.version`` of ``plan.model_name``).
        plan: What to score.
        threads: Batches scored at once (see :data:`SCORING_THREADS`).

    Returns:
        The manifest (also written to ``<output prefix>/_manifest.json``).
    """
    prefix = plan.output_prefix
    # A rerun of this run starts clean: no manifest until it completes again, and no
    # partition folder this plan does not write.
    lake.delete(manifest_key(plan.model_name, plan.run_id))
    wanted = {f"dt={p}" for p in plan.partitions}
    for key in lake.list_files(prefix + "/"):
        folder = key[len(prefix) + 1 :].split("/", 1)[0]
        if folder.startswith("dt=") and folder not in wanted:
            lake.delete(f"{prefix}/{folder}")
    schema = output_schema(
        scorer, [pa.field(c, pa.null()) for c in plan.id_columns], explain=plan.explain
    )
    manifest = BatchManifest(
        model_name=plan.model_name,
        model_version=scorer.version,
        requested_version=plan.requested_version,
        model_sha256=scorer.sha256 or plan.model_sha256,
        dataset=plan.dataset,
        run_id=plan.run_id,
        output_uri=lake.uri(prefix) + "/",
        manifest_uri=lake.uri(manifest_key(plan.model_name, plan.run_id)),
        columns=schema.names,
        batch_rows=plan.batch_rows,
        load_seconds=round(scorer.load_seconds, 3),
    )
    log.info(
        "%s",
        f"batch transform {plan.dataset} ({len(plan.partitions)} partition(s), "
        f"{plan.total_rows:,} catalogued rows) with {plan.model_name} v{scorer.version} "
        f"(asked: {plan.requested_version!r}), {plan.batch_rows:,} rows per batch -> "
        f"{manifest.output_uri}",
    )
    started = time.monotonic()
    progress = _Progress(plan.total_rows, started)
    for partition in plan.partitions:
        sources = partition_files(lake, plan.dataset, partition)
        if not sources:
            raise BatchInputError(
                f"dataset {plan.dataset!r} dt={partition} is catalogued but "
                f"{lake.uri(f'curated/{plan.dataset}/dt={partition}/')} holds no Parquet file"
            )
        result = transform_partition(
            lake, scorer, source_keys=sources,
            output_key=predictions_key(plan.model_name, plan.run_id, partition),
            id_columns=plan.id_columns, partition=partition, batch_rows=plan.batch_rows,
            progress=progress, threads=threads, explain=plan.explain,
        )  # fmt: skip
        manifest.partitions[partition] = result
        manifest.rows_in += result.rows_in
        manifest.rows_out += result.rows_out
    manifest.seconds = round(time.monotonic() - started, 3)
    lake.write_json(manifest_key(plan.model_name, plan.run_id), manifest.to_dict())
    log.info(
        "%s",
        f"batch transform done: {manifest.rows_in:,} rows in, {manifest.rows_out:,} "
        f"predictions out over {len(plan.partitions)} partition(s) in {manifest.seconds:.1f} s "
        f"({manifest.rows_per_second:,.0f} rows/s; model load {manifest.load_seconds:.1f} s); "
        f"manifest {manifest.manifest_uri}",
    )
    return manifest


def load_planned_scorer(client: ClientOrUri, plan: BatchPlan) -> Scorer:
    """Load the plan's version for batch scoring.

    Re-checks that it is still Approved (it may have been rejected since planning),
    verifies its files' sha256 (``load_scorer``), and makes each predict call use one
    thread (:func:`one_thread_per_predict`): batches are scored in parallel instead.

    Raises:
        NotApprovedError: The version is no longer Approved.
        ArtifactChecksumError: The files differ from what was registered.
    """
    from include.mlops.serving.scoring import load_scorer

    client = registry_client(client)
    require_approved(get_version(client, plan.model_name, plan.version), BATCH_USE)
    scorer = load_scorer(client, plan.model_name, plan.version)
    one_thread_per_predict(scorer.pipeline)
    return scorer


def one_thread_per_predict(pipeline: Any) -> list[str]:
    """Set ``n_jobs=1`` on the pipeline's model (and a wrapped estimator) in place.

    A runtime knob only: predictions are identical whatever the thread count. With
    :data:`SCORING_THREADS` batches scored at once, a multi-threaded predict would
    oversubscribe the cores, and OpenMP threads waiting at a barrier for a descheduled
    sibling slow every call on a busy machine.

    Args:
        pipeline: A fitted pipeline (``features`` + ``model``) or a bare estimator.

    Returns:
        The class names of the estimators changed.
    """
    model = (
        pipeline.named_steps.get("model", pipeline)
        if hasattr(pipeline, "named_steps")
        else pipeline
    )
    changed: list[str] = []
    for estimator in (model, getattr(model, "estimator", None)):
        if estimator is None or not hasattr(estimator, "get_params"):
            continue
        params = estimator.get_params(deep=False)
        # None means 1 to scikit-learn but "every core" to XGBoost: set it either way.
        if "n_jobs" in params and params["n_jobs"] != 1:
            estimator.set_params(n_jobs=1)
            changed.append(type(estimator).__name__)
    return changed


def run_batch_transform(lake: Lake, client: ClientOrUri, plan: BatchPlan) -> BatchManifest:
    """Load the plan's version (Approved, verified) and score every planned partition.

    Args:
        lake: The lake.
        client: MLflow client or tracking URI.
        plan: From :func:`plan_batch_transform`.

    Returns:
        The manifest.
    """
    scorer = load_planned_scorer(client, plan)
    log.info(
        "%s",
        f"loaded {plan.model_name} v{scorer.version} (sha256 {str(scorer.sha256)[:12]}..., "
        f"verified) in {scorer.load_seconds:.1f} s: "
        + (
            f"classes {', '.join(map(str, scorer.classes))}"
            if scorer.is_classifier
            else "regressor"
        )
        + (f", threshold {scorer.threshold:.3f}" if scorer.threshold is not None else ""),
    )
    return score_partitions(lake, scorer, plan)


def batch_transform(
    lake: Lake, client: ClientOrUri, request: BatchRequest, *, run_id: str
) -> BatchManifest:
    """Plan and run a batch transform in one call (notebooks, benchmarks, the CLI).

    Args:
        lake: The lake.
        client: MLflow client or tracking URI.
        request: The checked request.
        run_id: Names the output prefix; the same run id rewrites the same output.

    Returns:
        The manifest.
    """
    plan = plan_batch_transform(lake, client, request, run_id=run_id)
    return run_batch_transform(lake, client, plan)
