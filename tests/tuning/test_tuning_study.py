"""The tuning spec, the sampler and pruner of each strategy, and the shared study."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from include.mlops.tuning.study import (
    GRID_PARAM,
    STORAGE_ENV,
    TuningSpec,
    boosting_rounds,
    create_or_load_study,
    draw_candidate,
    grid_points,
    pruner_for,
    sampler_for,
    storage_url_from_env,
    study_deadline,
    trial_budget,
    worker_seed,
)


def _spec(**overrides: object) -> TuningSpec:
    values: dict[str, object] = {
        "strategy": "bayesian",
        "objective": "roc_auc",
        "algorithms": ["xgboost", "logistic_regression"],
        "problem_type": "binary",
        "max_trials": 10,
    }
    values.update(overrides)
    return TuningSpec(**values)  # type: ignore[arg-type]


def test_spec_is_json_able_and_round_trips() -> None:
    spec = _spec(timeout_minutes=30, fixed_params={"xgboost__n_estimators": 50})
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["direction"] == "maximize"
    assert data["algorithms"] == ["xgboost", "logistic_regression"]
    assert TuningSpec.from_dict(data) == spec
    assert spec.timeout_seconds == 1800.0
    assert spec.deadline(1000.0) == 2800.0
    assert _spec().deadline(1000.0) is None


@pytest.mark.parametrize(
    ("objective", "direction"), [("roc_auc", "maximize"), ("log_loss", "minimize")]
)
def test_direction_follows_the_metric(objective: str, direction: str) -> None:
    assert _spec(objective=objective).direction == direction
    assert _spec(objective="rmse", problem_type="regression", algorithms=["ridge"]).direction == (
        "minimize"
    )


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"strategy": "annealing"}, "strategy 'annealing'"),
        ({"objective": "rmse"}, "objective 'rmse' does not apply to binary"),
        ({"algorithms": ["svm"]}, "unknown algorithm 'svm'"),
        ({"algorithms": ["ridge"]}, "'ridge' does not solve binary"),
        ({"algorithms": []}, "algorithms is empty"),
        ({"problem_type": "auto"}, "infer 'auto' before tuning"),
        ({"max_trials": 0}, "max_trials 0"),
        ({"max_parallel_trials": 0}, "max_parallel_trials 0"),
        ({"timeout_minutes": -1}, "timeout_minutes -1"),
        ({"fixed_params": {"n_estimators": 5}}, "fixed parameter 'n_estimators'"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match="invalid tuning spec") as caught:
        _spec(**overrides)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("strategy", "sampler", "pruner"),
    [
        ("random", optuna.samplers.RandomSampler, optuna.pruners.NopPruner),
        ("grid", optuna.samplers.GridSampler, optuna.pruners.NopPruner),
        ("bayesian", optuna.samplers.TPESampler, optuna.pruners.NopPruner),
        ("hyperband", optuna.samplers.TPESampler, optuna.pruners.HyperbandPruner),
    ],
)
def test_each_strategy_gets_its_sampler_and_pruner(
    strategy: str, sampler: type, pruner: type
) -> None:
    spec = _spec(strategy=strategy)
    assert isinstance(sampler_for(spec), sampler)
    assert isinstance(pruner_for(spec), pruner)


def test_tpe_models_each_algorithm_separately() -> None:
    tpe = sampler_for(_spec(strategy="bayesian"))
    assert isinstance(tpe, optuna.samplers.TPESampler)
    # group + multivariate is what lets TPE handle a per-algorithm conditional space.
    assert tpe._group and tpe._multivariate and tpe._constant_liar


def test_pinned_parameters_wrap_the_sampler() -> None:
    sampler = sampler_for(_spec(strategy="random", fixed_params={"xgboost__n_estimators": 50}))
    assert isinstance(sampler, optuna.samplers.PartialFixedSampler)


def test_hyperband_resources_are_boosting_rounds() -> None:
    assert boosting_rounds(_spec(strategy="hyperband")) == (50, 600)
    pinned = _spec(strategy="hyperband", fixed_params={"xgboost__n_estimators": 80})
    assert boosting_rounds(pinned) == (80, 80)
    pruner = pruner_for(_spec(strategy="hyperband"))
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    # fit_candidate first reports at round 10 (every n_estimators/5 rounds, at most 10).
    assert pruner._min_resource == 10
    assert pruner._max_resource == 600


def test_grid_is_the_sum_not_the_product_of_the_algorithms_grids() -> None:
    spec = _spec(strategy="grid", algorithms=["xgboost", "random_forest", "logistic_regression"])
    points = grid_points(spec)
    # 4 xgboost + 4 random forest + 4 logistic regression; a union GridSampler would walk
    # 3 * 4 * 4 * 4 = 192 points to cover these 12 models.
    assert len(points) == 12
    assert sum(1 for algorithm, _ in points.values() if algorithm == "xgboost") == 4
    assert "logistic_regression(C=0.1)" in points
    sampler = sampler_for(spec)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    assert sampler._search_space == {GRID_PARAM: list(points)}
    assert trial_budget(spec) == 10  # max_trials
    assert trial_budget(_spec(strategy="grid", max_trials=100)) == 8


def test_grid_applies_pinned_parameters() -> None:
    spec = _spec(strategy="grid", algorithms=["xgboost"], fixed_params={"xgboost__max_depth": 4})
    points = grid_points(spec)
    assert len(points) == 2  # learning_rate x2; max_depth pinned
    assert all(params["max_depth"] == 4 for _, params in points.values())


def test_workers_get_different_seeds_and_a_retry_does_not_replay() -> None:
    seeds = {worker_seed(0, w, 0) for w in range(4)}
    assert len(seeds) == 4
    assert worker_seed(0, 1, 5) != worker_seed(0, 1, 0)
    assert worker_seed(7, 0, 0) == worker_seed(7, 0, 0)


def test_a_worker_draws_the_same_first_trials_whichever_worker_starts_first(
    tmp_path: Path,
) -> None:
    """Its seed counts its own trials, not the study's: worker 1 joining a study where worker
    0 already asked draws what it draws joining an empty one (the runs of a search do not
    depend on a race), and its retry draws something new."""
    spec = _spec(strategy="random", seed=3)

    def first_draw(url: str, *, others_first: int) -> dict:
        create_or_load_study(url, "s", spec)
        for _ in range(others_first):
            create_or_load_study(url, "s", spec, worker=0).ask().set_user_attr("worker", 0)
        trial = create_or_load_study(url, "s", spec, worker=1).ask()
        trial.set_user_attr("worker", 1)
        return draw_candidate(trial, spec)[1]

    alone = first_draw(f"sqlite:///{tmp_path}/a.db", others_first=0)
    assert first_draw(f"sqlite:///{tmp_path}/b.db", others_first=3) == alone
    # Worker 1 again on b (a retry after one trial of its own): a new sequence.
    retry = create_or_load_study(f"sqlite:///{tmp_path}/b.db", "s", spec, worker=1).ask()
    assert draw_candidate(retry, spec)[1] != alone


def test_storage_url_comes_from_the_environment() -> None:
    assert storage_url_from_env({STORAGE_ENV: "postgresql://db/optuna"}) == "postgresql://db/optuna"
    assert storage_url_from_env({}, default="sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValueError, match=STORAGE_ENV):
        storage_url_from_env({})


def test_study_is_created_once_and_joined(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/optuna.db"
    spec = _spec()
    first = create_or_load_study(url, "churn-run-1", spec)
    first.enqueue_trial({"algorithm": "logistic_regression"})
    joined = create_or_load_study(url, "churn-run-1", spec, worker=1)
    assert joined._study_id == first._study_id
    assert len(joined.trials) == 1
    assert joined.user_attrs["spec"] == spec.to_dict()
    assert joined.direction == optuna.study.StudyDirection.MAXIMIZE
    # Every worker counts the timeout from the study's creation.
    timed = _spec(timeout_minutes=2)
    created = create_or_load_study(url, "timed", timed)
    assert study_deadline(created, timed) == created.user_attrs["created_at"] + 120
    assert study_deadline(joined, spec) is None


def test_joining_with_another_spec_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/optuna.db"
    create_or_load_study(url, "churn-run-1", _spec())
    with pytest.raises(ValueError, match="another tuning spec"):
        create_or_load_study(url, "churn-run-1", _spec(max_trials=99))
    with pytest.raises(ValueError, match="maximizes its objective"):
        create_or_load_study(url, "churn-run-1", _spec(objective="log_loss"))
