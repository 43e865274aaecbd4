"""The real-time model endpoint: FastAPI app serving every registered model's champion.

Routes (the serving contract; SageMaker's container contract plus MLflow's scoring JSON):

- ``GET /ping``: 200 once an endpoint has a champion loaded, 503 saying why before that;
- ``POST /invocations`` (default endpoint) and ``POST /endpoints/{model_name}/invocations``:
  CSV or JSON rows in, one prediction per row out, each with an inference id, the
  probability and class probabilities for classifiers, and the answering version
  (``X-Model-Version``, ``X-Variant`` headers too); with ``?explain=true`` (optionally
  ``explain_top=k``) each row also carries ``explanation: {base_value, output,
  contributions}`` (:mod:`include.mlops.clarify.explain`); a request without a query
  string does no more work than before;
- ``GET /endpoints``: what this replica serves, per endpoint and variant;
- ``GET /metrics``: Prometheus text;
- ``POST /admin/reload``, ``GET /admin/config``: bearer-token protected.

A request takes the current :class:`~include.mlops.serving.state.ServingState` once and
uses only it, so a swap never breaks it. Everything on the request path runs on the event
loop, scoring included (batched, see ``batching.MicroBatcher``): with the GIL, a scoring
thread only adds hand-offs, and measured at concurrency 8 it halved throughput
(``benchmarks/bench_serving.py --compare-scoring``). Capture writing and shadow scoring run
on their own threads, off the request path. Errors the caller can fix are 4xx with a message naming the
field; a model that raises is a 500 counted in ``mlops_request_errors_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from include.mlops.serving.access import ROUTE_ACCESS, Access, Gatekeeper, Refusal
from include.mlops.serving.admin_keys import add_key_routes, key_store
from include.mlops.serving.batching import Scored, ScoredRows, ScoringError
from include.mlops.serving.capture import should_capture
from include.mlops.serving.capture_hub import CaptureHub
from include.mlops.serving.config import PROBE_HEADER, VARIANTS, ServingSettings
from include.mlops.serving.manager import EndpointManager
from include.mlops.serving.metrics import (
    CONTENT_TYPE,
    CallbackCounter,
    Counter,
    Gauge,
    Histogram,
    Labels,
    MetricsRegistry,
)
from include.mlops.serving.openapi_doc import document_invocations
from include.mlops.serving.rows import Rows, merged_rows
from include.mlops.serving.shadow import ShadowWorker
from include.mlops.serving.state import EndpointState, LoadedModel, ServingState
from include.mlops.serving.validation import (
    ExplainRequest,
    PayloadTooLargeError,
    RequestError,
    csv_header,
    explain_request,
    media_type,
    parse_body,
)

log = logging.getLogger(__name__)

_JSON = "application/json"


class _NotServed(Exception):
    """No endpoint can answer: 404 (unknown/ambiguous) or 503 (nothing deployed)."""

    def __init__(self, status: int, detail: str, endpoint: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.endpoint = endpoint


class ServingMetrics:
    """The endpoint's metric families (names are part of the serving contract)."""

    def __init__(self, manager: EndpointManager, capture: CaptureHub, shadow: ShadowWorker) -> None:
        self.registry = MetricsRegistry()
        labels = ("endpoint", "version", "variant")
        self.requests = Counter(
            "mlops_requests_total",
            "Requests answered, by endpoint, model version, variant and HTTP status.",
            (*labels, "status"),
        )
        self.errors = Counter(
            "mlops_request_errors_total",
            "Requests answered with a server error (5xx): the model or the endpoint failed.",
            labels,
        )
        self.latency = Histogram(
            "mlops_request_latency_seconds",
            "Time from request arrival to response, in seconds.",
            labels,
        )
        self.rows = Counter("mlops_scored_rows_total", "Rows scored and answered.", labels)
        self.capture_records = CallbackCounter(
            "mlops_capture_records_total",
            "Captured records written to the lake, per endpoint.",
            ("endpoint",),
            callback=lambda: capture.counters("captured"),
        )
        self.capture_dropped = CallbackCounter(
            "mlops_capture_dropped_total",
            "Captured records dropped (buffer full, store down at shutdown), per endpoint.",
            ("endpoint",),
            callback=lambda: capture.counters("dropped"),
        )
        self.shadow_rows = CallbackCounter(
            "mlops_shadow_rows_total",
            "Rows copied to shadow models, by outcome (scored, failed, dropped).",
            ("outcome",),
            callback=lambda: {
                ("scored",): float(shadow.scored),
                ("failed",): float(shadow.failed),
                ("dropped",): float(shadow.dropped),
            },
        )
        self.served = Gauge(
            "mlops_endpoint_version",
            "Version this replica serves per endpoint and variant (absent: none).",
            ("endpoint", "variant"),
            callback=lambda: _served_versions(manager.state),
        )
        self.traffic = Gauge(
            "mlops_endpoint_traffic_percent",
            "Share of requests (0-100) per endpoint and variant (shadow: share copied).",
            ("endpoint", "variant"),
            callback=lambda: _traffic(manager.state),
        )
        self.generation = Gauge(
            "mlops_serving_generation",
            "Serving-state generation (increases whenever what is served changes).",
            callback=lambda: {(): float(manager.state.generation)},
        )
        self.reloads = CallbackCounter(
            "mlops_registry_reloads_total",
            "Registry configuration reads, by outcome.",
            ("outcome",),
            callback=lambda: {
                ("ok",): float(manager.reloads - manager.reload_failures),
                ("failed",): float(manager.reload_failures),
            },
        )
        for metric in (
            self.requests,
            self.errors,
            self.latency,
            self.rows,
            self.capture_records,
            self.capture_dropped,
            self.shadow_rows,
            self.served,
            self.traffic,
            self.generation,
            self.reloads,
        ):
            self.registry.add(metric)

    def observe(self, labels: Labels, status: int, seconds: float, rows: int = 0) -> None:
        """Record one answered request."""
        self.requests.inc((*labels, str(status)))
        self.latency.observe(labels, seconds)
        if status >= 500:
            self.errors.inc(labels)
        if rows:
            self.rows.inc(labels, rows)


