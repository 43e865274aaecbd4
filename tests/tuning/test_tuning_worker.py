"""One worker's trial loop: strategies end to end, pruning, failures, budget and deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from include.mlops.features.split import Splits
from include.mlops.training import fit as training_fit
from include.mlops.tuning import worker as tuning_worker
from include.mlops.tuning.study import TuningSpec, create_or_load_study, grid_points
from include.mlops.tuning.worker import (
    TrialOutcome,
    TuningFailedError,
    best_trial,
    run_trials,
    study_summary,
)

TARGET = "target"
#: The logger whose lines a user reads in the tune task's log.
WORKER_LOG = "include.mlops.tuning.worker"
#: Small boosting budgets keep every xgboost trial well under a second.
FAST = {"xgboost__n_estimators": 50}


def _study(tmp_path: Path, spec: TuningSpec, name: str = "study") -> optuna.Study:
    return create_or_load_study(f"sqlite:///{tmp_path}/optuna.db", name, spec)


def _spec(strategy: str, **overrides: Any) -> TuningSpec:
    values: dict[str, Any] = {
        "strategy": strategy,
        "objective": "roc_auc",
        "algorithms": ["xgboost", "logistic_regression"],
        "problem_type": "binary",
        "max_trials": 6,
        "fixed_params": FAST,
    }
    values.update(overrides)
    return TuningSpec(**values)


@pytest.mark.parametrize("strategy", ["random", "bayesian", "hyperband"])
def test_each_strategy_runs_trials_end_to_end(
    strategy: str, splits: Splits, tmp_path: Path, log_lines: Callable[[str], list[str]]
) -> None:
    spec = _spec(strategy)
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)
    lines = log_lines(WORKER_LOG)

    assert len(outcomes) == 6 == len(study.trials)
    assert {o.state for o in outcomes} <= {"COMPLETE", "PRUNED"}
    assert all(isinstance(o, TrialOutcome) for o in outcomes)
    json.dumps([o.to_dict() for o in outcomes])  # XCom-able
    # The user reads progress in the task log: trial k of N, the value, the best so far.
    assert lines[0].startswith("trial 1 of 6 (worker 0): ")
    assert "best so far" in lines[-2]
    assert "budget reached" in lines[-1]

    best = best_trial(study)
    assert best["algorithm"] in spec.algorithms
    assert best["value"] == max(o.value for o in outcomes if o.state == "COMPLETE")
    assert not any("__" in name for name in best["params"])  # estimator names
    if best["algorithm"] == "xgboost":
        assert best["params"]["n_estimators"] == 50  # pinned
        assert best["best_iteration"] is not None


def test_grid_visits_every_grid_point_once(splits: Splits, tmp_path: Path) -> None:
    spec = _spec("grid", max_trials=100)
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)

    points = grid_points(spec)
    assert len(outcomes) == len(points) == 8  # xgboost 2x2 (n_estimators pinned) + 4 C values
    visited = [t.params["grid_point"] for t in study.trials]
    assert sorted(visited) == sorted(points)
    drawn = sorted(json.dumps([o.algorithm, o.params], sort_keys=True) for o in outcomes)
    assert len(set(drawn)) == len(points)


def test_hyperband_prunes_hopeless_boosting(splits: Splits, tmp_path: Path) -> None:
    spec = _spec("hyperband", algorithms=["xgboost"], max_trials=24)
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)

    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [o.state for o in outcomes]
    for trial in pruned:
        # Stopped before its 50 rounds, with the value it had then as its value.
        assert max(trial.intermediate_values) < 50
        assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]
    assert any(o.state == "COMPLETE" for o in outcomes)
    summary = study_summary(study)
    assert summary["states"]["PRUNED"] == len(pruned)
    assert summary["states"]["COMPLETE"] + len(pruned) == 24


def test_a_failing_trial_is_recorded_and_the_worker_goes_on(
    splits: Splits,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: Callable[[str], list[str]],
) -> None:
    def fit_or_break(algorithm: str, *args: Any, **kwargs: Any) -> Any:
        if algorithm == "logistic_regression":
            raise ArithmeticError("solver diverged")
        return training_fit.fit_candidate(algorithm, *args, **kwargs)

    monkeypatch.setattr(tuning_worker, "fit_candidate", fit_or_break)
    spec = _spec("random", max_trials=8)
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)
    lines = log_lines(WORKER_LOG)

    assert len(outcomes) == 8
    failed = [o for o in outcomes if o.state == "FAIL"]
    assert failed and len(failed) < 8
    assert all(o.algorithm == "logistic_regression" for o in failed)
    assert all(o.error == "ArithmeticError: solver diverged" and o.value is None for o in failed)
    assert any("FAILED (ArithmeticError: solver diverged)" in line for line in lines)
    trial = study.trials[failed[0].number]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "ArithmeticError: solver diverged"
    assert best_trial(study)["algorithm"] == "xgboost"
    assert study_summary(study)["states"]["FAIL"] == len(failed)


def test_no_completed_trial_is_a_named_error(
    splits: Splits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("no usable feature")

    monkeypatch.setattr(tuning_worker, "fit_candidate", broken)
    spec = _spec("random", max_trials=2)
    study = _study(tmp_path, spec)
    run_trials(study, spec=spec, splits=splits, target=TARGET)
    with pytest.raises(TuningFailedError, match=r"2 fail.*ValueError: no usable feature"):
        best_trial(study)


def test_a_past_deadline_starts_nothing(
    splits: Splits, tmp_path: Path, log_lines: Callable[[str], list[str]]
) -> None:
    spec = _spec("random")
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET, deadline=time.time() - 1)
    lines = log_lines(WORKER_LOG)
    assert outcomes == [] and study.trials == []
    assert "deadline reached" in lines[-1]


def test_the_deadline_stops_the_loop_between_trials(
    splits: Splits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_fit(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.4)
        return training_fit.fit_candidate(*args, **kwargs)

    monkeypatch.setattr(tuning_worker, "fit_candidate", slow_fit)
    spec = _spec("random", algorithms=["logistic_regression"], max_trials=50, fixed_params={})
    study = _study(tmp_path, spec)
    started = time.time()
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET, deadline=started + 1.0)
    assert 1 <= len(outcomes) <= 4
    # The trial running at the deadline finishes; no new one starts after it. Judged from
    # the trials' own start times, not from wall-clock bounds a busy machine would break
    # (the small margin covers the moment between the deadline check and study.ask()).
    assert all(t.datetime_start.timestamp() <= started + 1.0 + 0.25 for t in study.trials)
    assert len(study.trials) == len(outcomes)


def test_the_budget_is_global_to_the_study(splits: Splits, tmp_path: Path) -> None:
    spec = _spec("random", algorithms=["logistic_regression"], max_trials=3, fixed_params={})
    study = _study(tmp_path, spec)
    assert len(run_trials(study, spec=spec, splits=splits, target=TARGET, worker=0)) == 3
    # A second worker joining the same study finds the budget spent.
    joined = create_or_load_study(f"sqlite:///{tmp_path}/optuna.db", "study", spec, worker=1)
    assert run_trials(joined, spec=spec, splits=splits, target=TARGET, worker=1) == []
    assert len(joined.trials) == 3


def test_a_retried_worker_fails_the_trial_its_dead_attempt_left_running(
    splits: Splits, tmp_path: Path, log_lines: Callable[[str], list[str]]
) -> None:
    spec = _spec("random", algorithms=["logistic_regression"], max_trials=2, fixed_params={})
    study = _study(tmp_path, spec)
    orphan = study.ask()
    orphan.set_user_attr("worker", 0)
    orphan.set_user_attr("host", "a-machine-that-died")
    orphan.set_user_attr("pid", 1)
    other_worker = study.ask()
    other_worker.set_user_attr("worker", 1)
    other_worker.set_user_attr("host", "elsewhere")
    other_worker.set_user_attr("pid", 1)

    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)
    lines = log_lines(WORKER_LOG)

    states = [t.state for t in study.trials]
    assert states[0] == TrialState.FAIL  # this worker's orphan
    assert states[1] == TrialState.RUNNING  # another worker's live trial is left alone
    assert outcomes == []  # two trials already hold the budget of 2
    assert "previous attempt never finished" in lines[0]


def test_a_trial_killed_before_its_owner_was_written_is_failed_once_old(
    splits: Splits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between ``ask`` and writing the trial's owner leaves a RUNNING trial
    no retry recognises by worker number: any worker fails it once it is older than a live
    worker needs (here 0 s), never a fresh one."""
    from include.mlops.tuning import worker as worker_module

    spec = _spec("random", algorithms=["logistic_regression"], max_trials=2, fixed_params={})
    study = _study(tmp_path, spec)
    study.ask()  # no user attrs: its process died right after
    assert run_trials(study, spec=spec, splits=splits, target=TARGET, worker=1)
    assert study.trials[0].state == TrialState.RUNNING  # younger than the grace: left alone

    study = _study(tmp_path, spec, name="second")
    study.ask()
    monkeypatch.setattr(worker_module, "UNOWNED_ORPHAN_AGE_S", 0.0)
    run_trials(study, spec=spec, splits=splits, target=TARGET, worker=1)
    assert study.trials[0].state == TrialState.FAIL


def test_summary_counts_states_and_compute_time(splits: Splits, tmp_path: Path) -> None:
    spec = _spec("random", max_trials=4)
    study = _study(tmp_path, spec)
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET)
    summary = study_summary(study)
    json.dumps(summary)
    assert summary["trials"] == 4
    assert summary["states"]["COMPLETE"] == 4
    assert summary["compute_seconds"] == pytest.approx(sum(o.seconds for o in outcomes))
    assert summary["wall_seconds"] >= summary["compute_seconds"] * 0.9
    assert summary["best_value"] == best_trial(study)["value"]
    assert sum(summary["per_algorithm"].values()) == 4
