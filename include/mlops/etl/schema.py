"""Dataset schemas: what a column is, how one is inferred, and how drift is detected.

A schema comes from one of three places, in this order of authority: declared in
code (:mod:`include.mlops.etl.declared`), recorded in the catalog by an earlier
ingest, or inferred from the first batch of the very first ingest. Once a schema
exists, incoming data is compared with it and any new, missing or retyped column
stops the ingest (:class:`SchemaDriftError`): a changed feed is never coerced silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.mlops.etl.naming import INFERENCE_ID, model_of_ground_truth, validate_dataset_name
from include.mlops.etl.transform import (
    ARROW_TYPES,
    FALSE_TOKENS,
    TRUE_TOKENS,
    TYPES,
    cast_typed,
    is_string_type,
    map_missing,
    normalize_strings,
    parse_values,
    to_strings,
)
from include.mlops.settings import DEFAULT_MISSING_TOKENS

ORIGINS: tuple[str, ...] = ("inferred", "declared")

#: Column-name patterns that mark personal data (matched on the lower-cased name).
PII_NAME_PATTERNS: tuple[str, ...] = (
    r"e_?mail",
    r"phone",
    r"mobile",
    r"\bfax\b",
    r"ssn",
    r"social_?security",
    r"passport",
    r"driver_?licen[cs]e",
    r"national_?id",
    r"tax_?id",
    r"\b(first|last|full|middle|sur|given|family)_?name\b",
    r"^name$",
    r"customer_?name",
    r"(street|home|postal|mailing|billing|shipping)_?address",
    r"^address",
    r"ip_?address",
    r"\b(dob|birth_?date|date_?of_?birth|birthday)\b",
    r"credit_?card",
    r"card_?number",
    r"\biban\b",
    r"account_?number",
)
_PII_RE = re.compile("|".join(f"(?:{p})" for p in PII_NAME_PATTERNS))

#: Categorical = a string column whose sample has at most this many distinct values...
CATEGORICAL_MAX_DISTINCT = 50
#: ...and, on average, each distinct value repeated at least this often (so a
#: 10-row sample of 10 names is not called categorical).
CATEGORICAL_MIN_REPEAT = 2
#: A column is "retyped" only when fewer than this share of its present sample values
#: cast to the expected type; below that it is a different feed, above it the few
#: bad values are row errors that go to quarantine as ``type_cast``.
CONFORMING_SHARE = 0.5
#: A non-id-named column is proposed as a key only with this much evidence.
KEY_MIN_SAMPLE_ROWS = 1000


def looks_like_pii(column: str) -> bool:
    """Whether a column name suggests personal data (email, phone, ssn, names...).

    Args:
        column: The column name.

    Returns:
        True when it matches one of :data:`PII_NAME_PATTERNS`.
    """
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column).lower().replace("-", "_")
    name = name.replace(" ", "_")
    return bool(_PII_RE.search(name))


@dataclass
class ColumnSpec:
    """One column of a dataset.

    Attributes:
        name: Column name as in the source.
        type: One of ``string``, ``int64``, ``float64``, ``bool``, ``date``, ``timestamp``.
        nullable: Whether a missing value is acceptable (else ``missing_required``).
        categorical: A low-cardinality label column.
        pii: Personal data: stored only as a salted hash in the curated zone.
        allowed: The only acceptable values, if restricted (else ``out_of_domain``).
        min: Smallest acceptable value (numbers), inclusive.
        max: Largest acceptable value (numbers), inclusive.
    """

    name: str
    type: str
    nullable: bool = True
    categorical: bool = False
    pii: bool = False
    allowed: list[Any] | None = None
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(
                f"column {self.name!r}: type {self.type!r} is invalid, expected one of {TYPES}"
            )
        if not self.name:
            raise ValueError("column name must be non-empty")
        if (self.min is not None or self.max is not None) and self.type not in (
            "int64",
            "float64",
        ):
            raise ValueError(
                f"column {self.name!r}: min/max apply to int64 and float64 columns, not {self.type}"
            )

    @property
    def arrow_type(self) -> pa.DataType:
        """Arrow type in the curated zone (PII columns hold hex digests, so strings)."""
        return pa.string() if self.pii else ARROW_TYPES[self.type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "categorical": self.categorical,
            "pii": self.pii,
            "allowed": None if self.allowed is None else list(self.allowed),
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(
            name=data["name"],
            type=data["type"],
            nullable=bool(data.get("nullable", True)),
            categorical=bool(data.get("categorical", False)),
            pii=bool(data.get("pii", False)),
            allowed=None if data.get("allowed") is None else list(data["allowed"]),
            min=data.get("min"),
            max=data.get("max"),
        )


@dataclass
class DatasetSchema:
    """The schema of a dataset, as recorded in ``catalog/<dataset>/schema.json``.

    Attributes:
        dataset: Dataset name.
        columns: Columns in output order.
        key: Candidate key columns (unique per row); may be empty.
        version: Bumped each time the schema changes.
        origin: ``declared`` (in code) or ``inferred`` (from data).
    """

    dataset: str
    columns: list[ColumnSpec]
    key: list[str] = field(default_factory=list)
    version: int = 1
    origin: str = "inferred"

    def __post_init__(self) -> None:
        validate_dataset_name(self.dataset)
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"dataset {self.dataset!r}: duplicate column(s) {duplicates}")
        unknown = [k for k in self.key if k not in names]
        if unknown:
            raise ValueError(f"dataset {self.dataset!r}: key column(s) {unknown} not in columns")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin {self.origin!r} is invalid, expected one of {ORIGINS}")

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """The spec of one column (KeyError if absent)."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def is_required(self, spec: ColumnSpec) -> bool:
        """A key column is required even if declared nullable: a null key identifies nothing."""
        return not spec.nullable or spec.name in self.key

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the curated Parquet files."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=not self.is_required(c)) for c in self.columns]
        )

    def structure(self) -> dict[str, Any]:
        """What makes two schemas the same (everything but version and origin)."""
        return {"columns": [c.to_dict() for c in self.columns], "key": list(self.key)}

    def same_structure(self, other: DatasetSchema) -> bool:
        """Whether ``other`` describes the same columns, rules and key."""
        return self.structure() == other.structure()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "dataset": self.dataset,
            "columns": [c.to_dict() for c in self.columns],
            "key": list(self.key),
            "version": self.version,
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSchema:
        """Inverse of :meth:`to_dict`."""
        return cls(
            dataset=data["dataset"],
            columns=[ColumnSpec.from_dict(c) for c in data["columns"]],
            key=list(data.get("key") or []),
            version=int(data.get("version", 1)),
            origin=data.get("origin", "inferred"),
        )


