"""Server-rendered HTML of the Models, Monitoring and Lake views (no JavaScript).

The markup is in the Jinja2 templates ``include/mlops/templates/ui/`` (autoescaped: every
value from the registry, the lake or a report is escaped); this module hands them the
data and the small formatting rules (dates, numbers, the trend chart's geometry). Links
are built by :class:`include.mlops.ui.links.LinkTargets` so the views and the task links
agree on where a report or an MLflow run lives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from include.mlops.templates import render
from include.mlops.ui.links import LinkTargets
from include.mlops.ui.reports import report_href
from include.mlops.ui.views import (
    DatasetSummary,
    FeatureScore,
    ModelMonitoring,
    ModelSummary,
    MonitoringRun,
    VersionRow,
)

_STATUS_CLASS = {
    "Approved": "ok",
    "PendingManualApproval": "warn",
    "Rejected": "bad",
}
_SCHEMA_KEYS = ("name", "type", "nullable", "pii")
_EVENT_CLASS = {
    "approval": "ok",
    "deployment": "ok",
    "rejection": "bad",
    "deployment_failed": "bad",
    "rollback": "warn",
    "key_revoked": "warn",
}


@dataclass(frozen=True)
class PageContext:
    """What every page needs to build links.

    Attributes:
        targets: Link builder (app mount point, lake bucket, MLflow UI).
        airflow_root: URL path of the Airflow UI (for Required Actions and DAG pages).
        user: The signed-in user's name, shown in the header.
    """

    targets: LinkTargets
    airflow_root: str = "/"
    user: str | None = None

    def app(self, path: str) -> str:
        """A URL inside the app."""
        return f"{self.targets.base_path.rstrip('/')}/{path.lstrip('/')}"

    def airflow(self, path: str) -> str:
        """A URL inside the Airflow UI."""
        return f"{self.airflow_root.rstrip('/')}/{path.lstrip('/')}"


@dataclass(frozen=True)
class TrendDot:
    """One monitoring run on the trend chart."""

    x: str
    y: str
    color: str
    tip: str


@dataclass(frozen=True)
class TrendChart:
    """The geometry of a drift trend (the ``trend`` macro draws it as SVG)."""

    width: int
    height: int
    pad: int
    points: str
    dots: list[TrendDot]

    @property
    def axis(self) -> bool:
        """The large trend gets its scale; the inline one stays a sparkline."""
        return self.height >= 80


def _page(template: str, title: str, ctx: PageContext, *, active: str = "", **data: Any) -> str:
    """A whole page with the platform's navigation."""
    return render(
        f"ui/{template}",
        title=title,
        ctx=ctx,
        active=active,
        when=_when,
        number=_number,
        percent=_percent,
        **data,
    )


def _when(text: str | None, seconds: bool = False) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM[:SS] UTC`` (other text unchanged)."""
    if not text:
        return "—"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    shown = stamp.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return shown + (" UTC" if stamp.tzinfo else "")


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


# -- Models ----------------------------------------------------------------------------
def models_page(models: Sequence[ModelSummary], ctx: PageContext) -> str:
    """The Models view: every registered model and version."""

    def version_links(model_name: str, v: VersionRow) -> list[tuple[str, str]]:
        links = (
            (
                report_href(v.report_key, ctx.targets.base_path) if v.report_key else None,
                "evaluation report",
            ),
            (ctx.targets.mlflow_run(v.run_id), "MLflow run"),
            (ctx.targets.mlflow_version(model_name, v.version), "MLflow version"),
        )
        return [(url, label) for url, label in links if url]

    return _page(
        "models.html",
        "Models",
        ctx,
        active="models",
        models=models,
        variants=_variants,
        status_class=_STATUS_CLASS,
        event_class=_EVENT_CLASS,
        version_links=version_links,
    )


def _variants(model: ModelSummary) -> list[tuple[str, int | None, float | None]]:
    """``(variant, version, share of requests)`` for champion, canary and shadow."""
    ep = model.endpoint
    return [
        ("champion", ep.champion, None),
        ("canary", ep.canary, ep.canary_percent),
        ("shadow", ep.shadow, ep.shadow_percent),
    ]


# -- Monitoring ------------------------------------------------------------------------
def monitoring_page(models: Sequence[ModelMonitoring], ctx: PageContext) -> str:
    """The Monitoring view: per model, the latest verdict and a trend."""
    return _page(
        "monitoring.html",
        "Monitoring",
        ctx,
        active="monitoring",
        models=models,
        top_features=_top_features,
        trend_chart=trend_chart,
    )


def monitoring_model_page(m: ModelMonitoring, ctx: PageContext) -> str:
    """One model's monitoring: latest scores and violations, the trend, every run."""
    return _page(
        "monitoring_model.html",
        "Monitoring",
        ctx,
        active="monitoring",
        m=m,
        trend_chart=trend_chart,
    )


