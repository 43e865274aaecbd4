"""The endpoint replicas as ``deploy_model`` sees them: reload, converge, smoke-test, watch.

Replicas are plain HTTP base URLs (``MLOPS_ENDPOINT_URLS``, comma-separated; default
``MLOPS_ENDPOINT_URL``); admin calls carry ``MLOPS_ENDPOINT_ADMIN_TOKEN``. Everything here
talks to the live endpoint over HTTP, exactly as a load balancer or a person would.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from include.mlops.serving.config import PROBE_HEADER
from include.mlops.serving.metrics import parse_text

log = logging.getLogger(__name__)

#: Upper bounds of the endpoint's latency histogram, read back from ``/metrics``.
LATENCY_METRIC = "mlops_request_latency_seconds"


class EndpointUnavailableError(RuntimeError):
    """A replica cannot be reached, refuses the admin token, or never converges."""


class SmokeTestError(RuntimeError):
    """The live endpoint answered the smoke request wrongly."""


@dataclass(frozen=True)
class VariantTraffic:
    """What one variant of one endpoint answered, summed over every replica.

    Attributes:
        requests: Requests answered (any status).
        errors: Requests answered with a 5xx.
        latency_buckets: ``{upper bound seconds: cumulative count}``.
    """

    requests: float = 0.0
    errors: float = 0.0
    latency_buckets: dict[float, float] = field(default_factory=dict)

    def minus(self, before: VariantTraffic) -> VariantTraffic:
        """The traffic between two snapshots."""
        return VariantTraffic(
            requests=self.requests - before.requests,
            errors=self.errors - before.errors,
            latency_buckets={
                bound: count - before.latency_buckets.get(bound, 0.0)
                for bound, count in self.latency_buckets.items()
            },
        )

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a 5xx (0 when there was no request)."""
        return self.errors / self.requests if self.requests else 0.0

    def quantile_ms(self, q: float) -> float | None:
        """Latency quantile in ms from the histogram (the bucket's upper bound)."""
        total = self.latency_buckets.get(float("inf"), 0.0)
        if total <= 0:
            return None
        for bound in sorted(self.latency_buckets):
            if self.latency_buckets[bound] >= q * total:
                return bound * 1000.0
        return None


