"""Model versions in the MLflow registry: what they are, how to find them, the champion.

A version's state lives in its tags (``approval_status`` and the provenance tags written by
:func:`include.mlops.registry.register.register_candidate`) and in one alias,
``champion``: the version the endpoint serves. Every function takes an explicit
:class:`mlflow.MlflowClient` (or a tracking URI to build one from), never MLflow's global
tracking URI, so a unit test hands in a client on a throw-away local store.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

# The statuses are re-exported: the registry's callers name them through it.
from include.mlops.vocabulary import APPROVAL_STATUSES as APPROVAL_STATUSES
from include.mlops.vocabulary import APPROVED, CHAMPION, PENDING
from include.mlops.vocabulary import REJECTED as REJECTED

#: Version tag holding the human decision (one of ``APPROVAL_STATUSES``).
APPROVAL_TAG = "approval_status"
#: Alias of the version the endpoint serves; set by deploy, never by approval.
CHAMPION_ALIAS = CHAMPION

# Provenance tags on every registered version.
DATASET_TAG = "dataset"
DATA_SNAPSHOT_TAG = "data_snapshot"
GIT_SHA_TAG = "git_sha"
OBJECTIVE_TAG = "objective"
OBJECTIVE_VALUE_TAG = "objective_value"
SHA256_TAG = "model_sha256"
TRAINING_SPEC_TAG = "training_spec"
EVALUATION_REPORT_TAG = "evaluation_report"
# The SQL registry store drops create_model_version(model_id=...), so it is kept as a tag.
MODEL_ID_TAG = "model_id"
# Decision tags written by set_approval.
APPROVED_BY_TAG = "approved_by"
REJECTED_BY_TAG = "rejected_by"
APPROVAL_COMMENT_TAG = "approval_comment"
APPROVAL_TIME_TAG = "approval_time"

# Run metrics written by register_candidate: test_<metric> and baseline_test_<metric>.
TEST_METRIC_PREFIX = "test_"
BASELINE_METRIC_PREFIX = "baseline_test_"
# Run artifacts written by register_candidate.
DRIFT_BASELINE_FILE = "drift_baseline.json"
TRAINING_SPEC_FILE = "training_spec.json"
EVALUATION_DIR = "evaluation"

#: ``resolve_version`` keyword for the newest version whatever its status.
LATEST = "latest"

ClientOrUri = mlflow.MlflowClient | str


class RegistryError(Exception):
    """Base class of the registry's foreseen failures."""


class ModelNotFoundError(RegistryError, LookupError):
    """No registered model has this name."""


class VersionNotFoundError(RegistryError, LookupError):
    """The registered model has no version matching the request."""


class NotApprovedError(RegistryError):
    """A version that is not Approved was about to be served."""


class ApprovalError(RegistryError):
    """An approval decision that the version's current status does not allow."""


class ArtifactChecksumError(RegistryError):
    """The model files do not hash to the sha256 recorded at registration."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as the platform sees it.

    Attributes:
        model_name: Registered model name.
        version: Version number.
        status: ``approval_status`` tag (PendingManualApproval when the tag is missing).
        run_id: The MLflow run that produced the version (the tuning run).
        source: Where the model files are (the logged model's artifact location).
        model_id: MLflow logged-model id (``None`` for versions registered otherwise).
        sha256: The model files' checksum recorded at registration (``None`` if absent).
        aliases: The version's aliases (``champion`` when it serves).
        tags: Every version tag.
        metrics: Test metrics of the run, without the ``test_`` prefix.
        baseline_metrics: The baseline's test metrics, without ``baseline_test_``.
        created_at_ms: Creation time, milliseconds since the epoch.
        description: The version's description.
    """

    model_name: str
    version: int
    status: str
    run_id: str | None
    source: str
    model_id: str | None
    sha256: str | None
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    created_at_ms: int | None = None
    description: str = ""

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.model_name}/{self.version}"

    @property
    def is_champion(self) -> bool:
        """Whether this version is the one the endpoint serves."""
        return CHAMPION_ALIAS in self.aliases

    @property
    def objective(self) -> str | None:
        """The objective metric the version was tuned for."""
        return self.tags.get(OBJECTIVE_TAG)

    @property
    def objective_value(self) -> float | None:
        """The test value of the objective metric."""
        value = self.tags.get(OBJECTIVE_VALUE_TAG)
        return float(value) if value not in (None, "") else None


def registry_client(client_or_uri: ClientOrUri) -> mlflow.MlflowClient:
    """An MLflow client for a tracking URI (a client passes through unchanged).

    Args:
        client_or_uri: A client, or a tracking URI (``http://...``, ``sqlite:///...``)
            that is also used as the registry URI.

    Returns:
        The client.
    """
    if isinstance(client_or_uri, mlflow.MlflowClient):
        return client_or_uri
    return mlflow.MlflowClient(tracking_uri=client_or_uri, registry_uri=client_or_uri)


