"""`make up` / `make env` / `make down` against real processes, and the loop through REST.

The session's embedded stack (PostgreSQL, SeaweedFS, MLflow, the endpoint, Airflow's four
components) on free loopback ports in a temporary state folder, so a developer's own
stack is untouched; `test_down_stops_everything` starts one of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from include.mlops.stack import StackConfig, client_env, down, status, up
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.process import port_open, read_pid
from tests.stack.bench_smoke import run_tuning_wall_bench
from tests.stack.procs import children, maps_library

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(embedded_stack: StackConfig) -> StackConfig:
    """The session's embedded stack (shared with the browser tests)."""
    return embedded_stack


def _api(config: StackConfig, method: str, path: str, body: dict | None = None) -> dict:
    token_req = urllib.request.Request(
        f"{config.airflow_url}/auth/token",
        data=json.dumps({"username": "admin", "password": "admin"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(token_req, timeout=10) as resp:
        token = json.loads(resp.read())["access_token"]
    req = urllib.request.Request(
        f"{config.airflow_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method=method,
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_up_is_healthy_and_idempotent(stack: StackConfig) -> None:
    assert status(stack) == {
        "postgres": True, "seaweedfs": True, "mlflow": True, "endpoint": True, "airflow": True
    }  # fmt: skip
    names = ("postgres", "seaweedfs", "mlflow", "endpoint", "airflow-api-server",
             "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")  # fmt: skip
    pids = {n: read_pid(stack.state_dir / f"{n}.pid") for n in names}
    assert all(pids.values()), pids
    up(stack)  # second `make up`: nothing restarts
    assert {n: read_pid(stack.state_dir / f"{n}.pid") for n in pids} == pids
    for name in names:
        assert (stack.state_dir / "logs" / f"{name}.log").exists(), name


def test_executor_workers_start_with_the_task_libraries_loaded(stack: StackConfig) -> None:
    """The LocalExecutor forks its workers (and each task from a worker) after importing the
    task libraries: a task never spends seconds importing pandas, scikit-learn, XGBoost..."""
    from include.mlops.airflow.preload import TASK_LIBRARIES

    log = (stack.state_dir / "logs" / "airflow-scheduler.log").read_text()
    assert f"preloaded {len(TASK_LIBRARIES)} task libraries" in log
    scheduler = read_pid(stack.state_dir / "airflow-scheduler.pid")
    assert scheduler is not None
    workers = [
        pid for pid in children(scheduler)
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"airflow worker -- LocalExecutor")
    ]  # fmt: skip
    assert workers, "no LocalExecutor worker process under the scheduler"
    for pid in workers:
        assert maps_library(pid, "libxgboost") and maps_library(pid, "sklearn"), pid


def test_every_component_has_its_own_postgres_database(stack: StackConfig) -> None:
    """One server, one database and role per component; nothing on SQLite."""
    import sqlalchemy as sa

    env = client_env(stack)
    urls = {
        "airflow": env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        "mlflow": env["MLFLOW_BACKEND_STORE_URI"],
        "optuna": env["MLOPS_OPTUNA_STORAGE"],
    }
    for name, url in urls.items():
        assert url.startswith("postgresql+psycopg2://") and f":{stack.postgres_port}/{name}" in url
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT current_user, current_database()")).one()
        engine.dispose()
        assert tuple(row) == (name, name)
    # Airflow and MLflow made their tables there; no SQLite file anywhere in the state.
    engine = sa.create_engine(urls["airflow"])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dag")).scalar_one() >= 5
    engine.dispose()
    assert not list(stack.state_dir.rglob("*.db")), list(stack.state_dir.rglob("*.db"))


def test_endpoint_answers_metrics_and_admin_config(stack: StackConfig) -> None:
    """`make up` starts the model endpoint after MLflow, pointed at the stack's registry."""
    token = client_env(stack)["MLOPS_ENDPOINT_ADMIN_TOKEN"]
    scrape = urllib.request.Request(  # a key or the admin token (README, "API keys")
        f"{stack.endpoint_url}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(scrape, timeout=10) as metrics:
        assert b"mlops_requests_total" in metrics.read()
    request = urllib.request.Request(
        f"{stack.endpoint_url}/admin/config", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as config:
        body = json.loads(config.read())
    assert body["settings"]["tracking_uri"] == stack.mlflow_url
    assert body["settings"]["admin_token_set"] is True


def test_each_component_reaches_only_its_own_part_of_the_store(stack: StackConfig) -> None:
    """One identity per component: the model servers never read raw PII (landing/,
    quarantine/) nor curated data, while their captured traffic still lands."""
    import boto3
    import botocore.exceptions

    from include.mlops.stack.config import store_identities

    def s3(identity: str) -> Any:
        access, secret = store_identities(stack)[identity]
        return boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1",
                            aws_access_key_id=access, aws_secret_access_key=secret)  # fmt: skip

    def can(identity: str, op: str, key: str) -> bool:
        client = s3(identity)
        try:
            if op == "read":
                client.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
            elif op == "write":
                client.put_object(Bucket=stack.bucket, Key=key, Body=b"probe")
            else:
                client.list_objects_v2(Bucket=stack.bucket, Prefix=key)
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
            return False
        return True

    zones = ("landing", "quarantine", "curated", "reports", "monitoring", "catalog", "mlflow",
             "capture", "keys/endpoint")  # fmt: skip
    for zone in zones:  # something to read in every zone
        assert can("admin", "write", f"{zone}/_probe/readme.txt")
    expected = {
        "model-server": {"capture", "keys/endpoint"},
        "ui": {"reports", "monitoring", "catalog"},
        "mlflow": {"mlflow"},
        "pipeline": set(zones),
    }
    for identity, readable in expected.items():
        for zone in zones:
            assert can(identity, "read", f"{zone}/_probe/readme.txt") == (zone in readable), (
                identity,
                zone,
            )
    assert not can("model-server", "write", "landing/_probe/forged.csv")
    assert not can("model-server", "list", "quarantine/")
    assert can("model-server", "write", "capture/_probe/from-a-replica.parquet")
    assert not can("ui", "write", "reports/_probe/forged.html")
    assert not can("mlflow", "write", "curated/_probe/forged.parquet")


def test_the_endpoint_needs_an_api_key_and_make_env_gives_one(stack: StackConfig) -> None:
    import urllib.error

    body = json.dumps({"dataframe_records": [{"age": 40}]}).encode()

    def call(headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            f"{stack.endpoint_url}/endpoints/nothing_deployed/invocations", data=body,
            headers={"Content-Type": "application/json", **headers}, method="POST",
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert call({}) == 401
    assert call({"Authorization": "Bearer mlk_not-a-key"}) == 401
    key = client_env(stack)["MLOPS_ENDPOINT_API_KEY"]
    assert call({"Authorization": f"Bearer {key}"}) == 404  # past the key check: no such endpoint
    assert call({"X-Api-Key": key}) == 404
    try:  # /ping is open: 200 with a model deployed, 503 before (never 401)
        with urllib.request.urlopen(f"{stack.endpoint_url}/ping", timeout=10) as ping:
            status = int(ping.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    assert status in (200, 503), status


def test_make_env_points_a_shell_at_the_stack(stack: StackConfig) -> None:
    """`eval "$(make -s env)"` then the airflow CLI and the S3 API work."""
    overrides = {
        "MLOPS_STACK_DIR": str(stack.state_dir),
        "MLOPS_STACK_S3_PORT": str(stack.s3_port),
        "MLOPS_STACK_MLFLOW_PORT": str(stack.mlflow_port),
        "MLOPS_STACK_AIRFLOW_PORT": str(stack.airflow_port),
        "MLOPS_STACK_ENDPOINT_PORT": str(stack.endpoint_port),
        "MLOPS_STACK_POSTGRES_PORT": str(stack.postgres_port),
    }
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "AWS_", "MLOPS_", "MLFLOW_"))
    }
    script = (
        'eval "$(make -s env)" && '
        f"{sys.executable} -c 'from include.mlops.settings import Settings; "
        "from include.mlops.lake import Lake; Lake.from_settings(Settings.from_env()).check(); "
        'print("lake-ok")\' && '
        f"{Path(sys.executable).parent}/airflow dags list -o json"
    )
    out = subprocess.run(
        ["bash", "-c", script], env={**clean, **overrides}, cwd=REPO,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "lake-ok" in out.stdout
    dag_ids = {d["dag_id"] for d in json.loads(out.stdout.split("lake-ok", 1)[1])}
    assert "lake_ingest" in dag_ids
    exports = subprocess.run(
        ["make", "-s", "env"], env={**clean, **overrides}, cwd=REPO, capture_output=True, text=True
    ).stdout
    for name in ("AIRFLOW_HOME", "AIRFLOW_CONN_LAKE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MLOPS_LAKE_BUCKET",
                 "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "MLOPS_ENDPOINT_URL",
                 "MLOPS_AIRFLOW_URL", "MLOPS_AIRFLOW_USER", "MLOPS_AIRFLOW_PASSWORD",
                 "MLOPS_ENDPOINT_ADMIN_TOKEN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                 "MLFLOW_BACKEND_STORE_URI", "MLOPS_OPTUNA_STORAGE",
                 "MLOPS_ENDPOINT_API_KEY"):  # fmt: skip
        assert f"export {name}=" in exports


def test_rest_trigger_runs_lake_ingest_through_the_scheduler(
    stack: StackConfig, tmp_path: Path
) -> None:
    from include.mlops.demo.landing import write_landing_file

    source = tmp_path / "day.csv"
    report = write_landing_file(source, fmt="csv", n_rows=500, seed=7, defects={"wrong_type": 3})
    conf = {"dataset": "churn", "source": str(source), "partition": "2026-11-02"}
    _api(stack, "PATCH", "/api/v2/dags/lake_ingest", {"is_paused": False})
    run = _api(
        stack, "POST", "/api/v2/dags/lake_ingest/dagRuns", {"logical_date": None, "conf": conf}
    )
    run_id = run["dag_run_id"]
    deadline = time.monotonic() + 300
    state = run["state"]
    while time.monotonic() < deadline and state not in ("success", "failed"):
        time.sleep(3)
        state = _api(stack, "GET", f"/api/v2/dags/lake_ingest/dagRuns/{run_id}")["state"]
    assert state == "success", f"run {run_id} ended {state}; see {stack.state_dir}/logs"

    from include.mlops.lake import Lake
    from include.mlops.stack import settings_for

    catalog = Lake.from_settings(settings_for(stack)).read_json("catalog/churn/schema.json")
    part = catalog["partitions"]["2026-11-02"]
    assert part["rows"] + part["quarantined"] == report.rows_total
    assert part["quarantined"] == 3


def _train(
    stack: StackConfig, approval: str, seed: int, model: str = "stack_churn"
) -> tuple[AirflowClient, str]:
    client = AirflowClient(stack.airflow_url, "admin", "admin")
    client.unpause("train_model")
    conf = {"dataset": "churn", "target": "churned", "model_name": model,
            "algorithms": ["logistic_regression"], "tuning_strategy": "random",
            "max_trials": 2, "max_parallel_trials": 2, "approval": approval, "seed": seed}  # fmt: skip
    return client, client.trigger("train_model", conf)


def _reviewer(stack: StackConfig) -> AirflowClient:
    """The second approver (MLOPS_APPROVERS=admin,reviewer): who answers a run admin
    triggered by hand, since its trigger may not approve it."""
    env = client_env(stack)
    return AirflowClient(
        stack.airflow_url,
        env["MLOPS_AIRFLOW_REVIEWER_USER"],
        env["MLOPS_AIRFLOW_REVIEWER_PASSWORD"],
    )


def _version_status(stack: StackConfig, version: str, model: str = "stack_churn") -> str:
    from include.mlops.registry import get_version

    return get_version(stack.mlflow_url, model, version).status


def test_manual_approval_through_the_rest_api(stack: StackConfig) -> None:
    """Runs after the ingest test above (module order): churn data is in the lake."""
    client, run_id = _train(stack, "manual", seed=1)
    request = client.wait_for_approval("train_model", run_id, timeout=600)
    assert request["task_instance"]["task_id"] == "await_approval"
    assert "roc_auc" in request["body"] and "candidate" in request["body"]
    version = client.xcom("train_model", run_id, "register")["version"]
    assert _version_status(stack, version) == "PendingManualApproval"
    _reviewer(stack).answer("train_model", run_id, "await_approval", "Approve",
                            params_input={"comment": "looks good"})  # fmt: skip
    assert client.wait("train_model", run_id, timeout=300) == "success"
    states = {t["task_id"]: t["state"] for t in client.task_instances("train_model", run_id)}
    assert states["approve_version"] == "success" and states["record_rejection"] == "skipped"
    assert _version_status(stack, version) == "Approved"
    from include.mlops.registry import get_version

    tags = get_version(stack.mlflow_url, "stack_churn", version).tags
    assert (tags["approved_by"], tags["approval_comment"]) == ("reviewer", "looks good")


def test_rejected_run_tags_rejected_and_emits_nothing(stack: StackConfig) -> None:
    # Its own model: stack_churn's approved version is being deployed as its champion by
    # now, and a candidate worse than the champion would stop at the champion gate.
    model = "stack_churn_rejected"
    client, run_id = _train(stack, "manual", seed=2, model=model)
    client.wait_for_approval("train_model", run_id, timeout=600)
    version = client.xcom("train_model", run_id, "register")["version"]
    _reviewer(stack).answer("train_model", run_id, "await_approval", "Reject",
                            params_input={"comment": "not convinced"})  # fmt: skip
    assert client.wait("train_model", run_id, timeout=300) == "success"
    states = {t["task_id"]: t["state"] for t in client.task_instances("train_model", run_id)}
    assert states["approve_version"] == "skipped" and states["record_rejection"] == "success"
    assert _version_status(stack, version, model) == "Rejected"
    from include.mlops.registry import get_version

    tags = get_version(stack.mlflow_url, model, version).tags
    assert (tags["rejected_by"], tags["approval_comment"]) == ("reviewer", "not convinced")
    events = client.request("GET", "/api/v2/assets/events?limit=100")["asset_events"]
    approved = [e for e in events if (e.get("extra") or {}).get("version") == version
                and (e.get("extra") or {}).get("model_name") == model]  # fmt: skip
    assert approved == [], "a rejected version must not announce itself as approved"


def test_drift_retrains_and_redeploys_through_the_scheduler(stack: StackConfig) -> None:
    """The loop on the real scheduler, wired only by asset events, learning from labels:
    the version approved above was deployed (model_approved → deploy_model); drifted
    traffic is captured, its ground truth lands through lake_ingest (→ stack_churn_feedback);
    monitor_model judges the window with those labels by default (realised and estimated
    quality, both drift shares) → drift_detected → train_model retrains from the champion's
    spec on base + feedback data, judged on the recent labelled window too → approved →
    deployed. A second drift event with no new data skips the retrain, saying why."""
    from datetime import UTC, datetime

    from include.mlops.demo.ground_truth import land_ground_truth
    from include.mlops.demo.traffic import send_traffic
    from include.mlops.lake import Lake
    from include.mlops.registry import champion
    from include.mlops.stack import settings_for

    client = AirflowClient(stack.airflow_url, "admin", "admin")
    lake = Lake.from_settings(settings_for(stack))
    deadline = time.monotonic() + 300
    while (first := champion(stack.mlflow_url, "stack_churn")) is None:
        assert time.monotonic() < deadline, "the approved version was never deployed"
        time.sleep(3)
    train_runs = {r["dag_run_id"] for r in client.runs("train_model")}
    deploy_runs = {r["dag_run_id"] for r in client.runs("deploy_model")}

    key = client_env(stack)["MLOPS_ENDPOINT_API_KEY"]
    sent = send_traffic(stack.endpoint_url, "stack_churn", rows=1500, seed=5, drift=1.0,
                        rows_per_request=25, log=lambda line: None, api_key=key,
                        collect_labels=True)  # fmt: skip
    assert sent["errors"] == 0 and sent["versions"] == {f"v{first.version}/champion": 60}
    assert len(sent["labels"]) == 1500
    time.sleep(7)  # the endpoint flushes captured records every 5 s

    # Labels of 1400 served customers, plus 5 for predictions never served: the join
    # keeps the 1400, counts the 100 captured rows still waiting for a label and reports
    # the 5 orphans.
    day = datetime.now(UTC).date().isoformat()
    orphans = [
        {**row, "inference_id": f"never-served-{i}"} for i, row in enumerate(sent["labels"][:5])
    ]
    land_ground_truth(lake, "stack_churn", sent["labels"][:1400] + orphans, day=day, name="drifted")
    ingest = client.trigger(
        "lake_ingest", {"dataset": "stack_churn_ground_truth", "partition": day}
    )
    assert client.wait("lake_ingest", ingest, timeout=300) == "success"
    states = {t["task_id"]: t["state"] for t in client.task_instances("lake_ingest", ingest)}
    assert states["build_feedback"] == "success", states
    # Drifted customers may pay by "crypto", which the churn schema refuses: those labelled
    # rows wait in quarantine with their reason; the rest is feedback.
    feedback = lake.read_json("catalog/stack_churn_feedback/schema.json")
    curated = sum(p["rows"] for p in feedback["partitions"].values())
    quarantined = sum(p["quarantined"] for p in feedback["partitions"].values())
    assert curated + quarantined == 1400 and 0 < quarantined < 400, feedback["partitions"]

    monitor = client.trigger("monitor_model", {"model_name": "stack_churn", "window_hours": 1})
    assert client.wait("monitor_model", monitor, timeout=300) == "success"
    summary = client.xcom("monitor_model", monitor, "monitor", map_index=0)
    assert summary["rows"] == 1500 and summary["dataset_drift"], summary
    report = lake.read_json(lake.key_of(summary["report_uri"].split("://", 1)[-1]))
    assert report["model_quality"]["rows"] == 1400, report["model_quality"]  # labels by default
    assert report["model_quality"]["status"] in ("ok", "degraded")
    assert report["estimated_performance"]["metrics"]["roc_auc"] is not None
    assert report["drift_summary"]["weighted_share"] is not None
    states = {t["task_id"]: t["state"] for t in client.task_instances("monitor_model", monitor)}
    assert states["alert"] == "success", states
    events = client.request("GET", "/api/v2/assets/events?limit=100&order_by=-timestamp")
    drift = [e for e in events["asset_events"]
             if e.get("name") == "drift_detected" and e.get("source_run_id") == monitor]  # fmt: skip
    assert len(drift) == 1 and drift[0]["extra"]["model_name"] == "stack_churn"
    assert drift[0]["extra"]["drifted_features"] == summary["drifted_features"]

    retrain = client.next_run(
        "train_model", besides=train_runs, triggered_by="drift_detected", timeout=300
    )
    train_runs.add(retrain)
    client.wait_for_approval("train_model", retrain, timeout=600)  # the spec says manual
    version = client.xcom("train_model", retrain, "register")["version"]
    prepared = client.xcom("train_model", retrain, "prepare_data", key="prepared")
    assert prepared["data"]["feedback"]["rows"] == curated, prepared["data"]
    recent = client.xcom("train_model", retrain, "evaluate")["recent"]
    assert recent["rows"] > 0 and recent["champion"] is not None, recent
    client.answer("train_model", retrain, "await_approval", "Approve",
                  params_input={"comment": "retrained on drift and labels"})  # fmt: skip
    assert client.wait("train_model", retrain, timeout=300) == "success"
    deploy = client.next_run("deploy_model", besides=deploy_runs, timeout=300)
    assert client.wait("deploy_model", deploy, timeout=300) == "success"
    assert champion(stack.mlflow_url, "stack_churn").version == int(version) != first.version

    # Drift again, but no new data or labels since the champion trained: nothing to learn.
    assets = client.request("GET", "/api/v2/assets?name_pattern=drift_detected")["assets"]
    client.request("POST", "/api/v2/assets/events",
                   {"asset_id": assets[0]["id"], "extra": {"model_name": "stack_churn"}})  # fmt: skip
    again = client.next_run("train_model", besides=train_runs, triggered_by="drift_detected",
                            timeout=300)  # fmt: skip
    assert client.wait("train_model", again, timeout=300) == "success"
    states = {t["task_id"]: t["state"] for t in client.task_instances("train_model", again)}
    assert states["resolve_request"] == "skipped", states
    log = client.task_log("train_model", again, "resolve_request", 1)
    assert "waiting for" in log and "stack_churn_feedback" in log, log[-2000:]


def test_the_tuning_wall_benchmark_runs_on_the_stack(stack: StackConfig, tmp_path: Path) -> None:
    out = run_tuning_wall_bench(stack, tmp_path, "notebook", "embedded")
    assert "notebook: 4 trials in" in out and "embedded / notebook" in out, out


def test_no_secret_reaches_a_log_file(stack: StackConfig) -> None:
    """After the whole loop: no password, key, token or salt of this install in any log
    (the stack's service logs and Airflow's task logs)."""
    secrets = json.loads((stack.state_dir / "secrets.json").read_text())
    values = {name: value for name, value in secrets.items() if len(value) >= 12}
    files = [p for folder in (stack.state_dir / "logs", stack.airflow_home / "logs")
             if folder.exists() for p in folder.rglob("*") if p.is_file()]  # fmt: skip
    assert len(files) > 10, files
    leaks = [
        f"{name} in {path.relative_to(stack.state_dir)}"
        for path in files
        for name, value in values.items()
        if value in path.read_text(errors="replace")
    ]
    assert leaks == [], leaks


def test_down_stops_everything(tmp_path: Path) -> None:
    config = StackConfig.on_free_ports(tmp_path)
    env = up(config, airflow=False)
    assert (
        env["MLFLOW_TRACKING_URI"] == config.mlflow_url == client_env(config)["MLFLOW_TRACKING_URI"]
    )
    # Nothing is deployed on a new stack: the endpoint is up and says so with a 503.
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as ping:
        urllib.request.urlopen(f"{config.endpoint_url}/ping", timeout=10)
    assert ping.value.code == 503
    assert json.loads(ping.value.read())["detail"].startswith("no approved model is deployed yet")
    assert sorted(down(config)) == ["endpoint", "mlflow", "postgres", "seaweedfs"]
    assert not port_open(config.s3_port) and not port_open(config.mlflow_port)
    assert not port_open(config.endpoint_port) and not port_open(config.postgres_port)
    assert status(config) == {
        "postgres": False, "seaweedfs": False, "mlflow": False, "endpoint": False, "airflow": False
    }  # fmt: skip
    assert down(config) == []  # idempotent
