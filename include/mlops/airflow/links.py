"""Operator extra links: each task's report, MLflow run and platform view, one click away.

Registered by the plugin as *global* links, so DAG files stay as they are: Airflow's
API server asks each link for a task instance's URL, and the link answers from what the
run's tasks already returned (their XComs) and the run's conf, by the rules in
:func:`include.mlops.ui.links.task_links`. A link that does not apply returns ``""``
and the UI hides it.

The API server calls every link of a task in turn; the run's XComs are read once and
kept for a few seconds, so a task page costs one query, not five.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from airflow.sdk import BaseOperatorLink

from include.mlops.ui.links import (
    LAKE_VIEW,
    MLFLOW_RUN,
    MODEL_VIEW,
    MONITORING_VIEW,
    PREPARED,
    REPORT,
    RETURN,
    TUNING,
    LinkTargets,
    TaskRun,
    task_links,
)

log = logging.getLogger(__name__)

#: Seconds a run's XComs are reused across the links of one page.
CACHE_SECONDS = 5.0
_XCOM_KEYS = (RETURN, PREPARED, TUNING)
_cache: dict[tuple[str, str], tuple[float, dict[tuple[str, str, int], Any], dict[str, Any]]] = {}
_lock = threading.Lock()


def _decode(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def run_state(dag_id: str, run_id: str) -> tuple[dict[tuple[str, str, int], Any], dict[str, Any]]:
    """A run's XComs ``(task_id, key, map_index) → value`` and its conf."""
    key = (dag_id, run_id)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.map_index, XComModel.value).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.key.in_(_XCOM_KEYS),
            )
        ).all()
        conf = session.scalar(
            select(DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
    xcoms = {(task_id, xkey, index): _decode(value) for task_id, xkey, index, value in rows}
    conf = conf if isinstance(conf, dict) else {}
    with _lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = (now, xcoms, conf)
    return xcoms, conf


def targets() -> LinkTargets:
    """Where links point in this deployment."""
    from include.mlops.airflow.ui import app_base_path

    return LinkTargets.from_env(app_base_path())


def links_for(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> dict[str, Any]:
    """Every platform link of one task instance (name → URL or ``None``)."""
    xcoms, conf = run_state(dag_id, run_id)
    task = TaskRun(dag_id, task_id, run_id, xcoms=xcoms, conf=conf, map_index=map_index)
    return task_links(task, targets())


class _PlatformLink(BaseOperatorLink):
    """A link answered by :func:`links_for`; subclasses only name it."""

    name = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            url = links_for(ti_key.dag_id, ti_key.task_id, ti_key.run_id, ti_key.map_index)
        except Exception:  # a broken link must never break the task page
            log.exception("cannot build the %r link for %s", self.name, ti_key)
            return ""
        return url.get(self.name) or ""


class ReportLink(_PlatformLink):
    """The report the task wrote (Data Docs, evaluation report, monitoring report)."""

    name = REPORT


class MlflowRunLink(_PlatformLink):
    """The task's MLflow run (tuning run, the registered version's run)."""

    name = MLFLOW_RUN


class ModelViewLink(_PlatformLink):
    """The model (and version) in the Models view."""

    name = MODEL_VIEW


class LakeViewLink(_PlatformLink):
    """The dataset in the Lake view."""

    name = LAKE_VIEW


class MonitoringViewLink(_PlatformLink):
    """The model in the Monitoring view."""

    name = MONITORING_VIEW


#: The global extra links the plugin registers.
GLOBAL_LINKS: list[BaseOperatorLink] = [
    ReportLink(),
    MlflowRunLink(),
    ModelViewLink(),
    LakeViewLink(),
    MonitoringViewLink(),
]
