"""One tuning worker's loop, and what the shared study says once the workers are done.

Each Airflow mapped task is one worker; ``max_parallel_trials`` of them run at once
against the same study (see :mod:`include.mlops.tuning.study`). A worker asks the study
for a trial, fits it with :func:`include.mlops.training.fit.fit_candidate`, tells the
study the validation objective, logs the trial as an MLflow child run, and repeats until
the study's global budget or the deadline is reached.

Budget: before each trial a worker counts the study's started trials (complete, pruned,
failed or running) and stops at ``max_trials``. Counting and asking are two steps, so
workers that count at the same moment may each start one more trial: the study can
overshoot ``max_trials`` by at most the number of concurrent workers minus one. That is
the price of not locking the database around ``ask``; it never undershoots.

Deadline: checked between trials. A trial that has started runs to its end (XGBoost's
early stopping bounds it), so the last trials may finish up to one trial's length after
the deadline; set Airflow's ``execution_timeout`` above ``timeout_minutes`` with that
margin.

A trial that raises is recorded as FAIL with its message and the worker moves on: one
bad parameter combination must not end the search. Only interpreter-level exits
(``KeyboardInterrupt``, ``SystemExit``) stop the worker, after the trial is marked failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from include.mlops.jsonable import jsonable
from include.mlops.training.fit import fit_candidate
from include.mlops.training.threads import TrialThreads
from include.mlops.tuning.study import (
    WORKER_ATTR,
    TrialClaims,
    TuningSpec,
    draw_candidate,
    trial_budget,
)

if TYPE_CHECKING:
    from include.mlops.features.split import Splits
    from include.mlops.tracking.mlflow_runs import BackgroundTrialLogger, TrialTracker

log = logging.getLogger(__name__)

#: Trial states that use up the budget (a WAITING trial was only enqueued).
STARTED_STATES: tuple[TrialState, ...] = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.FAIL,
    TrialState.RUNNING,
)


class TuningFailedError(RuntimeError):
    """No trial of a study completed, so there is no best model to train."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial did; small and JSON-able (Airflow XCom).

    Attributes:
        number: Optuna trial number.
        algorithm: Algorithm of the trial.
        params: Estimator parameters (unprefixed).
        value: Validation objective (for a pruned trial: at the round it was stopped);
            ``None`` when the trial failed.
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        seconds: Wall time of the trial (drawing, fitting and scoring).
        worker: The worker that ran it.
        error: Why it failed, if it did.
    """

    number: int
    algorithm: str
    params: dict[str, Any]
    value: float | None
    state: str
    seconds: float
    worker: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as a plain dict."""
        return asdict(self)


@dataclass
class _TrialResult:
    """An outcome plus the details only the tracker needs."""

    outcome: TrialOutcome
    scores: dict[str, float]
    fit: dict[str, Any]
    curve: dict[int, float]


