"""Where each task's work can be seen: the links on a task instance page, as pure rules.

A task of ``lake_ingest``, ``train_model``, ``deploy_model``, ``batch_transform`` or
``monitor_model`` gets up to five links, built from what the run's tasks returned (their
XComs) and the run's conf: the report it wrote (served by the UI app), its MLflow run,
and the platform views of the model, the dataset or the monitor. A link that does not
apply is ``None`` (Airflow hides it). A task that failed before returning still gets
the report folder its run writes to, so a failed gate links to its evidence.

No Airflow import here: :mod:`include.mlops.airflow.links` reads the XComs and calls
:func:`task_links`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from include.mlops.etl.naming import quality_report_prefix, safe_run_id
from include.mlops.ui.reports import is_report_key, lake_key, report_href, report_link

REPORT = "Report"
MLFLOW_RUN = "MLflow run"
MODEL_VIEW = "Model registry"
LAKE_VIEW = "Lake catalog"
MONITORING_VIEW = "Monitoring"
#: Every link name, in the order they are registered.
LINK_NAMES: tuple[str, ...] = (REPORT, MLFLOW_RUN, MODEL_VIEW, LAKE_VIEW, MONITORING_VIEW)
#: XCom keys of ``train_model.prepare_data`` (``multiple_outputs``).
PREPARED, TUNING = "prepared", "tuning"
RETURN = "return_value"
_REPORT_KEYS = ("html_uri", "docs_uri", "model_card_uri", "report_uri", "quality_report")
_APPROVAL_TASKS = (
    "register",
    "choose_approval",
    "auto_approve",
    "await_approval",
    "approve_version",
    "record_rejection",
    "report_outcome",
)


@dataclass(frozen=True)
class LinkTargets:
    """Where links point.

    Attributes:
        base_path: URL path the UI app is mounted at, e.g. ``/mlops``.
        bucket: The lake bucket (URIs of other buckets are not reports).
        mlflow_ui_url: MLflow UI base URL a browser can reach, if known.
        lake_root: Local folder of a ``Lake.local`` lake (tests).
    """

    base_path: str = "/mlops"
    bucket: str = "lake"
    mlflow_ui_url: str | None = None
    lake_root: str | None = None

    @classmethod
    def from_env(cls, base_path: str, env: Mapping[str, str] | None = None) -> LinkTargets:
        """Targets for the configured lake bucket and MLflow UI.

        Args:
            base_path: URL path the UI app is mounted at.
            env: Environment to read (default ``os.environ``).
        """
        env = os.environ if env is None else env
        return cls(
            base_path=base_path.rstrip("/") or "/",
            bucket=env.get("MLOPS_LAKE_BUCKET") or "lake",
            mlflow_ui_url=mlflow_ui_url(env),
        )

    def report(self, uri_or_key: str | None) -> str | None:
        """A served-report URL for a lake URI or key, ``None`` if it is not a report."""
        return report_link(
            uri_or_key, bucket=self.bucket, base_path=self.base_path, lake_root=self.lake_root
        )

    def folder(self, prefix: str) -> str | None:
        """The served index of a report folder."""
        key = prefix.rstrip("/") + "/"
        return report_href(key, self.base_path) if is_report_key(key) else None

    def model(self, model_name: str, version: int | str | None = None) -> str:
        """The Models view at one model (and version)."""
        anchor = f"{model_name}-v{version}" if version not in (None, "") else model_name
        return f"{self.base_path}/models#{quote(anchor)}"

    def dataset(self, dataset: str) -> str:
        """The Lake view of one dataset."""
        return f"{self.base_path}/lake/{quote(dataset)}"

    def monitoring(self, model_name: str) -> str:
        """The Monitoring view of one model."""
        return f"{self.base_path}/monitoring/{quote(model_name)}"

    def mlflow_run(self, run_id: str | None, experiment_id: str | None = None) -> str | None:
        """The MLflow UI page of a run (via the app's lookup when the experiment is unknown)."""
        if not run_id:
            return None
        if self.mlflow_ui_url and experiment_id:
            root = self.mlflow_ui_url.rstrip("/")
            return f"{root}/#/experiments/{quote(str(experiment_id))}/runs/{quote(run_id)}"
        return f"{self.base_path}/mlflow/runs/{quote(run_id)}"

    def mlflow_version(self, model_name: str, version: int | str) -> str | None:
        """The MLflow UI page of a registered model version."""
        if not self.mlflow_ui_url:
            return f"{self.base_path}/mlflow/models/{quote(model_name)}/versions/{version}"
        root = self.mlflow_ui_url.rstrip("/")
        return f"{root}/#/models/{quote(model_name)}/versions/{version}"


def mlflow_ui_url(env: Mapping[str, str] | None = None) -> str | None:
    """The MLflow UI a browser reaches: ``MLOPS_MLFLOW_UI_URL``, else an http(s)
    ``MLFLOW_TRACKING_URI`` (a tracking server serves its UI at the same address)."""
    env = os.environ if env is None else env
    explicit = (env.get("MLOPS_MLFLOW_UI_URL") or "").strip()
    if explicit:
        return explicit.rstrip("/")
    tracking = (env.get("MLFLOW_TRACKING_URI") or "").strip()
    return tracking.rstrip("/") if tracking.startswith(("http://", "https://")) else None


@dataclass(frozen=True)
class TaskRun:
    """One task instance and what its run knows.

    Attributes:
        dag_id: DAG id.
        task_id: Task id.
        run_id: Airflow run id.
        xcoms: ``(task_id, key, map_index) → value`` for the run's tasks.
        conf: The run's conf (the trigger form's values; empty for scheduled runs).
        map_index: The task's map index (``-1`` when not mapped).
    """

    dag_id: str
    task_id: str
    run_id: str
    xcoms: Mapping[tuple[str, str, int], Any] = field(default_factory=dict)
    conf: Mapping[str, Any] = field(default_factory=dict)
    map_index: int = -1

    def raw(self, task_id: str, key: str = RETURN, map_index: int | None = None) -> Any:
        """A task's XCom: at ``map_index``, else unmapped, else the lowest map index."""
        if map_index is not None:
            return self.xcoms.get((task_id, key, map_index))
        found = [(i, v) for (t, k, i), v in self.xcoms.items() if t == task_id and k == key]
        return min(found, key=lambda item: item[0])[1] if found else None

    def value(
        self, task_id: str, key: str = RETURN, map_index: int | None = None
    ) -> dict[str, Any]:
        """A task's XCom as a dict (``{}`` when absent or not a dict)."""
        found = self.raw(task_id, key, map_index)
        return dict(found) if isinstance(found, Mapping) else {}

    @property
    def own(self) -> dict[str, Any]:
        """This task instance's return value as a dict."""
        return self.value(self.task_id, map_index=self.map_index)

    def first(self, name: str, *sources: Mapping[str, Any]) -> str | None:
        """The first non-empty ``name`` among ``sources``, then the run's conf."""
        for source in (*sources, self.conf):
            value = source.get(name)
            if value not in (None, ""):
                return str(value)
        return None


def task_links(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    """Every link name → its URL for one task instance (``None``: does not apply).

    Args:
        task: The task instance, its run's XComs and conf.
        targets: Where links point.

    Returns:
        A dict with every name of :data:`LINK_NAMES`.
    """
    links: dict[str, str | None] = dict.fromkeys(LINK_NAMES)
    rules = {
        "lake_ingest": _lake_ingest,
        "train_model": _train_model,
        "deploy_model": _deploy_model,
        "batch_transform": _batch_transform,
        "monitor_model": _monitor_model,
    }
    rule = rules.get(task.dag_id)
    if rule is not None:
        links.update({k: v for k, v in rule(task, targets).items() if v})
    for name, url in _generic(task, targets).items():
        links[name] = links[name] or url
    return links


def _generic(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    """What any task's own return value says: a report URI, a model, a dataset."""
    own = task.own
    links: dict[str, str | None] = {}
    for key in (*_REPORT_KEYS, "report"):
        url = targets.report(own.get(key)) if isinstance(own.get(key), str) else None
        if url:
            links[REPORT] = url
            break
    model_name = own.get("model_name")
    if isinstance(model_name, str) and model_name:
        links[MODEL_VIEW] = targets.model(model_name, own.get("version"))
        uri = own.get("html_uri") or own.get("report_uri")
        uri_key = lake_key(uri, targets.bucket, targets.lake_root) if isinstance(uri, str) else None
        if task.dag_id == "monitor_model" or (uri_key or "").startswith("monitoring/"):
            links[MONITORING_VIEW] = targets.monitoring(model_name)
    dataset = own.get("dataset")
    if isinstance(dataset, str) and dataset:
        links[LAKE_VIEW] = targets.dataset(dataset)
    return links


def _lake_ingest(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    plan, staged = task.value("plan"), task.value("stage")
    quality = task.value("quality_gate")
    dataset = task.first("dataset", plan, staged)
    links: dict[str, str | None] = {}
    if dataset:
        links[LAKE_VIEW] = targets.dataset(dataset)
    folder = targets.folder(quality_report_prefix(dataset, task.run_id)) if dataset else None
    if task.task_id == "stage":
        links[REPORT] = folder  # a schema-drift report lands here when the stage fails
    elif task.task_id == "quality_gate":
        links[REPORT] = targets.report(quality.get("docs_uri")) or folder
    elif task.task_id == "update_catalog":
        links[REPORT] = targets.report(quality.get("docs_uri"))
    return links


def _train_model(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    request = task.value("resolve_request")
    prepared, tuning = task.value("prepare_data", PREPARED), task.value("prepare_data", TUNING)
    evaluation, registered = task.value("evaluate"), task.value("register")
    model_name = task.first("model_name", registered, request)
    dataset = task.first("dataset", request)
    links: dict[str, str | None] = {}
    if model_name:
        links[MODEL_VIEW] = targets.model(model_name, registered.get("version"))
    if dataset:
        links[LAKE_VIEW] = targets.dataset(dataset)
    experiment = tuning.get("experiment_id")
    task_id = task.task_id
    if task_id == "prepare_data":
        links[REPORT] = targets.report(prepared.get("quality_report"))
        if not links[REPORT] and dataset and model_name:
            gate_run = f"train_{model_name}_{task.run_id}"
            links[REPORT] = targets.folder(quality_report_prefix(dataset, gate_run))
        links[MLFLOW_RUN] = targets.mlflow_run(tuning.get("parent_run_id"), experiment)
    elif task_id in ("tuning_workers", "tune"):
        links[MLFLOW_RUN] = targets.mlflow_run(tuning.get("parent_run_id"), experiment)
    elif task_id == "evaluate":
        links[REPORT] = targets.report(evaluation.get("report_uri"))
        if not links[REPORT] and model_name:
            # A failed gate raises before returning; the card is written before the gate.
            label = f"candidate-{safe_run_id(task.run_id)}"
            links[REPORT] = targets.report(
                f"reports/evaluation/{model_name}/{label}/model_card.html"
            )
        links[MLFLOW_RUN] = targets.mlflow_run(tuning.get("parent_run_id"), experiment)
    elif task_id in _APPROVAL_TASKS:
        links[REPORT] = targets.report(registered.get("report_uri"))
        links[MLFLOW_RUN] = targets.mlflow_run(
            registered.get("run_id") or tuning.get("parent_run_id"), experiment
        )
    return links


def _deploy_model(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    request, checked, rolled = (
        task.value("resolve_request"),
        task.value("check_version"),
        task.value("roll_out"),
    )
    model_name = task.first("model_name", rolled, checked, request)
    version = rolled.get("version") or checked.get("version")
    return {MODEL_VIEW: targets.model(model_name, version) if model_name else None}


def _batch_transform(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    plan = task.value("plan")
    model_name = task.first("model_name", plan)
    dataset = task.first("dataset", plan)
    return {
        MODEL_VIEW: targets.model(model_name, plan.get("version")) if model_name else None,
        LAKE_VIEW: targets.dataset(dataset) if dataset else None,
    }


def _monitor_model(task: TaskRun, targets: LinkTargets) -> dict[str, str | None]:
    from include.mlops.monitoring.report import report_prefix

    summary = task.value("monitor", map_index=task.map_index)
    jobs = task.raw("plan")
    job: Mapping[str, Any] = {}
    if isinstance(jobs, list) and 0 <= task.map_index < len(jobs):
        job = jobs[task.map_index] if isinstance(jobs[task.map_index], Mapping) else {}
    model_name = task.first("model_name", summary, job)
    if not model_name or model_name == "all":
        return {}
    links: dict[str, str | None] = {
        MONITORING_VIEW: targets.monitoring(model_name),
        MODEL_VIEW: targets.model(model_name, summary.get("version")),
    }
    if task.task_id in ("monitor", "alert"):
        links[REPORT] = targets.report(summary.get("html_uri")) or targets.folder(
            report_prefix(model_name, safe_run_id(task.run_id))
        )
        links[MLFLOW_RUN] = targets.mlflow_run(summary.get("mlflow_run_id"))
    return links
