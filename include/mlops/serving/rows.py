"""Validated request rows: the one shape that scoring, capture and shadow copies share.

Plain lists per column, no pandas: a request is usually one row, and the DataFrame is
built once per scored batch (:func:`include.mlops.serving.validation.frame_of`). The
capture writer takes these rows as they are, so importing it does not pull in the
request parser (and the registry and MLflow behind it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rows:
    """Validated rows: the signature columns the request carried, values coerced.

    Attributes:
        data: Column → one value per row (int/float/str/bool or ``None``).
        n_rows: Number of rows.
    """

    data: dict[str, list[Any]]
    n_rows: int

    def record(self, i: int) -> dict[str, Any]:
        """Row ``i`` as ``{column: value}`` (what capture stores as ``feature.<column>``)."""
        return {name: values[i] for name, values in self.data.items()}


def merged_columns(batch: Sequence[Rows]) -> dict[str, list[Any]]:
    """The columns of one or more requests, merged (a column missing in some → nulls)."""
    if len(batch) == 1:
        return batch[0].data
    names: dict[str, None] = {}
    for rows in batch:
        names.update(dict.fromkeys(rows.data))
    data: dict[str, list[Any]] = {name: [] for name in names}
    for rows in batch:
        for name, column in data.items():
            values = rows.data.get(name)
            column.extend(values if values is not None else [None] * rows.n_rows)
    return data


def merged_rows(batch: Sequence[Rows]) -> Rows:
    """One :class:`Rows` for several requests (:func:`merged_columns`)."""
    if len(batch) == 1:
        return batch[0]
    return Rows(merged_columns(batch), sum(rows.n_rows for rows in batch))
