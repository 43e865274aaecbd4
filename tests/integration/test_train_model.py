"""train_model through Airflow (``dag.test()``): real SeaweedFS lake, real MLflow store,
a shared Optuna study in the session's PostgreSQL, the demo churn data.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from tests.integration.conftest import run_dag, task_states

pytestmark = pytest.mark.integration
DATASET = "train_churn"
MODEL = "churn_it"


@pytest.fixture(scope="module")
def training_env(s3_server, pg_server, tmp_path_factory) -> dict[str, str]:
    """MLflow + Optuna stores for this module, and two days of curated churn data."""
    from include.mlops.demo.landing import write_landing_file
    from include.mlops.etl.catalog import record_partition
    from include.mlops.etl.load import publish_partition
    from include.mlops.etl.pipeline import ingest_partition

    root = tmp_path_factory.mktemp("training")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLOPS_OPTUNA_STORAGE": pg_server.url("optuna"),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    os.environ.update(env)
    lake = s3_server.lake()
    for day, seed in (("2026-11-01", 11), ("2026-11-02", 12)):
        src = root / f"{day}.csv"
        write_landing_file(src, fmt="csv", n_rows=1500, seed=seed, start_id=1 + 10_000 * seed)
        result = ingest_partition(
            lake, dataset=DATASET, source_fs=pafs.LocalFileSystem(), source_paths=[str(src)],
            partition=day, run_id=f"seed_{day}", pii_salt="s",
        )  # fmt: skip
        publish_partition(lake, result)
        record_partition(lake, DATASET, result.schema, result)
    yield env
    for name in env:
        os.environ.pop(name, None)


def train(dags: dict, **conf: Any) -> Any:
    base = {
        "dataset": DATASET, "target": "churned", "model_name": MODEL,
        "algorithms": ["xgboost", "logistic_regression"], "tuning_strategy": "bayesian",
        "max_trials": 4, "max_parallel_trials": 2, "objective_metric": "roc_auc",
        "approval": "auto",
        # dag.test() keeps a run's conf in the DAG's params: reset what tests vary.
        "problem_type": "auto", "min_objective": None, "seed": 42, "bias_facets": [],
        "bias_group_column": None, "bias_gate": "off", "bias_bounds": {"DI": [0.8, 1.25]},
    }  # fmt: skip
    return run_dag(dags["train_model"], {**base, **conf})


def client() -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def test_auto_approved_run_registers_an_approved_version(dags, s3_server, training_env) -> None:
    from include.mlops.registry import get_version

    run = train(dags, bias_facets=["plan=basic", "age>=60"], bias_group_column="region",
                bias_gate="warn")  # fmt: skip
    states = task_states(run)
    assert run.state == "success", states
    assert states["await_approval"] == "skipped" and states["record_rejection"] == "skipped"

    info = get_version(client(), MODEL, 1)
    assert info.status == "Approved"
    for tag in ("dataset", "data_snapshot", "git_sha", "objective", "objective_value",
                "model_sha256", "training_spec"):  # fmt: skip
        assert info.tags.get(tag), f"version tag {tag} missing"
    assert info.tags["dataset"] == DATASET
    assert info.metrics["roc_auc"] >= 0.7, info.metrics
    assert info.metrics["roc_auc"] > info.baseline_metrics["roc_auc"]

    # Trials are child runs of the tuning run.
    runs = client().search_runs([client().get_run(info.run_id).info.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == info.run_id]
    assert len(children) >= 4
    tuning_run = client().get_run(info.run_id)
    assert tuning_run.info.status == "FINISHED"
    assert tuning_run.data.metrics["trials"] >= 4 and "best_val_roc_auc" in tuning_run.data.metrics

    lake = s3_server.lake()
    report = lake.list_files(f"reports/evaluation/{MODEL}/1/")
    assert any(k.endswith("model_card.html") for k in report)
    assert any(k.endswith(".png") for k in report)
    card = lake.read_bytes(f"reports/evaluation/{MODEL}/1/model_card.html").decode()
    assert f"{MODEL} v1" in card and "candidate-" not in card
    snapshot = info.tags["data_snapshot"]
    assert lake.list_files(f"features/{MODEL}/{snapshot[:16]}/")

    # Clarify: bias metrics on the run, the report beside the card, explanations in it.
    metrics = client().get_run(info.run_id).data.metrics
    assert len([m for m in metrics if m.startswith("bias_plan_eq_basic_")]) == 19
    assert "bias_age_ge_60_DI" in metrics and "bias_age_ge_60_CDDL" in metrics
    for name in ("bias.json", "attribution_baseline.json", "attributions.json", "beeswarm.png"):
        assert lake.exists(f"reports/evaluation/{MODEL}/1/{name}"), name
    assert "Bias (SageMaker Clarify metrics)" in card and "Facet <code>age&gt;=60</code>" in card
    assert "Explanations" in card and "beeswarm.png" in card
    with tempfile.TemporaryDirectory() as tmp:
        baseline = client().download_artifacts(info.run_id, "attribution_baseline.json", tmp)
        assert "mean_abs" in Path(baseline).read_text()
    assert '"age>=60"' in info.tags["bias_summary"]
    registered = run.get_task_instance("register").xcom_pull(task_ids="register")
    assert (
        "**Bias**" in registered["approval_body"]
        and "| plan=basic |" in registered["approval_body"]
    )

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = [e.extra for e in session.scalars(select(AssetEvent)).all()]
    assert {"model_name": MODEL, "version": "1"}.items() <= next(
        e for e in reversed(extras) if e.get("model_name") == MODEL
    ).items()


def test_second_run_adds_a_version_and_the_champion_stays(dags, training_env) -> None:
    from include.mlops.registry import champion, get_version, set_champion

    set_champion(client(), MODEL, 1)  # what deploy_model does
    run = train(dags, seed=7)
    assert run.state == "success", task_states(run)
    assert get_version(client(), MODEL, 2).status == "Approved"
    assert champion(client(), MODEL).version in (1, "1")
    evaluation = run.get_task_instance("evaluate").xcom_pull(task_ids="evaluate")
    assert evaluation["champion"]["version"] in (1, "1")  # re-scored on this run's test split
    assert "roc_auc" in evaluation["champion"]["metrics"]


def test_gate_failure_stops_before_registration(dags, training_env) -> None:
    from include.mlops.registry import list_versions

    before = len(list_versions(client(), MODEL))
    run = train(dags, min_objective=0.999, seed=3)
    states = task_states(run)
    assert run.state == "failed"
    assert states["evaluate"] == "failed" and states["register"] == "upstream_failed"
    assert len(list_versions(client(), MODEL)) == before


def test_bad_params_are_refused_before_any_work(dags, training_env) -> None:
    run = train(dags, problem_type="regression", objective_metric="roc_auc")
    states = task_states(run)
    assert states["resolve_request"] == "failed" and states["prepare_data"] == "upstream_failed"


def test_a_mistyped_target_fails_resolve_request_naming_the_columns(dags, training_env) -> None:
    """Before the quality gate: the run stops at resolve_request and says what exists."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from include.mlops.airflow.training import resolve_request

    run = train(dags, target="churn")
    states = task_states(run)
    assert states["resolve_request"] == "failed" and states["prepare_data"] == "upstream_failed"
    manual = SimpleNamespace(run_type="manual")
    conf = {"dataset": DATASET, "target": "churn", "model_name": MODEL,
            "algorithms": ["logistic_regression"], "time_column": "signup_day"}  # fmt: skip
    with pytest.raises(AirflowFailException) as refused:
        resolve_request(conf, dag_run=manual, triggering_asset_events={})
    message = str(refused.value)
    assert "target 'churn' is not a column of 'train_churn'" in message
    assert "time_column 'signup_day' is not a column" in message
    assert "churned" in message and "signup_date" in message  # the columns it has
    with pytest.raises(AirflowFailException, match="'nowhere' has no catalog entry"):
        resolve_request({**conf, "dataset": "nowhere", "target": "churned", "time_column": None},
                        dag_run=manual, triggering_asset_events={})  # fmt: skip