def get_version(client: ClientOrUri, model_name: str, version: int | str) -> VersionInfo:
    """One version with its status, tags, test metrics, checksum and aliases.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number.

    Returns:
        The version.

    Raises:
        ModelNotFoundError: No registered model has this name.
        VersionNotFoundError: The model exists but not this version (the message lists them).
    """
    client = registry_client(client)
    try:
        mv = client.get_model_version(model_name, str(version))
    except MlflowException as error:
        if not _is_not_found(error):
            raise
        existing = _model_versions(client, model_name)  # raises ModelNotFoundError
        raise VersionNotFoundError(
            f"model {model_name!r} has no version {version}; versions: {_describe(existing)}"
        ) from error
    return _version_info(client, mv)


def list_versions(client: ClientOrUri, model_name: str) -> list[VersionInfo]:
    """Every version of a registered model, newest first.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.

    Returns:
        The versions (empty when the model has none).

    Raises:
        ModelNotFoundError: No registered model has this name.
    """
    client = registry_client(client)
    return [_version_info(client, mv) for mv in _model_versions(client, model_name)]


def champion(client: ClientOrUri, model_name: str) -> VersionInfo | None:
    """The version the endpoint serves (alias ``champion``).

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.

    Returns:
        The champion, or ``None`` when the model does not exist yet or has no champion
        (a first training run compares against nothing).
    """
    client = registry_client(client)
    try:
        version = _alias_version(client, model_name, CHAMPION_ALIAS)
    except ModelNotFoundError:
        return None
    return None if version is None else get_version(client, model_name, version)


def latest_approved(client: ClientOrUri, model_name: str) -> VersionInfo | None:
    """The newest Approved version.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.

    Returns:
        The version, or ``None`` when the model does not exist or none is Approved.
    """
    client = registry_client(client)
    try:
        versions = _model_versions(client, model_name)
    except ModelNotFoundError:
        return None
    for mv in versions:
        if _status(mv) == APPROVED:
            return _version_info(client, mv)
    return None


def resolve_version(
    client: ClientOrUri, model_name: str, version_or_alias: str | int | None
) -> VersionInfo:
    """Turn what a user typed into one version.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version_or_alias: ``None`` or ``""`` for the newest Approved version,
            ``"latest"`` for the newest version whatever its status, a number (or
            numeric text) for that version, any other text for the alias of that name
            (``"champion"``).

    Returns:
        The version.

    Raises:
        ModelNotFoundError: No registered model has this name (the message lists some
            that exist).
        VersionNotFoundError: Nothing matches; the message lists the versions and
            their statuses.
    """
    client = registry_client(client)
    wanted = version_or_alias.strip() if isinstance(version_or_alias, str) else version_or_alias
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return get_version(client, model_name, int(wanted))
    versions = _model_versions(client, model_name)  # raises ModelNotFoundError
    if wanted is None or wanted == "":
        for mv in versions:
            if _status(mv) == APPROVED:
                return _version_info(client, mv)
        raise VersionNotFoundError(
            f"model {model_name!r} has no Approved version; versions: {_describe(versions)}"
        )
    if wanted.lower() == LATEST:
        if not versions:
            raise VersionNotFoundError(f"model {model_name!r} has no versions yet")
        return _version_info(client, versions[0])
    alias = wanted.lower() if wanted.lower() == CHAMPION_ALIAS else wanted
    version = _alias_version(client, model_name, alias)
    if version is None:
        raise VersionNotFoundError(
            f"model {model_name!r} has no version with alias {alias!r}; "
            f"versions: {_describe(versions)}"
        )
    return get_version(client, model_name, version)


def require_approved(info: VersionInfo, use: str) -> VersionInfo:
    """The one rule of serving: refuse a version that is not Approved.

    Args:
        info: The version.
        use: What was about to happen, for the message (e.g. ``"be deployed"``).

    Returns:
        ``info``, when Approved.

    Raises:
        NotApprovedError: Pending or Rejected; the message says who decided and how to
            approve it.
    """
    if info.status == APPROVED:
        return info
    decided = info.tags.get(REJECTED_BY_TAG) or info.tags.get(APPROVED_BY_TAG)
    by = f" (decided by {decided})" if decided else ""
    raise NotApprovedError(
        f"model {info.model_name!r} version {info.version} is {info.status}{by}, not "
        f"{APPROVED}: only an {APPROVED} version may {use}. Approve it on the Required "
        "Actions page of its train_model run (or through the REST API), or pick another "
        "version."
    )


def set_champion(client: ClientOrUri, model_name: str, version: int | str) -> VersionInfo:
    """Point the ``champion`` alias at a version (what deploy does).

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number; it must be Approved.

    Returns:
        The new champion.

    Raises:
        NotApprovedError: The version is Pending or Rejected; nothing changed.
        ModelNotFoundError, VersionNotFoundError: No such model or version.
    """
    client = registry_client(client)
    info = require_approved(get_version(client, model_name, version), f"become {CHAMPION_ALIAS}")
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(info.version))
    return get_version(client, model_name, info.version)


