"""Task bodies of ``deploy_model``: params and context in, one call into the domain, refs out."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.mlops.airflow.hooks import LakeHook

log = logging.getLogger(__name__)


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


def roll_out(request: dict[str, Any], checked: dict[str, Any], infra: dict[str, Any]) -> dict:
    """Update the endpoint per the strategy, bake, and promote or roll back by itself."""
    from include.mlops.deployment.fleet import EndpointFleet, EndpointUnavailableError
    from include.mlops.deployment.request import DeployRequest
    from include.mlops.deployment.rollout import DeploymentError, Rollout

    try:
        fleet = EndpointFleet.from_env()
    except EndpointUnavailableError as exc:
        raise AirflowFailException(str(exc)) from exc
    rollout = Rollout(
        client=LakeHook().get_mlflow_client(), fleet=fleet, request=DeployRequest(**request),
        version=int(checked["version"]), previous=checked["previous"],
        payload=infra["payload"], rows=int(infra["rows"]),
    )  # fmt: skip
    try:
        served = rollout.run()
    except EndpointUnavailableError:
        raise  # the endpoint may come back: the task's retries apply
    except DeploymentError as exc:
        raise AirflowFailException(str(exc)) from exc
    return {"model_name": request["model_name"], "version": int(checked["version"]),
            "strategy": request["strategy"], "serving": served}  # fmt: skip