def test_bias_gate_block_fails_like_the_other_gates(dags, s3_server, training_env) -> None:
    import json

    from include.mlops.etl.naming import safe_run_id
    from include.mlops.registry import list_versions

    before = len(list_versions(client(), MODEL))
    run = train(dags, bias_facets=["plan=basic"], bias_gate="block", bias_bounds={"DI": [5, 6]},
                seed=5)  # fmt: skip
    states = task_states(run)
    assert run.state == "failed"
    assert states["evaluate"] == "failed" and states["register"] == "upstream_failed"
    assert len(list_versions(client(), MODEL)) == before
    # The report the failure names: the gate's verdict, the facet, the metric, the numbers.
    key = f"reports/evaluation/{MODEL}/candidate-{safe_run_id(run.run_id)}/bias.json"
    gate = json.loads(s3_server.lake().read_bytes(key))["gate"]
    assert gate["status"] == "failed"
    (violation,) = gate["violations"]
    assert violation["message"].startswith("facet 'plan=basic': DI = ")
    assert violation["message"].endswith("outside [5, 6]")


def test_unknown_or_malformed_facets_are_refused_naming_them(s3_server, training_env) -> None:
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from include.mlops.airflow.training import resolve_request

    manual = SimpleNamespace(run_type="manual")
    base = {"dataset": DATASET, "target": "churned", "model_name": MODEL}
    for facets, named in ((["salary>=10"], "no column 'salary'"), (["plan>=2"], "'plan>=2'"),
                          (["plan=="], "'plan=='")):  # fmt: skip
        with pytest.raises(AirflowFailException, match=named):
            resolve_request({**base, "bias_facets": facets}, dag_run=manual,
                            triggering_asset_events=None)  # fmt: skip
    request = resolve_request({**base, "bias_facets": ["age>=60"]}, dag_run=manual,
                              triggering_asset_events=None)  # fmt: skip
    assert request["bias_facets"] == ["age>=60"]


