"""What a batch transform is asked to do: the params, checked, and the errors it foresees.

The ``batch_transform`` DAG's params (docs/design.md "Param vocabulary"):

- ``model_name``, ``dataset``: ``^[a-z][a-z0-9_]*$``;
- ``version``: a version number, ``champion`` (the version the endpoint serves, the
  default), ``latest`` (the newest version whatever its status; it must still be
  Approved to be used) or any other alias of the registered model;
- ``partition``: a ``YYYY-MM-DD`` day, or empty / ``all`` for every catalogued
  partition of the dataset;
- ``explain``: also write each row's attributions (base value, output, one contribution
  per input column) beside its prediction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from include.mlops.etl.naming import validate_dataset_name, validate_partition
from include.mlops.vocabulary import ALL_PARTITIONS, CHAMPION

#: The default ``version``: what the endpoint serves.
DEFAULT_VERSION = CHAMPION
#: Rows decoded, scored and written at a time: memory holds about one batch (plus one
#: Parquet row group on each side), whatever the partition's size.
DEFAULT_BATCH_ROWS = 100_000
MIN_BATCH_ROWS = 100
MAX_BATCH_ROWS = 1_000_000
#: A version number, or an alias (MLflow allows letters, digits, ``_`` and ``-``).
VERSION_RE = re.compile(r"^(?:[1-9][0-9]*|[A-Za-z][A-Za-z0-9_-]*)$")


class BatchTransformError(Exception):
    """Base class of the batch transform's foreseen failures."""


class BatchRequestError(BatchTransformError, ValueError):
    """A param is invalid; the message names the field and the rule."""


class BatchInputError(BatchTransformError):
    """The dataset cannot be scored by this model (no catalog, unknown partition, a
    model input column missing from the data); the message says what and where."""


class RowCountMismatchError(BatchTransformError):
    """Rows written differ from rows read (never expected; the output is not published)."""


@dataclass(frozen=True)
class BatchRequest:
    """A checked batch transform request.

    Attributes:
        model_name: Registered model name.
        version: A version number (as text) or an alias (``champion``, ``latest``, ...).
        dataset: Curated dataset to score.
        partition: ``YYYY-MM-DD``, or ``""`` for every catalogued partition.
        batch_rows: Rows per streamed batch.
        explain: Also write each row's attributions beside its prediction.
    """

    model_name: str
    dataset: str
    version: str = DEFAULT_VERSION
    partition: str = ""
    batch_rows: int = DEFAULT_BATCH_ROWS
    explain: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BatchRequest:
        """Check the DAG's params (or a CLI's) and build the request.

        Args:
            params: ``model_name``, ``dataset``, optional ``version`` (default
                ``champion``), ``partition`` (default all) and ``batch_rows``.

        Returns:
            The request.

        Raises:
            BatchRequestError: Naming the first invalid field and its rule.
        """
        try:
            model_name = validate_dataset_name(params.get("model_name"), field="model_name")  # type: ignore[arg-type]
            dataset = validate_dataset_name(params.get("dataset"), field="dataset")  # type: ignore[arg-type]
        except ValueError as exc:
            raise BatchRequestError(str(exc)) from exc
        return cls(
            model_name=model_name,
            dataset=dataset,
            version=_check_version(params.get("version", DEFAULT_VERSION)),
            partition=_check_partition(params.get("partition", "")),
            batch_rows=_check_batch_rows(params.get("batch_rows", DEFAULT_BATCH_ROWS)),
            explain=_check_explain(params.get("explain", False)),
        )

    @property
    def partitions(self) -> list[str] | None:
        """The one partition asked for, or ``None`` for every catalogued one."""
        return [self.partition] if self.partition else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (an XCom)."""
        return asdict(self)


def _check_version(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_VERSION
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BatchRequestError(
            f"version {value!r} is invalid: give a version number, 'champion', 'latest' "
            "or another alias of the model"
        )
    text = str(value).strip()
    if isinstance(value, int) and value < 1:
        raise BatchRequestError(f"version {value!r} is invalid: version numbers start at 1")
    if not VERSION_RE.match(text):
        raise BatchRequestError(
            f"version {value!r} is invalid: give a version number (1, 2, ...), 'champion', "
            "'latest' or an alias (letters, digits, '_' and '-', starting with a letter)"
        )
    return text


def _check_partition(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BatchRequestError(
            f"partition {value!r} is invalid: expected YYYY-MM-DD, or empty/'all' for every "
            "partition"
        )
    text = value.strip()
    if text == "" or text.lower() == ALL_PARTITIONS:
        return ""
    try:
        return validate_partition(text)
    except ValueError as exc:
        raise BatchRequestError(f"{exc} (or empty/'all' for every partition)") from exc


def _check_batch_rows(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BatchRequestError(f"batch_rows {value!r} is invalid: expected a whole number")
    if not MIN_BATCH_ROWS <= value <= MAX_BATCH_ROWS:
        raise BatchRequestError(
            f"batch_rows {value} is invalid: expected {MIN_BATCH_ROWS:,}..{MAX_BATCH_ROWS:,}"
        )
    return value


def _check_explain(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BatchRequestError(f"explain {value!r} is invalid: expected true or false")
    return value
