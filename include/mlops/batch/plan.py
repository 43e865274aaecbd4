"""What a batch transform will do and write: its plan, its output keys and columns.

The plan is the run's first task's answer (an XCom): the request resolved once to a
version and concrete partitions, refused unless Approved, and the id columns to copy.
The output goes to::

    predictions/<model>/<safe run id>/dt=YYYY-MM-DD/part-00000.parquet
    predictions/<model>/<safe run id>/_manifest.json

with the columns of :func:`output_schema`. Scoring the partitions, and the manifest of
what was written, are :mod:`include.mlops.batch.transform`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from include.mlops.batch.request import BatchInputError, BatchRequest
from include.mlops.etl.catalog import catalog_schema, load_catalog
from include.mlops.etl.naming import catalog_key, safe_run_id
from include.mlops.lake.store import Lake
from include.mlops.registry.versions import ClientOrUri, require_approved, resolve_version

if TYPE_CHECKING:
    from include.mlops.serving.scoring import Scored, Scorer

#: What a batch transform does with a version, for the Approved-only refusal.
BATCH_USE = "be batch-scored (the endpoint's rule)"
#: Lake zone of batch-transform output.
PREDICTIONS_ZONE = "predictions"
#: The run's manifest, beside the partitions (``_`` keeps it out of dataset discovery).
MANIFEST_FILE = "_manifest.json"
PART_FILE = "part-00000.parquet"
#: Output id column when the dataset declares no key: the row's position in its partition.
ROW_NUMBER_COLUMN = "row_number"

_UNSAFE_COLUMN_CHARS = re.compile(r"[^A-Za-z0-9_]+")


# -- naming -----------------------------------------------------------------------------
def predictions_prefix(model_name: str, run_id: str) -> str:
    """Lake prefix of one run's predictions: ``predictions/<model>/<safe run id>``."""
    return f"{PREDICTIONS_ZONE}/{model_name}/{safe_run_id(run_id)}"


def predictions_key(model_name: str, run_id: str, partition: str) -> str:
    """Lake key of one partition's predictions file."""
    return f"{predictions_prefix(model_name, run_id)}/dt={partition}/{PART_FILE}"


def manifest_key(model_name: str, run_id: str) -> str:
    """Lake key of one run's manifest."""
    return f"{predictions_prefix(model_name, run_id)}/{MANIFEST_FILE}"


