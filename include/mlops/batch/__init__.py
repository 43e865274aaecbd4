"""Batch transform: score curated lake partitions with a registered, Approved version.

No Airflow here; the ``batch_transform`` DAG calls :func:`plan_batch_transform` (``plan``:
the plan, output keys and columns) and :func:`run_batch_transform` (``transform``:
streaming the partitions through the scorer, the manifest) through
``include.mlops.airflow.batch``.
"""

from include.mlops.batch.plan import (
    MANIFEST_FILE,
    ROW_NUMBER_COLUMN,
    BatchPlan,
    class_probability_columns,
    manifest_key,
    output_schema,
    plan_batch_transform,
    predictions_key,
    predictions_prefix,
)
from include.mlops.batch.request import (
    ALL_PARTITIONS,
    DEFAULT_BATCH_ROWS,
    DEFAULT_VERSION,
    BatchInputError,
    BatchRequest,
    BatchRequestError,
    BatchTransformError,
    RowCountMismatchError,
)
from include.mlops.batch.transform import (
    SCORING_THREADS,
    BatchManifest,
    PartitionResult,
    batch_transform,
    load_planned_scorer,
    one_thread_per_predict,
    run_batch_transform,
    score_partitions,
    transform_partition,
)

__all__ = [
    "ALL_PARTITIONS",
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_VERSION",
    "MANIFEST_FILE",
    "ROW_NUMBER_COLUMN",
    "SCORING_THREADS",
    "BatchInputError",
    "BatchManifest",
    "BatchPlan",
    "BatchRequest",
    "BatchRequestError",
    "BatchTransformError",
    "PartitionResult",
    "RowCountMismatchError",
    "batch_transform",
    "class_probability_columns",
    "load_planned_scorer",
    "manifest_key",
    "one_thread_per_predict",
    "output_schema",
    "plan_batch_transform",
    "predictions_key",
    "predictions_prefix",
    "run_batch_transform",
    "score_partitions",
    "transform_partition",
]
