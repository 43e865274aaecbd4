"""The platform's pages inside Airflow: a FastAPI app the plugin mounts at ``/mlops``.

Routes (all behind the signed-in Airflow user, see :mod:`include.mlops.ui.auth`):

- ``/models`` — every registered model and version, what each endpoint variant serves;
- ``/monitoring`` and ``/monitoring/<model>`` — drift verdicts, scores, violations, trend;
- ``/lake`` and ``/lake/<dataset>`` — the catalog: partitions, rows, quarantine, quality;
- ``/files/<key>`` — a report object from the lake (HTML, PNG, JSON...), or a folder
  index; only keys under ``reports/`` and ``monitoring/`` (anything else: 400);
- ``/mlflow/runs/<run_id>``, ``/mlflow/models/<name>/versions/<n>`` — redirects to the
  MLflow UI (a run's page needs its experiment id, looked up here).

Only ``/static/*.svg`` (the navigation icons) is public.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import pyarrow.fs as pafs
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from include.mlops.settings import Settings
from include.mlops.ui import html as pages
from include.mlops.ui.auth import (
    Authenticator,
    AuthError,
    next_url,
    request_token,
    wants_html,
)
from include.mlops.ui.links import LinkTargets, mlflow_ui_url
from include.mlops.ui.reports import ReportPathError, content_type, report_key
from include.mlops.ui.views import (
    DEFAULT_MONITORING_RUNS,
    dataset_detail,
    lake_overview,
    model_monitoring,
    monitoring_overview,
    registry_overview,
)

if TYPE_CHECKING:
    import mlflow

    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

#: Largest report object served (a report is pages and plots, never data).
MAX_REPORT_BYTES = 50 * 1024 * 1024
_ICONS = {
    "models": "<path d='M4 7l8-4 8 4-8 4-8-4zm0 5l8 4 8-4M4 17l8 4 8-4' />",
    "monitoring": "<path d='M3 12h4l3-8 4 16 3-8h4' />",
    "lake": "<ellipse cx='12' cy='6' rx='8' ry='3'/><path d='M4 6v12c0 1.7 3.6 3 8 3s8-1.3 8-3V6"
    "M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3' />",
}


@dataclass(frozen=True)
class UIConfig:
    """How the app reaches the lake and MLflow, and where it is mounted.

    Attributes:
        settings: Lake and MLflow settings.
        base_path: Public URL path of the app (Airflow's base path + mount prefix).
        airflow_root: Public URL path of the Airflow UI.
        mlflow_ui_url: MLflow UI a browser can reach (``None``: MLflow links are off).
        max_monitoring_runs: Runs read per model for the Monitoring trend.
    """

    settings: Settings
    base_path: str = "/mlops"
    airflow_root: str = "/"
    mlflow_ui_url: str | None = None
    max_monitoring_runs: int = DEFAULT_MONITORING_RUNS

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        base_path: str = "/mlops",
        airflow_root: str = "/",
    ) -> UIConfig:
        """Settings and the MLflow UI address from the environment.

        Args:
            env: Environment (default ``os.environ``).
            base_path: Public URL path of the app.
            airflow_root: Public URL path of the Airflow UI.
        """
        env = os.environ if env is None else env
        return cls(
            settings=Settings.from_env(env),
            base_path=base_path,
            airflow_root=airflow_root,
            mlflow_ui_url=mlflow_ui_url(env),
        )

    @property
    def targets(self) -> LinkTargets:
        """Link targets for this configuration."""
        return LinkTargets(
            base_path=self.base_path,
            bucket=self.settings.lake_bucket,
            mlflow_ui_url=self.mlflow_ui_url,
        )


class _LoginRequired(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def current_user(request: Request) -> str:
    """The signed-in user's name (dependency of every protected route).

    Raises:
        _LoginRequired: No token, or an expired or invalid one.
        AuthError: A valid token whose user may not see the UI (403).
    """
    token = request_token(request)
    if not token:
        raise _LoginRequired("sign in to Airflow first (no token on the request)")
    authenticator: Authenticator = request.app.state.authenticator
    try:
        return await authenticator.authenticate(token)
    except AuthError as exc:
        if exc.status == 401:
            raise _LoginRequired(exc.message) from exc
        raise


User = Annotated[str, Depends(current_user)]
#: Routes anyone may fetch, and why; every other route depends on :func:`current_user`
#: (tests/ui checks both, route by route).
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/static/{name}.svg"): "the navigation's icons: fixed drawings, no data",
}


class _Services:
    """The lake and the MLflow client, created on first use (never at import or mount)."""

    def __init__(
        self,
        config: UIConfig,
        lake: Lake | None,
        client: mlflow.MlflowClient | None,
    ) -> None:
        self.config = config
        self._lake = lake
        self._client = client

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            from include.mlops.lake import Lake

            self._lake = Lake.from_settings(self.config.settings)
        return self._lake

    @property
    def client(self) -> mlflow.MlflowClient:
        if self._client is None:
            from include.mlops.registry import registry_client

            uri = self.config.settings.mlflow_tracking_uri
            if not uri:
                raise LookupError("MLFLOW_TRACKING_URI is not set: the registry is unknown")
            self._client = registry_client(uri)
        return self._client


def create_app(
    config: UIConfig | None = None,
    *,
    authenticator: Authenticator,
    lake: Lake | None = None,
    mlflow_client: mlflow.MlflowClient | None = None,
) -> FastAPI:
    """Build the UI app.

    Args:
        config: Where things are (default: :meth:`UIConfig.from_env`).
        authenticator: Validates the caller's token (Airflow's auth manager in the plugin).
        lake: The lake (default: from the settings, on first use).
        mlflow_client: MLflow client (default: from the settings, on first use).

    Returns:
        The FastAPI app; mount it at ``config.base_path``.
    """
    config = config or UIConfig.from_env()
    services = _Services(config, lake, mlflow_client)
    app = FastAPI(title="MLOps views", docs_url=None, redoc_url=None, openapi_url=None)

    app.state.authenticator = authenticator

    def context(user: str | None) -> pages.PageContext:
        return pages.PageContext(config.targets, config.airflow_root, user)

    @app.exception_handler(_LoginRequired)
    async def _login(request: Request, exc: _LoginRequired) -> Response:
        if wants_html(request):
            return RedirectResponse(authenticator.login_url(next_url(request)), status_code=303)
        return JSONResponse(
            {"detail": f"not authenticated: {exc.message}"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(AuthError)
    async def _forbidden(request: Request, exc: AuthError) -> Response:
        if wants_html(request):
            return HTMLResponse(
                pages.error_page(exc.status, exc.message, context(None)), status_code=exc.status
            )
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    def render(user: str, title: str, build: Callable[[], str]) -> HTMLResponse:
        started = time.perf_counter()
        try:
            body = build()
        except Exception as exc:  # a view shows what failed instead of a traceback
            log.exception("%s view failed", title)
            message = f"{title} could not be read: {type(exc).__name__}: {exc}"
            return HTMLResponse(pages.error_page(503, message, context(user)), status_code=503)
        log.debug("%s rendered in %.3f s", title, time.perf_counter() - started)
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    def index(user: User) -> RedirectResponse:
        return RedirectResponse(f"{config.base_path.rstrip('/')}/models", status_code=307)

    @app.get("/models", response_class=HTMLResponse)
    def models(user: User) -> HTMLResponse:
        return render(
            user,
            "Models",
            lambda: pages.models_page(
                registry_overview(services.client, services.lake), context(user)
            ),
        )

    @app.get("/monitoring", response_class=HTMLResponse)
    def monitoring(user: User) -> HTMLResponse:
        def build() -> str:
            names = _registered_names(services)
            overview = monitoring_overview(
                services.lake, names, max_runs=config.max_monitoring_runs
            )
            return pages.monitoring_page(overview, context(user))

        return render(user, "Monitoring", build)

    @app.get("/monitoring/{model_name}", response_class=HTMLResponse)
    def monitoring_model(model_name: str, user: User) -> HTMLResponse:
        if not _plain_name(model_name):
            return _not_found(f"no model named {model_name!r}", context(user))
        return render(
            user,
            "Monitoring",
            lambda: pages.monitoring_model_page(
                model_monitoring(services.lake, model_name, max_runs=config.max_monitoring_runs),
                context(user),
            ),
        )

    @app.get("/lake", response_class=HTMLResponse)
    def lake_view(user: User) -> HTMLResponse:
        return render(
            user, "Lake", lambda: pages.lake_page(lake_overview(services.lake), context(user))
        )

    @app.get("/lake/{dataset}", response_class=HTMLResponse)
    def dataset_view(dataset: str, user: User) -> HTMLResponse:
        if not _plain_name(dataset):
            return _not_found(f"no dataset named {dataset!r}", context(user))
        try:
            detail = dataset_detail(services.lake, dataset)
        except (OSError, ValueError) as exc:
            return _not_found(f"dataset {dataset!r}: {exc}", context(user))
        if detail is None:
            return _not_found(
                f"dataset {dataset!r} has no catalog entry: ingest it with lake_ingest first",
                context(user),
            )
        return render(user, "Lake", lambda: pages.dataset_page(detail, context(user)))

    @app.get("/files/{key:path}")
    def report_file(key: str, request: Request, user: User) -> Response:
        try:
            key = report_key(key)
        except ReportPathError as exc:
            return _refused(400, str(exc), request, context(user))
        lake = services.lake
        try:
            info = lake.fs.get_file_info(lake.path(key.rstrip("/")))
        except OSError as exc:  # the object store is down: say so, no traceback
            return _refused(503, f"the lake is unreachable ({exc})", request, context(user))
        if info.type == pafs.FileType.File and not key.endswith("/"):
            if (info.size or 0) > MAX_REPORT_BYTES:
                return _refused(
                    413,
                    f"{key} is {info.size:,} bytes, above the {MAX_REPORT_BYTES:,} "
                    "served for a report; read it from the lake",
                    request,
                    context(user),
                )
            return Response(
                lake.read_bytes(key),
                media_type=content_type(key),
                headers={
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "private, max-age=60",
                    "Content-Security-Policy": "frame-ancestors 'self'",
                },
            )
        if info.type == pafs.FileType.Directory and not key.endswith("/"):
            target = f"{config.base_path.rstrip('/')}/files/{quote(key, safe='/=')}/"
            return RedirectResponse(target, status_code=307)
        if info.type == pafs.FileType.NotFound and not key.endswith("/"):
            return _refused(404, f"no report at {lake.uri(key)}", request, context(user))
        entries = _folder_entries(lake, key)
        status = 200 if entries else 404
        return HTMLResponse(pages.folder_page(key, entries, context(user)), status_code=status)

    @app.get("/mlflow/runs/{run_id}")
    def mlflow_run(run_id: str, request: Request, user: User) -> Response:
        if not config.mlflow_ui_url:
            return _refused(
                404,
                "the MLflow UI address is unknown: set MLOPS_MLFLOW_UI_URL (or an "
                "http MLFLOW_TRACKING_URI) for the Airflow API server",
                request,
                context(user),
            )
        try:
            experiment = services.client.get_run(run_id).info.experiment_id
        except Exception as exc:  # unknown run or MLflow down: say which
            return _refused(404, f"MLflow run {run_id!r}: {exc}", request, context(user))
        url = LinkTargets(mlflow_ui_url=config.mlflow_ui_url).mlflow_run(run_id, experiment)
        return RedirectResponse(str(url), status_code=307)

    @app.get("/mlflow/models/{model_name}/versions/{version}")
    def mlflow_version(model_name: str, version: int, request: Request, user: User) -> Response:
        url = LinkTargets(mlflow_ui_url=config.mlflow_ui_url).mlflow_version(model_name, version)
        if not config.mlflow_ui_url or not url:
            return _refused(
                404,
                "the MLflow UI address is unknown: set MLOPS_MLFLOW_UI_URL",
                request,
                context(user),
            )
        return RedirectResponse(url, status_code=307)

    @app.get("/static/{name}.svg", include_in_schema=False)
    def icon(name: str) -> Response:
        path = _ICONS.get(name)
        if path is None:
            return Response(status_code=404)
        svg = (
            "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
            "stroke='#64748b' stroke-width='1.8' stroke-linecap='round' stroke-linejoin='round'>"
            f"{path}</svg>"
        )
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})

    return app


def _registered_names(services: _Services) -> list[str]:
    try:
        return sorted(m.name for m in services.client.search_registered_models(max_results=1000))
    except LookupError:
        return []


def _plain_name(name: str) -> bool:
    from include.mlops.vocabulary import NAME_RE

    return bool(NAME_RE.match(name))


def _folder_entries(lake: Lake, prefix: str) -> list[tuple[str, bool]]:
    """A folder's direct children (folders first), staging excluded."""
    selector = pafs.FileSelector(
        lake.path(prefix.rstrip("/")), recursive=False, allow_not_found=True
    )
    entries = []
    for info in lake.fs.get_file_info(selector):
        key = lake.key_of(info.path)
        if "/_staging" in f"/{key}":
            continue
        is_dir = info.type == pafs.FileType.Directory
        entries.append((key + "/" if is_dir else key, is_dir))
    return sorted(entries, key=lambda e: (not e[1], e[0]))


def _not_found(message: str, ctx: pages.PageContext) -> HTMLResponse:
    return HTMLResponse(pages.error_page(404, message, ctx), status_code=404)


def _refused(status: int, message: str, request: Request, ctx: pages.PageContext) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(pages.error_page(status, message, ctx), status_code=status)
    return JSONResponse({"detail": message}, status_code=status)