# -- inference ---------------------------------------------------------------------
def clean_strings(values: pa.Array, missing_tokens: Iterable[str]) -> pa.Array:
    """Raw column → normalized strings with missing tokens as null (any input type)."""
    return map_missing(normalize_strings(to_strings(values)), missing_tokens)


#: Share of a sample's present values that may fail a type and still have it inferred
#: (samples of at least INFER_MIN_VALUES): a few typos in a numeric column are bad
#: rows to quarantine, not a reason to store the whole column as text.
INFER_TOLERANCE = 0.01
INFER_MIN_VALUES = 100


def _infer_string_type(values: pa.Array) -> str:
    present = pc.drop_null(values)
    if not len(present):
        return "string"
    tolerated = int(INFER_TOLERANCE * len(present)) if len(present) >= INFER_MIN_VALUES else 0
    lowered = pc.utf8_lower(present)
    words = pa.array([t for t in TRUE_TOKENS + FALSE_TOKENS if not t.isdigit()])
    # 0/1 columns stay int64: a label or a count is more often meant than a flag.
    if pc.all(pc.is_in(lowered, value_set=words)).as_py():
        return "bool"
    for type_name in ("int64", "float64", "date", "timestamp"):
        _, failed = parse_values(present, type_name)
        if (pc.sum(failed).as_py() or 0) <= tolerated:
            return type_name
    return "string"


def arrow_to_schema_type(data_type: pa.DataType) -> str | None:
    """Schema type of a typed Arrow column (Parquet input); None when unsupported."""
    if pa.types.is_dictionary(data_type):
        return arrow_to_schema_type(data_type.value_type)
    if is_string_type(data_type) or pa.types.is_null(data_type):
        return "string"
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type):
        return "int64"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float64"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    return None


def _observed_type(values: pa.Array, missing_tokens: Sequence[str]) -> tuple[str, pa.Array]:
    """The type a column's values show, and its cleaned (string) values."""
    if is_string_type(values.type) or pa.types.is_null(values.type):
        cleaned = clean_strings(values, missing_tokens)
        return _infer_string_type(cleaned), cleaned
    type_name = arrow_to_schema_type(values.type)
    cleaned = clean_strings(values, missing_tokens)
    return (type_name or f"unsupported:{values.type}"), cleaned