@dataclass
class EndpointFleet:
    """Every replica of the endpoint service.

    Attributes:
        urls: Replica base URLs.
        admin_token: Bearer token for ``/admin/*``, ``/endpoints`` and ``/metrics``.
        api_key: The API key deploy's smoke and bake probes invoke with
            (``MLOPS_ENDPOINT_API_KEY``).
        timeout: Seconds per HTTP call.
    """

    urls: list[str]
    admin_token: str | None = None
    api_key: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EndpointFleet:
        """``MLOPS_ENDPOINT_URLS`` (or ``MLOPS_ENDPOINT_URL``) and the admin token.

        Raises:
            EndpointUnavailableError: No endpoint URL is configured.
        """
        env = os.environ if env is None else env
        raw = env.get("MLOPS_ENDPOINT_URLS") or env.get("MLOPS_ENDPOINT_URL") or ""
        urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
        if not urls:
            raise EndpointUnavailableError(
                "no model endpoint configured: set MLOPS_ENDPOINT_URLS (comma-separated "
                "replica URLs) or MLOPS_ENDPOINT_URL"
            )
        return cls(
            urls=urls,
            admin_token=env.get("MLOPS_ENDPOINT_ADMIN_TOKEN") or None,
            api_key=env.get("MLOPS_ENDPOINT_API_KEY") or None,
        )

    # -- admin ---------------------------------------------------------------------------
    def reload(self) -> dict[str, dict[str, Any]]:
        """``POST /admin/reload`` on every replica; ``{url: what it now serves}``.

        Raises:
            EndpointUnavailableError: A replica is down or refuses the call.
        """
        if not self.admin_token:
            raise EndpointUnavailableError(
                "MLOPS_ENDPOINT_ADMIN_TOKEN is not set: deploy cannot ask replicas to reload"
            )
        out: dict[str, dict[str, Any]] = {}
        for url in self.urls:
            response = self._call("POST", f"{url}/admin/reload", headers=self._admin_headers())
            out[url] = response.json()
        return out

    def serving(self) -> dict[str, dict[str, Any]]:
        """``GET /endpoints`` on every replica: ``{url: body}``."""
        return {
            url: self._call("GET", f"{url}/endpoints", headers=self._admin_headers()).json()
            for url in self.urls
        }

    def wait_converged(
        self,
        model_name: str,
        expected: Mapping[str, int | None],
        *,
        timeout: float = 120.0,
    ) -> float:
        """Reload every replica and wait until each serves ``expected`` for the endpoint.

        Args:
            model_name: Endpoint name.
            expected: ``{"champion": 3, "canary": 4 | None, "shadow": None}``; variants not
                listed are not checked.
            timeout: Seconds before giving up.

        Returns:
            Seconds it took.

        Raises:
            EndpointUnavailableError: A replica still serves something else at the
                deadline (each replica's state is in the message).
        """
        started = time.monotonic()
        self.reload()
        while True:
            states = {url: _served(body, model_name) for url, body in self.serving().items()}
            lagging = {
                url: served
                for url, served in states.items()
                if any(served.get(k) != v for k, v in expected.items())
            }
            if not lagging:
                took = time.monotonic() - started
                log.info("all %d replica(s) serve %s (%.1fs)", len(self.urls), dict(expected), took)
                return took
            if time.monotonic() - started > timeout:
                raise EndpointUnavailableError(
                    f"replicas did not converge on {model_name} {dict(expected)} within "
                    f"{timeout:.0f}s: {lagging}"
                )
            time.sleep(0.5)
            self.reload()

    # -- traffic -------------------------------------------------------------------------
    def invoke(self, model_name: str, payload: Mapping[str, Any], url: str | None = None) -> Any:
        """One JSON scoring request to a replica (the first by default)."""
        target = f"{url or self.urls[0]}/endpoints/{model_name}/invocations"
        return httpx.post(
            target,
            content=json.dumps(payload, default=str),
            # A probe: counted in /metrics, never captured (monitoring sees real traffic only).
            headers={
                "Content-Type": "application/json",
                PROBE_HEADER: "deploy",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
            timeout=self.timeout,
        )

    def smoke_test(
        self, model_name: str, payload: Mapping[str, Any], *, rows: int
    ) -> dict[str, Any]:
        """Score ``payload`` on every replica; each must answer 200 with ``rows`` predictions.

        Returns:
            ``{url: {"version", "variant", "ms"}}``.

        Raises:
            SmokeTestError: A replica answered anything else (its status and body quoted).
        """
        seen: dict[str, Any] = {}
        for url in self.urls:
            started = time.perf_counter()
            response = self.invoke(model_name, payload, url)
            ms = (time.perf_counter() - started) * 1000.0
            body = _json_or_text(response)
            predictions = body.get("predictions") if isinstance(body, dict) else None
            if response.status_code != 200 or not isinstance(predictions, list):
                raise SmokeTestError(
                    f"smoke test of {model_name} on {url} failed: HTTP {response.status_code} "
                    f"{str(body)[:500]}"
                )
            if len(predictions) != rows:
                raise SmokeTestError(
                    f"smoke test of {model_name} on {url}: {len(predictions)} predictions "
                    f"for {rows} rows"
                )
            seen[url] = {"version": body.get("model_version"), "variant": body.get("variant"),
                         "ms": round(ms, 1)}  # fmt: skip
        log.info("smoke test passed on %d replica(s): %s", len(seen), seen)
        return seen

    def traffic(self, model_name: str) -> dict[tuple[str, str], VariantTraffic]:
        """``/metrics`` of every replica summed: ``{(version, variant): VariantTraffic}``."""
        totals: dict[tuple[str, str], dict[str, Any]] = {}
        for url in self.urls:
            samples = parse_text(
                self._call("GET", f"{url}/metrics", headers=self._admin_headers()).text
            )
            for (name, labels_set), value in samples.items():
                labels = dict(labels_set)
                if labels.get("endpoint") != model_name:
                    continue
                key = (labels.get("version", ""), labels.get("variant", ""))
                entry = totals.setdefault(key, {"requests": 0.0, "errors": 0.0, "buckets": {}})
                if name == "mlops_requests_total":
                    entry["requests"] += value
                elif name == "mlops_request_errors_total":
                    entry["errors"] += value
                elif name == f"{LATENCY_METRIC}_bucket":
                    bound = float(labels.get("le", "inf").replace("+Inf", "inf"))
                    entry["buckets"][bound] = entry["buckets"].get(bound, 0.0) + value
        return {
            key: VariantTraffic(e["requests"], e["errors"], dict(e["buckets"]))
            for key, e in totals.items()
        }

    def _admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise EndpointUnavailableError(f"{method} {url}: {exc}") from exc
        if response.status_code >= 400:
            raise EndpointUnavailableError(
                f"{method} {url}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response


def _served(body: Mapping[str, Any], model_name: str) -> dict[str, Any]:
    endpoint = (body.get("endpoints") or {}).get(model_name) or {}
    return {k: endpoint.get(k) for k in ("champion", "canary", "shadow")}


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def records_payload(frame: Any) -> dict[str, Any]:
    """An MLflow ``dataframe_records`` payload for a DataFrame (JSON-safe values)."""
    return {"dataframe_records": json.loads(frame.to_json(orient="records", date_format="iso"))}
