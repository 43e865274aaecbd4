"""Server-rendered HTML of the Models, Monitoring and Lake views (no JavaScript).

Every value that comes from the registry, the lake or a report is escaped; links are
built by :class:`include.mlops.ui.links.LinkTargets` so the views and the task links
agree on where a report or an MLflow run lives.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
_CSS = """
:root { color-scheme: light; --fg:#1a202c; --muted:#5f6b7a; --line:#e2e8f0; --bg:#f7fafc;
        --accent:#017cee; --ok:#14803c; --warn:#b45309; --bad:#c53030; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color:var(--fg); background:#fff; }
header { display:flex; gap:20px; align-items:center; padding:10px 20px;
         border-bottom:1px solid var(--line); background:var(--bg); }
header .brand { font-weight:600; color:var(--fg); text-decoration:none; }
header nav a { margin-right:14px; color:var(--muted); text-decoration:none; padding:4px 2px; }
header nav a.active { color:var(--accent); border-bottom:2px solid var(--accent); }
main { padding:16px 20px 40px; max-width:1400px; }
h1 { font-size:20px; margin:4px 0 12px; } h2 { font-size:17px; margin:26px 0 8px; }
h3 { font-size:15px; margin:16px 0 6px; }
p.lead { color:var(--muted); margin-top:0; }
table { border-collapse:collapse; width:100%; margin:6px 0 14px; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line);
         vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase;
     letter-spacing:.03em; background:var(--bg); }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
