"""MLflow helpers on a real local store: experiments, the tuning run, trial child runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from include.mlops.features.split import split_dataset
from include.mlops.tracking.mlflow_runs import (
    BackgroundTrialLogger,
    TrialTracker,
    ensure_experiment,
    finish_run,
    log_dict_artifact,
    log_trial_run,
    mlflow_client,
    start_parent_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[mlflow.MlflowClient, Path]]:
    """A real MLflow store (SQLite + local artifacts), created once: migrations take seconds."""
    root = tmp_path_factory.mktemp("mlflow")
    yield mlflow_client(f"sqlite:///{root}/mlflow.db"), root


@pytest.fixture
def experiment(store: tuple[mlflow.MlflowClient, Path], request: pytest.FixtureRequest) -> str:
    client, root = store
    name = request.node.name.replace("[", "-").replace("]", "")
    return ensure_experiment(client, name, artifact_location=(root / "artifacts" / name).as_uri())


def test_ensure_experiment_is_idempotent_and_restores_deleted(
    store: tuple[mlflow.MlflowClient, Path],
) -> None:
    client, root = store
    first = ensure_experiment(client, "churn-tuning", artifact_location=(root / "a").as_uri())
    assert ensure_experiment(client, "churn-tuning") == first
    client.delete_experiment(first)
    assert ensure_experiment(client, "churn-tuning") == first
    assert client.get_experiment(first).lifecycle_stage == "active"


def test_parent_run_carries_the_spec(
    store: tuple[mlflow.MlflowClient, Path], experiment: str
) -> None:
    client, _ = store
    run_id = start_parent_run(
        client,
        experiment,
        run_name="tune-churn",
        tags={"model_name": "churn"},
        params={"strategy": "bayesian", "algorithms": ["xgboost", "ridge"], "max_trials": 20},
    )
    run = client.get_run(run_id)
    assert run.info.run_name == "tune-churn"
    assert run.info.status == "RUNNING"
    assert run.data.tags["model_name"] == "churn"
    assert run.data.params == {
        "strategy": "bayesian",
        "algorithms": '["xgboost", "ridge"]',
        "max_trials": "20",
    }
    finish_run(client, run_id, metrics={"best_val_roc_auc": 0.93}, tags={"best_trial": 4})
    log_dict_artifact(client, run_id, {"best": {"number": 4}}, "tuning/summary.json")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["best_val_roc_auc"] == 0.93
    assert run.data.tags["best_trial"] == "4"
    local = client.download_artifacts(run_id, "tuning/summary.json")
    assert json.loads(Path(local).read_text()) == {"best": {"number": 4}}


@pytest.mark.parametrize(
    ("state", "status"), [("COMPLETE", "FINISHED"), ("PRUNED", "FINISHED"), ("FAIL", "FAILED")]
)
def test_a_trial_is_a_child_run_with_params_metrics_and_duration(
    store: tuple[mlflow.MlflowClient, Path], experiment: str, state: str, status: str
) -> None:
    client, _ = store
    parent = start_parent_run(client, experiment, run_name="tune")
    error = "ValueError: bad" if state == "FAIL" else None
    run_id = log_trial_run(
        client,
        experiment_id=experiment,
        parent_run_id=parent,
        trial_number=7,
        algorithm="xgboost",
        params={"max_depth": 4, "learning_rate": 0.1},
        metrics={"val_roc_auc": None if error else 0.91, "val_f1": None if error else 0.8},
        duration_s=2.5,
        state=state,  # type: ignore[arg-type]
        error=error,
        tags={"worker": 2},
        history={"val_roc_auc_by_round": {10: 0.8, 20: 0.85}},
    )
    run = client.get_run(run_id)
    assert run.data.tags[MLFLOW_PARENT_RUN_ID] == parent
    assert run.info.run_name == "trial-7-xgboost"
    assert run.info.status == status
    assert run.data.tags["trial_state"] == state
    assert run.data.tags["worker"] == "2"
    assert run.data.params == {"algorithm": "xgboost", "max_depth": "4", "learning_rate": "0.1"}
    assert run.data.metrics["duration_s"] == 2.5
    assert run.info.end_time - run.info.start_time == pytest.approx(2500, abs=5)
    curve = client.get_metric_history(run_id, "val_roc_auc_by_round")
    assert {(m.step, m.value) for m in curve} == {(10, 0.8), (20, 0.85)}
    if error:
        assert "val_roc_auc" not in run.data.metrics
        assert run.data.tags["error"] == error
        assert "failed: ValueError: bad" in run.data.tags["mlflow.note.content"]
    else:
        assert run.data.metrics["val_roc_auc"] == 0.91


def test_every_tuning_trial_becomes_a_child_run(
    store: tuple[mlflow.MlflowClient, Path], experiment: str, tmp_path: Path
) -> None:
    from include.mlops.tuning.study import TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import run_trials

    client, _ = store
    splits = split_dataset(_breast_cancer(), target="target", problem_type="binary", seed=0)
    spec = TuningSpec(
        strategy="hyperband",
        objective="roc_auc",
        algorithms=("xgboost", "logistic_regression"),
        problem_type="binary",
        max_trials=8,
        fixed_params={"xgboost__n_estimators": 50},
    )
    study = create_or_load_study(f"sqlite:///{tmp_path}/optuna.db", "tracked", spec)
    parent = start_parent_run(client, experiment, run_name="tune", params=spec.to_dict())
    tracker = TrialTracker.connect(client, experiment_id=experiment, parent_run_id=parent)
    outcomes = run_trials(study, spec=spec, splits=splits, target="target", tracker=tracker)

    children = client.search_runs(
        [experiment], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent}'"
    )
    assert len(children) == len(outcomes) == 8
    by_number = {int(run.data.tags["trial_number"]): run for run in children}
    for outcome in outcomes:
        run = by_number[outcome.number]
        assert run.info.run_name == f"trial-{outcome.number}-{outcome.algorithm}"
        assert run.data.tags["optuna_study"] == "tracked"
        assert run.data.params["algorithm"] == outcome.algorithm
        assert run.data.metrics["duration_s"] == pytest.approx(outcome.seconds)
        assert run.data.metrics["val_roc_auc"] == pytest.approx(outcome.value)
        if outcome.state == "COMPLETE":
            assert {"val_f1", "val_log_loss", "fit_seconds"} <= set(run.data.metrics)
        if outcome.algorithm == "xgboost":
            assert run.data.params["n_estimators"] == "50"
            assert client.get_metric_history(run.info.run_id, "val_roc_auc_by_round")


def test_background_logger_logs_every_queued_trial_by_close(
    store: tuple[mlflow.MlflowClient, Path], experiment: str
) -> None:
    client, _ = store
    parent = start_parent_run(client, experiment, run_name="tune-background")
    tracker = TrialTracker.connect(client, experiment_id=experiment, parent_run_id=parent)
    with BackgroundTrialLogger(tracker) as background:
        for number in range(5):
            assert background.log_trial(
                trial_number=number, algorithm="ridge", params={"alpha": number},
                metrics={"val_r2": 0.1 * number}, duration_s=0.5, state="COMPLETE",
            ) == ""  # fmt: skip
    assert (background.logged, background.failed) == (5, 0)
    children = client.search_runs(
        [experiment], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent}'"
    )
    assert sorted(run.data.metrics["val_r2"] for run in children) == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4]
    )


def test_background_logger_reports_failures_without_raising(
    log_lines: Callable[[str], list[str]],
) -> None:
    class Unreachable:
        def log_trial(self, **kwargs: object) -> str:
            raise ConnectionError("MLflow is down")

    background = BackgroundTrialLogger(Unreachable())  # type: ignore[arg-type]
    background.log_trial(trial_number=3, algorithm="ridge", params={}, metrics={},
                         duration_s=0.1, state="COMPLETE")  # fmt: skip
    background.close()
    assert (background.logged, background.failed) == (0, 1)
    lines = log_lines("include.mlops.tracking.mlflow_runs")
    assert lines == ["could not log trial 3 to MLflow: MLflow is down"]


def test_a_broken_tracker_does_not_stop_tuning(
    tmp_path: Path, log_lines: Callable[[str], list[str]]
) -> None:
    from include.mlops.tuning.study import TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import run_trials

    class Unreachable:
        def log_trial(self, **kwargs: object) -> str:
            raise ConnectionError("MLflow is down")

    splits = split_dataset(_breast_cancer(), target="target", problem_type="binary", seed=0)
    spec = TuningSpec(
        strategy="random",
        objective="roc_auc",
        algorithms=("logistic_regression",),
        problem_type="binary",
        max_trials=2,
    )
    study = create_or_load_study(f"sqlite:///{tmp_path}/optuna.db", "untracked", spec)
    outcomes = run_trials(
        study,
        spec=spec,
        splits=splits,
        target="target",
        tracker=Unreachable(),  # type: ignore[arg-type]
    )
    lines = log_lines("include.mlops.tuning.worker")
    assert [o.state for o in outcomes] == ["COMPLETE", "COMPLETE"]
    assert any("could not log trial 0 to MLflow: MLflow is down" in line for line in lines)


def _breast_cancer() -> pd.DataFrame:
    """600 rows of scikit-learn's breast cancer data (ships offline)."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame.iloc[:600]