def test_unattended_runs_retrain_the_champion_spec(s3_server, training_env, tmp_path) -> None:
    """Weekly / new-data / drift runs reuse the champion's stored spec, or skip."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    from include.mlops.airflow.training import resolve_request
    from include.mlops.demo.landing import write_landing_file
    from include.mlops.etl.catalog import record_partition
    from include.mlops.etl.load import publish_partition
    from include.mlops.etl.pipeline import ingest_partition

    drift = SimpleNamespace(extra={"model_name": MODEL, "version": "1", "features": ["age"]})
    # The champion's own data: retraining would repeat it (the data policy's skip).
    with pytest.raises(AirflowSkipException, match=f"{MODEL} v1 already trained on {DATASET}"):
        resolve_request({"model_name": "some_default"}, dag_run=SimpleNamespace(run_type="asset_triggered"),
                        triggering_asset_events={"drift_detected": [drift]})  # fmt: skip
    src = tmp_path / "2026-11-03.csv"
    write_landing_file(src, fmt="csv", n_rows=1500, seed=13, start_id=1 + 10_000 * 13)
    result = ingest_partition(
        s3_server.lake(), dataset=DATASET, source_fs=pafs.LocalFileSystem(), source_paths=[str(src)],
        partition="2026-11-03", run_id="seed_2026-11-03", pii_salt="s",
    )  # fmt: skip
    publish_partition(s3_server.lake(), result)
    record_partition(s3_server.lake(), DATASET, result.schema, result)
    request = resolve_request(
        {"model_name": "some_default"},
        dag_run=SimpleNamespace(run_type="asset_triggered"),
        triggering_asset_events={"drift_detected": [drift]},
    )
    assert (request["model_name"], request["dataset"], request["max_trials"]) == (MODEL, DATASET, 4)

    other_data = SimpleNamespace(extra={"dataset": "orders", "partition": "2026-11-03"})
    with pytest.raises(AirflowSkipException, match="nothing to do"):
        resolve_request({"model_name": MODEL}, dag_run=SimpleNamespace(run_type="asset_triggered"),
                        triggering_asset_events={"curated_orders": [other_data]})  # fmt: skip
    with pytest.raises(AirflowSkipException, match="no champion"):
        resolve_request({"model_name": "never_trained"}, dag_run=SimpleNamespace(run_type="scheduled"),
                        triggering_asset_events={})  # fmt: skip


def test_one_unattended_retraining_per_model_at_a_time(training_env) -> None:
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    from include.mlops.airflow.training import RETRAIN_RUN_TAG, resolve_request

    class RunStates:  # what Airflow's RuntimeTaskInstance.get_dagrun_state answers
        def __init__(self, states: dict[str, str]) -> None:
            self.states = states

        def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
            return self.states[run_id]

    drift = {"drift_detected": [SimpleNamespace(extra={"model_name": MODEL, "version": "1"})]}

    def retrain(run_id: str, states: dict[str, str]) -> dict:
        return resolve_request({"model_name": MODEL}, triggering_asset_events=drift,
                               dag_run=SimpleNamespace(run_type="asset_triggered", run_id=run_id),
                               ti=RunStates(states))  # fmt: skip

    retrain("drift_1", {})
    assert client().get_registered_model(MODEL).tags[RETRAIN_RUN_TAG] == "drift_1"
    with pytest.raises(AirflowSkipException, match="already being retrained by run drift_1"):
        retrain("drift_2", {"drift_1": "running"})
    retrain("drift_3", {"drift_1": "success"})
    assert client().get_registered_model(MODEL).tags[RETRAIN_RUN_TAG] == "drift_3"