def run_trials(
    study: optuna.Study,
    *,
    spec: TuningSpec,
    splits: Splits,
    target: str,
    exclude: Iterable[str] = (),
    deadline: float | None = None,
    tracker: TrialTracker | BackgroundTrialLogger | None = None,
    worker: int = 0,
    claims: TrialClaims | None = None,
) -> list[TrialOutcome]:
    """Run trials from the shared study until its budget or the deadline is reached.

    One progress line per trial goes to this module's logger (the Airflow task log):
    trial k of N, its value, the best so far.

    Args:
        study: The shared study, from :func:`~include.mlops.tuning.study.create_or_load_study`
            with this worker's number.
        spec: The tuning spec the study was built from.
        splits: Train and validation data (test is not touched).
        target: Target column.
        exclude: Columns never used as features.
        deadline: ``time.time()`` after which no new trial starts, or ``None``
            (:func:`~include.mlops.tuning.study.study_deadline` gives the shared one).
        tracker: Logs each trial as an MLflow child run; ``None`` to skip.
        worker: This worker's number; must be unique among the study's live workers
            (an Airflow ``map_index`` is).
        claims: The study's :class:`~include.mlops.tuning.study.TrialClaims` (not yet
            entered), which keeps concurrent workers within the budget exactly; without
            it each worker may start one trial past the budget.

    Returns:
        This worker's trials, in the order it ran them.
    """
    budget = trial_budget(spec)
    exclude = tuple(exclude)
    _fail_orphans(study, worker)
    outcomes: list[TrialOutcome] = []
    with TrialThreads() as cores, claims or contextlib.nullcontext():
        while True:
            # Counting and asking happen under the study's claim, so concurrent workers
            # never start more than the budget between them.
            with claims.claim() if claims is not None else contextlib.nullcontext():
                started = len(study.get_trials(deepcopy=False, states=STARTED_STATES))
                if started >= budget:
                    log.info(
                        "worker %d: trial budget reached (%d of %d trials started)",
                        worker, started, budget,
                    )  # fmt: skip
                    break
                if deadline is not None and time.time() >= deadline:
                    log.info(
                        "worker %d: deadline reached after %d trial(s) here, %d of %d "
                        "started in the study", worker, len(outcomes), started, budget,
                    )  # fmt: skip
                    break
                trial = study.ask()
            # This host's cores shared by the trials running on it now (never more
            # threads than cores: oversubscribed OpenMP threads made fits 4x slower).
            threads = cores.current()
            with cores.limit(threads):
                result = _run_trial(
                    study, trial, spec=spec, splits=splits, target=target, exclude=exclude,
                    worker=worker, threads=threads,
                )  # fmt: skip
            outcomes.append(result.outcome)
            if tracker is not None:
                _track(tracker, study, spec, result)
            log.info("%s", _progress_line(study, spec, result.outcome, budget))
    return outcomes


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    *,
    spec: TuningSpec,
    splits: Splits,
    target: str,
    exclude: tuple[str, ...],
    worker: int,
    threads: int,
) -> _TrialResult:
    started = time.perf_counter()
    trial.set_user_attr(WORKER_ATTR, worker)
    trial.set_user_attr("threads", threads)
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    prune = not isinstance(study.pruner, optuna.pruners.NopPruner)
    curve: dict[int, float] = {}

    def report(step: int, value: float) -> None:
        curve[step] = float(value)
        # Without a pruner, intermediate values would only be extra database writes.
        if prune:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {step}: {spec.objective}={value:.4f}")

    algorithm: str = "?"
    params: dict[str, Any] = {}
    value: float | None = None
    error: str | None = None
    scores: dict[str, float] = {}
    extra: dict[str, Any] = {}
    try:
        algorithm, params = draw_candidate(trial, spec)
        trial.set_user_attr("algorithm", algorithm)
        trial.set_user_attr("params", jsonable(params))
        candidate = fit_candidate(
            algorithm,
            params,
            splits,
            target=target,
            problem_type=spec.problem_type,
            seed=spec.seed,
            exclude=exclude,
            report=report,
            objective=spec.objective,
            threads=threads,
        )
        scores = {k: float(v) for k, v in candidate.validation_scores.items()}
        extra = {
            "fit_seconds": candidate.fit_seconds,
            "best_iteration": candidate.best_iteration,
            "n_features": candidate.n_features,
        }
        value = float(candidate.score)
        if math.isfinite(value):
            state = TrialState.COMPLETE
        else:
            state = TrialState.FAIL
            error = f"validation {spec.objective} is {value} (undefined on the validation split)"
            value = None
    except optuna.TrialPruned as exc:
        state = TrialState.PRUNED
        value = curve[max(curve)] if curve else None
        extra = {"pruned_at_round": max(curve) if curve else None}
        log.debug("trial %d: %s", trial.number, exc)
    except Exception as exc:
        state = TrialState.FAIL
        error = f"{type(exc).__name__}: {exc}"
        log.warning("trial %d (%s) failed: %s", trial.number, algorithm, error, exc_info=True)
    except BaseException:
        # The process is being stopped: leave no trial RUNNING for ever in the study.
        _tell(study, trial, TrialState.FAIL, None, spec)
        raise
    seconds = time.perf_counter() - started
    trial.set_user_attr("duration_s", seconds)
    trial.set_user_attr("scores", jsonable(scores))
    trial.set_user_attr("curve", {str(k): v for k, v in curve.items()})
    trial.set_user_attr("fit", jsonable(extra))
    if error:
        trial.set_user_attr("error", error)
    _tell(study, trial, state, value, spec)
    outcome = TrialOutcome(
        number=trial.number,
        algorithm=algorithm,
        params=jsonable(params),
        value=value,
        state=state.name,
        seconds=seconds,
        worker=worker,
        error=error,
    )
    return _TrialResult(outcome, scores, extra, curve)


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    spec: TuningSpec,
) -> None:
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, value, skip_if_finished=True)
        else:
            study.tell(trial, state=state, skip_if_finished=True)
    except RuntimeError as exc:
        # GridSampler calls study.stop() when the grid is exhausted; that only works inside
        # study.optimize() and raises here, after the result has already been stored.
        if spec.strategy != "grid" or "stop" not in str(exc):
            raise


