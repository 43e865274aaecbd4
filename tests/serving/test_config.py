"""Endpoint configuration in the registry (aliases + tags) and replica settings from the env."""

from __future__ import annotations

import pytest

from include.mlops.registry import NotApprovedError, VersionNotFoundError
from include.mlops.registry.versions import ModelNotFoundError
from include.mlops.serving.config import (
    CANARY_PERCENT_TAG,
    CAPTURE_PERCENT_TAG,
    DEFAULT_MAX_PAYLOAD_BYTES,
    SHADOW_PERCENT_TAG,
    EndpointConfig,
    ServingConfigError,
    ServingSettings,
    clear_variant,
    endpoint_urls,
    read_all_endpoint_configs,
    read_endpoint_config,
    set_variant,
)
from tests.serving.conftest import ServingStore


def test_a_fresh_model_has_no_variants(serving_store: ServingStore) -> None:
    config = read_endpoint_config(serving_store.client, "churn", default_capture_percent=100)
    assert config == EndpointConfig(model_name="churn")
    assert (config.champion, config.canary, config.shadow) == (None, None, None)
    assert (config.canary_percent, config.shadow_percent, config.capture_percent) == (0, 100, 100)


def test_set_variant_writes_aliases_and_percent_tags(serving_store: ServingStore) -> None:
    client = serving_store.client
    assert set_variant(client, "churn", "champion", 1).champion == 1
    config = set_variant(client, "churn", "canary", 2, percent=12.5)
    assert (config.champion, config.canary, config.canary_percent) == (1, 2, 12.5)
    config = set_variant(client, "churn", "shadow", "2", percent=30)
    assert (config.shadow, config.shadow_percent) == (2, 30)
    model = client.get_registered_model("churn")
    assert {k: int(v) for k, v in model.aliases.items()} == {
        "champion": 1,
        "canary": 2,
        "shadow": 2,
    }
    assert model.tags[CANARY_PERCENT_TAG] == "12.5" and model.tags[SHADOW_PERCENT_TAG] == "30"
    # Moving the canary's share alone: same version, new percent.
    assert set_variant(client, "churn", "canary", 2, percent=50).canary_percent == 50
    # A canary keeps its share when re-pointed without one.
    assert set_variant(client, "churn", "canary", 1).canary_percent == 50


def test_clear_variant_removes_alias_and_tag(serving_store: ServingStore) -> None:
    client = serving_store.client
    set_variant(client, "churn", "champion", 1)
    set_variant(client, "churn", "canary", 2, percent=10)
    config = clear_variant(client, "churn", "canary")
    assert (config.champion, config.canary, config.canary_percent) == (1, None, 0.0)
    assert CANARY_PERCENT_TAG not in client.get_registered_model("churn").tags
    assert clear_variant(client, "churn", "shadow").shadow is None  # absent: not an error
    assert clear_variant(client, "churn", "champion").champion is None


def test_only_approved_versions_can_be_set(serving_store: ServingStore) -> None:
    client = serving_store.client
    for variant in ("champion", "canary", "shadow"):
        with pytest.raises(NotApprovedError, match="version 3 is PendingManualApproval"):
            set_variant(client, "churn", variant, 3, percent=None if variant == "champion" else 5)
    assert not client.get_registered_model("churn").aliases
    with pytest.raises(VersionNotFoundError):
        set_variant(client, "churn", "champion", 99)
    with pytest.raises(ModelNotFoundError):
        set_variant(client, "nope", "champion", 1)


