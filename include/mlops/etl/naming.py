"""Names and keys every ETL step agrees on (one place, so the DAG, the CLI and the lake match)."""

from __future__ import annotations

import re

from include.mlops.vocabulary import FORMATS, NAME_PATTERN, NAME_RE, PARTITION_RE

PART_FILE = "part-00000.parquet"


def validate_dataset_name(dataset: str, field: str = "dataset") -> str:
    """Check a dataset name against :data:`~include.mlops.vocabulary.NAME_PATTERN`.

    Args:
        dataset: The name to check.
        field: The param name to cite in the error.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: Naming the field and the rule when the name does not match.
    """
    if not isinstance(dataset, str) or not NAME_RE.match(dataset):
        raise ValueError(
            f"{field} {dataset!r} is invalid: use lower-case letters, digits and '_', "
            f"starting with a letter ({NAME_PATTERN})"
        )
    return dataset


def validate_partition(partition: str, field: str = "partition") -> str:
    """Check a partition is a real calendar day written ``YYYY-MM-DD``.

    Args:
        partition: The partition to check.
        field: The param name to cite in the error.

    Returns:
        The partition, unchanged.

    Raises:
        ValueError: Naming the field when the value is not a valid ``YYYY-MM-DD`` day.
    """
    import datetime as dt

    if not isinstance(partition, str) or not PARTITION_RE.match(partition):
        raise ValueError(f"{field} {partition!r} is invalid: expected YYYY-MM-DD")
    try:
        dt.date.fromisoformat(partition)
    except ValueError as exc:
        raise ValueError(f"{field} {partition!r} is not a calendar day: {exc}") from exc
    return partition


def validate_format(fmt: str, field: str = "format") -> str:
    """Check a source format is one of ``auto``, ``csv``, ``jsonl``, ``parquet``."""
    if fmt not in FORMATS:
        raise ValueError(f"{field} {fmt!r} is invalid: expected one of {', '.join(FORMATS)}")
    return fmt


def curated_key(dataset: str, partition: str) -> str:
    """Lake key of a dataset's curated partition file."""
    return f"curated/{dataset}/dt={partition}/{PART_FILE}"


def quarantine_key(dataset: str, partition: str) -> str:
    """Lake key of a dataset partition's rejected rows."""
    return f"quarantine/{dataset}/dt={partition}/{PART_FILE}"


def catalog_key(dataset: str) -> str:
    """Lake key of a dataset's catalog entry (schema, partitions, snapshot id)."""
    return f"catalog/{dataset}/schema.json"


#: Characters kept in run ids used as key parts; Airflow's ``:`` and ``+`` are mangled
#: by some S3 servers and browsers, so they become ``_``.
UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._=-]+")


def safe_run_id(run_id: str) -> str:
    """A run id usable as one lake key part (``manual__2026-11-01T00_00_00_00_00``)."""
    if not run_id or "/" in run_id:
        raise ValueError(f"run_id {run_id!r} is invalid: it must be non-empty without '/'")
    return UNSAFE_KEY_CHARS.sub("_", run_id)


def quality_report_prefix(dataset: str, run_id: str) -> str:
    """Lake prefix of one run's quality reports: schema drift, GX results, Data Docs."""
    return f"reports/quality/{dataset}/{safe_run_id(run_id)}"


# -- labels and labelled traffic (issue 13): one naming rule for every caller ----------------
#: The id the endpoint returns with each prediction; ground truth and capture join on it.
INFERENCE_ID = "inference_id"
#: ``<model>_ground_truth``: labels for a model's served predictions, landed by lake_ingest.
GROUND_TRUTH_SUFFIX = "_ground_truth"
#: ``<model>_feedback``: the model's labelled traffic (capture joined with ground truth).
FEEDBACK_SUFFIX = "_feedback"


def ground_truth_dataset(model_name: str) -> str:
    """The dataset holding a model's labels: ``<model_name>_ground_truth``."""
    return validate_dataset_name(f"{model_name}{GROUND_TRUTH_SUFFIX}", field="model_name")


def feedback_dataset(model_name: str) -> str:
    """The dataset holding a model's labelled traffic: ``<model_name>_feedback``."""
    return validate_dataset_name(f"{model_name}{FEEDBACK_SUFFIX}", field="model_name")


def model_of_ground_truth(dataset: str) -> str | None:
    """The model a ``<model>_ground_truth`` dataset labels, or ``None`` for any other dataset."""
    if dataset.endswith(GROUND_TRUTH_SUFFIX) and len(dataset) > len(GROUND_TRUTH_SUFFIX):
        return dataset[: -len(GROUND_TRUTH_SUFFIX)]
    return None


def is_derived_from_traffic(dataset: str) -> bool:
    """Whether a dataset holds labels or labelled traffic (``*_ground_truth``, ``*_feedback``)."""
    return dataset.endswith((GROUND_TRUTH_SUFFIX, FEEDBACK_SUFFIX))
