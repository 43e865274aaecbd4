"""The Airflow UI as a user meets it, in a real browser: sign in, the platform's views,
an extra link to a report, a trigger form that refuses a bad value, an approval on the
Required Actions page. Screenshots of each step land in ``test-artifacts/screenshots/``.

Order matters (module scope, one stack): ingest and training are seeded first; the
training runs in the background while the browser signs in, follows the ingest's links
and triggers a second ingest through the form.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from include.mlops.stack.airflow_api import AirflowClient
from tests.browser import seed
from tests.ui.known_form_issues import KNOWN_BLOCKED

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def client(stack: Any) -> AirflowClient:
    return AirflowClient(stack.airflow_url, "admin", "admin")


@pytest.fixture(scope="module")
def seeded(
    stack: Any, client: AirflowClient, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ingested churn day, a training run on its way to approval, monitoring reports."""
    from include.mlops.lake import Lake
    from include.mlops.stack import client_env, settings_for

    folder = tmp_path_factory.mktemp("landing")
    started = time.monotonic()
    ingest_run = seed.ingest_day(client, folder)
    ingested = time.monotonic() - started
    # Triggered by the reviewer, so admin (signed in below) may approve it: a manual run's
    # trigger may not approve its own version.
    env = client_env(stack)
    reviewer = AirflowClient(stack.airflow_url, env["MLOPS_AIRFLOW_REVIEWER_USER"],
                             env["MLOPS_AIRFLOW_REVIEWER_PASSWORD"])  # fmt: skip
    train_run = seed.start_training(reviewer)
    lake = Lake.from_settings(settings_for(stack))
    seed.write_monitoring_runs(lake)
    return {"ingest_run": ingest_run, "train_run": train_run, "folder": folder, "lake": lake,
            "ingest_seconds": ingested, "training_started": time.monotonic()}  # fmt: skip


@pytest.fixture(scope="module")
def signed_in(tour: Any, seeded: dict[str, Any]) -> dict[str, Any]:
    return tour("login", user="admin", password="admin")


@pytest.fixture(scope="module")
def pending(client: AirflowClient, seeded: dict[str, Any]) -> dict[str, Any]:
    """The training run's approval request (waits for it) and the registered version."""
    run_id = seeded["train_run"]
    request = client.wait_for_approval("train_model", run_id, timeout=600)
    registered = client.xcom("train_model", run_id, "register")
    return {"request": request, "version": str(registered["version"]), "run_id": run_id}


def _task_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/{task_id}"


def test_sign_in_and_the_platform_in_the_navigation(signed_in: dict[str, Any]) -> None:
    # An anonymous browser opening the app is sent to Airflow's sign-in page.
    assert signed_in["anonymousLanding"].startswith("/auth/login?next=")
    assert "mlops" in urllib.parse.unquote(signed_in["anonymousLanding"])
    assert set(signed_in["nav"]) >= {"Models", "Monitoring", "Lake"}


def test_extra_link_opens_the_data_docs(
    tour: Any, signed_in: dict[str, Any], seeded: dict[str, Any]
) -> None:
    result = tour(
        "extra_link", task_path=_task_path("lake_ingest", seeded["ingest_run"], "quality_gate"),
        link="Report", task_shot="05-task-extra-links", report_shot="05-data-docs",
    )  # fmt: skip
    assert result["href"].startswith("/mlops/files/reports/quality/churn/")
    assert "/mlops/files/reports/quality/churn/" in result["url"]
    assert {"Report", "Lake catalog"} <= set(result["buttons"])
    assert "churn" in result["text"]


def test_trigger_form_refuses_a_bad_value_then_runs(
    tour: Any, signed_in: dict[str, Any], seeded: dict[str, Any], client: AirflowClient
) -> None:
    from include.mlops.demo.landing import write_landing_file

    source = Path(seeded["folder"]) / "churn-2026-11-03.csv"
    write_landing_file(source, fmt="csv", n_rows=300, seed=12)
    before = {r["dag_run_id"] for r in client.runs("lake_ingest")}
    result = tour(
        "trigger", dag_id="lake_ingest", shot="09-trigger-form",
        bad={"dataset": "churn", "source": str(source), "partition": "2026-11-3"},
        good={"partition": "2026-11-03"},
        refusal_text="Invalid input for param partition",
    )  # fmt: skip
    assert "2026-11-3" in result["refusedMessage"]
    # What the form shows as shipped: Trigger is disabled while `source` is empty.
    assert result["enabledWithDefaults"] is not (("lake_ingest", "source") in KNOWN_BLOCKED)
    new = [r for r in client.runs("lake_ingest") if r["dag_run_id"] not in before]
    assert len(new) == 1, f"the refused submission must not create a run: {new}"
    assert new[0]["conf"]["partition"] == "2026-11-03"
    assert new[0]["conf"]["source"] == str(source)
    seeded["form_run"] = new[0]["dag_run_id"]


