"""Task bodies of ``deploy_model``: params and context in, one call into the domain, refs out."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.mlops.airflow.hooks import LakeHook
from include.mlops.vocabulary import PREVIOUS

log = logging.getLogger(__name__)

#: Who the audit trail names for deploy_model's own actions (asset-triggered runs,
#: automatic rollbacks).
SYSTEM_ACTOR = "system:deploy_model"


def resolve_request(params: dict[str, Any], *, dag_run: Any, triggering_asset_events: Any) -> dict:
    """A manual run's params; an asset run deploys the version the approval event names."""
    from include.mlops.deployment.request import DeployRequest, DeployRequestError

    merged = dict(params)
    if "manual" not in str(getattr(dag_run, "run_type", "manual")).lower():
        extras = [
            dict(getattr(event, "extra", None) or {})
            for events in (triggering_asset_events or {}).values()
            for event in events
        ]
        approved = [e for e in extras if e.get("model_name") and e.get("version")]
        if not approved:
            raise AirflowFailException(
                f"no model_approved event with a model and version: {extras}"
            )
        merged.update(model_name=approved[-1]["model_name"], version=str(approved[-1]["version"]))
        log.info("deploying the version just approved: %s", approved[-1])
    try:
        return DeployRequest.from_params(merged).to_dict()
    except DeployRequestError as exc:
        raise AirflowFailException(str(exc)) from exc


def check_version(request: dict[str, Any]) -> dict:
    """Refuse versions that are not Approved or whose files changed since registration."""
    from include.mlops.deployment.request import DeployRequest
    from include.mlops.deployment.rollout import check_deployable
    from include.mlops.registry import RegistryError

    try:
        checked = check_deployable(LakeHook().get_mlflow_client(), DeployRequest(**request))
    except RegistryError as exc:
        # Foreseen refusals (not Approved, checksum mismatch, no such version): a retry
        # would refuse again.
        raise AirflowFailException(str(exc)) from exc
    log.info("deploying %s v%s (sha256 %s verified); current champion: %s",
             request["model_name"], checked["version"], checked["sha256"][:12],
             checked["previous"])  # fmt: skip
    return checked


def validate_infra(request: dict[str, Any], checked: dict[str, Any]) -> dict:
    """Load and score the version's input example in a separate, clean process."""
    from include.mlops.deployment.rollout import InfraValidationError, infra_validate

    hook = LakeHook()
    uri = hook.get_settings().mlflow_tracking_uri or ""
    try:
        # The child downloads the version's files with the lake connection's keys.
        result = infra_validate(uri, request["model_name"], int(checked["version"]),
                                env=hook.get_mlflow_artifact_env())  # fmt: skip
    except InfraValidationError as exc:
        raise AirflowFailException(str(exc)) from exc
    log.info("infra-validation: loaded in %.2fs, example of %d row(s) scored in p50 %.1f ms, "
             "p99 %.1f ms", result["load_seconds"], result["rows"], result["p50_ms"],
             result["p99_ms"])  # fmt: skip
    return result