def infer_schema(
    sample: pa.RecordBatch | pa.Table,
    dataset: str,
    missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS,
) -> DatasetSchema:
    """Infer a schema from a sample batch (usually the first batch of the first ingest).

    A type is inferred when all but :data:`INFER_TOLERANCE` of the sample's present
    values parse as it (so a few typos are quarantined later), nullability is
    "the sample had a missing value", categorical means few distinct strings, PII is
    judged by column name, and the key is a unique, never-missing int or string
    column, preferring names like ``id`` / ``*_id``. By convention a
    ``<model>_ground_truth`` dataset is keyed on its ``inference_id`` column (a string).

    Args:
        sample: Raw columns (strings from CSV/JSON lines, or typed from Parquet).
        dataset: Dataset name.
        missing_tokens: Raw strings that mean "missing".

    Returns:
        The inferred schema (version 1, origin ``inferred``).
    """
    columns: list[ColumnSpec] = []
    key_candidates: list[tuple[int, int, str]] = []
    rows = sample.num_rows
    for position, name in enumerate(sample.schema.names):
        raw = sample.column(name)
        values = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        type_name, cleaned = _observed_type(values, missing_tokens)
        if type_name.startswith("unsupported:"):
            raise ValueError(
                f"dataset {dataset!r}: column {name!r} has type {values.type}, which the lake "
                "does not store (use string, int, float, bool, date or timestamp)"
            )
        nulls = cleaned.null_count
        distinct = pc.count_distinct(cleaned).as_py() if rows else 0
        present = rows - nulls
        categorical = (
            type_name == "string"
            and present > 0
            and distinct <= CATEGORICAL_MAX_DISTINCT
            and distinct * CATEGORICAL_MIN_REPEAT <= present
        )
        pii = looks_like_pii(name)
        columns.append(
            ColumnSpec(
                name=name,
                type=type_name,
                nullable=nulls > 0 or rows == 0,
                categorical=categorical,
                pii=pii,
            )
        )
        if rows and nulls == 0 and distinct == rows and type_name in ("int64", "string"):
            rank = _key_rank(name, type_name, rows)
            if rank is not None and not pii:
                key_candidates.append((rank, position, name))
    key = [min(key_candidates)[2]] if key_candidates else []
    if model_of_ground_truth(dataset) is not None and INFERENCE_ID in sample.schema.names:
        # Labels for served predictions: the endpoint's id is the key whatever the first
        # sample shows (a repeated id there is a duplicate label to quarantine, and ids
        # that happen to look numeric must still join capture's string ids).
        key = [INFERENCE_ID]
        spec = next(c for c in columns if c.name == INFERENCE_ID)
        spec.type, spec.categorical, spec.pii = "string", False, False
    for spec in columns:
        if spec.name in key:
            spec.nullable = False
    return DatasetSchema(dataset=dataset, columns=columns, key=key, version=1, origin="inferred")


def _key_rank(name: str, type_name: str, rows: int) -> int | None:
    lowered = name.lower()
    if lowered == "id":
        return 0
    if lowered.endswith("_id") or lowered.startswith("id_"):
        return 1
    if lowered.endswith(("id", "key", "uuid", "guid")):
        return 2
    # Any unique int column could be a coincidence in a small sample.
    if type_name == "int64" and rows >= KEY_MIN_SAMPLE_ROWS:
        return 3
    return None


# -- drift -------------------------------------------------------------------------
def _compatible(observed: str, expected: str) -> bool:
    if observed == expected or expected == "string":
        return True
    return (observed, expected) in {("int64", "float64"), ("date", "timestamp")}


@dataclass
class _UnsupportedColumn(ColumnSpec):
    """A column of a type the lake cannot store (nested, binary): always drift."""

    observed: str = ""


def observe_schema(
    sample: pa.RecordBatch | pa.Table,
    expected: DatasetSchema,
    missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS,
) -> DatasetSchema:
    """The schema a batch actually shows, judged against the one expected.

    A column whose present values mostly (:data:`CONFORMING_SHARE`) cast to the
    expected type is observed as that type: its few bad values are row errors
    (``type_cast``), not a changed feed. Otherwise its strictly inferred type is
    reported, and :func:`compare_schema` calls it retyped.

    Args:
        sample: Raw columns of one batch.
        expected: The schema the data should follow.
        missing_tokens: Raw strings that mean "missing".

    Returns:
        A schema with the sample's columns and observed types.
    """
    columns: list[ColumnSpec] = []
    for name in sample.schema.names:
        raw = sample.column(name)
        values = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        if name in expected.names:
            spec = expected.column(name)
            if _conforms(values, spec.type, missing_tokens):
                columns.append(ColumnSpec(name=name, type=spec.type))
                continue
        type_name, _ = _observed_type(values, missing_tokens)
        if type_name.startswith("unsupported:"):
            columns.append(_UnsupportedColumn(name=name, type="string", observed=type_name))
        else:
            columns.append(ColumnSpec(name=name, type=type_name))
    return DatasetSchema(dataset=expected.dataset, columns=columns, origin="inferred")


