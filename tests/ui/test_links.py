"""Task links and report paths as pure rules (no services): what each task links to."""

from __future__ import annotations

import pytest

from include.mlops.etl.naming import quality_report_prefix, safe_run_id
from include.mlops.ui.links import (
    LAKE_VIEW,
    LINK_NAMES,
    MLFLOW_RUN,
    MODEL_VIEW,
    MONITORING_VIEW,
    REPORT,
    LinkTargets,
    TaskRun,
    mlflow_ui_url,
    task_links,
)
from include.mlops.ui.reports import ReportPathError, lake_key, report_key, report_link

TARGETS = LinkTargets(base_path="/mlops", bucket="lake", mlflow_ui_url="http://mlflow:5000")
RUN = "manual__2026-11-02T10:00:00+00:00"
SAFE = safe_run_id(RUN)


def _links(dag_id: str, task_id: str, xcoms: dict | None = None, **kw: object) -> dict:
    task = TaskRun(dag_id, task_id, RUN, xcoms=xcoms or {}, **kw)  # type: ignore[arg-type]
    links = task_links(task, TARGETS)
    assert set(links) == set(LINK_NAMES)
    return links


def test_quality_gate_links_its_data_docs_and_the_dataset() -> None:
    docs = f"s3://lake/reports/quality/churn/{SAFE}/docs/validations/x/y.html"
    links = _links(
        "lake_ingest",
        "quality_gate",
        {
            ("plan", "return_value", -1): {"dataset": "churn"},
            ("quality_gate", "return_value", -1): {"docs_uri": docs, "score": 1.0},
        },
    )
    assert links[REPORT] == f"/mlops/files/reports/quality/churn/{SAFE}/docs/validations/x/y.html"
    assert links[LAKE_VIEW] == "/mlops/lake/churn"
    assert links[MLFLOW_RUN] is links[MODEL_VIEW] is links[MONITORING_VIEW] is None


def test_a_failed_gate_still_links_to_its_report_folder() -> None:
    """The gate raises before returning; the run's report folder holds the evidence."""
    links = _links("lake_ingest", "quality_gate", conf={"dataset": "churn"})
    assert links[REPORT] == f"/mlops/files/{quality_report_prefix('churn', RUN)}/"
    assert links[LAKE_VIEW] == "/mlops/lake/churn"


def test_training_links() -> None:
    from include.mlops.evaluation.report import evaluation_prefix

    xcoms = {
        ("resolve_request", "return_value", -1): {"model_name": "churn_model", "dataset": "churn"},
        ("prepare_data", "prepared", -1): {
            "quality_report": "s3://lake/reports/quality/churn/train_x/docs/p.html"
        },
        ("prepare_data", "tuning", -1): {"parent_run_id": "r1", "experiment_id": "7"},
    }
    prepared = _links("train_model", "prepare_data", xcoms)
    assert prepared[REPORT] == "/mlops/files/reports/quality/churn/train_x/docs/p.html"
    assert prepared[MLFLOW_RUN] == "http://mlflow:5000/#/experiments/7/runs/r1"
    assert prepared[MODEL_VIEW] == "/mlops/models#churn_model"
    tune = _links("train_model", "tune", xcoms, map_index=1)
    assert tune[MLFLOW_RUN] == prepared[MLFLOW_RUN]
    # evaluate failed at its gate: the card it wrote first, where the workflow writes it
    failed = _links("train_model", "evaluate", xcoms)
    card = f"{evaluation_prefix('churn_model', f'candidate-{SAFE}')}/model_card.html"
    assert failed[REPORT] == f"/mlops/files/{card}"
    registered = {
        **xcoms,
        ("register", "return_value", -1): {
            "model_name": "churn_model",
            "version": "3",
            "run_id": "r1",
            "report_uri": "s3://lake/reports/evaluation/churn_model/3/model_card.html",
        },
    }
    for task_id in ("register", "await_approval", "approve_version", "report_outcome"):
        links = _links("train_model", task_id, registered)
        assert links[REPORT] == "/mlops/files/reports/evaluation/churn_model/3/model_card.html"
        assert links[MODEL_VIEW] == "/mlops/models#churn_model-v3"
        assert links[MLFLOW_RUN] == "http://mlflow:5000/#/experiments/7/runs/r1"


def test_the_training_gate_report_folder_matches_the_workflow() -> None:
    links = _links("train_model", "prepare_data", conf={"model_name": "m", "dataset": "d"})
    assert links[REPORT] == f"/mlops/files/{quality_report_prefix('d', f'train_m_{RUN}')}/"


