"""Register a tuned candidate: the pipeline as an MLflow model, its evidence, one version.

What one call leaves behind:

- on the tuning run: metrics ``test_<metric>`` and ``baseline_test_<metric>``, artifacts
  ``drift_baseline.json``, ``training_spec.json`` and ``evaluation/<report files>``;
- a logged model (MLflow 3 "Models" tab of the experiment, linked to the run as its
  output) holding the pipeline with its signature and input example;
- a version of the registered model ``model_name`` pointing at those files, tagged
  ``approval_status=PendingManualApproval``, ``dataset``, ``data_snapshot``, ``git_sha``,
  ``objective``, ``objective_value``, ``model_sha256`` and ``training_spec`` (JSON).

Why not ``mlflow.sklearn.log_model``: in MLflow 3.17 it resolves the tracking URI, the
experiment (the *active* or default one, not the run's) and finalizes the logged model
through MLflow's global state, so with a client on another store it writes to the wrong
place or fails. This module does the same steps (create the logged model, ``save_model``
with the same metadata, upload, link to the run, finalize) through the given client.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelOutput, Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from include.mlops.registry.artifacts import model_artifact_sha256
from include.mlops.registry.versions import (
    APPROVAL_TAG,
    BASELINE_METRIC_PREFIX,
    DATA_SNAPSHOT_TAG,
    DATASET_TAG,
    DRIFT_BASELINE_FILE,
    EVALUATION_DIR,
    EVALUATION_REPORT_TAG,
    GIT_SHA_TAG,
    MODEL_ID_TAG,
    OBJECTIVE_TAG,
    OBJECTIVE_VALUE_TAG,
    PENDING,
    SHA256_TAG,
    TEST_METRIC_PREFIX,
    TRAINING_SPEC_FILE,
    TRAINING_SPEC_TAG,
    ClientOrUri,
    RegistryError,
    registry_client,
)

log = logging.getLogger(__name__)

#: MLflow's limit on one model-version tag value (characters).
MAX_VERSION_TAG_LENGTH = 100_000
#: How the pipeline is serialized (see the comment in register_candidate).
SERIALIZATION_FORMAT = "cloudpickle"


@dataclass(frozen=True)
class RegisteredVersion:
    """What registration produced (small: fit for XCom once turned into a dict).

    Attributes:
        model_name: Registered model name.
        version: The new version number.
        run_id: The run that carries the metrics and artifacts.
        model_uri: ``models:/<name>/<version>``.
        sha256: Checksum of the model files (see ``registry.artifacts``).
        status: ``PendingManualApproval``.
        model_id: MLflow logged-model id.
        source: Where the model files are.
    """

    model_name: str
    version: int
    run_id: str
    model_uri: str
    sha256: str
    status: str
    model_id: str
    source: str


def register_candidate(
    client: ClientOrUri,
    *,
    model_name: str,
    run_id: str,
    pipeline: Any,
    input_example: pd.DataFrame,
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
    evaluation_dir_or_files: Mapping[str, bytes | str] | str | Path | None,
    drift_baseline: Mapping[str, Any],
    training_spec: Mapping[str, Any],
    dataset: str,
    data_snapshot: str,
    git_sha: str,
    objective: str,
    objective_value: float,
    evaluation_report_uri: str | None = None,
    description: str | None = None,
) -> RegisteredVersion:
    """Log a fitted pipeline and its evidence, and register it as a Pending version.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name (created on first use).
        run_id: An existing run (the tuning run) that receives metrics and artifacts.
        pipeline: The fitted scikit-learn ``Pipeline`` (steps ``features``, ``model``).
        input_example: A few raw rows as a request would carry them (stored with the
            model; the signature is inferred from them and the pipeline's predictions).
        metrics: Test metrics; numbers are logged as ``test_<metric>``, others skipped.
        baseline_metrics: The baseline's test metrics, logged as ``baseline_test_<metric>``.
        evaluation_dir_or_files: The evaluation report: ``{relative name: bytes}``, or a
            local folder whose files are uploaded; stored under ``evaluation/``.
        drift_baseline: The training split's baseline (``evaluation.baseline``).
        training_spec: Everything needed to retrain (dataset, target, algorithm, params...).
        dataset: Curated dataset name.
        data_snapshot: Catalog snapshot id of the training data.
        git_sha: Commit of the training code.
        objective: Objective metric name (e.g. ``roc_auc``).
        objective_value: Its test value.
        evaluation_report_uri: Where the report is in the lake (tag ``evaluation_report``).
        description: Version description (default: a one-line summary).

    Returns:
        The new version.

    Raises:
        RegistryError: The run does not exist, or the inputs are unusable.
    """
    import mlflow.sklearn
    from mlflow.models import Model, infer_signature

    client = registry_client(client)
    if not model_name:
        raise ValueError("model_name must not be empty")
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ValueError("input_example must be a non-empty DataFrame of raw rows")
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise RegistryError(f"cannot register {model_name!r}: run {run_id!r} not found") from error
    spec_json = json.dumps(dict(training_spec), sort_keys=True, default=str)
    if len(spec_json) > MAX_VERSION_TAG_LENGTH:
        raise RegistryError(
            f"training spec is {len(spec_json)} characters as JSON; a version tag holds "
            f"at most {MAX_VERSION_TAG_LENGTH}"
        )

    _log_metrics(client, run_id, metrics, baseline_metrics)
    _log_evidence(client, run_id, evaluation_dir_or_files, drift_baseline, spec_json)

    logged = client.create_logged_model(
        experiment_id=run.info.experiment_id, name=model_name, source_run_id=run_id
    )
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-register-") as tmp:
            local = Path(tmp) / "model"
            signature = infer_signature(input_example, pipeline.predict(input_example))
            mlflow.sklearn.save_model(
                pipeline,
                str(local),
                mlflow_model=Model(
                    artifact_path=logged.artifact_location,
                    model_uuid=logged.model_id,
                    run_id=run_id,
                    model_id=logged.model_id,
                ),
                signature=signature,
                input_example=input_example,
                # skops (3.17's default) refuses the pipeline's own column functions
                # unless they are whitelisted in the model itself; integrity is checked
                # by our sha256 before anything is unpickled instead.
                serialization_format=SERIALIZATION_FORMAT,
                # Explicit pins: inferring them starts a subprocess that loads the model
                # (~5 s per registration).
                pip_requirements=_pip_requirements(pipeline),
            )
            sha256 = model_artifact_sha256(local)
            client.log_model_artifacts(logged.model_id, str(local))
        client.set_logged_model_tags(logged.model_id, {SHA256_TAG: sha256})
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        client.finalize_logged_model(logged.model_id, "READY")
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise

    _ensure_registered_model(client, model_name)
    tags = {
        APPROVAL_TAG: PENDING,
        DATASET_TAG: dataset,
        DATA_SNAPSHOT_TAG: data_snapshot,
        GIT_SHA_TAG: git_sha,
        OBJECTIVE_TAG: objective,
        OBJECTIVE_VALUE_TAG: repr(float(objective_value)),
        SHA256_TAG: sha256,
        TRAINING_SPEC_TAG: spec_json,
        MODEL_ID_TAG: logged.model_id,
    }
    if evaluation_report_uri:
        tags[EVALUATION_REPORT_TAG] = evaluation_report_uri
    mv = client.create_model_version(
        model_name,
        # The logged model's own location, not models:/<id>: the registry store resolves
        # a models:/ source through MLflow's *global* tracking URI.
        source=logged.artifact_location,
        run_id=run_id,
        tags=tags,
        description=description
        or f"{objective}={float(objective_value):.4g} on {dataset} snapshot {data_snapshot}",
        model_id=logged.model_id,
    )
    log.info(
        "registered %s version %s (%s=%.4f, sha256 %s): %s",
        model_name,
        mv.version,
        objective,
        float(objective_value),
        sha256[:12],
        PENDING,
    )
    return RegisteredVersion(
        model_name=model_name,
        version=int(mv.version),
        run_id=run_id,
        model_uri=f"models:/{model_name}/{mv.version}",
        sha256=sha256,
        status=PENDING,
        model_id=logged.model_id,
        source=logged.artifact_location,
    )


def _log_metrics(
    client: mlflow.MlflowClient,
    run_id: str,
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
) -> None:
    now = _millis()
    batch = [
        Metric(prefix + key, value, now, 0)
        for prefix, source in (
            (TEST_METRIC_PREFIX, metrics),
            (BASELINE_METRIC_PREFIX, baseline_metrics),
        )
        for key, value in _numbers(source).items()
    ]
    if batch:
        client.log_batch(run_id, metrics=batch)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The scalar numeric entries (confusion matrices and the like are in the report)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[str(key)] = float(value)
    return out


def _log_evidence(
    client: mlflow.MlflowClient,
    run_id: str,
    evaluation: Mapping[str, bytes | str] | str | Path | None,
    drift_baseline: Mapping[str, Any],
    spec_json: str,
) -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-evidence-") as tmp:
        root = Path(tmp)
        (root / DRIFT_BASELINE_FILE).write_text(
            json.dumps(dict(drift_baseline), indent=1, default=str), encoding="utf-8"
        )
        (root / TRAINING_SPEC_FILE).write_text(spec_json, encoding="utf-8")
        if isinstance(evaluation, str | Path):
            folder = Path(evaluation)
            if not folder.is_dir():
                raise RegistryError(f"evaluation report folder {folder} does not exist")
            client.log_artifacts(run_id, str(folder), EVALUATION_DIR)
        elif evaluation:
            for name, content in evaluation.items():
                relative = PurePosixPath(name)
                if relative.is_absolute() or ".." in relative.parts:
                    raise ValueError(f"evaluation file name {name!r} must be a relative path")
                path = root / EVALUATION_DIR / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content.encode() if isinstance(content, str) else content)
        client.log_artifacts(run_id, tmp)


def _ensure_registered_model(client: mlflow.MlflowClient, model_name: str) -> None:
    try:
        client.create_registered_model(model_name)
    except MlflowException as error:
        # Another registration created it first (or it existed): both are fine.
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def _pip_requirements(pipeline: Any) -> list[str]:
    packages = ["scikit-learn", "numpy", "pandas", "scipy", "cloudpickle"]
    steps = getattr(pipeline, "steps", [])
    if any(type(step).__module__.startswith("xgboost") for _, step in steps) or any(
        type(getattr(step, "estimator", None)).__module__.startswith("xgboost") for _, step in steps
    ):
        packages.append("xgboost")
    return [_pinned(name) for name in packages]


def _pinned(name: str) -> str:
    # xgboost may be installed as the xgboost-cpu distribution.
    for distribution in (name, f"{name}-cpu"):
        try:
            return f"{name}=={importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return name


def _millis() -> int:
    return int(time.time() * 1000)