# -- plan -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPlan:
    """A batch transform resolved to one version and concrete partitions (an XCom).

    Attributes:
        model_name: Registered model name.
        version: The resolved version number (an alias is resolved once, at planning,
            so a champion swap mid-run cannot mix two versions in one output).
        requested_version: What the user asked for (``champion``, ``3``, ...).
        model_sha256: The version's recorded checksum.
        dataset: Curated dataset.
        partitions: Partitions to score, sorted.
        rows_expected: Catalogued rows per partition (for progress; the files decide).
        id_columns: Columns copied from input to output to join predictions back.
        run_id: The run (names the output prefix).
        batch_rows: Rows per streamed batch.
        explain: Also write each row's attributions (``explanation_*``, ``contribution_*``).
    """

    model_name: str
    version: int
    requested_version: str
    model_sha256: str | None
    dataset: str
    partitions: list[str]
    rows_expected: dict[str, int]
    id_columns: list[str]
    run_id: str
    batch_rows: int
    explain: bool = False

    @property
    def output_prefix(self) -> str:
        """``predictions/<model>/<safe run id>``."""
        return predictions_prefix(self.model_name, self.run_id)

    @property
    def total_rows(self) -> int:
        """Catalogued rows over every planned partition."""
        return sum(self.rows_expected.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchPlan:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def plan_batch_transform(
    lake: Lake, client: ClientOrUri, request: BatchRequest, *, run_id: str
) -> BatchPlan:
    """Resolve the version, refuse it unless Approved, and find the partitions and ids.

    Cheap (registry and catalog reads only), so the DAG's first task can refuse a bad
    request before anything is loaded or written.

    Args:
        lake: The lake.
        client: MLflow client or tracking URI.
        request: The checked request.
        run_id: The run (names the output prefix; validated here).

    Returns:
        The plan.

    Raises:
        ModelNotFoundError, VersionNotFoundError: No such model, version or alias.
        NotApprovedError: The version is not Approved.
        BatchInputError: The dataset has no catalog, no partitions, or not the one asked.
    """
    predictions_prefix(request.model_name, run_id)  # validates run_id before any work
    info = require_approved(resolve_version(client, request.model_name, request.version), BATCH_USE)
    catalog = load_catalog(lake, request.dataset)
    if not catalog or not catalog.get("partitions"):
        raise BatchInputError(
            f"dataset {request.dataset!r} has no curated partitions (catalog "
            f"{lake.uri(catalog_key(request.dataset))} "
            f"{'is empty' if catalog else 'does not exist'}): ingest it with lake_ingest first"
        )
    known: dict[str, Any] = catalog["partitions"]
    wanted = request.partitions or sorted(known)
    unknown = [p for p in wanted if p not in known]
    if unknown:
        shown = ", ".join(sorted(known)[-10:])
        raise BatchInputError(
            f"dataset {request.dataset!r} has no partition {', '.join(unknown)}; "
            f"catalogued ({len(known)}): {'..., ' if len(known) > 10 else ''}{shown} "
            f"(see {lake.uri(catalog_key(request.dataset))})"
        )
    schema = catalog_schema(catalog)
    id_columns = list(schema.key) if schema is not None and schema.key else [ROW_NUMBER_COLUMN]
    return BatchPlan(
        model_name=request.model_name,
        version=info.version,
        requested_version=request.version,
        model_sha256=info.sha256,
        dataset=request.dataset,
        partitions=list(wanted),
        rows_expected={p: int(known[p].get("rows") or 0) for p in wanted},
        id_columns=id_columns,
        run_id=run_id,
        batch_rows=request.batch_rows,
        explain=request.explain,
    )


# -- output columns ---------------------------------------------------------------------
def output_schema(
    scorer: Scorer, id_fields: Sequence[pa.Field], *, explain: bool = False
) -> pa.Schema:
    """The predictions file's schema for a scorer and the input's id columns.

    Args:
        scorer: The loaded version.
        id_fields: The id columns' fields, as in the input.
        explain: Add the attribution columns (:func:`explanation_columns`).

    Returns:
        ids, ``prediction``, ``probability``, ``model_name``, ``model_version``, then
        ``probability_<class>`` per class for multiclass models, then with ``explain``
        ``explanation_base_value``, ``explanation_output`` and ``contribution_<column>``
        per input column (base value + Σ contributions = output, the model's raw output).
    """
    fields = list(id_fields)
    fields.append(pa.field("prediction", _label_type(scorer)))
    fields.append(pa.field("probability", pa.float64()))
    fields.append(pa.field("model_name", pa.string(), nullable=False))
    fields.append(pa.field("model_version", pa.int64(), nullable=False))
    fields.extend(pa.field(name, pa.float64()) for name in class_probability_columns(scorer))
    if explain:
        fields.extend(pa.field(name, pa.float64()) for name in explanation_columns(scorer))
    return pa.schema(fields)


#: The attribution columns' leading names (then one ``contribution_<column>`` per input).
EXPLANATION_BASE, EXPLANATION_OUTPUT = "explanation_base_value", "explanation_output"


def explanation_columns(scorer: Scorer) -> list[str]:
    """``explanation_base_value``, ``explanation_output``, ``contribution_<column>`` per input."""
    return [EXPLANATION_BASE, EXPLANATION_OUTPUT,
            *_unique_names("contribution_", scorer.explainer().columns)]  # fmt: skip


def _unique_names(prefix: str, labels: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for label in labels:
        base = prefix + (_UNSAFE_COLUMN_CHARS.sub("_", str(label)).strip("_") or "column")
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def class_probability_columns(scorer: Scorer) -> list[str]:
    """``probability_<class>`` per class of a multiclass model (empty otherwise)."""
    if len(scorer.classes) <= 2:
        return []
    names: list[str] = []
    for label in scorer.classes:
        base = "probability_" + (_UNSAFE_COLUMN_CHARS.sub("_", str(label)).strip("_") or "class")
        name, n = base, 2
        while name in names:  # two labels that sanitize alike ("a b", "a-b")
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _label_type(scorer: Scorer) -> pa.DataType:
    if not scorer.is_classifier:
        return pa.float64()
    kinds = {np.asarray([c]).dtype.kind for c in scorer.classes}
    if kinds <= {"b"}:
        return pa.bool_()
    if kinds <= {"i", "u"}:
        return pa.int64()
    if kinds <= {"i", "u", "f"}:
        return pa.float64()
    return pa.string()


def _labels_array(predictions: np.ndarray, data_type: pa.DataType) -> pa.Array:
    if pa.types.is_string(data_type):
        return pa.array(np.asarray(predictions).astype(str), pa.string())
    numpy_type = {pa.int64(): np.int64, pa.float64(): np.float64, pa.bool_(): np.bool_}[data_type]
    return pa.array(np.asarray(predictions, dtype=numpy_type), data_type)


def predictions_batch(
    batch: pa.RecordBatch,
    scored: Scored,
    *,
    schema: pa.Schema,
    id_columns: Sequence[str],
    first_row: int,
    scorer: Scorer,
    attributions: Any = None,
) -> pa.RecordBatch:
    """The output rows of one input batch: its ids, the scores, the model's name and version
    (and with ``attributions``, :class:`~include.mlops.clarify.explain.Attributions` of the
    same rows, the attribution columns)."""
    n = batch.num_rows
    arrays: list[pa.Array] = []
    for name in id_columns:
        if name == ROW_NUMBER_COLUMN and name not in batch.schema.names:
            arrays.append(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)))
        else:
            arrays.append(batch.column(name))
    arrays.append(_labels_array(scored.predictions, schema.field("prediction").type))
    if scored.probability is None:
        arrays.append(pa.nulls(n, pa.float64()))
    else:
        arrays.append(pa.array(np.asarray(scored.probability, dtype=np.float64)))
    arrays.append(pa.array(np.full(n, scorer.model_name, dtype=object), pa.string()))
    arrays.append(pa.array(np.full(n, scorer.version, dtype=np.int64)))
    extra = class_probability_columns(scorer)
    if extra:
        proba = np.asarray(scored.class_probabilities, dtype=np.float64)
        arrays.extend(pa.array(np.ascontiguousarray(proba[:, j])) for j in range(len(extra)))
    if attributions is not None:
        arrays.append(pa.array(np.asarray(attributions.base, dtype=np.float64)))
        arrays.append(pa.array(np.asarray(attributions.output, dtype=np.float64)))
        contributions = np.asarray(attributions.contributions, dtype=np.float64)
        arrays.extend(pa.array(np.ascontiguousarray(contributions[:, j]))
                      for j in range(contributions.shape[1]))  # fmt: skip
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
