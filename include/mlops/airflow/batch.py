"""Task bodies of ``batch_transform``: params in, one call into ``include.mlops.batch``, refs out.

Foreseen conditions fail the task without retries and with the domain error's message
(a bad param naming the field, a version that is not Approved, an unknown partition,
a dataset lacking a model input column, a model whose files fail their checksum);
an unreachable store or registry raises as is, so Airflow's retries take over.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.mlops.airflow.hooks import LakeHook

log = logging.getLogger(__name__)


def _foreseen() -> tuple[type[Exception], ...]:
    from include.mlops.batch import BatchTransformError
    from include.mlops.registry import RegistryError

    # RegistryError covers ModelNotFound, VersionNotFound, NotApproved, ArtifactChecksum.
    return (BatchTransformError, RegistryError)


def plan_transform(params: dict[str, Any], *, run_id: str) -> dict:
    """Check the params, resolve the version (Approved only) and the partitions.

    Returns:
        The :class:`~include.mlops.batch.BatchPlan` as a dict (a small XCom).
    """
    from include.mlops.batch import BatchRequest, plan_batch_transform

    try:
        request = BatchRequest.from_params(params)
    except _foreseen() as exc:
        raise AirflowFailException(str(exc)) from exc
    hook = LakeHook()
    lake = hook.get_lake()
    try:
        plan = plan_batch_transform(lake, hook.get_mlflow_client(), request, run_id=run_id)
    except _foreseen() as exc:
        raise AirflowFailException(str(exc)) from exc
    log.info(
        "plan: %s v%s (asked %r) on %s, %d partition(s) %s, %d catalogued rows, ids %s -> %s",
        plan.model_name, plan.version, plan.requested_version, plan.dataset,
        len(plan.partitions), plan.partitions if len(plan.partitions) <= 5 else
        f"{plan.partitions[0]}..{plan.partitions[-1]}", plan.total_rows, plan.id_columns,
        lake.uri(plan.output_prefix),
    )  # fmt: skip
    return plan.to_dict()


def transform(plan: dict[str, Any]) -> str:
    """Score every planned partition; returns the manifest's URI."""
    from include.mlops.batch import BatchPlan, run_batch_transform

    hook = LakeHook()
    try:
        manifest = run_batch_transform(
            hook.get_lake(), hook.get_mlflow_client(), BatchPlan.from_dict(plan)
        )
    except _foreseen() as exc:
        raise AirflowFailException(str(exc)) from exc
    return manifest.manifest_uri
