"""Several worker processes share one study in PostgreSQL, as Airflow mapped tasks do."""

from __future__ import annotations

import multiprocessing
import queue
import uuid

from optuna.trial import TrialState
from tuning_data import worker_process

from include.mlops.tuning.study import TuningSpec, create_or_load_study

WORKERS = 3
MAX_TRIALS = 10
STUDY = f"shared-{uuid.uuid4().hex[:8]}"


def test_worker_processes_share_one_study_within_the_budget(pg_server) -> None:
    url = pg_server.url("optuna")
    spec = TuningSpec(
        strategy="bayesian",
        objective="roc_auc",
        algorithms=("xgboost", "logistic_regression"),
        problem_type="binary",
        max_trials=MAX_TRIALS,
        max_parallel_trials=WORKERS,
        fixed_params={"xgboost__n_estimators": 50},
    )
    # Created once before fanning out, as the DAG's task before the mapped workers does.
    create_or_load_study(url, STUDY, spec)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=worker_process, args=(url, STUDY, spec.to_dict(), w, barrier, results)
        )
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    reported: dict[int, list[dict]] = {}
    try:
        for _ in processes:
            worker, outcomes = results.get(timeout=120)
            reported[worker] = outcomes
    except queue.Empty:
        raise AssertionError(f"only workers {sorted(reported)} reported") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert all(p.exitcode == 0 for p in processes)

    study = create_or_load_study(url, STUDY, spec)
    trials = study.trials
    # Counting and asking happen under the study's claim lock: exactly the budget.
    assert len(trials) == MAX_TRIALS
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # Every trial is in the study exactly once and was run by the worker that says so.
    numbers = [o["number"] for outcomes in reported.values() for o in outcomes]
    assert sorted(numbers) == [t.number for t in trials]
    for worker, outcomes in reported.items():
        for outcome in outcomes:
            assert trials[outcome["number"]].user_attrs["worker"] == worker
            assert trials[outcome["number"]].value == outcome["value"]
    assert sum(1 for outcomes in reported.values() if outcomes) >= 2  # they really shared
