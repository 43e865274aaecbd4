"""Deploying a version: refuse what must not ship, infra-validate, roll out, bake, roll back.

SageMaker's deployment guardrails on our endpoint. The registry holds what the endpoint
serves (aliases ``champion``/``canary``/``shadow``, see ``serving.config``); a rollout
changes it, asks every replica to reload, waits until each serves the new configuration,
smoke-tests the live endpoint, then bakes: it watches the new version's error rate and
p99 latency in the replicas' ``/metrics`` and promotes it, or restores the previous
configuration by itself. The decisions are pure functions (:func:`bake_verdict`); the
side effects are in :func:`roll_out`.

Manual rollback: trigger ``deploy_model`` with ``version=previous`` (the champion before
the current one, kept in the registered-model tag ``endpoint.previous_champion``) or with
the version number to go back to, ``strategy=all_at_once``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from include.mlops.deployment.fleet import EndpointFleet, SmokeTestError, VariantTraffic
from include.mlops.deployment.request import DeployRequest
from include.mlops.registry.artifacts import verify_artifact
from include.mlops.registry.versions import (
    ClientOrUri,
    VersionNotFoundError,
    champion,
    get_version,
    latest_approved,
    registry_client,
    require_approved,
)
from include.mlops.serving.config import clear_variant, read_endpoint_config, set_variant
from include.mlops.vocabulary import LATEST_APPROVED, PREVIOUS

log = logging.getLogger(__name__)

PREVIOUS_CHAMPION_TAG = "endpoint.previous_champion"
#: A bake judges error rate and latency only once the new version answered this many requests.
MIN_BAKE_REQUESTS = 20
#: Requests the bake sends itself per check (the example rows), so a quiet endpoint is judged too.
PROBES_PER_CHECK = 10


class DeploymentError(RuntimeError):
    """A deployment stopped; the message says why and what the endpoint serves now."""


class InfraValidationError(DeploymentError):
    """The version failed to load or to score its own input example in a clean process."""


class RolledBackError(DeploymentError):
    """The new version misbehaved live and the previous configuration was restored."""


# -- what may ship ---------------------------------------------------------------------------
def check_deployable(client: ClientOrUri, request: DeployRequest) -> dict[str, Any]:
    """Resolve the requested version and refuse anything that must not be served.

    Returns:
        ``version``, ``sha256``, ``previous`` (the current champion or ``None``), ``run_id``.

    Raises:
        NotApprovedError: The version is Pending or Rejected (its status is named).
        ArtifactChecksumError: Its files do not hash to the sha256 recorded at
            registration (nothing is unpickled).
        VersionNotFoundError / ModelNotFoundError: Nothing matches the request.
    """
    client = registry_client(client)
    current = champion(client, request.model_name)
    if request.version == LATEST_APPROVED:
        info = latest_approved(client, request.model_name)
        if info is None:
            raise VersionNotFoundError(
                f"model {request.model_name!r} has no Approved version to deploy; approve "
                "one in train_model's await_approval step (Required Actions page) first"
            )
    elif request.version == PREVIOUS:
        tags = client.get_registered_model(request.model_name).tags or {}
        previous = tags.get(PREVIOUS_CHAMPION_TAG)
        if not previous:
            raise VersionNotFoundError(
                f"model {request.model_name!r} has no previous champion to roll back to "
                f"(tag {PREVIOUS_CHAMPION_TAG} is unset): give a version number instead"
            )
        info = get_version(client, request.model_name, previous)
    else:
        info = get_version(client, request.model_name, request.version)
    require_approved(info, "be deployed")
    sha256 = verify_artifact(client, request.model_name, info.version)
    return {
        "version": info.version,
        "sha256": sha256,
        "previous": current.version if current is not None else None,
        "run_id": info.run_id,
    }


# -- infra validation ------------------------------------------------------------------------
def infra_validate(
    tracking_uri: str,
    model_name: str,
    version: int,
    *,
    timeout: float = 600.0,
    calls: int = 20,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Load the version in a separate process and score its stored input example.

    A clean interpreter, as a replica has: a model that needs a missing package, fails
    to unpickle or raises on its own example fails here, before the endpoint is touched.

    Args:
        tracking_uri: The registry the child loads the version from.
        model_name: Registered model.
        version: The version.
        timeout: Seconds before the child is given up on.
        calls: How often the example is scored.
        env: Variables the child needs beyond this process's environment (the lake's S3
            endpoint and keys for MLflow's artifact store); this environment's own
            values win.

    Returns:
        ``load_seconds``, ``p50_ms``, ``p99_ms`` (scoring the example ``calls`` times),
        ``rows`` and ``payload`` (the example as a ``dataframe_records`` request body).

    Raises:
        InfraValidationError: The child failed (its last output lines are quoted).
    """
    command = [sys.executable, "-m", "include.mlops.deployment.infra_check",
               "--tracking-uri", tracking_uri, "--model", model_name, "--version", str(version),
               "--calls", str(calls)]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            env={**(env or {}), **os.environ},
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise InfraValidationError(
            f"infra-validation of {model_name} v{version} did not finish in {timeout:.0f}s"
        ) from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise InfraValidationError(
            f"infra-validation of {model_name} v{version} failed (exit {done.returncode}); "
            f"the endpoint was not touched. Last output:\n{tail}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- decisions -------------------------------------------------------------------------------
def bake_verdict(traffic: VariantTraffic, request: DeployRequest) -> tuple[bool, str]:
    """Whether the new version's live traffic during a bake is healthy, and why.

    Judged only once it answered :data:`MIN_BAKE_REQUESTS` requests; before that it is
    healthy by default (nothing says otherwise yet).
    """
    n = int(traffic.requests)
    if n < MIN_BAKE_REQUESTS:
        return True, f"{n} request(s) so far (judged from {MIN_BAKE_REQUESTS})"
    rate = traffic.error_rate
    if rate > request.max_error_rate:
        return False, (
            f"error rate {rate:.1%} ({int(traffic.errors)} of {n} requests answered 5xx) "
            f"exceeds max_error_rate {request.max_error_rate:.1%}"
        )
    p99 = traffic.quantile_ms(0.99)
    if p99 is not None and p99 > request.max_p99_ms:
        return False, f"p99 latency {p99:.0f} ms exceeds max_p99_ms {request.max_p99_ms:.0f} ms"
    p99_text = "n/a" if p99 is None else f"≤{p99:.0f} ms"
    return True, f"{n} requests, error rate {rate:.1%}, p99 {p99_text}"


# -- the rollout -----------------------------------------------------------------------------
@dataclass
class Rollout:
    """One deployment's moving parts (built by the Airflow task from its XComs)."""

    client: Any
    fleet: EndpointFleet
    request: DeployRequest
    version: int
    previous: int | None
    payload: Mapping[str, Any]
    rows: int
    converge_timeout: float = 180.0
    #: Called with the reason before an unhealthy version is rolled back (the audit
    #: trail). Its failure is logged and the rollback goes ahead: an unhealthy version
    #: must not keep serving because a record could not be written.
    before_rollback: Callable[[str], None] | None = None

    def run(self) -> dict[str, Any]:
        """Roll out per the strategy; returns what the endpoint serves at the end.

        Raises:
            RolledBackError: The new version failed live; the previous configuration is
                back and every replica serves it.
            DeploymentError: The endpoint could not be updated.
        """
        strategy = self.request.strategy
        if strategy == "shadow":
            return self._shadow()
        if self.previous is None or self.previous == self.version:
            if strategy != "all_at_once":
                log.info("no other champion to compare with: %s becomes all_at_once", strategy)
            return self._all_at_once()
        if strategy == "canary":
            return self._canary([self.request.traffic_percent])
        if strategy == "linear":
            return self._canary(self.request.linear_steps)
        return self._all_at_once()

    def _all_at_once(self) -> dict[str, Any]:
        model = self.request.model_name
        set_variant(self.client, model, "champion", self.version)
        clear_variant(self.client, model, "canary")
        self._converge({"champion": self.version, "canary": None})
        self._guard("champion", self.request.bake_minutes, self._restore_previous)
        return self._promoted()

    def _canary(self, shares: list[float]) -> dict[str, Any]:
        model = self.request.model_name
        per_step = self.request.bake_minutes / len(shares)
        for share in shares:
            log.info("canary v%s at %s%% of traffic (champion v%s)", self.version, f"{share:g}",
                     self.previous)  # fmt: skip
            set_variant(self.client, model, "canary", self.version, share)
            self._converge({"champion": self.previous, "canary": self.version})
            self._guard("canary", per_step, self._drop_canary)
        set_variant(self.client, model, "champion", self.version)
        clear_variant(self.client, model, "canary")
        self._converge({"champion": self.version, "canary": None})
        self._guard("champion", 0.0, self._restore_previous)
        return self._promoted()

    def _shadow(self) -> dict[str, Any]:
        model = self.request.model_name
        if self.previous is None:
            raise DeploymentError(
                f"{model} has no champion: a shadow copies the champion's traffic, so deploy "
                "a champion first (strategy all_at_once)"
            )
        set_variant(self.client, model, "shadow", self.version, self.request.traffic_percent)
        self._converge({"champion": self.previous, "shadow": self.version})
        self.fleet.smoke_test(model, self.payload, rows=self.rows)
        log.info(
            "v%s shadows champion v%s on %s%% of requests; its predictions are captured with "
            "variant=shadow (promote it with strategy all_at_once or canary)",
            self.version, self.previous, f"{self.request.traffic_percent:g}",
        )  # fmt: skip
        return read_endpoint_config(self.client, model).as_dict()

    # -- steps -------------------------------------------------------------------------------
    def _converge(self, expected: Mapping[str, int | None]) -> None:
        self.fleet.wait_converged(self.request.model_name, expected, timeout=self.converge_timeout)

    def _guard(self, variant: str, minutes: float, undo: Callable[[], None]) -> None:
        """Smoke-test, then bake ``minutes``; on failure undo, converge and raise."""
        try:
            self.fleet.smoke_test(self.request.model_name, self.payload, rows=self.rows)
            healthy, why = self._bake(variant, minutes)
        except SmokeTestError as exc:
            healthy, why = False, str(exc)
        if healthy:
            return
        log.info("v%s is unhealthy (%s); rolling back", self.version, why)
        if self.before_rollback is not None:
            try:
                self.before_rollback(why)
            except Exception:
                log.exception("could not record the rollback of v%s; rolling back anyway",
                              self.version)  # fmt: skip
        undo()
        raise RolledBackError(
            f"deployment of {self.request.model_name} v{self.version} "
            f"({self.request.strategy}) rolled back: {why}. The endpoint serves "
            f"{self._now_serving()} again."
        )

    def _bake(self, variant: str, minutes: float) -> tuple[bool, str]:
        key = (str(self.version), variant)
        before = self.fleet.traffic(self.request.model_name).get(key, VariantTraffic())
        deadline = time.monotonic() + 60.0 * minutes
        interval = min(10.0, max(1.0, 60.0 * minutes / 6))
        why = "no bake"
        while True:
            for _ in range(PROBES_PER_CHECK if minutes > 0 else 0):
                self.fleet.invoke(self.request.model_name, self.payload)
            now = self.fleet.traffic(self.request.model_name).get(key, VariantTraffic())
            healthy, why = bake_verdict(now.minus(before), self.request)
            left = deadline - time.monotonic()
            log.info("bake v%s (%s): %s; %.0fs left", self.version, variant, why, max(left, 0))
            if not healthy:
                return False, why
            if left <= 0:
                return True, why
            time.sleep(min(interval, left))

    def _drop_canary(self) -> None:
        clear_variant(self.client, self.request.model_name, "canary")
        self._converge({"champion": self.previous, "canary": None})

    def _restore_previous(self) -> None:
        model = self.request.model_name
        if self.previous is None:
            clear_variant(self.client, model, "champion")
        else:
            set_variant(self.client, model, "champion", self.previous)
        clear_variant(self.client, model, "canary")
        self._converge({"champion": self.previous, "canary": None})

    def _promoted(self) -> dict[str, Any]:
        model = self.request.model_name
        client = registry_client(self.client)
        if self.previous is not None and self.previous != self.version:
            client.set_registered_model_tag(model, PREVIOUS_CHAMPION_TAG, str(self.previous))
        log.info("%s v%s is the champion on every replica", model, self.version)
        return read_endpoint_config(client, model).as_dict()

    def _now_serving(self) -> str:
        config = read_endpoint_config(self.client, self.request.model_name)
        return f"champion v{config.champion}" if config.champion else "nothing (503)"