def _conforms(values: pa.Array, type_name: str, missing_tokens: Sequence[str]) -> bool:
    if type_name == "string":
        return True
    if not is_string_type(values.type) and cast_typed(values, type_name) is not None:
        return True
    if not is_string_type(values.type) and arrow_to_schema_type(values.type) is None:
        return False
    cleaned = clean_strings(values, missing_tokens)
    present = len(cleaned) - cleaned.null_count
    if present == 0:
        return True
    _, failed = parse_values(cleaned, type_name)
    bad = pc.sum(pc.cast(failed, pa.int64())).as_py() or 0
    return (present - bad) >= CONFORMING_SHARE * present


@dataclass
class SchemaDrift:
    """Differences between the expected schema and what arrived.

    Attributes:
        dataset: Dataset name.
        added: Columns that arrived but are not in the schema.
        missing: Schema columns that did not arrive.
        retyped: ``{"column", "expected", "observed"}`` for each column whose values
            no longer fit the schema type.
        source: The file in which the drift was seen.
        expected_version: The schema version compared against.
    """

    dataset: str
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    retyped: list[dict[str, str]] = field(default_factory=list)
    source: str | None = None
    expected_version: int | None = None

    @property
    def is_drift(self) -> bool:
        """Whether anything differs."""
        return bool(self.added or self.missing or self.retyped)

    def describe(self) -> str:
        """One line per difference, naming each column and its types."""
        lines = [f"new column {c!r} (not in schema)" for c in self.added]
        lines += [f"missing column {c!r} (in schema, not in data)" for c in self.missing]
        lines += [
            f"column {r['column']!r} retyped: expected {r['expected']}, observed {r['observed']}"
            for r in self.retyped
        ]
        return "; ".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the ``schema_drift.json`` report body)."""
        return {
            "dataset": self.dataset,
            "is_drift": self.is_drift,
            "added": list(self.added),
            "missing": list(self.missing),
            "retyped": [dict(r) for r in self.retyped],
            "source": self.source,
            "expected_version": self.expected_version,
        }


def compare_schema(
    expected: DatasetSchema, observed: DatasetSchema, source: str | None = None
) -> SchemaDrift:
    """Compare the schema a batch shows with the expected one.

    Widening is not drift (ints arriving for a float column, dates for a timestamp
    column, anything for a string column); everything else that differs is.

    Args:
        expected: The declared or catalogued schema.
        observed: What arrived (see :func:`observe_schema`).
        source: Where it arrived from, for the report.

    Returns:
        The drift (check ``.is_drift``).
    """
    observed_names = observed.names
    retyped = []
    for spec in observed.columns:
        if spec.name not in expected.names:
            continue
        want = expected.column(spec.name).type
        seen = spec.observed if isinstance(spec, _UnsupportedColumn) else spec.type
        if isinstance(spec, _UnsupportedColumn) or not _compatible(seen, want):
            retyped.append({"column": spec.name, "expected": want, "observed": seen})
    return SchemaDrift(
        dataset=expected.dataset,
        added=[n for n in observed_names if n not in expected.names],
        missing=[n for n in expected.names if n not in observed_names],
        retyped=retyped,
        source=source,
        expected_version=expected.version,
    )


class SchemaDriftError(ValueError):
    """The data no longer matches the dataset's schema; the ingest stopped.

    Attributes:
        drift: The differences.
        report_uri: Where the ``schema_drift.json`` report was written.
    """

    def __init__(self, drift: SchemaDrift, report_uri: str | None = None) -> None:
        self.drift = drift
        self.report_uri = report_uri
        where = f" in {drift.source}" if drift.source else ""
        message = (
            f"schema drift in dataset {drift.dataset!r}{where} against schema version "
            f"{drift.expected_version}: {drift.describe()}. Nothing was loaded: a changed feed "
            "is not coerced silently. Fix the source, or declare the new schema in "
            "include/mlops/etl/declared.py."
        )
        if report_uri:
            message += f" Report: {report_uri}"
        super().__init__(message)