def create_app(
    config: ServingSettings | None = None,
    *,
    client: Any = None,
    lake: Any = None,
) -> FastAPI:
    """Build the endpoint.

    Args:
        config: Replica settings (default: :meth:`ServingSettings.from_env`).
        client: MLflow client to read the registry with (default: one for
            ``config.tracking_uri``).
        lake: Lake for captured records (default: from ``config.lake_settings``).

    Returns:
        The FastAPI app; the registry is read at start-up (in the background) and every
        ``poll_seconds`` after.
    """
    settings = config if config is not None else ServingSettings.from_env()
    settings.check()
    executor = (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        if settings.score_in_thread
        else None
    )
    capture = CaptureHub(settings, lake=lake)
    gate = Gatekeeper(
        settings.admin_token,
        require_keys=settings.require_api_key,
        store=key_store(settings, lake),
    )
    shadow = ShadowWorker(
        lambda endpoint, model, rows, scored, at, caller: capture.offer(
            endpoint, model, "shadow", rows, scored, at, caller=caller
        ),
        max_queue_rows=settings.shadow_queue_rows,
        max_batch_rows=settings.max_batch_rows,
    )
    manager = EndpointManager(
        settings,
        client=client,
        executor=executor,
        on_batch=lambda model, frame, entries: _after_batch(capture, shadow, model, frame, entries),
    )
    manager.listeners.append(capture.ensure)
    metrics = ServingMetrics(manager, capture, shadow)
    rng = random.Random()

    bootstrap = dict(settings.bootstrap_keys or {}) if gate.store is not None else {}

    def refresh_keys() -> None:
        """Register the bootstrap keys (once), then re-read the key records. A lake that
        cannot be read keeps the previous set (none at start: every key is refused until
        it answers), and the next poll tries again."""
        try:
            if bootstrap and gate.store is not None:
                added = gate.store.bootstrap(bootstrap, by=f"replica:{settings.replica_id}")
                bootstrap.clear()
                if added:
                    log.info("registered API key(s) %s from MLOPS_ENDPOINT_BOOTSTRAP_KEYS", added)
            gate.reload_keys()
        except Exception:
            log.exception("reading the API keys failed (the previous set stays)")

    async def poll() -> None:
        while True:
            try:
                await asyncio.to_thread(manager.reload)
            except Exception:
                log.exception("registry poll failed")
            await asyncio.to_thread(refresh_keys)
            await asyncio.sleep(settings.poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(refresh_keys)
        shadow.start()
        poller = asyncio.create_task(poll(), name="registry-poller")
        log.info(
            "endpoint replica %s starting: registry %s, poll every %gs, capture %s",
            settings.replica_id,
            settings.tracking_uri,
            settings.poll_seconds,
            f"{settings.capture_percent:g}% by default" if settings.capture else "off",
        )
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await poller
            await asyncio.to_thread(shadow.stop)
            await asyncio.to_thread(capture.close)
            if executor is not None:
                executor.shutdown(wait=True)
            log.info("endpoint replica %s stopped", settings.replica_id)

    async def authorize(request: Request) -> None:
        """Every FastAPI route: its entry in ROUTE_ACCESS decides (none: refused)."""
        route = request.scope.get("route")
        access = ROUTE_ACCESS.get((request.method, getattr(route, "path", "")))
        if access is None:
            raise HTTPException(403, "this route has no authorization decision: refused")
        decision = gate.check(access, request.headers)
        if isinstance(decision, Refusal):
            raise HTTPException(
                decision.status, decision.detail,
                headers={"WWW-Authenticate": "Bearer"} if decision.status == 401 else None,
            )  # fmt: skip
        request.state.caller = decision

    app = FastAPI(
        title="MLOps model endpoint",
        description="Real-time predictions from the registry's approved champions. "
        "Invocations need an API key: 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.",
        version="1.0",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
    )
    app.state.settings = settings
    app.state.manager = manager
    app.state.capture = capture
    app.state.shadow = shadow
    app.state.metrics = metrics
    app.state.gate = gate

    def resolve(state: ServingState, name: str | None) -> EndpointState:
        if name is not None:
            endpoint = state.endpoints.get(name)
            if endpoint is None:
                known = ", ".join(state.endpoints) or "none"
                # No endpoint label: made-up names must not create metric series.
                raise _NotServed(404, f"no endpoint {name!r}; endpoints: {known}")
            if endpoint.champion is None:
                raise _NotServed(
                    503,
                    f"no approved model is deployed yet for endpoint {name!r}: "
                    f"{'; '.join(endpoint.errors) or 'no champion alias'}; approve a version "
                    "and deploy it (deploy_model DAG)",
                    name,
                )
            return endpoint
        live = state.live
        default = state.default_endpoint
        if default is not None:
            return resolve(state, default)
        if len(live) == 1:
            return state.endpoints[live[0]]
        if not live:
            raise _NotServed(503, state.not_ready_reason())
        raise _NotServed(
            404,
            f"this server hosts several endpoints ({', '.join(live)}) and no default "
            "(MLOPS_DEFAULT_ENDPOINT): POST /endpoints/<model_name>/invocations",
        )

    async def read_body(request: Request) -> bytes:
        limit = settings.max_payload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                raise PayloadTooLargeError(
                    f"payload of {int(declared):,} bytes is over the {limit:,}-byte limit "
                    "(MLOPS_MAX_PAYLOAD_BYTES); split the rows over several requests"
                )
            return await request.body()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(
                    f"payload is over the {limit:,}-byte limit (MLOPS_MAX_PAYLOAD_BYTES); "
                    "split the rows over several requests"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def invoke(request: Request, name: str | None) -> Response:
        started = time.perf_counter()
        state = manager.state  # this request's snapshot: a swap cannot change it
        labels: Labels = ("", "", "")
        rows_answered = 0
        try:
            caller = gate.check(Access.CALLER, request.headers)
            if isinstance(caller, Refusal):
                raise _NotAllowed(caller)
            endpoint = resolve(state, name)
            model, variant = endpoint.route(rng.random())
            labels = (endpoint.model_name, str(model.version), variant)
            content_type = request.headers.get("content-type")
            media = media_type(content_type)
            # Only a request with a query string pays for reading it.
            explain = explain_request(request.scope.get("query_string", b""))
            body = await read_body(request)
            parsed = parse_body(body, media, model.schema.order, header=csv_header(content_type))
            rows = model.schema.validate(parsed)
            # Deploy's smoke-test and bake probes are scored and counted, never captured
            # or shadowed: the monitor must judge real traffic only.
            real = PROBE_HEADER not in request.headers
            capture_it = (
                real and capture.enabled and should_capture(endpoint.config.capture_percent, rng)
            )
            shadow_model = endpoint.shadow
            shadow_it = real and shadow_model is not None and rng.random() < endpoint.shadow_share
            ticket = None
            if capture_it or shadow_it:
                ticket = _Ticket(
                    endpoint.model_name, variant, shadow_model if shadow_it else None, caller
                )
            if explain is None:
                scored = await model.batcher.score(rows, ticket)
            else:
                scored = await _score_explained(model, rows, explain, ticket)
            response = _prediction_response(endpoint.model_name, model, variant, scored)
            rows_answered = rows.n_rows
        except _NotAllowed as refused:
            response = _error(refused.refusal.status, refused.refusal.detail)
            if refused.refusal.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
        except RequestError as error:
            response = _error(error.status, error.detail)
        except _NotServed as error:
            labels = (error.endpoint, "", "")
            response = _error(error.status, error.detail)
        except ScoringError as error:
            response = _error(500, str(error))
        except ClientDisconnect:
            # Nobody is left to answer; counted (as a client error), not logged as ours.
            response = _error(400, "the client disconnected before sending the whole body")
        except Exception as error:  # the server answers whatever arrives
            log.exception("unexpected error answering %s", request.url.path)
            response = _error(500, f"internal error: {type(error).__name__}: {error}")
        metrics.observe(labels, response.status_code, time.perf_counter() - started, rows_answered)
        return response

    @app.get("/ping", summary="Health: 200 once a champion is loaded, 503 before")
    async def ping() -> Response:
        state = manager.state
        live = state.live
        if not live:
            return _error(503, state.not_ready_reason())
        endpoints = {
            name: {
                variant: (loaded.version if loaded is not None else None)
                for variant, loaded in (
                    ("champion", ep.champion),
                    ("canary", ep.canary),
                    ("shadow", ep.shadow),
                )
            }
            for name, ep in state.endpoints.items()
            if ep.champion is not None
        }
        return _json(200, {"status": "ok", "endpoints": endpoints})

    async def invocations(request: Request) -> Response:
        return await invoke(request, None)

    async def named_invocations(request: Request) -> Response:
        return await invoke(request, request.path_params["model_name"])

    # Plain Starlette routes, matched first: FastAPI's per-request dependency machinery
    # costs ~0.15 ms, a tenth of a batch cycle at concurrency 8 (their OpenAPI entry is
    # added by document_invocations; their key check is the first thing invoke does).
    app.router.routes[:0] = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/endpoints/{model_name}/invocations", named_invocations, methods=["POST"]),
    ]

    @app.get("/endpoints", summary="What this replica serves, per endpoint and variant")
    async def endpoints() -> Response:
        return _json(200, {"replica": settings.replica_id, **manager.state.describe()})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_route() -> Response:
        return Response(metrics.registry.render(), media_type=CONTENT_TYPE)

    @app.post("/admin/reload", summary="Re-read the registry now (token)")
    async def admin_reload() -> Response:
        await asyncio.to_thread(refresh_keys)  # first: the answer follows the swap at once
        state = await asyncio.to_thread(manager.reload)
        if state.registry_error is not None:
            return _error(503, f"the registry could not be read: {state.registry_error}")
        return _json(200, {"replica": settings.replica_id, **state.describe()})

    @app.get("/admin/config", summary="Settings and served configuration (token)")
    async def admin_config() -> Response:
        body = {
            "replica": settings.replica_id,
            "settings": settings.public_dict(),
            "reloads": manager.reloads,
            "reload_failures": manager.reload_failures,
            "last_reload_seconds": round(manager.last_reload_seconds, 3),
            **manager.state.describe(),
        }
        return _json(200, body)

    add_key_routes(app, gate)
    document_invocations(app)
    return app


class _NotAllowed(Exception):
    """The request's credentials are refused (401/403)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


@dataclass(frozen=True)
class _Ticket:
    """What happens to a request once scored: captured, and maybe copied to the shadow.

    A request copied to the shadow is captured too (whatever the capture sample says),
    so every shadow record has the answered record it is compared with.
    """

    endpoint: str
    variant: str
    shadow: LoadedModel | None
    caller: str


def _after_batch(
    capture: CaptureHub,
    shadow: ShadowWorker,
    model: LoadedModel,
    frame: pd.DataFrame,
    entries: list[Scored],
) -> None:
    """Per scored batch: one capture offer per variant, shadow copies queued.

    Offering each group's merged rows once (not one record per row) keeps the per-row
    work off the request path: the capture writer converts them column-wise on its thread.
    """
    now = dt.datetime.now(dt.UTC)
    groups: dict[tuple[str, str, str], list[Scored]] = {}
    for entry in entries:
        ticket: _Ticket = entry.ticket
        groups.setdefault((ticket.endpoint, ticket.variant, ticket.caller), []).append(entry)
        if ticket.shadow is not None:
            shadow.submit(
                ticket.endpoint, ticket.shadow, entry.rows, entry.result.inference_ids, now,
                caller=ticket.caller,
            )  # fmt: skip
    for (endpoint, variant, caller), group in groups.items():
        part = merged_rows([e.rows for e in group])
        scored = ScoredRows(
            inference_ids=[i for e in group for i in e.result.inference_ids],
            predictions=[p for e in group for p in e.result.predictions],
            probability=None
            if group[0].result.probability is None
            else [p for e in group for p in (e.result.probability or [])],
        )
        capture.offer(endpoint, model, variant, part, scored, now, caller=caller)


async def _score_explained(
    model: LoadedModel, rows: Rows, explain: ExplainRequest, ticket: Any
) -> ScoredRows:
    """The request's scores and explanations, from one feature matrix (batched with other
    explaining requests); 422 when the version cannot be explained."""
    from include.mlops.clarify.explain import NotExplainable

    try:
        model.scorer.explainer()
    except NotExplainable as error:
        raise RequestError(
            f"explain=true: model {model.model_name!r} version {model.version} cannot be "
            f"explained: {error}",
            status=422,
        ) from error
    return await model.batcher.score(rows, ticket, explain=True, explain_top=explain.top)


def _prediction_response(
    endpoint: str,
    model: LoadedModel,
    variant: str,
    scored: ScoredRows,
) -> Response:
    ids = scored.inference_ids
    predictions = scored.predictions
    items: list[dict[str, Any]]
    if model.is_classifier and scored.probability is not None:
        keys = model.class_keys
        probability = scored.probability
        classes = scored.class_probabilities or []
        items = [
            {
                "inference_id": ids[i],
                "prediction": predictions[i],
                "probability": probability[i],
                "probabilities": dict(zip(keys, classes[i], strict=True)),
            }
            for i in range(len(ids))
        ]
    else:
        items = [{"inference_id": ids[i], "prediction": predictions[i]} for i in range(len(ids))]
    version = str(model.version)
    body: dict[str, Any] = {
        "model_name": endpoint,
        "model_version": model.version,
        "variant": variant,
        "predictions": items,
    }
    if scored.explanations is not None:
        space, explanations = scored.explanations
        body["explanation_space"] = space
        for item, explanation in zip(items, explanations, strict=True):
            item["explanation"] = explanation
    return Response(
        json.dumps(body, separators=(",", ":"), default=_json_default).encode(),
        media_type=_JSON,
        headers={"X-Model-Version": version, "X-Variant": variant},
    )


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _json(status: int, body: Any) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=_json_default).encode(),
        status_code=status,
        media_type=_JSON,
    )


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _served_versions(state: ServingState) -> dict[Labels, float]:
    out: dict[Labels, float] = {}
    for name, ep in state.endpoints.items():
        for variant in VARIANTS:
            loaded = ep.model(variant)
            if loaded is not None:
                out[(name, variant)] = float(loaded.version)
    return out


def _traffic(state: ServingState) -> dict[Labels, float]:
    out: dict[Labels, float] = {}
    for name, ep in state.endpoints.items():
        if ep.champion is None:
            continue
        canary = ep.config.canary_percent if ep.canary is not None else 0.0
        out[(name, "champion")] = 100.0 - canary
        if ep.canary is not None:
            out[(name, "canary")] = canary
        if ep.shadow is not None:
            out[(name, "shadow")] = ep.config.shadow_percent
    return out