def roll_out(
    request: dict[str, Any], checked: dict[str, Any], infra: dict[str, Any], *, dag_run: Any = None
) -> dict:
    """Update the endpoint per the strategy, bake, and promote or roll back by itself.

    The model's audit trail gets the deployment (a rollback when it is ``version=previous``
    or goes back to an older version) before the endpoint changes, an automatic rollback
    before it is applied, and ``deployment_failed`` when the rollout stops.
    """
    from include.mlops.deployment.fleet import EndpointFleet, EndpointUnavailableError
    from include.mlops.deployment.request import DeployRequest
    from include.mlops.deployment.rollout import DeploymentError, Rollout
    from include.mlops.lake.audit import record_event

    try:
        fleet = EndpointFleet.from_env()
    except EndpointUnavailableError as exc:
        raise AirflowFailException(str(exc)) from exc
    hook = LakeHook()
    lake = hook.get_lake()
    deploy = DeployRequest(**request)
    version, previous = int(checked["version"]), checked["previous"]
    actor = deployed_by(dag_run)
    details: dict[str, Any] = {
        "version": version, "strategy": deploy.strategy, "previous_champion": previous,
        "requested": deploy.version, "run_id": getattr(dag_run, "run_id", None),
    }  # fmt: skip
    if deploy.strategy != "all_at_once":
        details["traffic_percent"] = deploy.traffic_percent
    event = (
        "rollback"
        if is_rollback(deploy.version, deploy.strategy, version, previous)
        else "deployment"
    )
    # Written before the registry's aliases change: no record, no deployment.
    key = record_event(lake, deploy.model_name, event, actor=actor,
                       reason=deploy_reason(actor, deploy.version, version, previous, event),
                       details=details)  # fmt: skip
    log.info("audit: %s of %s v%s by %s recorded at %s", event, deploy.model_name, version,
             actor, key)  # fmt: skip

    def before_rollback(why: str) -> None:
        restored = f"v{previous}" if previous is not None else "nothing (503)"
        record_event(lake, deploy.model_name, "rollback", actor=SYSTEM_ACTOR,
                     reason=f"v{version} was unhealthy: {why}; restoring {restored}",
                     details={**details, "version": previous, "from_version": version,
                              "automatic": True, "deployed_by": actor})  # fmt: skip

    rollout = Rollout(
        client=hook.get_mlflow_client(), fleet=fleet, request=deploy,
        version=version, previous=previous,
        payload=infra["payload"], rows=int(infra["rows"]), before_rollback=before_rollback,
    )  # fmt: skip
    try:
        served = rollout.run()
    except Exception as exc:
        _record_failure(lake, deploy.model_name, actor, exc, details)
        if isinstance(exc, EndpointUnavailableError):
            raise  # the endpoint may come back: the task's retries apply
        if isinstance(exc, DeploymentError):
            raise AirflowFailException(str(exc)) from exc
        raise
    return {"model_name": request["model_name"], "version": version,
            "strategy": request["strategy"], "serving": served}  # fmt: skip


def deployed_by(dag_run: Any) -> str:
    """The user who triggered a manual run, else ``system:deploy_model``."""
    if "manual" not in str(getattr(dag_run, "run_type", "") or "").lower():
        return SYSTEM_ACTOR
    return str(getattr(dag_run, "triggering_user_name", None) or "unknown user")


def is_rollback(requested: str, strategy: str, version: int, previous: int | None) -> bool:
    """Whether a deployment is a rollback: ``version=previous``, or back to an older version.

    A shadow never is: it changes no answer the endpoint gives.
    """
    if strategy == "shadow":
        return False
    return requested == PREVIOUS or (previous is not None and version < int(previous))


def deploy_reason(
    actor: str, requested: str, version: int, previous: int | None, event: str
) -> str:
    """Why the deployment happens, in the audit trail's words."""
    if event == "rollback":
        return f"rollback from v{previous} to v{version} (version={requested})"
    if actor == SYSTEM_ACTOR:
        return f"v{version} was approved (model_approved event)"
    return f"deployed by hand (version={requested})"


def _record_failure(
    lake: Any, model_name: str, actor: str, exc: BaseException, details: dict[str, Any]
) -> None:
    """Record ``deployment_failed``; never let the record hide why the rollout stopped."""
    from include.mlops.lake.audit import record_event

    try:
        record_event(lake, model_name, "deployment_failed", actor=actor,
                     reason=f"{type(exc).__name__}: {exc}", details=details)  # fmt: skip
    except Exception:
        # A failed record must not turn a rollback (no retry) into a retried task that
        # would redeploy the version just refused.
        log.exception("could not record the failed deployment of %s v%s",
                      model_name, details["version"])  # fmt: skip
