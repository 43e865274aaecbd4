"""Task bodies of ``train_model``: params and context in, one call into the domain, refs out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.mlops.airflow.hooks import LakeHook
from include.mlops.airflow.operators import approvers_for

if TYPE_CHECKING:
    from include.mlops.training.handoffs import PreparedData, RegisteredVersion, TuningHandle
    from include.mlops.training.request import TrainingRequest

log = logging.getLogger(__name__)


#: Registered-model tag: the train_model run retraining this model unattended, if any.
RETRAIN_RUN_TAG = "retrain.run_id"


def resolve_request(
    params: dict[str, Any], *, dag_run: Any, triggering_asset_events: Any, ti: Any = None
) -> dict:
    """Validate a manual run's params; for a scheduled/asset run, the champion's spec.

    A run not started by hand retrains the current champion with its stored training
    spec (its data policy included) on the newest snapshot; with no champion yet there is
    nothing to retrain, and when that policy selects exactly the snapshots the champion
    trained on it skips, saying which data it waits for (and alerts). A
    manual run that would wait for an approval no one may give (``MLOPS_APPROVERS``
    names only the user who triggered it) is refused here, before any work.
    """
    from include.mlops.approvers import NoApproverError
    from include.mlops.training.request import TrainingRequest, TrainingRequestError

    run_type = str(getattr(dag_run, "run_type", "manual")).lower()
    try:
        if "manual" in run_type:
            request = TrainingRequest.from_params(params)
            if request.approval == "manual":
                approvers_for(dag_run).require_someone()
            request.check_columns(_dataset_columns(request.dataset))
            log.info("manual run: %s", request.to_dict())
            return request.to_dict()
        return _retrain_request(params, triggering_asset_events, dag_run=dag_run, ti=ti)
    except (TrainingRequestError, NoApproverError) as exc:
        raise AirflowFailException(str(exc)) from exc


def _dataset_columns(dataset: str) -> dict[str, str] | None:
    """The curated dataset's columns → types from its catalog (None before its first ingest)."""
    from include.mlops.etl.catalog import catalog_schema, load_catalog

    schema = catalog_schema(load_catalog(LakeHook().get_lake(), dataset))
    return None if schema is None else {c.name: c.type for c in schema.columns}


def _retrain_request(params: dict[str, Any], events: Any, *, dag_run: Any, ti: Any) -> dict:
    from include.mlops.etl.naming import is_derived_from_traffic
    from include.mlops.registry import champion, training_spec
    from include.mlops.training.request import TrainingRequest

    model_name = params["model_name"]
    datasets: set[str] = set()
    traffic: set[str] = set()
    other_events = 0
    for asset_events in (events or {}).values():
        for event in asset_events:
            extra = dict(getattr(event, "extra", None) or {})
            model_name = extra.get("model_name", model_name)
            if "dataset" in extra and "model_name" not in extra:
                # Labels and labelled traffic wait for the next drift or scheduled run:
                # a label batch alone must not start an unattended retrain.
                (traffic if is_derived_from_traffic(extra["dataset"]) else datasets).add(
                    extra["dataset"]
                )
            else:
                other_events += 1
    if traffic and not datasets and not other_events:
        raise AirflowSkipException(
            f"new labels or labelled traffic in {sorted(traffic)}: not a retraining trigger; "
            "the next drift-triggered or scheduled retrain picks them up"
        )
    client = LakeHook().get_mlflow_client()
    current = champion(client, model_name)
    if current is None:
        raise AirflowSkipException(f"{model_name} has no champion yet: train it by hand first")
    spec = training_spec(client, model_name, current.version)
    if datasets and spec.get("dataset") not in datasets:
        raise AirflowSkipException(
            f"new data in {sorted(datasets)}; {model_name} trains on {spec.get('dataset')!r}: nothing to do"
        )
    request = TrainingRequest.from_params(spec)
    _skip_if_data_unchanged(request, spec, current)
    _claim_retraining(client, model_name, dag_run=dag_run, ti=ti)
    log.info(
        "retraining %s from champion v%s's spec on the newest snapshot", model_name, current.version
    )
    return request.to_dict()