a { color:var(--accent); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
         font-weight:600; background:#edf2f7; color:var(--muted); margin-right:4px; }
.badge.ok { background:#dcfce7; color:var(--ok); }
.badge.warn { background:#fef3c7; color:var(--warn); }
.badge.bad { background:#fee2e2; color:var(--bad); }
.badge.serve { background:#dbeafe; color:#1d4ed8; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin:12px 0; }
.muted { color:var(--muted); }
.grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap:10px; }
.stat { border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.stat b { display:block; font-size:18px; }
ul.violations { margin:4px 0 8px 18px; padding:0; }
svg.trend { background:var(--bg); border:1px solid var(--line); border-radius:6px; }
"""


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


def esc(value: object) -> str:
    """HTML-escape any value (``None`` → empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def page(title: str, body: str, ctx: PageContext, *, active: str = "") -> str:
    """A whole HTML page with the platform's navigation."""
    nav = "".join(
        f'<a href="{esc(ctx.app(path))}" class="{"active" if path == active else ""}">{label}</a>'
        for path, label in (("models", "Models"), ("monitoring", "Monitoring"), ("lake", "Lake"))
    )
    user = f'<span class="muted">signed in as {esc(ctx.user)}</span>' if ctx.user else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)} · MLOps</title><style>{_CSS}</style></head><body>"
        f"<header><a class='brand' href='{esc(ctx.airflow_root)}' target='_top'>MLOps · Airflow</a>"
        f"<nav>{nav}</nav><span style='flex:1'></span>{user}</header>"
        f"<main>{body}</main></body></html>"
    )


def _link(url: str | None, label: str, *, new_tab: bool = True) -> str:
    if not url:
        return ""
    target = " target='_blank' rel='noopener'" if new_tab else ""
    return f'<a href="{esc(url)}"{target}>{esc(label)}</a>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(
        f"<th class='{'num' if i in numeric else ''}'>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{'num' if i in numeric else ''}'>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _when(text: str | None) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM UTC`` (other text unchanged, escaped)."""
    if not text:
        return "—"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return esc(text)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return esc(stamp.strftime("%Y-%m-%d %H:%M") + (" UTC" if stamp.tzinfo else ""))


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _badge(text: str, kind: str = "") -> str:
    return f"<span class='badge {kind}'>{esc(text)}</span>"


# -- Models ----------------------------------------------------------------------------
def models_page(models: Sequence[ModelSummary], ctx: PageContext) -> str:
    """The Models view: every registered model and version."""
    if not models:
        body = (
            "<h1>Models</h1><p class='lead'>No registered model yet. Trigger "
            f"<a href='{esc(ctx.airflow('dags/train_model'))}' target='_top'>train_model</a>; "
            "each run registers a version here.</p>"
        )
        return page("Models", body, ctx, active="models")
    parts = [
        "<h1>Models</h1><p class='lead'>Every registered model and version: approval status, "
        "test objective, training data snapshot, and which version each endpoint variant "
        "serves. Pending versions are approved on "
        f"<a href='{esc(ctx.airflow('required_actions'))}' target='_top'>Required Actions</a>.</p>"
    ]
    for model in models:
        parts.append(_model_section(model, ctx))
    return page("Models", "".join(parts), ctx, active="models")


def _model_section(model: ModelSummary, ctx: PageContext) -> str:
    ep = model.endpoint
    variants = []
    for variant, version, share in (
        ("champion", ep.champion, None),
        ("canary", ep.canary, ep.canary_percent),
        ("shadow", ep.shadow, ep.shadow_percent),
    ):
        if version is None:
            variants.append(f"<div class='stat'>{variant}<b>—</b></div>")
        else:
            extra = f" <span class='muted'>({share:g}% of requests)</span>" if share else ""
            variants.append(f"<div class='stat'>{variant}<b>v{version}</b>{extra}</div>")
    pending = f" {_badge(f'{model.pending} pending approval', 'warn')}" if model.pending else ""
    head = (
        f"<section class='card' id='{esc(model.name)}'><h2>{esc(model.name)}{pending}</h2>"
        f"<div class='grid'>{''.join(variants)}"
        f"<div class='stat'>monitoring<br>"
        f"{_link(ctx.targets.monitoring(model.name), 'drift, violations, trend →', new_tab=False)}"
        "</div>"
        "</div>"
    )
    if model.error:
        return head + f"<p class='muted'>{esc(model.error)}</p></section>"
    rows = [_version_cells(model.name, v, ctx) for v in model.versions]
    table = _table(
        [
            "version",
            "status",
            "objective (test)",
            "dataset @ snapshot",
            "serves",
            "decided by",
            "created",
            "links",
        ],
        rows,
        numeric={0},
    )
    return head + table + "</section>"


def _version_cells(model_name: str, v: VersionRow, ctx: PageContext) -> list[str]:
    status = _badge(v.status, _STATUS_CLASS.get(v.status, ""))
    if v.status == "PendingManualApproval":
        status += f"<br><a href='{esc(ctx.airflow('required_actions'))}' target='_top'>review</a>"
    objective = f"{esc(v.objective)} = <b>{_number(v.objective_value)}</b>" if v.objective else "—"
    snapshot = (
        f"{esc(v.dataset or '—')} @ <code title='{esc(v.data_snapshot)}'>"
        f"{esc((v.data_snapshot or '—')[:12])}</code>"
    )
    serves = "".join(_badge(s, "serve") for s in v.serves) or "<span class='muted'>—</span>"
    decided = esc(v.decided_by or "")
    if v.comment:
        decided += f"<br><span class='muted'>“{esc(v.comment)}”</span>"
    links = " · ".join(
        link
        for link in (
            _link(
                report_href(v.report_key, ctx.targets.base_path) if v.report_key else None,
                "evaluation report",
            ),
            _link(ctx.targets.mlflow_run(v.run_id), "MLflow run"),
            _link(ctx.targets.mlflow_version(model_name, v.version), "MLflow version"),
        )
        if link
    )
    anchor = f"<span id='{esc(model_name)}-v{v.version}'></span>"
    return [
        f"{anchor}v{v.version}",
        status,
        objective,
        snapshot,
        serves,
        decided,
        esc(v.created_at or ""),
        links,
    ]


# -- Monitoring ------------------------------------------------------------------------
def monitoring_page(models: Sequence[ModelMonitoring], ctx: PageContext) -> str:
    """The Monitoring view: per model, the latest verdict and a trend."""
    parts = [
        "<h1>Monitoring</h1><p class='lead'>Per model: the latest monitoring run's drift "
        "verdict, the most drifted features, violations, and the drift trend over recent "
        "runs. Reports are written by <code>monitor_model</code> under "
        "<code>monitoring/&lt;model&gt;/&lt;run&gt;/</code>.</p>"
    ]
    if not models:
        parts.append("<p class='muted'>No model has been monitored yet.</p>")
    rows = []
    for m in models:
        latest = m.latest
        name = _link(ctx.targets.monitoring(m.model_name), m.model_name, new_tab=False)
        if latest is None:
            rows.append([name, "<span class='muted'>no runs yet</span>", "", "", "", "", ""])
            continue
        rows.append(
            [
                name,
                _verdict(latest),
                esc(f"v{latest.version}" if latest.version is not None else "—"),
                _when(latest.window_end),
                _top_features(latest),
                str(len(latest.violations)),
                _trend_svg(m.runs, width=220, height=40)
                + " "
                + _link(ctx.targets.report(latest.html_key), "report"),
            ]
        )
    if rows:
        parts.append(
            _table(
                [
                    "model",
                    "latest verdict",
                    "version",
                    "window end",
                    "drift scores",
                    "violations",
                    "trend · report",
                ],
                rows,
                numeric={5},
            )
        )
    return page("Monitoring", "".join(parts), ctx, active="monitoring")


def monitoring_model_page(m: ModelMonitoring, ctx: PageContext) -> str:
    """One model's monitoring: latest scores and violations, the trend, every run."""
    parts = [f"<h1>Monitoring · {esc(m.model_name)}</h1>"]
    latest = m.latest
    if latest is None:
        parts.append(
            "<p class='muted'>No monitoring report yet for this model. The hourly "
            f"<a href='{esc(ctx.airflow('dags/monitor_model'))}' target='_top'>monitor_model</a> "
            "DAG writes one per run once the endpoint has captured traffic.</p>"
        )
        return page("Monitoring", "".join(parts), ctx, active="monitoring")
    parts.append(
        f"<p class='lead'>Latest run <code>{esc(latest.run)}</code>: {_verdict(latest)} on "
        f"{esc(latest.rows if latest.rows is not None else '?')} rows, window "
        f"{_when(latest.window_start)} → {_when(latest.window_end)}, version "
        f"v{esc(latest.version)} · {_link(ctx.targets.report(latest.html_key), 'open the report')}"
        f" · {_link(ctx.targets.model(m.model_name, latest.version), 'model', new_tab=False)}</p>"
    )
    parts.append("<h2>Drift trend</h2>" + _trend_svg(m.runs, width=720, height=120))
    parts.append("<h2>Latest drift scores</h2>")
    parts.append(
        _table(
            ["feature", "drift", "method", "score", "threshold"],
            (
                [
                    esc(f.name),
                    _badge("drift", "bad") if f.drift else _badge("ok", "ok"),
                    esc(f.method or ""),
                    _number(f.score),
                    _number(f.threshold),
                ]
                for f in sorted(latest.features, key=lambda f: (not f.drift, f.name))
            ),
            numeric={3, 4},
        )
    )
    parts.append(f"<h2>Violations ({len(latest.violations)})</h2>")
    parts.append(
        "<ul class='violations'>"
        + "".join(f"<li>{esc(v)}</li>" for v in latest.violations)
        + "</ul>"
        if latest.violations
        else "<p class='muted'>None.</p>"
    )
    parts.append("<h2>Runs</h2>")
    parts.append(
        _table(
            [
                "run",
                "window end",
                "version",
                "rows",
                "verdict",
                "drifted features",
                "violations",
                "report",
            ],
            (
                [
                    f"<code>{esc(r.run)}</code>",
                    _when(r.window_end),
                    esc(f"v{r.version}"),
                    esc(r.rows),
                    _verdict(r),
                    esc(", ".join(r.drifted) or "—"),
                    str(len(r.violations)),
                    _link(ctx.targets.report(r.html_key), "report"),
                ]
                for r in m.runs
            ),
            numeric={3, 6},
        )
    )
    if m.unreadable:
        parts.append(
            "<p class='muted'>Unreadable reports: "
            + ", ".join(f"<code>{esc(k)}</code>" for k in m.unreadable)
            + "</p>"
        )
    return page("Monitoring", "".join(parts), ctx, active="monitoring")


def _verdict(run: MonitoringRun) -> str:
    badges = []
    if run.dataset_drift:
        badges.append(_badge("dataset drift", "bad"))
    if run.prediction_drift:
        badges.append(_badge("prediction drift", "bad"))
    if run.model_quality == "degraded":
        badges.append(_badge("quality degraded", "bad"))
    return "".join(badges) or _badge("no drift", "ok")


def _top_features(run: MonitoringRun, limit: int = 3) -> str:
    def strength(f: FeatureScore) -> tuple[bool, float]:
        ratio = (f.score or 0.0) / f.threshold if f.threshold else 0.0
        return (f.drift, ratio)

    top = sorted(run.features, key=strength, reverse=True)[:limit]
    return (
        ", ".join(
            f"{'<b>' if f.drift else ''}{esc(f.name)} {_number(f.score, 3)}{'</b>' if f.drift else ''}"
            for f in top
        )
        or "—"
    )


def _trend_svg(runs: Sequence[MonitoringRun], *, width: int, height: int) -> str:
    """Share of drifted features per run (oldest → newest); red dots: dataset drift."""
    ordered = list(reversed(runs))
    if not ordered:
        return ""
    pad = 6
    step = (width - 2 * pad) / max(1, len(ordered) - 1)
    points = []
    dots = []
    for i, run in enumerate(ordered):
        x = pad + i * step if len(ordered) > 1 else width / 2
        y = height - pad - run.drift_share * (height - 2 * pad)
        points.append(f"{x:.1f},{y:.1f}")
        color = "#c53030" if run.dataset_drift else "#14803c"
        tip = (
            f"{run.window_end or run.run}: {len(run.drifted)} drifted feature(s), "
            f"{len(run.violations)} violation(s)"
        )
        dots.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{color}'><title>{esc(tip)}</title></circle>"
        )
    line = (
        f"<polyline fill='none' stroke='#017cee' stroke-width='1.5' points='{' '.join(points)}'/>"
    )
    label = "share of drifted features per run, oldest → newest"
    axis = ""
    if height >= 80:  # the large trend gets its scale; the inline one stays a sparkline
        axis = (
            f"<text x='{pad + 2}' y='{pad + 10}' font-size='10' fill='#5f6b7a'>100% drifted</text>"
            f"<text x='{pad + 2}' y='{height - pad - 3}' font-size='10' fill='#5f6b7a'>0%</text>"
        )
    return (
        f"<svg class='trend' width='{width}' height='{height}' role='img' aria-label='{label}'>"
        f"<title>{label}</title>{axis}{line}{''.join(dots)}</svg>"
    )


# -- Lake ------------------------------------------------------------------------------
def lake_page(datasets: Sequence[DatasetSummary], ctx: PageContext) -> str:
    """The Lake view: datasets in the catalog."""
    parts = [
        "<h1>Lake</h1><p class='lead'>Datasets in the catalog (<code>catalog/&lt;dataset&gt;/"
        "schema.json</code>): curated partitions, rows, quarantined rows and the quality "
        "gate's score of the newest partition.</p>"
    ]
    if not datasets:
        parts.append(
            "<p class='muted'>The catalog is empty. Trigger "
            f"<a href='{esc(ctx.airflow('dags/lake_ingest'))}' target='_top'>lake_ingest</a>.</p>"
        )
    else:
        rows = []
        for d in datasets:
            latest = d.latest
            rows.append(
                [
                    _link(ctx.targets.dataset(d.name), d.name, new_tab=False),
                    str(len(d.partitions)),
                    f"{d.total_rows:,}",
                    f"{d.quarantined:,}",
                    _percent(d.quality_score),
                    esc(latest.partition if latest else "—"),
                    f"<code title='{esc(d.snapshot_id)}'>{esc((d.snapshot_id or '—')[:12])}</code>",
                    _when(d.updated_at),
                    _link(
                        ctx.targets.report(latest.quality_report) if latest else None,
                        "quality report",
                    ),
                ]
            )
        parts.append(
            _table(
                [
                    "dataset",
                    "partitions",
                    "rows",
                    "quarantined",
                    "quality score",
                    "newest partition",
                    "snapshot",
                    "updated",
                    "report",
                ],
                rows,
                numeric={1, 2, 3, 4},
            )
        )
    return page("Lake", "".join(parts), ctx, active="lake")


def dataset_page(d: DatasetSummary, ctx: PageContext) -> str:
    """One dataset: every partition and the schema."""
    parts = [
        f"<h1>Lake · {esc(d.name)}</h1>",
        "<div class='grid'>"
        f"<div class='stat'>partitions<b>{len(d.partitions)}</b></div>"
        f"<div class='stat'>curated rows<b>{d.total_rows:,}</b></div>"
        f"<div class='stat'>quarantined rows<b>{d.quarantined:,}</b></div>"
        f"<div class='stat'>quality (newest)<b>{_percent(d.quality_score)}</b></div>"
        f"<div class='stat'>schema version<b>{esc(d.schema_version)}</b></div>"
        f"<div class='stat'>snapshot<b class='mono' title='{esc(d.snapshot_id)}'>"
        f"{esc((d.snapshot_id or '—')[:12])}</b></div></div>",
        "<h2>Partitions</h2>",
    ]
    rows = []
    for p in reversed(d.partitions):
        reasons = ", ".join(f"{esc(k)}: {v}" for k, v in sorted(p.reasons.items())) or "—"
        rows.append(
            [
                esc(p.partition),
                f"{p.rows:,}",
                f"{p.quarantined:,}",
                reasons,
                _percent(p.quality_score),
                esc(p.schema_version),
                _when(p.ingested_at),
                _link(ctx.targets.report(p.quality_report), "quality report"),
            ]
        )
    parts.append(
        _table(
            [
                "partition",
                "rows",
                "quarantined",
                "quarantine reasons",
                "quality score",
                "schema",
                "ingested",
                "report",
            ],
            rows,
            numeric={1, 2, 4},
        )
    )
    if d.columns:
        parts.append("<h2>Schema</h2>")
        keys = ["name", "type", "nullable", "pii"]
        extra = sorted({k for c in d.columns for k in c} - set(keys))
        parts.append(
            _table(
                [*keys, *extra],
                ([esc(c.get(k, "")) for k in (*keys, *extra)] for c in d.columns),
                numeric=set(),
            )
        )
    return page(f"Lake · {d.name}", "".join(parts), ctx, active="lake")


# -- files and errors ------------------------------------------------------------------
def folder_page(prefix: str, entries: Sequence[tuple[str, bool]], ctx: PageContext) -> str:
    """An index of a report folder: ``(key, is_folder)`` entries."""
    crumbs = []
    acc = ""
    for part in prefix.rstrip("/").split("/"):
        acc += part + "/"
        crumbs.append(f"<a href='{esc(report_href(acc, ctx.targets.base_path))}'>{esc(part)}</a>")
    if entries:
        items = "".join(
            f"<li><a href='{esc(report_href(key, ctx.targets.base_path))}'>"
            f"{esc(key[len(prefix) :])}</a></li>"
            for key, _ in entries
        )
        listing = f"<ul>{items}</ul>"
    else:
        listing = (
            "<p class='muted'>Nothing here (yet): the task has not written a report in this "
            "folder, or it was removed.</p>"
        )
    body = f"<h1>Reports</h1><p class='lead mono'>{' / '.join(crumbs)}</p>{listing}"
    return page("Reports", body, ctx)


def error_page(status: int, message: str, ctx: PageContext) -> str:
    """A readable error page."""
    body = f"<h1>{status}</h1><p>{esc(message)}</p>"
    return page(f"Error {status}", body, ctx)
