"""The steps of ``train_model`` as plain functions: no Airflow here.

Orchestration, one layer above the primitives it calls (quality gate, split, tuning
study and workers, fit, evaluation, registry, tracking): those never import this
module, so the packages below it form no cycle. Each step takes the lake, an MLflow
client, the request and the typed hand-offs of the steps before it
(:mod:`include.mlops.training.handoffs`, XComs as small dicts) and returns one. Order::

    TrainingRequest.from_params → prepare_training_data → start_tuning
      → tune_worker (× max_parallel_trials, one shared Optuna study)
      → evaluate_candidate (refit best, test split, baseline, champion, gates)
      → register_version (Pending) → approval (Airflow) → approve/reject

A failed gate raises a named error (``DataQualityError``, ``ModelGateError``) whose
message says what failed, by how much and where the report is.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.mlops.etl.naming import safe_run_id
from include.mlops.jsonable import jsonable
from include.mlops.training.data import (
    LEAKAGE_AUC,
    PARTITION_DAY_COLUMN,
    excluded_columns,
    leakage_scores,
    load_partitions,
    plan_training_data,
    recency_weights,
    recent_partitions,
    stored_data_block,
)
from include.mlops.training.handoffs import (
    CandidateEvaluation,
    PreparedData,
    RegisteredVersion,
    TuningHandle,
    WorkerResult,
)
from include.mlops.training.request import TrainingRequest, TrainingRequestError
from include.mlops.vocabulary import AUTO

if TYPE_CHECKING:
    import mlflow
    import pandas as pd

    from include.mlops.lake import Lake

log = logging.getLogger(__name__)

#: Fewer rows than this and a held-out test split means little.
MIN_TRAINING_ROWS = 200


def prepare_training_data(
    lake: Lake,
    request: TrainingRequest,
    *,
    run_id: str,
    champion: Mapping[str, Any] | None = None,
) -> PreparedData:
    """Gate the training data, infer the problem type, split, write the features.

    The data follows the request's data policy: the base dataset's partitions (all, or
    the newest ``data_window_days``) plus ``<model>_feedback`` when ``use_feedback`` and
    it holds rows; with ``recency_half_life_days`` each train row is weighted by its
    partition's age. Feedback newer than anything the champion trained on is the
    *recent window*: a share of it (the split's test share) is held out of training and
    written beside the split (``recent.parquet``), so the challenger and the champion
    can both be judged on labelled traffic neither learned from.

    Gate (Great Expectations, report in ``reports/quality/<dataset>/<run>/``): the target
    exists, is never missing and not constant, at least :data:`MIN_TRAINING_ROWS` rows;
    class balance is reported; a single feature predicting the target at ROC-AUC ≥
    :data:`LEAKAGE_AUC` is a leak and stops the run.

    Args:
        lake: The lake.
        request: The run's request (its data policy included).
        run_id: The Airflow run.
        champion: :func:`champion_training_data` of the serving version, or ``None``.

    Returns:
        The snapshot, the problem type, where its split is, and the ``data`` block.

    Raises:
        DataQualityError: A blocking check failed.
    """
    import pandas as pd

    from include.mlops.etl.catalog import load_catalog
    from include.mlops.features.split import infer_problem_type, split_dataset
    from include.mlops.quality.gate import raise_for_quality, run_quality_gate
    from include.mlops.quality.suites import expectation

    plan = plan_training_data(
        lake, dataset=request.dataset, model_name=request.model_name,
        window_days=request.data_window_days, use_feedback=request.use_feedback,
    )  # fmt: skip
    catalog = load_catalog(lake, request.dataset) or {}
    frame = load_partitions(lake, request.dataset, plan.base["partitions"])
    base_rows = len(frame)
    recent: list[str] = []
    if plan.feedback:
        feedback = load_partitions(lake, plan.feedback["dataset"], plan.feedback["partitions"])
        # The base dataset's columns only: inference_id, served_at, model_version are not features.
        feedback = feedback[[c for c in frame.columns if c in feedback.columns]]
        if champion is not None:
            seen = ((champion.get("data") or {}).get("feedback") or {}).get("partitions")
            recent = recent_partitions(plan.feedback["partitions"], seen)
        is_recent = feedback[PARTITION_DAY_COLUMN].isin(recent)
        frame = pd.concat(
            [frame.assign(**{_RECENT: False}), feedback.assign(**{_RECENT: is_recent.to_numpy()})],
            ignore_index=True,
        )
    else:
        frame = frame.assign(**{_RECENT: False})
    snapshot = plan.snapshot_id
    feedback_rows = len(frame) - base_rows
    log.info("training data %s: %s rows from %d partition(s), snapshot %s; feedback: %s",
             request.dataset, f"{base_rows:,}", len(plan.base["partitions"]),
             plan.base["snapshot_id"][:12],
             f"{feedback_rows:,} rows from {len(plan.feedback['partitions'])} partition(s) of "
             f"{plan.feedback['dataset']}, snapshot {plan.feedback['snapshot_id'][:12]}"
             if plan.feedback else "none")  # fmt: skip
    target = request.target
    exclude = excluded_columns(catalog, target)
    hidden = [PARTITION_DAY_COLUMN, _RECENT, _WEIGHT]
    if request.recency_half_life_days is not None:
        frame[_WEIGHT] = recency_weights(
            frame[PARTITION_DAY_COLUMN], request.recency_half_life_days
        )
    df = frame.drop(columns=[c for c in hidden if c in frame.columns])
    suite = [
        expectation("expect_column_to_exist", blocking=True, why="the target must be in the data", column=target),
        expectation("expect_table_row_count_to_be_between", blocking=True,
                    why=f"fewer than {MIN_TRAINING_ROWS} rows make the test metrics noise",
                    min_value=MIN_TRAINING_ROWS),
    ]  # fmt: skip
    if target in df.columns:
        suite += [
            expectation("expect_column_values_to_not_be_null", blocking=True,
                        why="rows without a label cannot train or test", column=target),
            expectation("expect_column_unique_value_count_to_be_between", blocking=True,
                        why="a constant target leaves nothing to learn", column=target, min_value=2),
        ]  # fmt: skip
    quality = run_quality_gate(
        lake, dataset=request.dataset, partition=snapshot[:12], run_id=f"train_{request.model_name}_{run_id}",
        df=df, suite=suite,
    )  # fmt: skip
    raise_for_quality(quality)

    problem_type = request.problem_type
    if problem_type == AUTO:
        problem_type = infer_problem_type(df[target])
    features = [c for c in df.columns if c not in (target, *exclude)]
    balance: dict[str, float] = {}
    leakage: dict[str, float] = {}
    if problem_type != "regression":
        balance = {
            str(k): round(float(v), 4) for k, v in df[target].value_counts(normalize=True).items()
        }
        log.info("class balance of %r: %s", target, balance)
        leakage = leakage_scores(df, target=target, features=features, seed=request.seed)
        leaks = {f: s for f, s in leakage.items() if s >= LEAKAGE_AUC}
        if leaks:
            from include.mlops.quality.gate import DataQualityError

            detail = ", ".join(f"{f} (ROC-AUC {s:.3f} alone)" for f, s in sorted(leaks.items()))
            raise DataQualityError(
                f"target leakage in {request.dataset}: {detail} predicts {target!r} almost perfectly "
                f"by itself (threshold {LEAKAGE_AUC}). A model would learn the leak and fail in "
                "production; drop or fix the column(s), or exclude them from training. "
                f"Data quality report: {quality.docs_uri}",
                quality,
            )
    pool, window = hold_out_recent(
        frame, target=target, problem_type=problem_type, fractions=request.split,
        seed=request.seed, time_column=request.time_column,
    )  # fmt: skip
    weighted = _WEIGHT in pool.columns
    splits = split_dataset(
        pool.drop(columns=[PARTITION_DAY_COLUMN, _RECENT]), target=target,
        problem_type=problem_type, fractions=request.split, seed=request.seed,
        time_column=request.time_column, weight_column=_WEIGHT if weighted else None,
    )  # fmt: skip
    prefix = features_prefix(
        request.model_name, snapshot,
        variant={"half_life": request.recency_half_life_days,
                 "recent_vs": champion.get("version") if champion and recent else None},
    )  # fmt: skip
    splits.write(lake, prefix)
    recent_block = None
    if champion is not None and plan.feedback:
        recent_key = None
        if len(window):
            recent_key = f"{prefix}/{RECENT_WINDOW_NAME}"
            buffer = io.BytesIO()
            window.drop(columns=[c for c in hidden if c in window.columns]).to_parquet(
                buffer, index=False
            )
            lake.write_bytes(recent_key, buffer.getvalue())
        recent_block = {
            "rows": len(window),
            "feedback_rows": int(frame[_RECENT].sum()),
            "partitions": recent,
            "champion_version": str(champion.get("version")),
            "key": recent_key,
        }
        log.info("recent window (feedback newer than champion v%s's training data): %d of %d "
                 "row(s) in %s held out of training", champion.get("version"), len(window),
                 recent_block["feedback_rows"], recent or "no partition")  # fmt: skip
    data = {
        "base": plan.base,
        "feedback": plan.feedback,
        "policy": {"data_window_days": request.data_window_days,
                   "use_feedback": request.use_feedback,
                   "recency_half_life_days": request.recency_half_life_days},
        "recent": recent_block,
    }  # fmt: skip
    log.info("split %s written to %s/ (%s%s)", splits.sizes(), lake.uri(prefix), problem_type,
             ", recency-weighted" if weighted else "")  # fmt: skip
    return PreparedData(
        snapshot_id=snapshot,
        problem_type=problem_type,
        features_prefix=prefix,
        rows=len(df),
        splits=splits.sizes(),
        class_balance=balance,
        exclude=exclude,
        quality_report=quality.docs_uri,
        quality_score=quality.score,
        leakage=leakage,
        data=data,
    )


#: Hidden columns while the training data is assembled (never written to the split).
_RECENT = "__recent__"
_WEIGHT = "__sample_weight__"
#: The held-out recent window, beside the split.
RECENT_WINDOW_NAME = "recent.parquet"


def hold_out_recent(
    frame: pd.DataFrame,
    *,
    target: str,
    problem_type: str,
    fractions: tuple[float, float, float],
    seed: int,
    time_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold the test share of the recent rows (column ``__recent__``) out of training.

    The recent rows are split like any data (stratified, or by ``time_column``, with
    the request's shares); their test part is the recent window, their train and
    validation parts join the rest. Too few recent rows to split (fewer than 3) hold
    nothing out: they train.

    Returns:
        ``(rows to split and train on, the held-out recent window)``.
    """
    from include.mlops.features.split import split_dataset

    recent = frame[frame[_RECENT]]
    rest = frame[~frame[_RECENT]]
    if recent.empty:
        return frame, frame.iloc[0:0]
    try:
        parts = split_dataset(
            recent, target=target, problem_type=problem_type, fractions=fractions, seed=seed,
            time_column=time_column,
        )  # fmt: skip
    except ValueError as exc:
        log.info("recent window: nothing held out (%s)", exc)
        return frame, frame.iloc[0:0]
    pool = _concat([rest, parts.train, parts.validation])
    return pool, parts.test


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def features_prefix(model_name: str, snapshot: str, *, variant: Mapping[str, Any]) -> str:
    """Where a run's split goes: ``features/<model>/<snapshot>``, plus a short hash of what
    else shaped it (weights, the held-out window) so two differently shaped splits of one
    snapshot never overwrite each other."""
    import hashlib
    import json

    prefix = f"features/{model_name}/{snapshot[:16]}"
    if not any(v is not None for v in variant.values()):
        return prefix
    digest = hashlib.sha256(json.dumps(dict(variant), sort_keys=True).encode()).hexdigest()
    return f"{prefix}-{digest[:8]}"


def champion_training_data(client: mlflow.MlflowClient, model_name: str) -> dict[str, Any] | None:
    """The serving version, its decision threshold and the data it trained on, or ``None``.

    Returns:
        ``{"version", "threshold", "data"}``; ``data`` as :func:`stored_data_block` reads it.
    """
    from include.mlops.registry import champion, training_spec
    from include.mlops.registry.versions import RegistryError

    info = champion(client, model_name)
    if info is None:
        return None
    try:
        spec = training_spec(client, model_name, info.version)
    except RegistryError as exc:  # a version whose spec is gone: judged on the test split only
        log.warning("champion v%s has no training spec (%s): no recent window", info.version, exc)
        return None
    return {
        "version": str(info.version),
        "threshold": spec.get("threshold"),
        "data": stored_data_block(spec, (info.tags or {}).get("data_snapshot")),
    }


# -- tuning --------------------------------------------------------------------------
def tuning_spec(request: TrainingRequest, problem_type: str) -> Any:
    """The Optuna tuning spec for a request and the inferred problem type."""
    from include.mlops.tuning.study import TuningSpec

    algorithms = request.algorithms_for(problem_type)
    if not algorithms:
        raise TrainingRequestError(
            f"none of algorithms {list(request.algorithms)} can solve a {problem_type} problem"
        )
    return TuningSpec(
        strategy=request.tuning_strategy,
        objective=request.objective_for(problem_type),
        algorithms=algorithms,
        problem_type=problem_type,
        max_trials=request.max_trials,
        max_parallel_trials=request.max_parallel_trials,
        timeout_minutes=request.timeout_minutes,
        seed=request.seed,
        fixed_params=dict(request.fixed_params),
    )


def experiment_name(model_name: str) -> str:
    """One MLflow experiment per model: its tuning runs and trials."""
    return f"train_{model_name}"


def start_tuning(
    client: mlflow.MlflowClient,
    request: TrainingRequest,
    prepared: PreparedData,
    *,
    run_id: str,
    storage_url: str,
    artifact_location: str | None = None,
) -> TuningHandle:
    """Create the shared study and the MLflow tuning run trials hang under."""
    from include.mlops.tracking.mlflow_runs import ensure_experiment, start_parent_run
    from include.mlops.tuning.study import create_or_load_study, public_url

    spec = tuning_spec(request, prepared.problem_type)
    study_name = f"{request.model_name}-{safe_run_id(run_id)}"
    create_or_load_study(storage_url, study_name, spec)
    experiment_id = ensure_experiment(
        client, experiment_name(request.model_name), artifact_location=artifact_location
    )
    parent = start_parent_run(
        client,
        experiment_id,
        run_name=f"tune-{request.model_name}-{safe_run_id(run_id)}",
        tags={"airflow_run_id": run_id, "optuna_study": study_name, "dataset": request.dataset,
              "data_snapshot": prepared.snapshot_id},
        params={**spec.to_dict(), "target": request.target, "dataset": request.dataset},
    )  # fmt: skip
    return TuningHandle(
        study_name=study_name,
        storage_url=public_url(storage_url),  # the XCom never carries the password
        experiment_id=experiment_id,
        parent_run_id=parent,
        deadline=time.time() + 60 * request.timeout_minutes,
        spec=spec.to_dict(),
    )


def tune_worker(
    lake: Lake,
    client: mlflow.MlflowClient,
    request: TrainingRequest,
    prepared: PreparedData,
    tuning: TuningHandle,
    *,
    worker: int,
) -> WorkerResult:
    """One parallel worker: draw trials from the shared study until its budget is spent."""
    from include.mlops.features.split import Splits
    from include.mlops.tracking.mlflow_runs import BackgroundTrialLogger, TrialTracker
    from include.mlops.tuning.study import TrialClaims, TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import run_trials

    spec = TuningSpec.from_dict(tuning.spec)
    study = create_or_load_study(tuning.storage_url, tuning.study_name, spec, worker=worker)
    splits = Splits.read(lake, prepared.features_prefix)
    tracker = TrialTracker.connect(
        client, experiment_id=tuning.experiment_id, parent_run_id=tuning.parent_run_id,
        tags={"optuna_study": tuning.study_name},
    )  # fmt: skip
    # Trials are logged to MLflow from a background thread while the next one computes.
    with BackgroundTrialLogger(tracker) as background:
        outcomes = run_trials(
            study, spec=spec, splits=splits, target=request.target, exclude=prepared.exclude,
            deadline=tuning.deadline, tracker=background, worker=worker,
            claims=TrialClaims(tuning.storage_url, tuning.study_name),
        )  # fmt: skip
    return WorkerResult(
        worker=worker,
        trials=len(outcomes),
        compute_seconds=round(sum(o.seconds for o in outcomes), 3),
    )


# -- evaluation and registration ----------------------------------------------------
def candidate_key(model_name: str, run_id: str) -> str:
    """Where the evaluated candidate pipeline waits for registration."""
    return f"models/{model_name}/candidates/{safe_run_id(run_id)}/pipeline.joblib"


def evaluate_candidate(
    lake: Lake,
    client: mlflow.MlflowClient,
    request: TrainingRequest,
    prepared: PreparedData,
    tuning: TuningHandle,
    *,
    run_id: str,
) -> CandidateEvaluation:
    """Refit the best trial, evaluate it beside the baseline and the champion, gate it.

    The champion is re-scored on *this* run's test split, so the comparison is like for
    like. The report goes to ``reports/evaluation/<model>/<run>/`` (copied under the
    version once registered).

    Raises:
        ModelGateError: A gate failed (value threshold, baseline, champion tolerance).
    """
    import joblib

    from include.mlops.clarify.bias import raise_for_bias
    from include.mlops.clarify.evidence import clarify_evaluation
    from include.mlops.evaluation.gates import (
        RECENT_WINDOW,
        GateThresholds,
        gate_rows,
        raise_for_gates,
        should_promote,
    )
    from include.mlops.evaluation.metrics import evaluate
    from include.mlops.evaluation.report import write_evaluation_report
    from include.mlops.features.split import Splits
    from include.mlops.registry import champion as registry_champion
    from include.mlops.registry import load_verified_model
    from include.mlops.training.fit import fit_candidate
    from include.mlops.tuning.study import TuningSpec, create_or_load_study
    from include.mlops.tuning.worker import best_trial, study_summary

    spec = TuningSpec.from_dict(tuning.spec)
    study = create_or_load_study(tuning.storage_url, tuning.study_name, spec)
    best = best_trial(study)
    summary = study_summary(study)
    log.info("tuning done: %d trials %s; best #%d %s %s=%.4f", summary["trials"], summary["states"],
             best["number"], best["algorithm"], spec.objective, best["value"])  # fmt: skip
    _close_tuning_run(client, tuning.parent_run_id, spec.objective, best, summary)
    splits = Splits.read(lake, prepared.features_prefix)
    problem_type = prepared.problem_type
    fit: dict[str, Any] = dict(
        target=request.target,
        problem_type=problem_type,
        seed=request.seed,
        exclude=prepared.exclude,
    )
    candidate = fit_candidate(
        best["algorithm"], best["params"], splits, objective=spec.objective, **fit
    )
    baseline = fit_candidate("baseline", {}, splits, **fit)
    report = evaluate(
        candidate.pipeline, splits, target=request.target, problem_type=problem_type,
        baseline_pipeline=baseline.pipeline, seed=request.seed,
    )  # fmt: skip

    champion_info = registry_champion(client, request.model_name)
    champion_metrics = None
    champion_pipeline = None
    if champion_info is not None:
        champion_pipeline = load_verified_model(client, request.model_name, champion_info.version)
        champion_metrics = evaluate(
            champion_pipeline, splits, target=request.target, problem_type=problem_type,
            baseline_pipeline=baseline.pipeline, seed=request.seed,
        ).metrics  # fmt: skip
        log.info("champion v%s on this test split: %s=%s", champion_info.version, spec.objective,
                 champion_metrics.get(spec.objective))  # fmt: skip
    recent = score_recent_window(
        lake, client, request, prepared, candidate=candidate.pipeline,
        candidate_threshold=report.threshold, baseline=baseline.pipeline,
        champion=champion_pipeline,
        champion_version=None if champion_info is None else str(champion_info.version),
    )  # fmt: skip
    evaluated_on, reason = gate_rows(recent, spec.objective)
    if recent is not None:
        recent["used_for_gate"] = evaluated_on == RECENT_WINDOW
    judged = recent if recent is not None and evaluated_on == RECENT_WINDOW else None
    log.info("the gates judge the %s: %s", evaluated_on, reason)
    decision = should_promote(
        judged["candidate"] if judged else report.metrics,
        baseline=judged["baseline"] if judged else report.baseline_metrics,
        champion=judged["champion"] if judged else champion_metrics,
        objective=spec.objective,
        thresholds=GateThresholds(min_objective=request.min_objective, tolerance=request.champion_tolerance),
        evaluated_on=evaluated_on, reason=reason,
    )  # fmt: skip
    # Bias report and explanations (Clarify); also stores the linear SHAP baseline on the
    # pipeline before it is pickled below.
    clarify = clarify_evaluation(
        candidate.pipeline, splits, target=request.target, problem_type=problem_type,
        threshold=report.threshold, facets=request.bias_facets,
        group_column=request.bias_group_column, gate_mode=request.bias_gate,
        bounds=request.bias_bounds, seed=request.seed,
    )  # fmt: skip
    written = write_evaluation_report(
        lake, report, model_name=request.model_name, version=f"candidate-{safe_run_id(run_id)}",
        data_snapshot=prepared.snapshot_id, dataset=request.dataset,
        training_spec=request.to_dict(), clarify=clarify,
        comparison={"champion_version": None if champion_info is None else str(champion_info.version),
                    "champion": champion_metrics, "recent": recent,
                    "evaluated_on": evaluated_on, "reason": reason, "data": prepared.data},
    )  # fmt: skip
    log.info("evaluation report %s: %s", written["model_card_uri"], decision.summary())
    raise_for_gates(decision, written["model_card_uri"])
    if clarify.bias is not None:
        raise_for_bias(clarify.bias, written["uris"].get("bias.json"))

    buffer = io.BytesIO()
    joblib.dump(candidate.pipeline, buffer)
    key = candidate_key(request.model_name, run_id)
    lake.write_bytes(key, buffer.getvalue())
    return CandidateEvaluation(
        candidate_key=key,
        algorithm=best["algorithm"],
        params=best["params"],
        objective=spec.objective,
        metrics=jsonable(report.metrics),
        baseline_metrics=jsonable(report.baseline_metrics),
        champion=(
            {"version": champion_info.version, "metrics": jsonable(champion_metrics or {})}
            if champion_info is not None
            else None
        ),
        decision=decision.to_dict(),
        report_prefix=written["prefix"],
        report_uri=written["model_card_uri"],
        threshold=report.threshold,
        tuning=summary,
        recent=jsonable(recent) if recent is not None else None,
    )


def score_recent_window(
    lake: Lake,
    client: mlflow.MlflowClient,
    request: TrainingRequest,
    prepared: PreparedData,
    *,
    candidate: Any,
    candidate_threshold: float | None,
    baseline: Any,
    champion: Any,
    champion_version: str | None,
) -> dict[str, Any] | None:
    """The candidate, the baseline and the champion on the held-out recent window.

    Same metrics as on the test split, each version at its own decision threshold (the
    champion's from its stored spec). ``None`` when this run has no recent window, or
    when the champion changed since the window was chosen (the new one may have trained
    on those rows, so it would not be a fair judge).

    Returns:
        ``{"rows", "min_rows", "used_for_gate", "candidate", "baseline", "champion",
        "champion_version", "partitions"}`` (``used_for_gate`` is set by the caller).
    """
    import pandas as pd

    from include.mlops.evaluation.gates import MIN_RECENT_ROWS
    from include.mlops.evaluation.metrics import (
        DEFAULT_THRESHOLD,
        evaluate_classifier,
        evaluate_regressor,
    )
    from include.mlops.registry import training_spec

    block = (prepared.data or {}).get("recent")
    if not block:
        return None
    if champion_version is not None and block.get("champion_version") != champion_version:
        log.warning("the champion is v%s now, the recent window was held out against v%s: "
                    "not scored", champion_version, block.get("champion_version"))  # fmt: skip
        return None
    out: dict[str, Any] = {
        "rows": int(block.get("rows") or 0), "min_rows": MIN_RECENT_ROWS, "used_for_gate": False,
        "candidate": {}, "baseline": {}, "champion": None,
        "champion_version": block.get("champion_version"), "partitions": block.get("partitions") or [],
    }  # fmt: skip
    if not block.get("key") or not out["rows"]:
        return out
    window = pd.read_parquet(io.BytesIO(lake.read_bytes(block["key"])))
    target = request.target

    def scores(pipeline: Any, threshold: float | None) -> dict[str, Any]:
        if prepared.problem_type == "regression":
            metrics = evaluate_regressor(pipeline, window, target)
        else:
            metrics = evaluate_classifier(pipeline, window, target, threshold)
        return {k: v for k, v in jsonable(metrics).items() if not isinstance(v, dict | list)}

    out["candidate"] = scores(candidate, candidate_threshold)
    out["baseline"] = scores(baseline, DEFAULT_THRESHOLD)
    if champion is not None and champion_version is not None:
        threshold = training_spec(client, request.model_name, champion_version).get("threshold")
        out["champion"] = scores(champion, threshold)
    objective = request.objective_for(prepared.problem_type)
    log.info("recent window (%d rows from %s): candidate %s=%s, champion v%s %s=%s",
             out["rows"], out["partitions"], objective, out["candidate"].get(objective),
             champion_version, objective, (out["champion"] or {}).get(objective))  # fmt: skip
    return out


def _close_tuning_run(
    client: mlflow.MlflowClient,
    run_id: str,
    objective: str,
    best: Mapping[str, Any],
    summary: Mapping[str, Any],
) -> None:
    """Mark the tuning run FINISHED with the search's outcome (it stays the version's run)."""
    from include.mlops.tracking.mlflow_runs import finish_run, log_dict_artifact

    finish_run(
        client, run_id,
        metrics={f"best_val_{objective}": best["value"], "trials": summary["trials"],
                 "trial_compute_seconds": summary["compute_seconds"]},
        tags={"best_algorithm": best["algorithm"], "best_trial": best["number"]},
    )  # fmt: skip
    log_dict_artifact(client, run_id, dict(summary), "tuning_summary.json")


def register_version(
    lake: Lake,
    client: mlflow.MlflowClient,
    request: TrainingRequest,
    prepared: PreparedData,
    tuning: TuningHandle,
    evaluation: CandidateEvaluation,
) -> RegisteredVersion:
    """Register the evaluated candidate as ``PendingManualApproval`` with its evidence.

    Returns:
        The new version, with the approval text (the candidate's metrics beside the
        champion's).
    """
    import joblib

    from include.mlops.clarify.evidence import approval_lines, log_clarify_evidence
    from include.mlops.evaluation.baseline import compute_drift_baseline
    from include.mlops.features.pipeline import input_columns
    from include.mlops.features.split import Splits
    from include.mlops.registry import register_candidate

    pipeline = joblib.load(io.BytesIO(lake.read_bytes(evaluation.candidate_key)))
    splits = Splits.read(lake, prepared.features_prefix)
    columns = input_columns(pipeline)
    train = splits.train
    predictions = _scores(pipeline, train[columns], prepared.problem_type)
    # CBPE in the monitor: the positive-class probability calibrated on validation.
    from include.mlops.monitoring.cbpe import validation_calibration

    calibration = None
    if prepared.problem_type == "binary":
        calibration = validation_calibration(
            pipeline, splits.validation, columns=columns, target=request.target
        )
    baseline = compute_drift_baseline(
        train, features=columns, target=request.target, predictions=predictions,
        calibration=calibration,
    )  # fmt: skip
    report_files = {
        key[len(evaluation.report_prefix) + 1 :]: lake.read_bytes(key)
        for key in lake.list_files(evaluation.report_prefix + "/")
    }
    spec = {**request.to_dict(), "problem_type": prepared.problem_type,
            "algorithm": evaluation.algorithm, "params": evaluation.params,
            "threshold": evaluation.threshold,
            # What it trained on, so the next unattended retrain can tell new data from old.
            "data": prepared.data, "data_snapshots": data_snapshots(prepared.data)}  # fmt: skip
    objective = evaluation.objective
    registered = register_candidate(
        client,
        model_name=request.model_name,
        run_id=tuning.parent_run_id,
        pipeline=pipeline,
        input_example=splits.test[columns].head(5),
        metrics=evaluation.metrics,
        baseline_metrics=evaluation.baseline_metrics,
        evaluation_dir_or_files=report_files,
        drift_baseline=baseline,
        training_spec=spec,
        dataset=request.dataset,
        data_snapshot=prepared.snapshot_id,
        git_sha=git_sha(),
        objective=objective,
        objective_value=float(evaluation.metrics[objective]),
        evaluation_report_uri=evaluation.report_uri,
    )
    client.set_model_version_tag(
        request.model_name, str(registered.version), DATA_SNAPSHOTS_TAG,
        json.dumps(data_snapshots(prepared.data), sort_keys=True),
    )  # fmt: skip
    # The report under the version's own prefix: reports/evaluation/<model>/<version>/.
    # The report was written before registration under a candidate label; the copy
    # under the version names the version (the plots are unchanged).
    version_prefix = f"reports/evaluation/{request.model_name}/{registered.version}"
    label = evaluation.report_prefix.rsplit("/", 1)[-1].encode()
    for name, data in report_files.items():
        if name.endswith((".html", ".md", ".json")):
            data = data.replace(label, str(registered.version).encode())
        lake.write_bytes(f"{version_prefix}/{name}", data)
    report_uri = evaluation.report_uri.replace(evaluation.report_prefix, version_prefix)
    bias = log_clarify_evidence(client, run_id=registered.run_id, model_name=request.model_name,
                                version=registered.version, report_files=report_files)  # fmt: skip
    log.info("registered %s v%s (PendingManualApproval), sha256 %s", request.model_name,
             registered.version, registered.sha256[:12])  # fmt: skip
    body = approval_body(request, evaluation, str(registered.version), report_uri)
    return RegisteredVersion(
        model_name=request.model_name,
        version=str(registered.version),
        run_id=registered.run_id,
        sha256=registered.sha256,
        report_uri=report_uri,
        approval_body="\n".join([body, *approval_lines(bias)]),
    )


#: Version tag: ``{dataset: snapshot_id}`` of every dataset the version trained on (the
#: base dataset and, when used, ``<model>_feedback``); ``data_snapshot`` combines them.
DATA_SNAPSHOTS_TAG = "data_snapshots"


def data_snapshots(data: Mapping[str, Any] | None) -> dict[str, str]:
    """``{dataset: snapshot_id}`` of a ``data`` block (:attr:`PreparedData.data`)."""
    out = {}
    for part in ("base", "feedback"):
        entry = (data or {}).get(part)
        if entry:
            out[str(entry["dataset"])] = str(entry["snapshot_id"])
    return out


def approval_body(
    request: TrainingRequest, evaluation: CandidateEvaluation, version: str, report_uri: str
) -> str:
    """Markdown for the approver: the candidate beside the champion and the baseline."""
    champion = evaluation.champion
    metrics = evaluation.metrics
    names = [m for m in ("roc_auc", "pr_auc", "f1", "accuracy", "precision", "recall", "log_loss",
                         "rmse", "mae", "r2") if isinstance(metrics.get(m), int | float)]  # fmt: skip
    head = "| metric | candidate | baseline |" + (
        f" champion v{champion['version']} |" if champion else ""
    )
    rule = "|---|---|---|" + ("---|" if champion else "")
    rows = []
    for m in names:
        objective = " (objective)" if m == evaluation.objective else ""
        row = f"| {m}{objective} | {metrics[m]:.4f} | {_cell(evaluation.baseline_metrics.get(m))} |"
        if champion:
            row += f" {_cell(champion['metrics'].get(m))} |"
        rows.append(row)
    return "\n".join([
        f"**{request.model_name} v{version}** — {evaluation.algorithm} on `{request.dataset}`, "
        f"held-out test split.",
        "",
        head, rule, *rows,
        *_recent_window_lines(evaluation, names),
        "",
        f"Gates: {evaluation.decision.get('summary') or 'all passed'}.",
        f"Evaluation report and model card: {report_uri}",
    ])  # fmt: skip


def _recent_window_lines(evaluation: CandidateEvaluation, names: list[str]) -> list[str]:
    """The test split and the recent window side by side (nothing without a window)."""
    recent = evaluation.recent
    if not recent:
        return []
    champion = evaluation.champion or {}
    version = recent.get("champion_version") or champion.get("version")
    judged = "recent window" if recent.get("used_for_gate") else "test split"
    lines = [
        "",
        f"**Recent window**: {recent.get('rows', 0)} held-out rows of labelled traffic "
        f"({', '.join(recent.get('partitions') or []) or 'no partition'}) champion v{version} "
        f"never trained on; the gates judged the **{judged}** (the window decides from "
        f"{recent.get('min_rows')} rows).",
        "",
        f"| metric | test: candidate | test: champion v{version} | recent: candidate | "
        f"recent: champion v{version} |",
        "|---|---|---|---|---|",
    ]
    for m in names:
        lines.append(
            f"| {m} | {_cell(evaluation.metrics.get(m))} | "
            f"{_cell((champion.get('metrics') or {}).get(m))} | "
            f"{_cell((recent.get('candidate') or {}).get(m))} | "
            f"{_cell((recent.get('champion') or {}).get(m))} |"
        )
    return lines


def _cell(value: Any) -> str:
    """A metric in the approval table; ``–`` where it is undefined (``None``: see jsonable)."""
    return f"{value:.4f}" if isinstance(value, int | float) else "–"


def git_sha() -> str:
    """The commit of the training code (``MLOPS_GIT_SHA`` in images without .git)."""
    if os.environ.get("MLOPS_GIT_SHA"):
        return os.environ["MLOPS_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _scores(pipeline: Any, X: pd.DataFrame, problem_type: str) -> Any:
    if problem_type == "binary" and hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(X)[:, 1]
    return pipeline.predict(X)