def _track(
    tracker: TrialTracker | BackgroundTrialLogger,
    study: optuna.Study,
    spec: TuningSpec,
    result: _TrialResult,
) -> None:
    outcome = result.outcome
    metrics: dict[str, float | None] = {f"val_{k}": v for k, v in result.scores.items()}
    if outcome.state == "PRUNED":
        metrics[f"val_{spec.objective}"] = outcome.value
    metrics.update(
        {k: v for k, v in result.fit.items() if isinstance(v, int | float) and v is not None}
    )
    try:
        tracker.log_trial(
            trial_number=outcome.number,
            algorithm=outcome.algorithm,
            params=outcome.params,
            metrics=metrics,
            duration_s=outcome.seconds,
            state=outcome.state,  # type: ignore[arg-type]
            error=outcome.error,
            tags={"worker": outcome.worker, "optuna_study": study.study_name},
            history={f"val_{spec.objective}_by_round": result.curve} if result.curve else None,
        )
    except Exception as exc:
        # Tracking is a record of the search, not the search: a flaky MLflow server must
        # not throw away a trial that already ran.
        log.warning(
            "worker %d: could not log trial %d to MLflow: %s", outcome.worker, outcome.number, exc
        )


def _progress_line(
    study: optuna.Study, spec: TuningSpec, outcome: TrialOutcome, budget: int
) -> str:
    if outcome.value is None:
        result = f"FAILED ({outcome.error})"
    elif outcome.state == "PRUNED":
        result = f"pruned, {spec.objective}={outcome.value:.4f}"
    else:
        result = f"{spec.objective}={outcome.value:.4f}"
    try:
        best = study.best_trial
        best_text = f"best so far {best.value:.4f} (trial {best.number + 1})"
    except ValueError:
        best_text = "no completed trial yet"
    return (
        f"trial {outcome.number + 1} of {budget} (worker {outcome.worker}): "
        f"{outcome.algorithm}, {result} in {outcome.seconds:.1f}s; {best_text}"
    )


#: A RUNNING trial with no owner recorded this long after it started is an orphan: a live
#: worker writes its owner right after ``ask`` (milliseconds), and a dead attempt's task is
#: retried only after Airflow's heartbeat timeout (60 s on the stacks).
UNOWNED_ORPHAN_AGE_S = 30.0


