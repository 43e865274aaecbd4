"""Model registry and approval on MLflow: register, approve/reject, champion, verified load.

Plain functions over an explicit :class:`mlflow.MlflowClient` (or a tracking URI); no
Airflow. The ApprovalOperator and the deploy and serving code call them.
"""

from include.mlops.registry.approval import approve_version, reject_version, set_approval
from include.mlops.registry.artifacts import (
    download_model,
    load_verified_model,
    model_artifact_sha256,
    verify_artifact,
)
from include.mlops.registry.register import RegisteredVersion, register_candidate
from include.mlops.registry.versions import (
    APPROVAL_STATUSES,
    APPROVAL_TAG,
    APPROVED,
    CHAMPION_ALIAS,
    PENDING,
    REJECTED,
    ApprovalError,
    ArtifactChecksumError,
    ModelNotFoundError,
    NotApprovedError,
    RegistryError,
    VersionInfo,
    VersionNotFoundError,
    champion,
    drift_baseline,
    get_version,
    latest_approved,
    list_versions,
    registry_client,
    resolve_version,
    set_champion,
    training_spec,
)

__all__ = [
    "APPROVAL_STATUSES",
    "APPROVAL_TAG",
    "APPROVED",
    "CHAMPION_ALIAS",
    "PENDING",
    "REJECTED",
    "ApprovalError",
    "ArtifactChecksumError",
    "ModelNotFoundError",
    "NotApprovedError",
    "RegisteredVersion",
    "RegistryError",
    "VersionInfo",
    "VersionNotFoundError",
    "approve_version",
    "champion",
    "download_model",
    "drift_baseline",
    "get_version",
    "latest_approved",
    "list_versions",
    "load_verified_model",
    "model_artifact_sha256",
    "register_candidate",
    "registry_client",
    "reject_version",
    "resolve_version",
    "set_approval",
    "set_champion",
    "training_spec",
    "verify_artifact",
]
