"""Helpers for real DAG runs (``dag.test()``) against the session's SeaweedFS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dags(airflow_db: Path, s3_server: Any) -> dict[str, Any]:
    """Every DAG, parsed once, with the metadata DB migrated and S3 configured."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def run_dag(dag: Any, conf: dict[str, Any], **kwargs: Any) -> Any:
    """One real run of ``dag`` (in this process, main thread); returns the DagRun.

    Airflow merges a run's conf into the DAG's own ``Param`` objects (``Param.resolve``
    keeps the value it validated). A worker parses the DAG afresh for every task, so
    that never outlives a run there; here the DAG object is shared by the session, so
    the defaults are put back, or a param one run set would leak into the next run that
    leaves it out.
    """
    from airflow.sdk import timezone

    params = {id(p): p for ps in [dag.params, *(t.params for t in dag.tasks)] for p in ps.values()}
    defaults = {key: param.value for key, param in params.items()}
    kwargs.setdefault("logical_date", timezone.utcnow())
    try:
        return dag.test(run_conf=conf, **kwargs)
    finally:
        for key, param in params.items():
            param.value = defaults[key]


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished run."""
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
