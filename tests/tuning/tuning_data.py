"""Data and a worker entry point shared by the tuning tests and their spawned processes.

A spawned process imports this module by name (pytest puts ``tests/tuning`` on
``sys.path`` and ``multiprocessing`` hands the path to its children), so it must stay
importable without pytest fixtures.
"""

from __future__ import annotations

from typing import Any

from include.mlops.features.split import Splits, split_dataset

TARGET = "target"


def breast_cancer_splits(rows: int = 600) -> Splits:
    """The first ``rows`` rows of scikit-learn's breast cancer data, split 80/10/10."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:rows]
    return split_dataset(frame, target=TARGET, problem_type="binary", seed=0)


def worker_process(
    storage_url: str, study_name: str, spec: dict[str, Any], worker: int, barrier: Any, results: Any
) -> None:
    """One tuning worker in its own process: join the study, wait for the others, tune."""
    from include.mlops.tuning.study import TrialClaims, TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import run_trials

    splits = breast_cancer_splits()
    tuning = TuningSpec.from_dict(spec)
    study = create_or_load_study(storage_url, study_name, tuning, worker=worker)
    # Start together, so the workers really compete for the last slots of the budget.
    barrier.wait(timeout=120)
    outcomes = run_trials(
        study, spec=tuning, splits=splits, target=TARGET, worker=worker,
        claims=TrialClaims(storage_url, study_name),
    )  # fmt: skip
    results.put((worker, [o.to_dict() for o in outcomes]))
