"""What an endpoint serves, held in the registry, and how a replica is configured.

The registry is the one source of truth for every replica (serving contract):

- alias ``champion``: the version answering traffic (set by ``deploy_model`` only);
- alias ``canary`` + registered-model tag ``endpoint.canary_percent`` (0-100): that share
  of requests is answered by the canary instead;
- alias ``shadow`` + tag ``endpoint.shadow_percent`` (0-100, default 100): that share of
  requests is also scored by the shadow off the request path, never answered by it;
- tag ``endpoint.capture_percent`` (0-100): overrides ``MLOPS_CAPTURE_PERCENT`` for the
  endpoint.

Replicas read it by polling and on an admin reload; ``deploy_model`` writes it with
:func:`set_variant` and :func:`clear_variant`. Reading never raises on a malformed
percent tag (a typo must not take every replica's poller down): the value falls back to
its default or is clamped, and the problem is listed in :attr:`EndpointConfig.problems`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.mlops.registry.versions import (
    CHAMPION_ALIAS,
    ClientOrUri,
    ModelNotFoundError,
    get_version,
    registry_client,
    require_approved,
)
from include.mlops.vocabulary import CANARY, SHADOW, VARIANTS, Variant

if TYPE_CHECKING:
    from mlflow.entities.model_registry import RegisteredModel

    from include.mlops.settings import Settings

log = logging.getLogger(__name__)

# Variants (``VARIANTS``, in the order a reader shows them): include/mlops/vocabulary.py.
CANARY_ALIAS = CANARY
SHADOW_ALIAS = SHADOW
CANARY_PERCENT_TAG = "endpoint.canary_percent"
SHADOW_PERCENT_TAG = "endpoint.shadow_percent"
CAPTURE_PERCENT_TAG = "endpoint.capture_percent"
#: A shadow configured without a percent sees every request.
DEFAULT_SHADOW_PERCENT = 100.0
#: Capture share when neither the endpoint's tag nor MLOPS_CAPTURE_PERCENT says otherwise.
DEFAULT_CAPTURE_PERCENT = 100.0
DEFAULT_POLL_SECONDS = 10.0
#: Header marking a synthetic request (deploy's smoke test and bake probes): scored and
#: counted in /metrics, never captured or shadowed.
PROBE_HEADER = "x-mlops-probe"
#: SageMaker's real-time payload limit.
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Variant → the tag holding its traffic percent (the champion takes what is left).
PERCENT_TAGS: dict[str, str] = {"canary": CANARY_PERCENT_TAG, "shadow": SHADOW_PERCENT_TAG}


class ServingConfigError(ValueError):
    """A serving setting (environment variable or argument) is unusable."""


@dataclass(frozen=True)
class EndpointConfig:
    """One endpoint's configuration as the registry holds it.

    Attributes:
        model_name: Registered model name (= endpoint name).
        champion: Version answering traffic, ``None`` before the first deployment.
        canary: Version answering ``canary_percent`` of the requests, if any.
        canary_percent: Share of requests (0-100) the canary answers.
        shadow: Version scoring a copy of ``shadow_percent`` of the requests, if any.
        shadow_percent: Share of requests (0-100) copied to the shadow.
        capture_percent: Share of requests (0-100) whose records are captured.
        problems: Malformed tags found while reading (each with the value used instead).
    """

    model_name: str
    champion: int | None = None
    canary: int | None = None
    canary_percent: float = 0.0
    shadow: int | None = None
    shadow_percent: float = DEFAULT_SHADOW_PERCENT
    capture_percent: float = DEFAULT_CAPTURE_PERCENT
    problems: tuple[str, ...] = field(default=(), compare=False)

    def version_of(self, variant: str) -> int | None:
        """The version configured for ``variant`` (``champion``, ``canary``, ``shadow``)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
        value: int | None = getattr(self, variant)
        return value

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``/admin/config`` and ``/endpoints`` show)."""
        return {
            "model_name": self.model_name,
            "champion": self.champion,
            "canary": self.canary,
            "canary_percent": self.canary_percent,
            "shadow": self.shadow,
            "shadow_percent": self.shadow_percent,
            "capture_percent": self.capture_percent,
            "problems": list(self.problems),
        }


def read_endpoint_config(
    client: ClientOrUri, model_name: str, *, default_capture_percent: float | None = None
) -> EndpointConfig:
    """One endpoint's configuration from its registered model's aliases and tags.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        default_capture_percent: Capture share when the model has no
            ``endpoint.capture_percent`` tag (default: ``MLOPS_CAPTURE_PERCENT``, else 100).

    Returns:
        The configuration (``champion=None`` when nothing is deployed yet).

    Raises:
        ModelNotFoundError: No registered model has this name.
    """
    from mlflow.exceptions import MlflowException

    client = registry_client(client)
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as error:
        if getattr(error, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ModelNotFoundError(f"no registered model {model_name!r}") from error
    return _config_of(model, _default_capture(default_capture_percent))


def read_all_endpoint_configs(
    client: ClientOrUri, *, default_capture_percent: float | None = None
) -> dict[str, EndpointConfig]:
    """Every registered model's endpoint configuration, in one paged registry search.

    Models with no champion are included (``champion=None``): the endpoint reports them
    as waiting for a deployment instead of not knowing them.

    Args:
        client: MLflow client or tracking URI.
        default_capture_percent: See :func:`read_endpoint_config`.

    Returns:
        Model name → configuration, sorted by name.
    """
    client = registry_client(client)
    capture = _default_capture(default_capture_percent)
    configs: dict[str, EndpointConfig] = {}
    token: str | None = None
    while True:
        page = client.search_registered_models(max_results=200, page_token=token)
        for model in page:
            configs[str(model.name)] = _config_of(model, capture)
        token = page.token
        if not token:
            break
    return dict(sorted(configs.items()))


def set_variant(
    client: ClientOrUri,
    model_name: str,
    variant: Variant | str,
    version: int | str,
    percent: float | None = None,
) -> EndpointConfig:
    """Point a variant's alias at an Approved version (what ``deploy_model`` does).

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        variant: ``champion``, ``canary`` or ``shadow``.
        version: Version number; it must be Approved.
        percent: Canary: share of requests it answers (required unless a percent is
            already set). Shadow: share of requests copied to it (default 100). Not
            allowed for the champion (it answers what the canary does not).

    Returns:
        The endpoint's configuration after the change.

    Raises:
        ValueError: Unknown variant, a percent outside 0-100, a percent for the champion,
            or a canary without a percent.
        NotApprovedError: The version is not Approved; nothing changed.
        ModelNotFoundError, VersionNotFoundError: No such model or version.
    """
    _check_variant(variant)
    client = registry_client(client)
    info = require_approved(
        get_version(client, model_name, version), f"become the endpoint's {variant}"
    )
    tag = PERCENT_TAGS.get(variant)
    if tag is None and percent is not None:
        raise ValueError(
            "the champion takes no percent: it answers every request the canary does not "
            f"(set the canary's percent instead); got percent={percent}"
        )
    if percent is not None:
        percent = _check_percent(percent, what=f"{variant} percent")
    elif variant == CANARY_ALIAS:
        tags = client.get_registered_model(model_name).tags or {}
        if tag not in tags:
            raise ValueError(
                f"a canary needs a traffic percent: set_variant(..., 'canary', "
                f"{info.version}, percent=10) sends 10% of requests to version {info.version}"
            )
    # The percent first, then the alias: a replica polling in between sees the old
    # version at the new share, never a fresh canary at a stale share.
    if tag is not None and percent is not None:
        client.set_registered_model_tag(model_name, tag, _format_percent(percent))
    client.set_registered_model_alias(model_name, _alias(variant), str(info.version))
    log.info(
        "endpoint %s: %s -> version %s%s",
        model_name,
        variant,
        info.version,
        f" at {percent:g}%" if percent is not None else "",
    )
    return read_endpoint_config(client, model_name)


def clear_variant(client: ClientOrUri, model_name: str, variant: Variant | str) -> EndpointConfig:
    """Remove a variant (its alias and its percent tag); a missing one is not an error.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        variant: ``champion``, ``canary`` or ``shadow``. Clearing the champion stops the
            endpoint answering (503) until a version is deployed again.

    Returns:
        The endpoint's configuration after the change.

    Raises:
        ValueError: Unknown variant.
        ModelNotFoundError: No such model.
    """
    _check_variant(variant)
    client = registry_client(client)
    model = client.get_registered_model(model_name)
    if _alias(variant) in (model.aliases or {}):
        client.delete_registered_model_alias(model_name, _alias(variant))
    tag = PERCENT_TAGS.get(variant)
    if tag is not None and tag in (model.tags or {}):
        client.delete_registered_model_tag(model_name, tag)
    log.info("endpoint %s: %s cleared", model_name, variant)
    return read_endpoint_config(client, model_name)


# -- replica settings ---------------------------------------------------------------------
@dataclass(frozen=True)
class ServingSettings:
    """How one replica of the endpoint runs (read from the environment at start-up).

    Attributes:
        tracking_uri: MLflow tracking/registry URI (``MLFLOW_TRACKING_URI``).
        admin_token: Bearer token for ``/admin/*`` (``MLOPS_ENDPOINT_ADMIN_TOKEN``);
            ``None`` refuses every admin call.
        default_endpoint: Endpoint of plain ``POST /invocations``
            (``MLOPS_DEFAULT_ENDPOINT``; default: the only endpoint with a champion).
        capture_percent: Capture share of endpoints without a capture tag
            (``MLOPS_CAPTURE_PERCENT``).
        poll_seconds: Registry polling period (``MLOPS_ENDPOINT_POLL_SECONDS``).
        max_payload_bytes: Larger request bodies get 413 (``MLOPS_MAX_PAYLOAD_BYTES``).
        replica_id: This replica's name in capture files and ``/endpoints``
            (``MLOPS_REPLICA_ID``; default ``<hostname>-<pid>``).
        lake_settings: Where captured records go (``Settings.from_env``).
        capture: Whether this replica captures at all (tests without a lake turn it off).
        max_batch_rows: Rows scored in one call when concurrent requests are batched.
        shadow_queue_rows: Rows waiting for the shadow beyond which copies are dropped.
        score_in_thread: Score in a worker thread instead of in the event loop (the
            default, measured faster: the GIL turns the thread into hand-off overhead).
        require_api_key: Invocations need an API key (``MLOPS_ENDPOINT_REQUIRE_API_KEY``,
            default true; false only behind a gateway that authenticates callers itself).
        bootstrap_keys: ``{name: key}`` registered at start when the store lacks the name
            (``MLOPS_ENDPOINT_BOOTSTRAP_KEYS``, JSON).
    """

    tracking_uri: str | None = None
    admin_token: str | None = field(default=None, repr=False)
    default_endpoint: str | None = None
    capture_percent: float = DEFAULT_CAPTURE_PERCENT
    poll_seconds: float = DEFAULT_POLL_SECONDS
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    replica_id: str = field(default_factory=lambda: default_replica_id())
    lake_settings: Settings | None = None
    capture: bool = True
    max_batch_rows: int = 512
    shadow_queue_rows: int = 10_000
    score_in_thread: bool = False
    require_api_key: bool = True
    bootstrap_keys: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Read the contract's environment variables.

        Args:
            env: Mapping to read instead of ``os.environ`` (tests).

        Returns:
            The settings.

        Raises:
            ServingConfigError: A variable holds something unusable (the message names it).
        """
        from include.mlops.settings import Settings

        env = os.environ if env is None else env
        capture = _env_number("MLOPS_CAPTURE_PERCENT", env.get("MLOPS_CAPTURE_PERCENT"))
        poll = _env_number("MLOPS_ENDPOINT_POLL_SECONDS", env.get("MLOPS_ENDPOINT_POLL_SECONDS"))
        payload = _env_number("MLOPS_MAX_PAYLOAD_BYTES", env.get("MLOPS_MAX_PAYLOAD_BYTES"))
        settings = cls(
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            admin_token=env.get("MLOPS_ENDPOINT_ADMIN_TOKEN") or None,
            default_endpoint=env.get("MLOPS_DEFAULT_ENDPOINT") or None,
            capture_percent=DEFAULT_CAPTURE_PERCENT if capture is None else capture,
            poll_seconds=DEFAULT_POLL_SECONDS if poll is None else poll,
            max_payload_bytes=DEFAULT_MAX_PAYLOAD_BYTES if payload is None else int(payload),
            replica_id=env.get("MLOPS_REPLICA_ID") or default_replica_id(),
            lake_settings=Settings.from_env(env),
            require_api_key=_env_flag(
                "MLOPS_ENDPOINT_REQUIRE_API_KEY", env.get("MLOPS_ENDPOINT_REQUIRE_API_KEY"), True
            ),
            bootstrap_keys=_bootstrap_keys(env),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`ServingConfigError` for values no replica can run with."""
        if not 0 <= self.capture_percent <= 100:
            raise ServingConfigError(
                f"MLOPS_CAPTURE_PERCENT must be within 0-100, got {self.capture_percent:g}"
            )
        if self.poll_seconds <= 0:
            raise ServingConfigError(
                f"MLOPS_ENDPOINT_POLL_SECONDS must be positive, got {self.poll_seconds:g}"
            )
        if self.max_payload_bytes <= 0:
            raise ServingConfigError(
                f"MLOPS_MAX_PAYLOAD_BYTES must be positive, got {self.max_payload_bytes}"
            )
        if self.max_batch_rows < 1:
            raise ServingConfigError(f"max_batch_rows must be >= 1, got {self.max_batch_rows}")

    def public_dict(self) -> dict[str, Any]:
        """The settings without secrets (``/admin/config``)."""
        return {
            "tracking_uri": self.tracking_uri,
            "admin_token_set": self.admin_token is not None,
            "default_endpoint": self.default_endpoint,
            "capture_percent": self.capture_percent,
            "poll_seconds": self.poll_seconds,
            "max_payload_bytes": self.max_payload_bytes,
            "replica_id": self.replica_id,
            "capture": self.capture,
            "lake_bucket": self.lake_settings.lake_bucket if self.lake_settings else None,
            "max_batch_rows": self.max_batch_rows,
            "score_in_thread": self.score_in_thread,
            "require_api_key": self.require_api_key,
        }


def _env_flag(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ServingConfigError(f"{name} must be true or false, got {raw!r}")


def _bootstrap_keys(env: Mapping[str, str]) -> dict[str, str]:
    from include.mlops.serving.keys import KeyRequestError, bootstrap_from_env

    try:
        return bootstrap_from_env(env)
    except (ValueError, KeyRequestError) as exc:
        raise ServingConfigError(str(exc)) from None


def default_replica_id() -> str:
    """``<hostname>-<pid>``: unique per process, readable in capture file names."""
    return f"{socket.gethostname()}-{os.getpid()}"


def endpoint_urls(env: Mapping[str, str] | None = None) -> list[str]:
    """Base URLs of every replica (for deploy): ``MLOPS_ENDPOINT_URLS``, else ``MLOPS_ENDPOINT_URL``.

    Args:
        env: Mapping to read instead of ``os.environ``.

    Returns:
        URLs without trailing slashes (empty when neither variable is set).
    """
    env = os.environ if env is None else env
    raw = env.get("MLOPS_ENDPOINT_URLS") or env.get("MLOPS_ENDPOINT_URL") or ""
    return [url.strip().rstrip("/") for url in raw.split(",") if url.strip()]


# -- helpers ------------------------------------------------------------------------------
def _config_of(model: RegisteredModel, default_capture: float) -> EndpointConfig:
    aliases = {str(k): str(v) for k, v in (model.aliases or {}).items()}
    tags = dict(model.tags or {})
    problems: list[str] = []
    name = str(model.name)

    def version(alias: str) -> int | None:
        raw = aliases.get(alias)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            problems.append(f"alias {alias!r} points at {raw!r}, not a version number; ignored")
            return None

    def percent(tag: str, default: float) -> float:
        raw = tags.get(tag)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"tag {tag}={raw!r} is not a number; using {default:g}")
            return default
        if math.isnan(value):
            problems.append(f"tag {tag}={raw!r} is not a number; using {default:g}")
            return default
        clamped = min(100.0, max(0.0, value))
        if clamped != value:
            problems.append(f"tag {tag}={raw!r} is outside 0-100; using {clamped:g}")
        return clamped

    config = EndpointConfig(
        model_name=name,
        champion=version(CHAMPION_ALIAS),
        canary=version(CANARY_ALIAS),
        canary_percent=percent(CANARY_PERCENT_TAG, 0.0),
        shadow=version(SHADOW_ALIAS),
        shadow_percent=percent(SHADOW_PERCENT_TAG, DEFAULT_SHADOW_PERCENT),
        capture_percent=percent(CAPTURE_PERCENT_TAG, default_capture),
        problems=tuple(problems),
    )
    for problem in problems:
        log.warning("endpoint %s: %s", name, problem)
    return config


def _default_capture(value: float | None) -> float:
    if value is not None:
        return _check_percent(value, what="default capture percent")
    env_value = _env_number("MLOPS_CAPTURE_PERCENT", os.environ.get("MLOPS_CAPTURE_PERCENT"))
    return DEFAULT_CAPTURE_PERCENT if env_value is None else env_value


def _env_number(name: str, raw: str | None) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ServingConfigError(f"{name}={raw!r} is not a number") from None
    if math.isnan(value):
        raise ServingConfigError(f"{name}={raw!r} is not a number")
    return value


def _check_percent(value: Any, *, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number within 0-100, got {value!r}") from None
    if math.isnan(number) or not 0 <= number <= 100:
        raise ValueError(f"{what} must be within 0-100, got {value!r}")
    return number


def _format_percent(value: float) -> str:
    return f"{value:g}"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")


def _alias(variant: str) -> str:
    return {"champion": CHAMPION_ALIAS, "canary": CANARY_ALIAS, "shadow": SHADOW_ALIAS}[variant]