def _fail_orphans(study: optuna.Study, worker: int) -> None:
    """Mark failed the trials a previous attempt of this worker left RUNNING.

    A worker process that died (OOM, lost machine) never told the study; its trial would
    stay RUNNING and hold a slot of the budget for ever. Airflow retries the task with the
    same worker number in a new process, which recognises the orphans by worker number
    and a different host or process id.
    """
    me = (socket.gethostname(), os.getpid())
    now = datetime.now()  # Optuna stamps datetime_start with the naive local time too
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = frozen.user_attrs
        if WORKER_ATTR not in attrs:
            # Killed between ``ask`` and writing its owner (under load that window is
            # real): no retry would recognise it, so any worker fails it once it is older
            # than a live worker needs to write the owner.
            started = frozen.datetime_start
            if started is None or (now - started).total_seconds() < UNOWNED_ORPHAN_AGE_S:
                continue
        elif attrs.get(WORKER_ATTR) != worker or (attrs.get("host"), attrs.get("pid")) == me:
            continue
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        log.info(
            "worker %d: trial %d of a previous attempt never finished; marked failed",
            worker, frozen.number + 1,
        )  # fmt: skip


# -- what the study says ---------------------------------------------------------------------
def best_trial(study: optuna.Study) -> dict[str, Any]:
    """The best completed trial: what the final model is trained with.

    Args:
        study: The study.

    Returns:
        ``number``, ``algorithm``, ``params`` (estimator names, unprefixed, defaults
        included), ``value``, and the trial's ``validation_scores`` and ``best_iteration``.

    Raises:
        TuningFailedError: No trial completed; the message counts the others and quotes
            the first failure.
    """
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        failures = [t.user_attrs.get("error") for t in trials if t.state == TrialState.FAIL]
        counts = _state_counts(trials)
        first = next((f for f in failures if f), None)
        raise TuningFailedError(
            f"no trial of study {study.study_name!r} completed "
            f"({', '.join(f'{n} {s.lower()}' for s, n in counts.items() if n) or 'no trials'})"
            + (f"; first failure: {first}" if first else "")
        )
    best = study.best_trial
    attrs = best.user_attrs
    algorithm = str(attrs.get("algorithm") or best.params.get("algorithm", ""))
    params = attrs.get("params")
    if params is None:
        # A trial run outside this module: strip the algorithm prefix from Optuna's names.
        prefix = f"{algorithm}__"
        params = {k.removeprefix(prefix): v for k, v in best.params.items() if k.startswith(prefix)}
    return {
        "number": best.number,
        "algorithm": algorithm,
        "params": dict(params),
        "value": best.value,
        "validation_scores": dict(attrs.get("scores") or {}),
        "best_iteration": (attrs.get("fit") or {}).get("best_iteration"),
    }


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Counts, best value and compute time of a study; JSON-able.

    ``compute_seconds`` sums the trials' own durations (draw, fit, score); compared with
    the wall time of the whole tuning it gives the orchestration overhead.

    Args:
        study: The study.

    Returns:
        ``study_name``, ``direction``, ``trials``, ``states`` (count per state),
        ``best_value``, ``best_trial``, ``best_algorithm``, ``compute_seconds``,
        ``wall_seconds`` (first trial start to last trial end), ``per_algorithm`` counts.
    """
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    compute = 0.0
    per_algorithm: dict[str, int] = {}
    for t in trials:
        compute += _duration(t)
        name = str(t.user_attrs.get("algorithm") or t.params.get("algorithm") or "?")
        per_algorithm[name] = per_algorithm.get(name, 0) + 1
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "trials": len(trials),
        "states": _state_counts(trials),
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "best_algorithm": None if best is None else best.user_attrs.get("algorithm"),
        "compute_seconds": compute,
        "wall_seconds": _span(starts, ends),
        "per_algorithm": per_algorithm,
    }


def _state_counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    counts = {s.name: 0 for s in (*STARTED_STATES, TrialState.WAITING)}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _duration(trial: optuna.trial.FrozenTrial) -> float:
    recorded = trial.user_attrs.get("duration_s")
    if isinstance(recorded, int | float):
        return float(recorded)
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return 0.0


def _span(starts: list[datetime], ends: list[datetime]) -> float:
    if not starts or not ends:
        return 0.0
    return max(0.0, (max(ends) - min(starts)).total_seconds())
