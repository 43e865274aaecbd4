"""Offered requests → one capture table (Arrow), on the capture writer's flush thread.

:class:`~include.mlops.serving.capture.CaptureWriter` keeps what
:meth:`~include.mlops.serving.capture.CaptureWriter.offer` was given as
:class:`OfferedRows` (references, no copy) and hands a flush's worth to
:func:`offered_to_table`, which builds a table in the capture zone's column layout
(:mod:`include.mlops.lake.capture`). Consecutive requests with the same columns are
converted together: their lists are extended into one list per column and turned into
Arrow once, not once per request (most requests are a single row, and a per-request
conversion cost several times more). A request that cannot be converted costs only its
own rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from include.mlops.lake.capture import EPOCH, FEATURE_PREFIX, ONE_US, TIMESTAMP, unify_tables
from include.mlops.serving.rows import Rows

log = logging.getLogger(__name__)

_ROWS = "__capture_rows__"  # placeholder column of a featureless segment, never written


@dataclass(slots=True)
class OfferedRows:
    """One request's rows as offered to the writer, converted later on its thread.

    Attributes:
        rows: The validated feature rows (``feature.<name>`` per column).
        inference_ids: One id per row.
        model_version: The version that answered.
        variant: ``champion``, ``canary`` or ``shadow``.
        predictions: One prediction per row.
        probabilities: One probability per row, or ``None`` (regression).
        stamped_us: When it was offered (epoch µs): ``captured_at`` when none is given.
        captured_at: When it was answered, if the caller said.
        caller: The name of the API key the request came with.
    """

    rows: Rows
    inference_ids: Sequence[Any] | np.ndarray
    model_version: int
    variant: str | None
    predictions: Sequence[Any] | np.ndarray
    probabilities: Sequence[Any] | np.ndarray | None
    stamped_us: int
    captured_at: datetime | None = None
    caller: str | None = None

    def __post_init__(self) -> None:
        rows = self.rows.n_rows
        if self.inference_ids is None or self.predictions is None or self.model_version is None:
            raise ValueError("capture rows need inference_ids, model_version and predictions")
        if len(self.inference_ids) != rows or len(self.predictions) != rows:
            raise ValueError(
                f"{rows} rows but {len(self.inference_ids)} inference ids and "
                f"{len(self.predictions)} predictions"
            )


@dataclass
class _Segment:
    """Converted rows of one flush: meta values as lists, features as tables."""

    inference_id: list[Any] = field(default_factory=list)
    captured_us: list[int] = field(default_factory=list)
    model_version: list[Any] = field(default_factory=list)
    variant: list[Any] = field(default_factory=list)
    caller: list[Any] = field(default_factory=list)
    prediction: list[Any] = field(default_factory=list)
    probability: list[Any] = field(default_factory=list)
    features: list[pa.Table] = field(default_factory=list)


def offered_to_table(offered: list[OfferedRows], endpoint: str) -> tuple[pa.Table, int]:
    """One capture table from offered requests (in offer order), and the rows rejected.

    Args:
        offered: What the writer buffered since its last flush.
        endpoint: The endpoint name (the ``endpoint`` column).

    Returns:
        The table (meta columns, then ``feature.<name>`` columns) and how many offered
        rows could not be converted (logged, left out).
    """
    seg = _Segment()
    errors: list[str] = []
    bad_rows = 0
    run: list[OfferedRows] = []
    for item in offered:
        if run and tuple(item.rows.data) != tuple(run[0].rows.data):
            bad_rows += _add_run(seg, run, errors)
            run = []
        run.append(item)
    if run:
        bad_rows += _add_run(seg, run, errors)
    if errors:
        log.error(
            "capture of %s: %d rows dropped, cannot convert them (%d requests); first error: %s",
            endpoint,
            bad_rows,
            len(errors),
            errors[0],
        )
    rows = len(seg.inference_id)
    features = unify_tables(seg.features) if seg.features else pa.table({_ROWS: pa.nulls(0)})
    if features.num_rows != rows:
        raise ValueError(f"capture rows misaligned: {rows} rows, {features.num_rows} feature rows")
    columns: dict[str, pa.Array] = {
        "inference_id": pa.array(
            [None if v is None else str(v) for v in seg.inference_id], pa.string()
        ),
        "captured_at": pa.array(seg.captured_us, pa.int64()).cast(TIMESTAMP),
        "endpoint": pa.array([endpoint] * rows, pa.string()),
        "model_version": pa.array(seg.model_version, pa.int64()),
        "variant": pa.array(seg.variant, pa.string()),
        "prediction": _prediction_array(seg.prediction, seg.probability),
        "probability": pa.array(seg.probability, pa.float64(), from_pandas=True),
        "caller": pa.array(seg.caller, pa.string()),
    }
    for name in features.column_names:
        if name == _ROWS:
            continue
        columns[name] = features[name].combine_chunks()
    return pa.table(columns), bad_rows


def _add_run(seg: _Segment, run: list[OfferedRows], errors: list[str]) -> int:
    """Requests with the same columns: one list per column and one Arrow conversion."""
    try:
        return _add_run_unchecked(seg, run)
    except Exception as exc:
        if len(run) > 1:  # find the culprit: convert one by one
            return sum(_add_run(seg, [item], errors) for item in run)
        errors.append(f"{type(exc).__name__}: {exc}")
        return run[0].rows.n_rows


def _add_run_unchecked(seg: _Segment, run: list[OfferedRows]) -> int:
    # Lists are extended, no pandas at all: pandas' per-frame cost dominated capture at
    # thousands of requests a second.
    merged: dict[str, list[Any]] = {name: [] for name in run[0].rows.data}
    for item in run:
        data = item.rows.data
        for name, values in merged.items():
            values.extend(data[name])
    rows = sum(item.rows.n_rows for item in run)
    ids: list[Any] = []
    stamps: list[int] = []
    versions: list[Any] = []
    variants: list[Any] = []
    callers: list[Any] = []
    preds: list[Any] = []
    probas: list[Any] = []
    for item in run:
        n = item.rows.n_rows
        ids += _as_list(item.inference_ids)
        versions += [int(item.model_version)] * n
        variants += [item.variant] * n
        callers += [item.caller] * n
        proba = item.probabilities
        item_probas = [None] * n if proba is None else [_float_or_none(v) for v in _as_list(proba)]
        probas += item_probas
        preds += [
            _prediction_value(p, q is not None)
            for p, q in zip(_as_list(item.predictions), item_probas, strict=True)
        ]
        given = item.captured_at
        stamps += [item.stamped_us if given is None else _epoch_us(given)] * n
    features = _columns_table(merged, rows)
    if not (len(ids) == len(stamps) == len(preds) == len(probas) == features.num_rows == rows):
        raise ValueError(f"capture rows misaligned: {len(ids)} ids for {rows} rows")
    seg.inference_id += ids
    seg.captured_us += stamps
    seg.model_version += versions
    seg.variant += variants
    seg.caller += callers
    seg.prediction += preds
    seg.probability += probas
    seg.features.append(features)
    return 0


def _columns_table(data: Mapping[str, list[Any]], rows: int) -> pa.Table:
    """Feature lists as Arrow, named ``feature.<name>`` (types inferred per column)."""
    if not data:
        return pa.table({_ROWS: pa.nulls(rows)})
    arrays = [_arrow_column(values) for values in data.values()]
    arrays = [a.cast(pa.string()) if pa.types.is_large_string(a.type) else a for a in arrays]
    names = [n if n.startswith(FEATURE_PREFIX) else FEATURE_PREFIX + n for n in map(str, data)]
    return pa.table(dict(zip(names, arrays, strict=True)))


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        return list(values.tolist())
    return list(values)


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and value != value)
        and value is not pd.NaT
    )


def _float_or_none(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if number != number else number


def category_name(value: Any) -> str:
    """A class label as the drift baseline writes it (``3``, ``3.0``, ``"3"`` → ``"3"``).

    Delegates to :func:`include.mlops.evaluation.baseline.category_name`, loaded by
    :class:`~include.mlops.serving.capture.CaptureWriter` when it is built (that module
    pulls in scikit-learn, which readers of capture do not need, and importing at
    interpreter exit fails).
    """
    return load_category_name()(value)


_category_name: Callable[[Any], str] | None = None


def load_category_name() -> Callable[[Any], str]:
    """The baseline's ``category_name``, imported once (call it before interpreter exit)."""
    global _category_name
    if _category_name is None:
        from include.mlops.evaluation.baseline import category_name as baseline_category_name

        _category_name = baseline_category_name
    return _category_name


def _prediction_value(value: Any, classifier: bool) -> Any:
    """Classifier labels as the baseline's category text; regression values as floats."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if classifier or isinstance(value, str):
        return category_name(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return category_name(value)


def _prediction_array(values: list[Any], probabilities: list[Any]) -> pa.Array:
    if any(isinstance(v, str) for v in values) or (
        values and all(v is None for v in values) and any(p is not None for p in probabilities)
    ):
        return pa.array([None if v is None else category_name(v) for v in values], pa.string())
    if not values or all(v is None for v in values):
        return pa.array(values, pa.string())
    return pa.array(values, pa.float64())


def _arrow_column(values: Sequence[Any] | np.ndarray) -> pa.Array:
    """Values as received; a column mixing text and numbers is stored as text."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(
            [None if not _present(v) or v is pd.NA else str(v) for v in values], pa.string()
        )


def _epoch_us(value: datetime | pd.Timestamp | np.datetime64 | str) -> int:
    """Microseconds since the epoch (naive values are UTC)."""
    if isinstance(value, np.datetime64 | str):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        stamp = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
        return int(stamp.value // 1000)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // ONE_US