def test_monitor_links_per_mapped_instance() -> None:
    from include.mlops.monitoring.report import report_prefix

    xcoms = {
        ("plan", "return_value", -1): [{"model_name": "a"}, {"model_name": "b"}],
        ("monitor", "return_value", 0): {
            "model_name": "a",
            "version": 1,
            "html_uri": "s3://lake/monitoring/a/r/report.html",
        },
        ("monitor", "return_value", 1): {
            "model_name": "b",
            "version": 4,
            "mlflow_run_id": "m9",
            "html_uri": "s3://lake/monitoring/b/r/report.html",
        },
    }
    second = _links("monitor_model", "monitor", xcoms, map_index=1)
    assert second[REPORT] == "/mlops/files/monitoring/b/r/report.html"
    assert second[MONITORING_VIEW] == "/mlops/monitoring/b"
    assert second[MODEL_VIEW] == "/mlops/models#b-v4"
    assert second[MLFLOW_RUN] == "/mlops/mlflow/runs/m9"  # experiment looked up by the app
    alert = _links("monitor_model", "alert", xcoms, map_index=0)
    assert alert[REPORT] == "/mlops/files/monitoring/a/r/report.html"
    failed = _links(
        "monitor_model",
        "monitor",
        {("plan", "return_value", -1): [{"model_name": "c"}]},
        map_index=0,
    )
    assert failed[REPORT] == f"/mlops/files/{report_prefix('c', SAFE)}/"


def test_deploy_and_batch_link_the_model() -> None:
    deploy = _links(
        "deploy_model",
        "roll_out",
        {("check_version", "return_value", -1): {"model_name": "m", "version": 5}},
    )
    assert deploy[MODEL_VIEW] == "/mlops/models#m-v5" and deploy[REPORT] is None
    batch = _links(
        "batch_transform",
        "transform",
        {("plan", "return_value", -1): {"model_name": "m", "version": 2, "dataset": "d"}},
    )
    assert batch[MODEL_VIEW] == "/mlops/models#m-v2" and batch[LAKE_VIEW] == "/mlops/lake/d"


def test_only_reports_in_this_lake_become_links() -> None:
    links = _links(
        "some_dag",
        "t",
        {
            ("t", "return_value", -1): {
                "report_uri": "s3://lake/curated/churn/dt=2026-11-02/part-0.parquet"
            }
        },
    )
    assert links[REPORT] is None
    other_bucket = "s3://elsewhere/reports/quality/x/y.html"
    assert report_link(other_bucket, bucket="lake", base_path="/m") is None
    assert report_link("s3://lake/reports/q/a b.html", bucket="lake", base_path="/m") == (
        "/m/files/reports/q/a%20b.html"
    )


def test_mlflow_ui_address() -> None:
    assert mlflow_ui_url({"MLFLOW_TRACKING_URI": "http://mlflow:5000/"}) == "http://mlflow:5000"
    assert mlflow_ui_url({"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) is None
    assert (
        mlflow_ui_url(
            {
                "MLOPS_MLFLOW_UI_URL": "https://ml.example",
                "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            }
        )
        == "https://ml.example"
    )
    assert LinkTargets().mlflow_run("r1") == "/mlops/mlflow/runs/r1"


@pytest.mark.parametrize(
    "key",
    [
        "reports/quality/churn/run/docs/index.html",
        "reports/evaluation/m/1/roc.png",
        "monitoring/m/run/report.html",
        "reports/quality/churn/",
        "reports/",
    ],
)
def test_report_keys_accepted(key: str) -> None:
    assert report_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/reports/x.html",
        "catalog/churn/schema.json",
        "curated/churn/dt=1/p.parquet",
        "reports/../catalog/x.json",
        "reports/./x.html",
        "reports//x.html",
        "reports/a\\..\\b",
        "reports/_staging/x.html",
        "reports/a/_staging_x/y",
        "monitoringx/a",
        "..",
        "reports/x\x00.html",
        "capture/ep/dt=1/hour=1/x.parquet",
    ],
)
def test_report_keys_refused(key: str) -> None:
    with pytest.raises(ReportPathError):
        report_key(key)


def test_lake_key_of_uris() -> None:
    assert lake_key("s3://lake/reports/a.html", "lake") == "reports/a.html"
    assert lake_key("s3://other/reports/a.html", "lake") is None
    assert lake_key("file:///tmp/l/reports/a.html", "lake", "/tmp/l") == "reports/a.html"
    assert lake_key("http://x/reports/a.html", "lake") is None
    assert lake_key("reports/a.html", "lake") == "reports/a.html"
