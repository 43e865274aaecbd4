"""Validate: judge every value of a batch against the schema, keep the good rows.

A row is rejected with *all* its reasons, joined with ``;`` in column order:

- ``type_cast:<col>``         a present value that does not parse as the column type
- ``missing_required:<col>``  no value (or a missing token) in a required column
- ``out_of_domain:<col>``     a value outside ``allowed`` or ``[min, max]``
- ``duplicate_key``           the key was already kept earlier in this ingest
  (the first occurrence that is otherwise valid is kept)

Rows that pass become the curated batch: typed, in schema order, PII masked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.mlops.etl.schema import ColumnSpec, DatasetSchema
from include.mlops.etl.transform import (
    ARROW_TYPES,
    cast_typed,
    fast_cast,
    is_string_type,
    map_missing,
    mask_pii,
    normalize_strings,
    parse_values,
    to_strings,
)

TYPE_CAST = "type_cast"
MISSING_REQUIRED = "missing_required"
OUT_OF_DOMAIN = "out_of_domain"
DUPLICATE_KEY = "duplicate_key"
MALFORMED_ROW = "malformed_row"
INVALID_ENCODING = "invalid_encoding"


class KeyRegistry:
    """Keys kept so far in one ingest, to find duplicates across batches.

    Keys are 64-bit numbers (the int key itself, or a hash of string/compound keys)
    held in a few sorted numpy runs that merge like a log-structured tree: 8 bytes a
    key, lookups by binary search, amortized O(n log n) inserts. A Python set would
    take ~10x the memory on a 100M-row file.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self.size = 0

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``keys`` were added before."""
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, keys)
            pos[pos == len(run)] = len(run) - 1
            found |= run[pos] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        """Remember ``keys`` (callers pass keys not yet present, without repeats)."""
        if not len(keys):
            return
        self._runs.append(np.sort(keys))
        self.size += len(keys)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
            self._runs.append(merged)


@dataclass
class ValidatedBatch:
    """The outcome of validating one batch.

    Attributes:
        curated: The accepted rows: typed, in schema order, PII masked.
        rejected_rows: Indices (into the raw batch) of the rejected rows.
        reasons: For each rejected row, its reasons joined with ``;``.
        reason_counts: How many rows carry each single reason.
    """

    curated: pa.RecordBatch
    rejected_rows: np.ndarray
    reasons: list[str]
    reason_counts: Counter[str] = field(default_factory=Counter)


def clean_column(raw: pa.Array, spec: ColumnSpec, missing_tokens: Sequence[str]) -> pa.Array:
    """Raw values → normalized strings with missing tokens as null."""
    values = normalize_strings(to_strings(raw), nfc=spec.type == "string")
    return map_missing(values, missing_tokens)


def cast_column(
    raw: pa.Array, spec: ColumnSpec, missing_tokens: Sequence[str]
) -> tuple[pa.Array, pa.Array]:
    """Cast one raw column to its schema type.

    Args:
        raw: Raw values (strings, or typed from Parquet).
        spec: The column.
        missing_tokens: Raw strings that mean "missing".

    Returns:
        The typed array and a boolean mask of ``type_cast`` failures.
    """
    if not is_string_type(raw.type) and not pa.types.is_null(raw.type):
        direct = cast_typed(raw, spec.type)
        if direct is not None:
            return direct, pa.repeat(False, len(raw))
    elif pa.types.is_string(raw.type):
        fast = fast_cast(raw, spec.type, missing_tokens)
        if fast is not None:
            return fast, pa.repeat(False, len(raw))
    return parse_values(clean_column(raw, spec, missing_tokens), spec.type)


def _domain_values(spec: ColumnSpec) -> pa.Array:
    target = ARROW_TYPES[spec.type]
    allowed = pa.array([str(v) if spec.type == "string" else v for v in spec.allowed or []])
    try:
        return pc.cast(allowed, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed, _ = parse_values(to_strings(allowed), spec.type)
        return typed


def out_of_domain(typed: pa.Array, spec: ColumnSpec) -> pa.Array:
    """Boolean mask of present values outside ``allowed`` or ``[min, max]``."""
    bad = pa.repeat(False, len(typed))
    if spec.allowed is not None:
        # is_in says False for a null; a missing value is missing_required's business.
        outside = pc.and_(
            pc.is_valid(typed), pc.invert(pc.is_in(typed, value_set=_domain_values(spec)))
        )
        bad = pc.or_(bad, outside)
    if spec.min is not None:
        bad = pc.or_(bad, pc.less(typed, pa.scalar(spec.min, pa.float64())))
    if spec.max is not None:
        bad = pc.or_(bad, pc.greater(typed, pa.scalar(spec.max, pa.float64())))
    return pc.fill_null(bad, False)


def _mask(values: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def key_numbers(columns: list[pa.Array], types: list[str]) -> np.ndarray:
    """64-bit identities of key values: the int itself, else a hash of the value(s).

    A 64-bit hash makes a false duplicate among 100 million distinct keys about a
    1-in-3,600 event, and a false duplicate is quarantined (visible), never lost.
    """
    if len(columns) == 1 and types[0] == "int64":
        return np.asarray(pc.fill_null(columns[0], 0).to_numpy(zero_copy_only=False), np.int64)
    import pandas as pd

    frame = pa.table({str(i): c for i, c in enumerate(columns)}).to_pandas()
    return np.asarray(pd.util.hash_pandas_object(frame, index=False).to_numpy(), dtype=np.uint64)


def row_checks(
    schema: DatasetSchema,
    typed_columns: dict[str, pa.Array],
    failed_masks: dict[str, np.ndarray],
) -> list[tuple[str, np.ndarray]]:
    """The row rules of a schema, each as a reason label and the mask of rows it rejects.

    ``type_cast:<col>``, ``missing_required:<col>`` and ``out_of_domain:<col>`` per
    column, in column order; rules no row breaks are left out. The duplicate-key rule
    needs the keys of a whole ingest and is :func:`validate_batch`'s.

    Args:
        schema: The dataset schema.
        typed_columns: Every schema column, already in its type (a failed cast is null).
        failed_masks: Per column, which present values did not convert to the type.

    Returns:
        ``(label, mask)`` pairs.
    """
    checks: list[tuple[str, np.ndarray]] = []
    for spec in schema.columns:
        typed = typed_columns[spec.name]
        failed_mask = failed_masks[spec.name]
        checks.append((f"{TYPE_CAST}:{spec.name}", failed_mask))
        if schema.is_required(spec):
            missing = _mask(pc.is_null(typed)) & ~failed_mask
            checks.append((f"{MISSING_REQUIRED}:{spec.name}", missing))
        if spec.allowed is not None or spec.min is not None or spec.max is not None:
            checks.append((f"{OUT_OF_DOMAIN}:{spec.name}", _mask(out_of_domain(typed, spec))))
    return [(label, mask) for label, mask in checks if mask.any()]


def rejection_reasons(
    checks: Sequence[tuple[str, np.ndarray]], rows: int
) -> tuple[np.ndarray, list[str], Counter[str]]:
    """The rows ``checks`` reject, each with all its reasons joined with ``;``.

    Args:
        checks: ``(label, mask)`` pairs (see :func:`row_checks`).
        rows: Rows in the batch.

    Returns:
        The rejected row indices, their reasons, and how many rows carry each label.
    """
    bad = np.zeros(rows, dtype=bool)
    for _, mask in checks:
        bad |= mask
    rejected_rows = np.flatnonzero(bad)
    reasons_of: list[list[str]] = [[] for _ in rejected_rows]
    slot = np.full(rows, -1, dtype=np.int64)
    slot[rejected_rows] = np.arange(len(rejected_rows))
    counts: Counter[str] = Counter()
    for label, mask in checks:
        hits = np.flatnonzero(mask)
        counts[label] += len(hits)
        for row in slot[hits]:
            reasons_of[row].append(label)
    return rejected_rows, [";".join(r) for r in reasons_of], counts


def validate_batch(
    data: pa.RecordBatch,
    schema: DatasetSchema,
    *,
    missing_tokens: Sequence[str],
    pii_salt: str,
    keys: KeyRegistry | None = None,
) -> ValidatedBatch:
    """Check one raw batch against the schema and build its curated rows.

    Args:
        data: Raw columns (a schema column absent from the batch counts as all missing).
        schema: The dataset schema.
        missing_tokens: Raw strings that mean "missing".
        pii_salt: Salt for hashing PII columns.
        keys: Keys kept by earlier batches of this ingest (updated in place);
            ``None`` skips the duplicate check.

    Returns:
        The curated rows, the rejected row indices and their reasons.
    """
    rows = data.num_rows
    typed_columns: dict[str, pa.Array] = {}
    failed_masks: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        raw: Any = data.column(spec.name) if spec.name in data.schema.names else None
        if raw is None:
            raw = pa.nulls(rows, pa.string())
        typed, failed = cast_column(raw, spec, missing_tokens)
        typed_columns[spec.name] = typed
        failed_masks[spec.name] = _mask(failed)
    checks = row_checks(schema, typed_columns, failed_masks)
    bad = np.zeros(rows, dtype=bool)
    for _, mask in checks:
        bad |= mask

    if keys is not None and schema.key:
        duplicate = _duplicates(typed_columns, schema, bad, keys)
        if duplicate.any():
            checks.append((DUPLICATE_KEY, duplicate))
            bad |= duplicate

    rejected_rows, reasons, counts = rejection_reasons(checks, rows)
    keep = None if not len(rejected_rows) else pa.array(~bad)
    arrays = []
    for spec in schema.columns:
        column = typed_columns[spec.name]
        if keep is not None:
            column = pc.filter(column, keep)
        if spec.pii:
            column = mask_pii(column, pii_salt)
        arrays.append(column)
    curated = pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema())
    return ValidatedBatch(
        curated=curated,
        rejected_rows=rejected_rows,
        reasons=reasons,
        reason_counts=counts,
    )


def _duplicates(
    typed_columns: dict[str, pa.Array],
    schema: DatasetSchema,
    bad: np.ndarray,
    keys: KeyRegistry,
) -> np.ndarray:
    """Rows whose key was kept before: in earlier batches, or earlier in this one."""
    key_columns = [typed_columns[k] for k in schema.key]
    has_key = np.ones(len(bad), dtype=bool)
    for column in key_columns:
        has_key &= _mask(pc.is_valid(column))
    numbers = key_numbers(key_columns, [schema.column(k).type for k in schema.key])
    duplicate = np.zeros(len(bad), dtype=bool)
    duplicate[has_key] = keys.contains(numbers[has_key])
    # Among otherwise-valid rows with a new key, the first occurrence is kept.
    candidates = np.flatnonzero(~bad & has_key & ~duplicate)
    _, first = np.unique(numbers[candidates], return_index=True)
    kept = candidates[np.sort(first)]
    later = np.ones(len(candidates), dtype=bool)
    later[first] = False
    duplicate[candidates[later]] = True
    # A row rejected for other reasons also carries duplicate_key when its key is kept.
    others = np.flatnonzero(bad & has_key & ~duplicate)
    if len(others) and len(kept):
        duplicate[others] = np.isin(numbers[others], numbers[kept])
    keys.add(numbers[kept])
    return duplicate
