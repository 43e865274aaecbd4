"""Tuning efficiency: Bayesian (Optuna TPE) with 30 trials vs random search with 200.

Same data, same splits, same run: the demo churn data (``generate_churn``, 20,000 rows,
80/10/10 stratified split), binary, objective validation ROC-AUC, algorithm xgboost
(early stopping on validation, as in ``train_model``). Each strategy gets its own
in-memory Optuna study built by ``create_or_load_study`` and is searched by the same
``run_trials`` loop the Airflow tuning workers use, one trial at a time
(``max_parallel_trials=1``). The best configuration of each is then refitted with
``fit_candidate`` and scored on the untouched test split, so the comparison does not
rest only on the split that chose it. Repeated for ``--seeds`` seeds (data, split and
sampler seeded alike).

Prints the ratio it exists for: best validation ROC-AUC of bayesian(30) ÷ best
validation ROC-AUC of random(200), per seed, their mean and minimum (target ≥ 0.995 on
every seed, i.e. on the minimum). Also printed, to show how much the search matters on
this data: the spread of random's trials and random's best after its first 30 trials.

    python benchmarks/bench_tuning.py [--rows 20000] [--seeds 3] [--bayes-trials 30]
                                      [--random-trials 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.mlops.features.split import Splits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = "churned"
#: Never features: the key and the PII column (what the catalog excludes in train_model).
EXCLUDE = ("customer_id", "email")
OBJECTIVE = "roc_auc"
TARGET_RATIO = 0.995


def search(strategy: str, trials: int, splits: Splits, seed: int) -> dict:
    """Run one strategy to its budget in a fresh in-memory study; refit and test its best."""
    import optuna

    from include.mlops.training.fit import fit_candidate, objective_score
    from include.mlops.tuning.study import TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import best_trial, run_trials, study_summary

    spec = TuningSpec(
        strategy=strategy,
        objective=OBJECTIVE,
        algorithms=("xgboost",),
        problem_type="binary",
        max_trials=trials,
        max_parallel_trials=1,
        seed=seed,
    )
    study = create_or_load_study(
        optuna.storages.InMemoryStorage(), f"bench-{strategy}-{seed}", spec
    )
    start = time.perf_counter()
    outcomes = run_trials(study, spec=spec, splits=splits, target=TARGET, exclude=EXCLUDE)
    wall = time.perf_counter() - start
    best = best_trial(study)
    summary = study_summary(study)

    refit = fit_candidate(
        best["algorithm"], best["params"], splits, target=TARGET, problem_type="binary",
        seed=seed, exclude=EXCLUDE, objective=OBJECTIVE,
    )  # fmt: skip
    X_test = splits.test.drop(columns=[TARGET])
    proba = refit.pipeline.predict_proba(X_test)
    test = objective_score(
        OBJECTIVE, splits.test[TARGET], proba, "binary", classes=list(refit.pipeline.classes_)
    )
    values = [o.value for o in outcomes if o.value is not None]
    first_30 = [o.value for o in outcomes[:30] if o.value is not None]
    return {
        "strategy": strategy,
        "trials": summary["trials"],
        "failed": summary["states"].get("FAIL", 0),
        "wall": wall,
        "compute": summary["compute_seconds"],
        "best_val": float(best["value"]),
        "refit_val": float(refit.score),
        "test": float(test),
        "best_trial": best["number"] + 1,
        "median_val": statistics.median(values),
        "worst_val": min(values),
        "best_of_first_30": max(first_30),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bayes-trials", type=int, default=30)
    parser.add_argument("--random-trials", type=int, default=200)
    opts = parser.parse_args()

    import optuna

    from include.mlops.demo.churn import generate_churn
    from include.mlops.features.split import split_dataset

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(
        f"churn {opts.rows:,} rows, xgboost, validation {OBJECTIVE}; "
        f"bayesian {opts.bayes_trials} trials vs random {opts.random_trials} trials; "
        f"{opts.seeds} seed(s); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    ratios: list[float] = []
    test_ratios: list[float] = []
    for seed in range(1, opts.seeds + 1):
        df = generate_churn(opts.rows, seed=seed)
        splits = split_dataset(df, target=TARGET, problem_type="binary", seed=seed)
        print(f"seed {seed}: split {splits.sizes()}")
        results = {}
        for strategy, trials in (("bayesian", opts.bayes_trials), ("random", opts.random_trials)):
            r = search(strategy, trials, splits, seed)
            results[strategy] = r
            print(
                f"  seed {seed} {strategy:<8} {r['trials']:>3} trials ({r['failed']} failed)"
                f"  {r['wall']:6.1f}s wall ({r['compute']:6.1f}s in trials)"
                f"  best val {OBJECTIVE} {r['best_val']:.4f} (trial {r['best_trial']}, refit"
                f" {r['refit_val']:.4f})  test {r['test']:.4f}"
                f"  | trials median {r['median_val']:.4f} worst {r['worst_val']:.4f}"
                f" best-of-first-30 {r['best_of_first_30']:.4f}"
            )
        ratio = results["bayesian"]["best_val"] / results["random"]["best_val"]
        test_ratio = results["bayesian"]["test"] / results["random"]["test"]
        ratios.append(ratio)
        test_ratios.append(test_ratio)
        print(f"  seed {seed} ratio val {ratio:.4f}  test {test_ratio:.4f}")

    mean, low = statistics.mean(ratios), min(ratios)
    print(
        f"test-split ratio (refitted best configs): mean {statistics.mean(test_ratios):.4f}"
        f"  min {min(test_ratios):.4f}  (information)"
    )
    print(f"total {time.perf_counter() - started:.0f}s, load {os.getloadavg()[0]:.1f}")
    print(
        f"RATIO best bayesian({opts.bayes_trials}) / best random({opts.random_trials}) "
        f"validation {OBJECTIVE} = {mean:.4f} mean, {low:.4f} min over {len(ratios)} seed(s)"
        f"  (target >= {TARGET_RATIO} on every seed: {'PASS' if low >= TARGET_RATIO else 'FAIL'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
