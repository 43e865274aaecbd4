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
    """One real run of ``dag`` (in this process, main thread); returns the DagRun."""
    from airflow.sdk import timezone

    kwargs.setdefault("logical_date", timezone.utcnow())
    return dag.test(run_conf=conf, **kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished run."""
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
