"""The scaled profile (`MLOPS_STACK_PROFILE=scaled make up`): docker-compose's topology as
plain processes, driven over REST through the real scheduler, with faults on the way.

One stack for the module, on free loopback ports; the tests run in order and build on
each other, as a user's day does: the topology, the loop's first half (ingest, training
spread over both Celery workers while one is killed, approval, deployment to both
replicas), the loop's second half with a volume server down (ingest, drifted traffic,
monitor, retrain, deploy), and a dead model replica.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from include.mlops.airflow.preload import TASK_LIBRARIES
from include.mlops.stack import ADMIN_PASSWORD, ADMIN_USER, StackConfig, client_env, status, up
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.process import read_pid
from include.mlops.stack.services import process_names
from tests.stack.bench_smoke import run_tuning_wall_bench
from tests.stack.procs import children, maps_library

pytestmark = pytest.mark.integration
MODEL = "scaled_churn"
DATASET = "churn"


@pytest.fixture(scope="module")
def stack(scaled_stack: StackConfig) -> StackConfig:
    return scaled_stack


@pytest.fixture(scope="module")
def client(stack: StackConfig) -> AirflowClient:
    return AirflowClient(stack.airflow_url, ADMIN_USER, ADMIN_PASSWORD)


def _kill(stack: StackConfig, name: str) -> int:
    """SIGKILL a service and every process it started, as a lost host (task processes
    that Airflow's supervisor put in sessions of their own included)."""
    import psutil

    pid = read_pid(stack.state_dir / f"{name}.pid")
    assert pid is not None, f"{name} is not running"
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while read_pid(stack.state_dir / f"{name}.pid") is not None:
        assert time.monotonic() < deadline, f"{name} survived SIGKILL"
        time.sleep(0.2)
    return pid


def _ingest(client: AirflowClient, folder: Path, partition: str, seed: int) -> None:
    from include.mlops.demo.landing import write_landing_file

    source = folder / f"churn-{partition}.csv"
    write_landing_file(source, fmt="csv", n_rows=2500, seed=seed, start_id=1 + 100_000 * seed)
    run = client.trigger(
        "lake_ingest", {"dataset": DATASET, "source": str(source), "partition": partition}
    )
    assert client.wait("lake_ingest", run, timeout=600) == "success"


def _champion_served(url: str, model: str, token: str) -> int | None:
    """The version a replica serves as the endpoint's champion (GET /endpoints: a key or
    the admin token)."""
    import json

    request = urllib.request.Request(
        f"{url}/endpoints", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    served = body["endpoints"].get(model) or {}
    return served.get("champion")


def test_the_scaled_profile_runs_the_compose_topology(stack: StackConfig) -> None:
    health = status(stack)
    assert all(health.values()), health
    names = process_names(stack)
    for expected in ("postgres", "redis", "seaweed-master", "seaweed-volume-1", "seaweed-volume-2",
                     "seaweed-volume-3", "seaweed-filer", "seaweed-s3", "mlflow", "model-server-1",
                     "model-server-2", "airflow-api-server", "airflow-scheduler",
                     "airflow-dag-processor", "airflow-triggerer", "celery-worker-1",
                     "celery-worker-2"):  # fmt: skip
        assert expected in names and read_pid(stack.state_dir / f"{expected}.pid"), expected
    env = client_env(stack)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert (
        env["MLOPS_ENDPOINT_URLS"].split(",") == stack.endpoint_urls
        and len(stack.endpoint_urls) == 2
    )
    # Each worker as on a host of its own: its own working directory (and HOME, TMPDIR
    # beside it); the hostname its tasks report is checked by the training test below.
    for worker in ("celery-worker-1", "celery-worker-2"):
        pid = read_pid(stack.state_dir / f"{worker}.pid")
        assert Path(os.readlink(f"/proc/{pid}/cwd")) == stack.state_dir / worker / "work"
        assert (stack.state_dir / worker / "home").is_dir()
        assert (stack.state_dir / worker / "tmp").is_dir()
        # Each worker imported the task libraries before forking its pool: its main
        # process and its pool processes (whatever title a running task gave them) have
        # them loaded. Its other child, Airflow's bundle clean-up, forks before and has not.
        log = (stack.state_dir / "logs" / f"{worker}.log").read_text()
        assert f"preloaded {len(TASK_LIBRARIES)} task libraries" in log, worker
        assert maps_library(pid, "libxgboost"), worker
        pool = [child for child in children(pid) if maps_library(child, "libxgboost")]
        assert len(pool) == stack.celery_concurrency, (worker, pool, children(pid))


def test_training_spreads_over_both_workers_and_survives_a_killed_one(
    stack: StackConfig, client: AirflowClient, tmp_path: Path
) -> None:
    """A worker SIGKILLed mid-trial: its task is retried, the study ends with exactly
    max_trials finished trials (the killed one failed, none left running), the run succeeds."""
    import optuna

    for dag_id in ("lake_ingest", "train_model", "deploy_model", "monitor_model"):
        client.unpause(dag_id)
    _ingest(client, tmp_path, "2026-11-01", seed=1)
    _ingest(client, tmp_path, "2026-11-02", seed=2)
    max_trials = 8
    conf = {"dataset": DATASET, "target": "churned", "model_name": MODEL,
            "algorithms": ["xgboost"], "tuning_strategy": "random", "max_trials": max_trials,
            "max_parallel_trials": 4, "approval": "manual", "seed": 7,
            # The retrain below (this spec, unattended) is about the store, not the model:
            # a few trials' noise must not stop it at the champion gate.
            "champion_tolerance": 0.05}  # fmt: skip
    run = client.trigger("train_model", conf)
    # Wait until trials run, then kill the worker that holds tune task 0.
    deadline = time.monotonic() + 600
    while True:
        tune0 = [t for t in client.task_instances("train_model", run)
                 if t["task_id"] == "tune" and t["map_index"] == 0]  # fmt: skip
        if tune0 and tune0[0]["state"] == "running" and tune0[0].get("hostname"):
            break
        assert time.monotonic() < deadline, "tune task 0 never started"
        time.sleep(1)
    tuning = client.xcom("train_model", run, "prepare_data", key="tuning")
    study = optuna.load_study(
        study_name=tuning["study_name"], storage=client_env(stack)["MLOPS_OPTUNA_STORAGE"]
    )
    while not any(
        t.state.name == "RUNNING" and t.user_attrs.get("worker") == 0 for t in study.trials
    ):
        assert time.monotonic() < deadline, "tune task 0 started no trial"
        time.sleep(0.5)
    victim = tune0[0]["hostname"]
    on_victim = {t["map_index"] for t in client.task_instances("train_model", run)
                 if t["task_id"] == "tune" and t.get("hostname") == victim}  # fmt: skip
    _kill(stack, victim)
    time.sleep(1)  # a live worker writes a new trial's owner within milliseconds of asking
    # The trials the lost host was running die with it: its workers' trials, and one it
    # may have asked for but not yet named its owner when killed.
    lost = {t.number for t in optuna.load_study(
        study_name=tuning["study_name"], storage=client_env(stack)["MLOPS_OPTUNA_STORAGE"]).trials
        if t.state.name == "RUNNING"
        and (t.user_attrs.get("worker") in on_victim or "worker" not in t.user_attrs)}  # fmt: skip
    assert lost

    request = client.wait_for_approval("train_model", run, timeout=900)
    assert request["task_instance"]["task_id"] == "await_approval"
    # admin triggered it, so another listed approver answers (separation of duties)
    env = client_env(stack)
    reviewer = AirflowClient(stack.airflow_url, env["MLOPS_AIRFLOW_REVIEWER_USER"],
                             env["MLOPS_AIRFLOW_REVIEWER_PASSWORD"])  # fmt: skip
    reviewer.answer("train_model", run, "await_approval", "Approve", params_input={"comment": "ok"})
    assert client.wait("train_model", run, timeout=300) == "success"

    killed = client.task_tries("train_model", run, "tune", map_index=0)
    assert [t["try_number"] for t in killed] == [1, 2], killed
    assert killed[0]["hostname"] == victim and killed[1]["state"] == "success"
    hosts = {t["hostname"] for i in range(4)
             for t in client.task_tries("train_model", run, "tune", map_index=i)}  # fmt: skip
    assert hosts == {"celery-worker-1", "celery-worker-2"}, hosts
    trials = optuna.load_study(
        study_name=tuning["study_name"], storage=client_env(stack)["MLOPS_OPTUNA_STORAGE"]
    ).trials
    states = [t.state.name for t in trials]
    assert len(trials) == max_trials and "RUNNING" not in states, states
    # The trials that died with their worker are failed (by the retried tasks), the rest complete.
    assert {t.number for t in trials if t.state.name == "FAIL"} == lost, states
    assert states.count("COMPLETE") == max_trials - len(lost), states
    # The task logs of every worker are in the lake, readable from the API server.
    assert "trial" in client.task_log("train_model", run, "tune", 2, map_index=0)
    up(stack)  # the lost "host" comes back (idempotent: starts only what is missing)
    assert all(status(stack).values())


def test_the_approved_version_is_deployed_to_both_replicas(
    stack: StackConfig, client: AirflowClient
) -> None:
    from include.mlops.registry import champion

    deadline = time.monotonic() + 600
    while (current := champion(stack.mlflow_url, MODEL)) is None:
        assert time.monotonic() < deadline, "the approved version was never deployed"
        time.sleep(3)
    for url in stack.endpoint_urls:
        assert (
            _champion_served(url, MODEL, client_env(stack)["MLOPS_ENDPOINT_ADMIN_TOKEN"])
            == current.version
        ), url


def test_with_a_volume_server_down_ingest_monitor_and_retrain_still_work(
    stack: StackConfig, client: AirflowClient, tmp_path: Path
) -> None:
    """The store keeps a copy of every volume on a second server: one lost, reads and
    writes go on; drifted traffic on both replicas → monitor → retrain → deploy."""
    from include.mlops.demo.traffic import send_traffic
    from include.mlops.registry import champion

    first = champion(stack.mlflow_url, MODEL)
    assert first is not None
    _kill(stack, "seaweed-volume-2")
    _ingest(client, tmp_path, "2026-11-03", seed=3)
    train_runs = {r["dag_run_id"] for r in client.runs("train_model")}
    deploy_runs = {r["dag_run_id"] for r in client.runs("deploy_model")}
    key = client_env(stack)["MLOPS_ENDPOINT_API_KEY"]
    for url in stack.endpoint_urls:
        sent = send_traffic(url, MODEL, rows=800, seed=11, drift=1.0, rows_per_request=20,
                            log=lambda line: None, api_key=key)  # fmt: skip
        assert sent["errors"] == 0, sent
    time.sleep(7)  # replicas flush captured records every 5 s
    monitor = client.trigger("monitor_model", {"model_name": MODEL, "window_hours": 1})
    assert client.wait("monitor_model", monitor, timeout=600) == "success"
    summary = client.xcom("monitor_model", monitor, "monitor", map_index=0)
    assert summary["rows"] == 1600 and summary["dataset_drift"], summary
    retrain = client.next_run(
        "train_model", besides=train_runs, triggered_by="drift_detected", timeout=600
    )
    client.wait_for_approval("train_model", retrain, timeout=900)
    client.answer("train_model", retrain, "await_approval", "Approve",
                  params_input={"comment": "retrained with a volume server down"})  # fmt: skip
    assert client.wait("train_model", retrain, timeout=300) == "success"
    deploy = client.next_run("deploy_model", besides=deploy_runs, timeout=300)
    assert client.wait("deploy_model", deploy, timeout=600) == "success"
    second = champion(stack.mlflow_url, MODEL)
    assert second is not None and second.version != first.version
    for url in stack.endpoint_urls:
        assert (
            _champion_served(url, MODEL, client_env(stack)["MLOPS_ENDPOINT_ADMIN_TOKEN"])
            == second.version
        ), url
    up(stack)
    assert all(status(stack).values())


def test_a_dead_replica_the_other_answers_and_deploy_names_it(
    stack: StackConfig, client: AirflowClient
) -> None:
    from include.mlops.demo.traffic import send_traffic
    from include.mlops.registry import champion

    current = champion(stack.mlflow_url, MODEL)
    assert current is not None
    alive, dead = stack.endpoint_urls
    _kill(stack, "model-server-2")
    sent = send_traffic(alive, MODEL, rows=100, seed=12, drift=0.0, rows_per_request=10,
                        log=lambda line: None, api_key=client_env(stack)["MLOPS_ENDPOINT_API_KEY"])  # fmt: skip
    assert sent["errors"] == 0, sent
    started = time.monotonic()
    run = client.trigger("deploy_model", {"model_name": MODEL, "version": str(current.version),
                                          "strategy": "all_at_once"})  # fmt: skip
    assert client.wait("deploy_model", run, timeout=600) == "failed"
    assert time.monotonic() - started < 540, "deploy_model hung on the dead replica"
    failed = [t for t in client.task_instances("deploy_model", run) if t["state"] == "failed"]
    assert failed, "a task should name the dead replica"
    log = client.task_log("deploy_model", run, failed[0]["task_id"], failed[0]["try_number"])
    assert dead in log, log[-2000:]
    assert (
        _champion_served(alive, MODEL, client_env(stack)["MLOPS_ENDPOINT_ADMIN_TOKEN"])
        == current.version
    )  # still serving
    up(stack)
    assert all(status(stack).values())


def test_the_tuning_wall_benchmark_runs_on_the_scaled_profile(
    stack: StackConfig, tmp_path: Path
) -> None:
    out = run_tuning_wall_bench(stack, tmp_path, "scaled")
    assert "scaled: run" in out and "celery-worker-" in out, out