def training_spec(client: ClientOrUri, model_name: str, version: int | str) -> dict[str, Any]:
    """The training spec a version was trained with (what a retrain reuses).

    Read from the run's ``training_spec.json``; the version's ``training_spec`` tag (same
    JSON) is the fallback for a run whose artifacts are gone.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number.

    Returns:
        The spec.

    Raises:
        RegistryError: Neither the artifact nor the tag is there.
    """
    client = registry_client(client)
    info = get_version(client, model_name, version)
    try:
        return _run_json(client, info, TRAINING_SPEC_FILE)
    except RegistryError:
        if info.tags.get(TRAINING_SPEC_TAG):
            spec: dict[str, Any] = json.loads(info.tags[TRAINING_SPEC_TAG])
            return spec
        raise


def drift_baseline(client: ClientOrUri, model_name: str, version: int | str) -> dict[str, Any]:
    """The drift baseline stored with a version (see ``evaluation.baseline``).

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number.

    Returns:
        The baseline.

    Raises:
        RegistryError: The version's run has no ``drift_baseline.json``.
    """
    client = registry_client(client)
    return _run_json(client, get_version(client, model_name, version), DRIFT_BASELINE_FILE)


# -- helpers ------------------------------------------------------------------------------
def _is_not_found(error: MlflowException) -> bool:
    return error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def _status(mv: ModelVersion) -> str:
    # A version registered by hand (no tag) still needs a human decision.
    return str((mv.tags or {}).get(APPROVAL_TAG) or PENDING)


def _registered_model(client: mlflow.MlflowClient, model_name: str) -> RegisteredModel:
    """The registered model; ModelNotFoundError names models that do exist."""
    try:
        return client.get_registered_model(model_name)
    except MlflowException as error:
        if not _is_not_found(error):
            raise
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
        shown = ", ".join(repr(n) for n in names) if names else "none yet"
        raise ModelNotFoundError(
            f"no registered model {model_name!r}; registered models: {shown}"
        ) from error


def _alias_version(client: mlflow.MlflowClient, model_name: str, alias: str) -> str | None:
    # Read from the registered model: get_model_version_by_alias reports a missing alias
    # as INVALID_PARAMETER_VALUE, indistinguishable from a real bad request.
    aliases = _registered_model(client, model_name).aliases or {}
    version = aliases.get(alias)
    return None if version is None else str(version)


def _model_versions(client: mlflow.MlflowClient, model_name: str) -> list[ModelVersion]:
    """Every version, newest first; ModelNotFoundError names models that do exist."""
    _registered_model(client, model_name)
    versions: list[ModelVersion] = []
    token: str | None = None
    while True:
        # A name holding a single quote ("o'brien") is quoted with double quotes instead.
        quote = '"' if "'" in model_name else "'"
        page = client.search_model_versions(f"name = {quote}{model_name}{quote}", page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            break
    return sorted(versions, key=lambda mv: int(mv.version), reverse=True)


def _describe(versions: list[ModelVersion]) -> str:
    if not versions:
        return "none yet"
    return ", ".join(f"{mv.version} ({_status(mv)})" for mv in versions)


def _version_info(client: mlflow.MlflowClient, mv: ModelVersion) -> VersionInfo:
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    if mv.run_id:
        try:
            run_metrics = client.get_run(mv.run_id).data.metrics
        except MlflowException as error:
            if not _is_not_found(error):
                raise
            run_metrics = {}  # the run was deleted; the version still describes itself
        for key, value in run_metrics.items():
            if key.startswith(BASELINE_METRIC_PREFIX):
                baseline[key.removeprefix(BASELINE_METRIC_PREFIX)] = value
            elif key.startswith(TEST_METRIC_PREFIX):
                metrics[key.removeprefix(TEST_METRIC_PREFIX)] = value
    tags = dict(mv.tags or {})
    return VersionInfo(
        model_name=mv.name,
        version=int(mv.version),
        status=_status(mv),
        run_id=mv.run_id or None,
        source=str(mv.source),
        model_id=getattr(mv, "model_id", None) or tags.get(MODEL_ID_TAG) or None,
        sha256=tags.get(SHA256_TAG) or None,
        aliases=tuple(sorted(mv.aliases or ())),
        tags=tags,
        metrics=metrics,
        baseline_metrics=baseline,
        created_at_ms=mv.creation_timestamp,
        description=mv.description or "",
    )


def _run_json(client: mlflow.MlflowClient, info: VersionInfo, name: str) -> dict[str, Any]:
    if not info.run_id:
        raise RegistryError(
            f"model {info.model_name!r} version {info.version} has no run, so no {name}"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-registry-") as tmp:
        try:
            path = client.download_artifacts(info.run_id, name, tmp)
        except (MlflowException, OSError) as error:
            raise RegistryError(
                f"model {info.model_name!r} version {info.version}: run {info.run_id} has "
                f"no {name} ({error})"
            ) from error
        with open(os.fspath(path), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    return data