def test_the_views_from_the_navigation(
    tour: Any, signed_in: dict[str, Any], pending: dict[str, Any]
) -> None:
    result = tour(
        "views",
        views=[["Models", "02-models"], ["Monitoring", "03-monitoring"], ["Lake", "04-lake"]],
    )
    models, monitoring, lake = (result["seen"][v] for v in ("Models", "Monitoring", "Lake"))
    assert seed.MODEL in models and "PendingManualApproval" in models
    assert f"v{pending['version']}" in models and "roc_auc" in models
    assert seed.MODEL in monitoring and "dataset drift" in monitoring
    assert "churn" in lake and "quality report" in lake
    detail = tour("page", path=f"/mlops/monitoring/{seed.MODEL}", shot="03-monitoring-model",
                  full_page=True)  # fmt: skip
    assert "Drift trend" in detail["text"] and "support_calls" in detail["text"]


def test_extra_link_opens_the_evaluation_report(
    tour: Any, signed_in: dict[str, Any], pending: dict[str, Any]
) -> None:
    result = tour(
        "extra_link", task_path=_task_path("train_model", pending["run_id"], "await_approval"),
        link="Report", task_shot="06-approval-task-links", report_shot="06-evaluation-report",
        expect_image="roc.png",
    )  # fmt: skip
    assert result["url"].endswith(
        f"/reports/evaluation/{seed.MODEL}/{pending['version']}/model_card.html"
    )
    assert {"Report", "MLflow run", "Model registry"} <= set(result["buttons"])


def test_approve_on_the_required_actions_page(
    tour: Any, signed_in: dict[str, Any], pending: dict[str, Any], client: AirflowClient,
    stack: Any,
) -> None:  # fmt: skip
    from include.mlops.registry import get_version

    comment = "approved from the browser test"
    result = tour(
        "approve", subject=f"Approve {seed.MODEL} v{pending['version']}?", comment=comment
    )
    assert "roc_auc" in result["body"]
    assert result["received"].endswith("from admin")
    blocked = ("train_model", "await_approval.comment") in KNOWN_BLOCKED
    assert result["enabledBeforeComment"] is not blocked
    assert client.wait("train_model", pending["run_id"], timeout=300) == "success"
    info = get_version(stack.mlflow_url, seed.MODEL, pending["version"])
    assert info.status == "Approved"
    assert (info.tags["approved_by"], info.tags["approval_comment"]) == ("admin", comment)
    after = tour("views", views=[["Models", "08-models-approved"]])
    assert "Approved" in after["seen"]["Models"]


def test_the_run_triggered_from_the_form_succeeded(
    client: AirflowClient, seeded: dict[str, Any]
) -> None:
    run_id = seeded.get("form_run")
    if run_id is None:
        pytest.skip("the form did not trigger a run (see test_trigger_form_...)")
    assert client.wait("lake_ingest", run_id, timeout=300) == "success"
    catalog = seeded["lake"].read_json("catalog/churn/schema.json")
    assert "2026-11-03" in catalog["partitions"]


def test_every_task_that_writes_a_report_or_a_run_links_it(
    client: AirflowClient, seeded: dict[str, Any], pending: dict[str, Any], stack: Any
) -> None:
    """Through the REST API the UI uses: each link resolves, each report is served."""
    import json
    import urllib.request

    def links(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
                f"/taskInstances/{task_id}/links?map_index={map_index}")  # fmt: skip
        return dict(client.request("GET", path)["extra_links"])

    expected = {
        ("lake_ingest", "stage"): {"Report", "Lake catalog"},
        ("lake_ingest", "quality_gate"): {"Report", "Lake catalog"},
        ("lake_ingest", "update_catalog"): {"Report", "Lake catalog"},
        ("train_model", "prepare_data"): {"Report", "MLflow run", "Model registry"},
        ("train_model", "tune"): {"MLflow run", "Model registry"},
        ("train_model", "evaluate"): {"Report", "MLflow run", "Model registry"},
        ("train_model", "register"): {"Report", "MLflow run", "Model registry"},
        ("train_model", "await_approval"): {"Report", "MLflow run", "Model registry"},
    }
    login = urllib.request.Request(
        f"{stack.airflow_url}/auth/token", method="POST",
        data=json.dumps({"username": "admin", "password": "admin"}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(login, timeout=30) as answer:
        token = json.loads(answer.read())["access_token"]
    for (dag_id, task_id), names in expected.items():
        run_id = seeded["ingest_run"] if dag_id == "lake_ingest" else pending["run_id"]
        found = links(dag_id, run_id, task_id, 0 if task_id == "tune" else -1)
        present = {name for name, url in found.items() if url}
        assert names <= present, f"{dag_id}.{task_id}: {found}"
        report = found.get("Report")
        if report and not report.endswith("/"):
            request = urllib.request.Request(
                stack.airflow_url + report, headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as served:
                assert served.status == 200 and served.headers["Content-Type"].startswith(
                    "text/html"
                )
        assert json.dumps(found).count("s3://") == 0  # links are URLs, never lake URIs
