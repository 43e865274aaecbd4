"""The endpoint manager: reads the registry, loads what changed, swaps the state in.

A reload builds a complete new :class:`~include.mlops.serving.state.ServingState` beside
the old one and swaps one reference; a version that fails to load keeps whatever that
variant served before. Only Approved versions are loaded (the registry's one rule,
:func:`~include.mlops.registry.versions.require_approved`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from include.mlops.registry.versions import get_version, registry_client, require_approved
from include.mlops.serving.batching import BatchHook
from include.mlops.serving.config import (
    VARIANTS,
    EndpointConfig,
    ServingConfigError,
    ServingSettings,
    read_all_endpoint_configs,
)
from include.mlops.serving.scoring import Scorer, load_scorer
from include.mlops.serving.state import EndpointState, LoadedModel, ServingState

log = logging.getLogger(__name__)


class EndpointManager:
    """Builds serving states from the registry and swaps them in atomically.

    Args:
        settings: The replica's settings (tracking URI, batching, defaults).
        client: An MLflow client (default: one for ``settings.tracking_uri``).
        executor: Thread pool that batches are scored in (``None``: the event loop).
        on_batch: Batch hook of every loaded model (capture, shadow hand-off).
        load: Loads one version (default :func:`load_scorer`); the test seam for a
            model that cannot be loaded is a real broken registry entry, not this.
    """

    def __init__(
        self,
        settings: ServingSettings,
        *,
        client: Any = None,
        executor: Executor | None = None,
        load: Callable[[Any, str, int], Scorer] | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        if client is None and not settings.tracking_uri:
            raise ServingConfigError(
                "MLFLOW_TRACKING_URI is not set: the endpoint reads what to serve from the "
                "MLflow registry"
            )
        self.settings = settings
        self._client = client
        self.executor = executor
        self.on_batch = on_batch
        self._load = load or (lambda client, name, version: load_scorer(client, name, version))
        self._lock = threading.Lock()
        self._state = ServingState(default_endpoint=settings.default_endpoint)
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_seconds = 0.0
        self.listeners: list[Callable[[ServingState], None]] = []

    @property
    def state(self) -> ServingState:
        """The current state (take it once per request and use only that object)."""
        return self._state

    @property
    def client(self) -> Any:
        """The MLflow client (created on first use)."""
        if self._client is None:
            self._client = registry_client(str(self.settings.tracking_uri))
        return self._client

    def reload(self) -> ServingState:
        """Read the registry, load what changed, swap the state in (blocking; thread-safe).

        A registry that cannot be read keeps the current state (and records why); a
        version that cannot be loaded (not Approved, checksum mismatch, unpickling error)
        keeps whatever that variant served before.

        Returns:
            The state now served.
        """
        with self._lock:
            started = time.perf_counter()
            self.reloads += 1
            old = self._state
            try:
                configs = read_all_endpoint_configs(
                    self.client, default_capture_percent=self.settings.capture_percent
                )
            except Exception as error:  # the registry may be down for a while
                self.reload_failures += 1
                message = f"{type(error).__name__}: {error}"
                log.error("cannot read the endpoint configuration from the registry: %s", message)
                self._swap(
                    ServingState(
                        generation=old.generation,
                        endpoints=old.endpoints,
                        default_endpoint=old.default_endpoint,
                        loaded_at=old.loaded_at,
                        registry_error=message[:500],
                    )
                )
                return self._state
            endpoints: dict[str, EndpointState] = {}
            for name, config in configs.items():
                endpoints[name] = self._endpoint(name, config, old.endpoints.get(name))
            changed = _serving_signature(endpoints) != _serving_signature(old.endpoints)
            state = ServingState(
                generation=old.generation + 1 if changed else old.generation,
                endpoints=endpoints,
                default_endpoint=self.settings.default_endpoint,
                registry_error=None,
            )
            in_use = {
                (name, loaded.version)
                for name, ep in endpoints.items()
                for loaded in (ep.champion, ep.canary, ep.shadow)
                if loaded is not None
            }
            # Versions no longer served are released once in-flight requests drop them.
            self._models = {key: m for key, m in self._models.items() if key in in_use}
            self._swap(state)
            if changed:
                _freeze_heap()
            self.last_reload_seconds = time.perf_counter() - started
            if changed:
                log.info(
                    "serving generation %d: %s",
                    state.generation,
                    ", ".join(
                        f"{n} champion={ep.champion.version if ep.champion else None}"
                        f" canary={ep.canary.version if ep.canary else None}"
                        f" shadow={ep.shadow.version if ep.shadow else None}"
                        for n, ep in endpoints.items()
                    )
                    or "nothing",
                )
            return state

    def _swap(self, state: ServingState) -> None:
        self._state = state  # one reference assignment: atomic for every reader
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:
                log.exception("serving-state listener failed")

    def _endpoint(
        self, name: str, config: EndpointConfig, old: EndpointState | None
    ) -> EndpointState:
        loaded: dict[str, LoadedModel | None] = {}
        errors: list[str] = list(config.problems)
        for variant in VARIANTS:
            version = config.version_of(variant)
            if version is None:
                loaded[variant] = None
                continue
            try:
                loaded[variant] = self._model(name, version)
            except Exception as error:  # keep serving what worked
                previous = old.model(variant) if old is not None else None
                kept = f"; still serving version {previous.version}" if previous else ""
                message = (
                    f"{variant} version {version} not loaded: {type(error).__name__}: {error}{kept}"
                )
                log.error("endpoint %s: %s", name, message)
                errors.append(message[:1000])
                loaded[variant] = previous
        return EndpointState(
            model_name=name,
            config=config,
            champion=loaded["champion"],
            canary=loaded["canary"],
            shadow=loaded["shadow"],
            errors=tuple(errors),
        )

    def _model(self, name: str, version: int) -> LoadedModel:
        cached = self._models.get((name, version))
        if cached is not None:
            return cached
        require_approved(get_version(self.client, name, version), "be served")
        log.info("loading model %s version %s", name, version)
        scorer = self._load(self.client, name, version)
        model = LoadedModel(
            scorer,
            executor=self.executor,
            max_batch_rows=self.settings.max_batch_rows,
            on_batch=self.on_batch,
        )
        model.warm_up()
        log.info(
            "loaded model %s version %s in %.2fs (sha256 %s)",
            name,
            version,
            scorer.load_seconds,
            (scorer.sha256 or "")[:12],
        )
        self._models[(name, version)] = model
        return model


def _freeze_heap() -> None:
    """Put every object alive now (libraries, loaded models) out of the cyclic GC's reach.

    A full collection walks every tracked object: ~50 ms for the ~220,000 objects of
    mlflow + scikit-learn + a model, which lands on whichever request is being answered
    (a p99 spike). Frozen objects are skipped. Unfreezing first and collecting lets the
    models a swap just released be freed; that one ~50 ms pause happens per deployment,
    not at random under traffic.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _serving_signature(endpoints: dict[str, EndpointState]) -> tuple[Any, ...]:
    return tuple(
        (
            name,
            ep.champion.version if ep.champion else None,
            ep.canary.version if ep.canary else None,
            ep.shadow.version if ep.shadow else None,
            ep.config.canary_percent,
            ep.config.shadow_percent,
            ep.config.capture_percent,
        )
        for name, ep in sorted(endpoints.items())
    )