def _top_features(run: MonitoringRun, limit: int = 3) -> list[FeatureScore]:
    def strength(f: FeatureScore) -> tuple[bool, float]:
        ratio = (f.score or 0.0) / f.threshold if f.threshold else 0.0
        return (f.drift, ratio)

    return sorted(run.features, key=strength, reverse=True)[:limit]


def trend_chart(runs: Sequence[MonitoringRun], *, width: int, height: int) -> TrendChart:
    """Share of drifted features per run (oldest → newest); red dots: dataset drift."""
    ordered = list(reversed(runs))
    pad = 6
    step = (width - 2 * pad) / max(1, len(ordered) - 1)
    points = []
    dots = []
    for i, run in enumerate(ordered):
        x = pad + i * step if len(ordered) > 1 else width / 2
        y = height - pad - run.drift_share * (height - 2 * pad)
        points.append(f"{x:.1f},{y:.1f}")
        tip = (
            f"{run.window_end or run.run}: {len(run.drifted)} drifted feature(s), "
            f"{len(run.violations)} violation(s)"
        )
        color = "#c53030" if run.dataset_drift else "#14803c"
        dots.append(TrendDot(f"{x:.1f}", f"{y:.1f}", color, tip))
    return TrendChart(width, height, pad, " ".join(points), dots)


# -- Lake ------------------------------------------------------------------------------
def lake_page(datasets: Sequence[DatasetSummary], ctx: PageContext) -> str:
    """The Lake view: datasets in the catalog."""
    return _page("lake.html", "Lake", ctx, active="lake", datasets=datasets)


def dataset_page(d: DatasetSummary, ctx: PageContext) -> str:
    """One dataset: every partition and the schema."""
    return _page(
        "dataset.html", f"Lake · {d.name}", ctx, active="lake", d=d, schema_keys=_schema_keys
    )


def _schema_keys(columns: Sequence[dict[str, Any]]) -> list[str]:
    """The schema table's columns: the usual four, then any other key, sorted."""
    extra = sorted({k for c in columns for k in c} - set(_SCHEMA_KEYS))
    return [*_SCHEMA_KEYS, *extra]


# -- files and errors ------------------------------------------------------------------
def folder_page(prefix: str, entries: Sequence[tuple[str, bool]], ctx: PageContext) -> str:
    """An index of a report folder: ``(key, is_folder)`` entries."""
    base = ctx.targets.base_path
    crumbs = []
    acc = ""
    for part in prefix.rstrip("/").split("/"):
        acc += part + "/"
        crumbs.append((part, report_href(acc, base)))
    listing = [(key[len(prefix) :], report_href(key, base)) for key, _ in entries]
    return _page("folder.html", "Reports", ctx, crumbs=crumbs, entries=listing)


def error_page(status: int, message: str, ctx: PageContext) -> str:
    """A readable error page."""
    return _page("error.html", f"Error {status}", ctx, status=status, message=message)
