"""Registering a candidate: a Pending version with its tags, metrics, artifacts and checksum."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow.models import Model

from include.mlops.registry import (
    PENDING,
    RegistryError,
    download_model,
    drift_baseline,
    get_version,
    list_versions,
    model_artifact_sha256,
    registry_client,
    training_spec,
)

# MLflow hints that integer columns cannot hold missing values; the demo rows have none.
pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


def test_register_creates_a_pending_version_with_every_tag(store, register) -> None:
    registered = register()

    assert registered.version == 1
    assert registered.status == PENDING
    assert registered.model_uri == "models:/churn/1"
    info = get_version(store.client, "churn", 1)
    assert info.status == PENDING
    assert info.run_id == registered.run_id
    assert info.model_id == registered.model_id
    assert info.sha256 == registered.sha256 and len(info.sha256) == 64
    assert info.aliases == ()
    assert {k: info.tags[k] for k in ("dataset", "data_snapshot", "git_sha", "objective")} == {
        "dataset": "churn",
        "data_snapshot": "snap-0001",
        "git_sha": "abc1234",
        "objective": "roc_auc",
    }
    assert info.objective_value == pytest.approx(0.81)
    assert info.tags["model_sha256"] == registered.sha256
    assert json.loads(info.tags["training_spec"])["algorithm"] == "logistic_regression"
    # Scalars are logged as test_* metrics; the confusion matrix stays in the report.
    assert info.metrics == {"roc_auc": 0.81, "f1": 0.62, "threshold": 0.4}
    assert info.baseline_metrics == {"roc_auc": 0.5, "f1": 0.0}
    run_metrics = store.client.get_run(registered.run_id).data.metrics
    assert run_metrics["test_roc_auc"] == 0.81
    assert run_metrics["baseline_test_roc_auc"] == 0.5


def test_register_stores_evidence_on_the_run(store, register, fitted) -> None:
    registered = register()

    run_files = {f.path for f in store.client.list_artifacts(registered.run_id)}
    assert {"drift_baseline.json", "training_spec.json", "evaluation"} <= run_files
    evaluation = {f.path for f in store.client.list_artifacts(registered.run_id, "evaluation")}
    assert evaluation == {
        "evaluation/metrics.json",
        "evaluation/roc.png",
        "evaluation/model_card.md",
    }
    spec = training_spec(store.client, "churn", 1)
    assert spec["target"] == "churned" and spec["params"] == fitted.candidate.params
    baseline = drift_baseline(store.client, "churn", 1)
    assert baseline["rows"] == len(fitted.splits.train)
    # Infinite outer bin edges survive the JSON round trip.
    assert baseline["features"]["age"]["bin_edges"][0] == -math.inf


def test_logged_model_has_signature_input_example_and_run_link(store, register) -> None:
    registered = register()

    logged = store.client.get_logged_model(registered.model_id)
    assert logged.source_run_id == registered.run_id
    assert logged.experiment_id == store.experiment_id  # not the default experiment
    assert str(logged.status) in {"READY", "LoggedModelStatus.READY"}
    assert logged.tags["model_sha256"] == registered.sha256
    outputs = store.client.get_run(registered.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [registered.model_id]
    assert registered.source == logged.artifact_location
    assert Path(registered.source).is_relative_to(store.artifacts)

    model = Model.load(str(Path(registered.source) / "MLmodel"))
    assert model.signature is not None
    inputs = model.signature.inputs.input_names()
    assert "age" in inputs and "plan" in inputs
    assert model.saved_input_example_info["artifact_path"] == "input_example.json"
    assert model.flavors["sklearn"]["serialization_format"] == "cloudpickle"


def test_sha256_covers_every_model_file(store, register, tmp_path) -> None:
    registered = register()
    info = get_version(store.client, "churn", 1)

    local = download_model(store.client, info, tmp_path / "download")
    names = sorted(p.name for p in local.rglob("*") if p.is_file())
    assert {"MLmodel", "model.pkl", "input_example.json", "requirements.txt"} <= set(names)
    assert model_artifact_sha256(local) == registered.sha256
    assert model_artifact_sha256(registered.source) == registered.sha256


def test_model_artifact_sha256_is_the_sorted_sha256sum_manifest(tmp_path) -> None:
    import hashlib

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.bin").write_bytes(b"\x00\x01")
    (tmp_path / "a.txt").write_text("hello")
    manifest = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in [("a.txt", b"hello"), ("b/x.bin", b"\x00\x01")]
    )
    assert model_artifact_sha256(tmp_path) == hashlib.sha256(manifest.encode()).hexdigest()
    (tmp_path / "a.txt").write_text("hellO")
    assert model_artifact_sha256(tmp_path) != hashlib.sha256(manifest.encode()).hexdigest()
    with pytest.raises(FileNotFoundError):
        model_artifact_sha256(tmp_path / "missing")


def test_evaluation_report_can_come_from_a_folder(store, register, tmp_path) -> None:
    report = tmp_path / "report"
    (report / "plots").mkdir(parents=True)
    (report / "metrics.json").write_text("{}")
    (report / "plots" / "pr.png").write_bytes(b"png")

    registered = register(evaluation_dir_or_files=report, evaluation_report_uri="s3://lake/r/1")

    files = {f.path for f in store.client.list_artifacts(registered.run_id, "evaluation/plots")}
    assert files == {"evaluation/plots/pr.png"}
    assert get_version(store.client, "churn", 1).tags["evaluation_report"] == "s3://lake/r/1"


def test_second_registration_adds_a_version_and_accepts_a_uri(store, register) -> None:
    register()
    # A tracking URI string works as well as a client.
    second = register(objective_value=0.84)

    assert second.version == 2
    versions = list_versions(store.uri, "churn")
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].objective_value == pytest.approx(0.84)
    assert registry_client(store.uri).tracking_uri == store.uri


def test_register_refuses_unknown_run_and_bad_inputs(register, fitted) -> None:
    with pytest.raises(RegistryError, match="run 'nope' not found"):
        register(run_id="nope")
    with pytest.raises(ValueError, match="non-empty DataFrame"):
        register(input_example=fitted.test_features.head(0))
    with pytest.raises(ValueError, match="relative path"):
        register(evaluation_dir_or_files={"../escape.txt": b"x"})