@pytest.mark.parametrize(
    ("variant", "percent", "message"),
    [
        ("canary", None, "a canary needs a traffic percent"),
        ("canary", 101, "within 0-100"),
        ("shadow", -1, "within 0-100"),
        ("canary", "lots", "must be a number"),
        ("champion", 50, "the champion takes no percent"),
        ("blue", None, "unknown variant 'blue'"),
    ],
)
def test_bad_variant_requests_are_refused(
    serving_store: ServingStore, variant: str, percent: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        set_variant(serving_store.client, "churn", variant, 1, percent=percent)  # type: ignore[arg-type]
    assert not serving_store.client.get_registered_model("churn").aliases


def test_malformed_tags_fall_back_and_are_reported(serving_store: ServingStore) -> None:
    client = serving_store.client
    set_variant(client, "churn", "champion", 1)
    client.set_registered_model_tag("churn", CANARY_PERCENT_TAG, "ten")
    client.set_registered_model_tag("churn", SHADOW_PERCENT_TAG, "250")
    client.set_registered_model_tag("churn", CAPTURE_PERCENT_TAG, "5")
    client.set_registered_model_alias("churn", "canary", "2")
    config = read_endpoint_config(client, "churn", default_capture_percent=100)
    assert config.canary_percent == 0.0
    assert config.shadow_percent == 100.0
    assert config.capture_percent == 5.0  # the endpoint's tag beats the default
    assert any("'ten' is not a number" in p for p in config.problems)
    assert any("outside 0-100" in p for p in config.problems)


def test_read_all_lists_every_registered_model(serving_store: ServingStore) -> None:
    client = serving_store.client
    set_variant(client, "charges", "champion", 1)
    configs = read_all_endpoint_configs(client, default_capture_percent=20)
    assert list(configs) == ["charges", "churn"]
    assert configs["charges"].champion == 1 and configs["churn"].champion is None
    assert configs["churn"].capture_percent == 20


def test_capture_default_comes_from_the_environment(
    serving_store: ServingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_CAPTURE_PERCENT", "7.5")
    assert read_endpoint_config(serving_store.client, "churn").capture_percent == 7.5
    with pytest.raises(ModelNotFoundError):
        read_endpoint_config(serving_store.client, "nope")


def test_settings_from_env() -> None:
    env = {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLOPS_ENDPOINT_ADMIN_TOKEN": "s3cret",
        "MLOPS_DEFAULT_ENDPOINT": "churn",
        "MLOPS_CAPTURE_PERCENT": "25",
        "MLOPS_ENDPOINT_POLL_SECONDS": "2.5",
        "MLOPS_MAX_PAYLOAD_BYTES": "1000",
        "MLOPS_REPLICA_ID": "replica-a",
        "MLOPS_LAKE_BUCKET": "other",
    }
    settings = ServingSettings.from_env(env)
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.admin_token == "s3cret" and "s3cret" not in repr(settings)
    assert (settings.default_endpoint, settings.capture_percent) == ("churn", 25.0)
    assert (settings.poll_seconds, settings.max_payload_bytes) == (2.5, 1000)
    assert settings.replica_id == "replica-a"
    assert settings.lake_settings is not None and settings.lake_settings.lake_bucket == "other"
    assert "s3cret" not in str(settings.public_dict())
    defaults = ServingSettings.from_env({})
    assert defaults.admin_token is None and defaults.capture_percent == 100.0
    assert defaults.poll_seconds == 10.0 and defaults.max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES
    assert defaults.replica_id  # hostname-pid


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MLOPS_CAPTURE_PERCENT", "150", "within 0-100"),
        ("MLOPS_CAPTURE_PERCENT", "half", "is not a number"),
        ("MLOPS_ENDPOINT_POLL_SECONDS", "0", "must be positive"),
        ("MLOPS_MAX_PAYLOAD_BYTES", "-5", "must be positive"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ServingConfigError, match=message) as caught:
        ServingSettings.from_env({name: value})
    assert name in str(caught.value)


def test_endpoint_urls_for_deploy() -> None:
    assert endpoint_urls({"MLOPS_ENDPOINT_URLS": "http://a:1/, http://b:2"}) == [
        "http://a:1",
        "http://b:2",
    ]
    assert endpoint_urls({"MLOPS_ENDPOINT_URL": "http://one:8090"}) == ["http://one:8090"]
    assert endpoint_urls({}) == []
