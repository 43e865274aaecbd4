"""Loading a version only when its files hash to what was registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from include.mlops.registry import (
    ArtifactChecksumError,
    load_verified_model,
    verify_artifact,
)

# MLflow hints that integer columns cannot hold missing values; the demo rows have none.
pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


def test_load_verified_model_predicts_like_the_original(store, register, fitted, tmp_path) -> None:
    registered = register()

    loaded = load_verified_model(store.client, "churn", 1)

    X = fitted.test_features
    original = fitted.candidate.pipeline
    assert list(loaded.named_steps) == ["features", "model"]
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), original.predict_proba(X))
    assert verify_artifact(store.client, "churn", 1) == registered.sha256

    kept = tmp_path / "kept"
    load_verified_model(store.uri, "churn", 1, dst_dir=kept)
    assert (kept / "MLmodel").is_file()
    with pytest.raises(ValueError, match="not empty"):
        load_verified_model(store.client, "churn", 1, dst_dir=kept)


@pytest.mark.parametrize("victim", ["model.pkl", "MLmodel"])
def test_tampered_model_file_is_refused(store, register, victim: str) -> None:
    registered = register()
    stored = Path(registered.source) / victim
    assert stored.is_file()
    stored.write_bytes(stored.read_bytes() + b"\n# tampered\n")

    with pytest.raises(ArtifactChecksumError) as caught:
        load_verified_model(store.client, "churn", 1)
    message = str(caught.value)
    assert f"expected sha256 {registered.sha256}" in message
    assert registered.source in message
    with pytest.raises(ArtifactChecksumError, match="changed since registration"):
        verify_artifact(store.client, "churn", 1)


def test_extra_file_in_the_model_folder_is_refused(store, register) -> None:
    registered = register()
    (Path(registered.source) / "extra.py").write_text("print('hi')")

    with pytest.raises(ArtifactChecksumError):
        verify_artifact(store.client, "churn", 1)


def test_version_without_checksum_is_refused(store, register) -> None:
    register()
    store.client.delete_model_version_tag("churn", "1", "model_sha256")

    with pytest.raises(ArtifactChecksumError, match="no model_sha256 tag"):
        load_verified_model(store.client, "churn", 1)