def _skip_if_data_unchanged(request: TrainingRequest, spec: dict[str, Any], current: Any) -> None:
    """Skip (and alert) when the champion's data policy selects exactly the snapshots the
    champion already trained on: retraining would only repeat it.

    Raises:
        AirflowSkipException: Naming the snapshots it has and the data it waits for.
    """
    from include.mlops.airflow.notifiers import MessageNotifier
    from include.mlops.training.data import (
        plan_training_data,
        same_data,
        stored_data_block,
        waiting_message,
    )

    try:
        plan = plan_training_data(
            LakeHook().get_lake(), dataset=request.dataset, model_name=request.model_name,
            window_days=request.data_window_days, use_feedback=request.use_feedback,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise AirflowFailException(str(exc)) from exc
    stored = stored_data_block(spec, (current.tags or {}).get("data_snapshot"))
    if not same_data(plan, stored):
        log.info("new data since champion v%s: %s (it trained on %s)", current.version,
                 plan.snapshots(), stored)  # fmt: skip
        return
    message = waiting_message(
        request.model_name, current.version, plan, use_feedback=request.use_feedback
    )
    MessageNotifier(
        f"Retraining skipped: {message}.",
        subject=f"retraining of {request.model_name} skipped: no new data",
        details={"model_name": request.model_name, "version": str(current.version),
                 "data_snapshots": plan.snapshots(), "action": "retraining skipped"},
    ).notify({})  # fmt: skip
    raise AirflowSkipException(message)


def _claim_retraining(client: Any, model_name: str, *, dag_run: Any, ti: Any) -> None:
    """At most one unattended retraining per model: skip while another one is running."""
    run_id = str(getattr(dag_run, "run_id", "") or "")
    other = (client.get_registered_model(model_name).tags or {}).get(RETRAIN_RUN_TAG)
    if other and other != run_id and ti is not None:
        try:
            state = str(ti.get_dagrun_state(dag_id="train_model", run_id=other))
        except Exception as exc:  # the run may have been deleted
            log.info("previous retraining run %s: state unknown (%s)", other, exc)
            state = "unknown"
        if state.lower() in ("queued", "running"):
            raise AirflowSkipException(
                f"{model_name} is already being retrained by run {other} ({state}); "
                "one unattended retraining per model at a time"
            )
    if run_id:
        client.set_registered_model_tag(model_name, RETRAIN_RUN_TAG, run_id)


def prepare(request: TrainingRequest, *, run_id: str) -> PreparedData:
    from include.mlops.quality.gate import DataQualityError
    from include.mlops.workflows.training import champion_training_data, prepare_training_data

    hook = LakeHook()
    # The champion's training data decides the recent window held out for judging.
    champion = champion_training_data(hook.get_mlflow_client(), request.model_name)
    try:
        return prepare_training_data(hook.get_lake(), request, run_id=run_id, champion=champion)
    except DataQualityError as exc:
        raise AirflowFailException(str(exc)) from exc
    except FileNotFoundError as exc:
        raise AirflowFailException(str(exc)) from exc


def optuna_storage() -> str:
    """The shared study database: ``MLOPS_OPTUNA_STORAGE`` (the stack's PostgreSQL)."""
    from include.mlops.tuning.study import storage_url_from_env

    try:
        return storage_url_from_env()
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc


def _tuning(tuning: dict[str, Any]) -> TuningHandle:
    """The hand-off with the study database's URL from this worker's environment (the
    XCom carries it with the password masked), checked to name the same database."""
    import dataclasses

    from include.mlops.training.handoffs import TuningHandle
    from include.mlops.tuning.study import public_url

    handle = TuningHandle.from_dict(tuning)
    url = optuna_storage()
    if public_url(url) != handle.storage_url:
        raise AirflowFailException(
            f"this worker's MLOPS_OPTUNA_STORAGE ({public_url(url)}) is not the database of "
            f"study {handle.study_name!r} ({handle.storage_url})"
        )
    return dataclasses.replace(handle, storage_url=url)


def begin_tuning(request: TrainingRequest, prepared: PreparedData, *, run_id: str) -> TuningHandle:
    from include.mlops.workflows.training import start_tuning

    hook = LakeHook()
    tuning = start_tuning(
        hook.get_mlflow_client(), request, prepared, run_id=run_id, storage_url=optuna_storage(),
        artifact_location=hook.get_mlflow_artifact_location(request.model_name),
    )  # fmt: skip
    log.info("study %s (%s), %d worker(s), up to %d trials", tuning.study_name,
             request.tuning_strategy, request.max_parallel_trials, request.max_trials)  # fmt: skip
    return tuning


def prepare_and_open_study(request: dict[str, Any], *, run_id: str) -> dict:
    """The data gate and split, then the shared study and tuning run: ``prepared``, ``tuning``."""
    from include.mlops.training.request import TrainingRequest

    req = TrainingRequest.from_params(request)
    prepared = prepare(req, run_id=run_id)
    tuning = begin_tuning(req, prepared, run_id=run_id)
    return {"prepared": prepared.to_dict(), "tuning": tuning.to_dict()}


def tune(
    request: dict[str, Any], prepared: dict[str, Any], tuning: dict[str, Any], worker: int
) -> dict:
    from include.mlops.training.handoffs import PreparedData
    from include.mlops.training.request import TrainingRequest
    from include.mlops.workflows.training import tune_worker

    hook = LakeHook()
    return tune_worker(
        hook.get_lake(), hook.get_mlflow_client(), TrainingRequest.from_params(request),
        PreparedData.from_dict(prepared), _tuning(tuning), worker=worker,
    ).to_dict()  # fmt: skip


def evaluate(
    request: dict[str, Any], prepared: dict[str, Any], tuning: dict[str, Any], *, run_id: str
) -> dict:
    from include.mlops.evaluation.gates import ModelGateError
    from include.mlops.training.handoffs import PreparedData
    from include.mlops.training.request import TrainingRequest
    from include.mlops.tuning.worker import TuningFailedError
    from include.mlops.workflows.training import evaluate_candidate

    hook = LakeHook()
    try:
        evaluation = evaluate_candidate(
            hook.get_lake(), hook.get_mlflow_client(), TrainingRequest.from_params(request),
            PreparedData.from_dict(prepared), _tuning(tuning), run_id=run_id,
        )  # fmt: skip
    except (ModelGateError, TuningFailedError) as exc:
        raise AirflowFailException(str(exc)) from exc
    return evaluation.to_dict()


def register(
    request: dict[str, Any],
    prepared: dict[str, Any],
    tuning: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict:
    from include.mlops.training.handoffs import CandidateEvaluation, PreparedData
    from include.mlops.training.request import TrainingRequest
    from include.mlops.workflows.training import register_version

    hook = LakeHook()
    return register_version(
        hook.get_lake(), hook.get_mlflow_client(), TrainingRequest.from_params(request),
        PreparedData.from_dict(prepared), _tuning(tuning),
        CandidateEvaluation.from_dict(evaluation),
    ).to_dict()  # fmt: skip


def approve(
    registered: dict[str, Any],
    *,
    decision: dict[str, Any] | None,
    outlet_events: Any,
    run_id: str | None = None,
) -> dict:
    """Tag the version Approved and announce it (deploy schedules on the event).

    The audit trail gets the approval first: the responding user and their comment, or
    ``system:train_model`` for ``approval=auto``.
    """
    from include.mlops.airflow.assets import model_approved
    from include.mlops.registry import approve_version
    from include.mlops.training.handoffs import RegisteredVersion

    version = RegisteredVersion.from_dict(registered)
    actor, comment = _decided_by(decision)
    _audit_decision(version, "approval", decision, run_id=run_id)
    approve_version(
        LakeHook().get_mlflow_client(),
        version.model_name,
        version.version,
        actor=actor,
        comment=comment,
    )
    extra = {"model_name": version.model_name, "version": version.version,
             "run_id": version.run_id, "approved_by": actor}  # fmt: skip
    outlet_events[model_approved].extra = extra
    log.info("%s v%s Approved by %s", version.model_name, version.version, actor)
    return extra


def reject_if_rejected(
    registered: dict[str, Any] | None,
    *,
    decision: dict[str, Any] | None,
    run_id: str | None = None,
) -> dict:
    """Tag Rejected when the approver chose Reject (audited first); otherwise nothing to do."""
    from include.mlops.registry import reject_version
    from include.mlops.training.handoffs import RegisteredVersion

    if not registered or (decision or {}).get("option") != "Reject":
        raise AirflowSkipException("no rejection to record")
    version = RegisteredVersion.from_dict(registered)
    actor, comment = _decided_by(decision)
    _audit_decision(version, "rejection", decision, run_id=run_id)
    reject_version(
        LakeHook().get_mlflow_client(),
        version.model_name,
        version.version,
        actor=actor,
        comment=comment,
    )
    log.info("%s v%s Rejected by %s: %s", version.model_name, version.version, actor, comment)
    return {"model_name": version.model_name, "version": version.version, "rejected_by": actor}


def _decided_by(decision: dict[str, Any] | None) -> tuple[str, str | None]:
    if not decision:
        return "auto (every gate passed)", None
    return str(decision.get("user") or "unknown"), decision.get("comment")


#: Who the audit trail names for train_model's own decisions (approval=auto).
SYSTEM_ACTOR = "system:train_model"


def _audit_decision(
    version: RegisteredVersion, event: str, decision: dict[str, Any] | None, *, run_id: str | None
) -> None:
    """Append the decision to the model's audit trail, before the registry changes."""
    from include.mlops.lake.audit import record_event

    if decision:
        actor, reason = str(decision.get("user") or "unknown"), decision.get("comment")
    else:
        actor, reason = SYSTEM_ACTOR, "every gate passed"
    details = {"version": version.version, "run_id": run_id, "mlflow_run_id": version.run_id}
    if decision and decision.get("responded_at"):
        details["responded_at"] = decision["responded_at"]
    key = record_event(LakeHook().get_lake(), version.model_name, event, actor=actor,
                       reason=reason, details=details)  # fmt: skip
    log.info("audit: %s of %s v%s by %s recorded at %s", event, version.model_name,
             version.version, actor, key)  # fmt: skip


def outcome(registered: dict[str, Any] | None) -> dict:
    """Log and return the registered version's final approval status."""
    from include.mlops.registry import get_version
    from include.mlops.training.handoffs import RegisteredVersion

    if not registered:
        raise AirflowSkipException("nothing was registered in this run")
    version = RegisteredVersion.from_dict(registered)
    info = get_version(LakeHook().get_mlflow_client(), version.model_name, version.version)
    log.info("%s v%s is %s; report %s", version.model_name, version.version, info.status,
             version.report_uri)  # fmt: skip
    return {"model_name": version.model_name, "version": version.version, "status": info.status}
