"""What the three views show, gathered from the registry and the lake (no HTML here).

- :func:`registry_overview`: every registered model, its versions (approval status,
  objective metric, data snapshot, run), which version each endpoint variant serves,
  and the newest events of its audit trail (``audit/<model>/``: who did what, when, why).
- :func:`monitoring_overview`: per model, the monitoring runs' ``report.json`` files read
  generically per the docs/design.md contract (drift flag, per-feature scores, violations).
- :func:`lake_overview` / :func:`dataset_detail`: the catalog's datasets with their
  partitions, row and quarantine counts and quality scores.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from include.mlops.vocabulary import PENDING

if TYPE_CHECKING:
    import mlflow

    from include.mlops.lake.audit import AuditRecord
    from include.mlops.lake.store import Lake

log = logging.getLogger(__name__)

#: Monitoring runs read per model for the trend (newest first by object time).
DEFAULT_MONITORING_RUNS = 30
#: Audit events shown per model in the Models view (the newest).
DEFAULT_AUDIT_EVENTS = 10


# -- registry --------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionRow:
    """One model version as the Models view shows it."""

    version: int
    status: str
    objective: str | None
    objective_value: float | None
    dataset: str | None
    data_snapshot: str | None
    run_id: str | None
    created_at: str | None
    serves: tuple[str, ...]
    decided_by: str | None
    comment: str | None
    report_key: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    #: The ``bias_summary`` tag: ``{"gate", "facets": {facet: {metric: value}}}`` or None.
    bias: dict[str, Any] | None = None


@dataclass(frozen=True)
class EndpointRow:
    """Which version each endpoint variant serves (the registry's endpoint config)."""

    champion: int | None = None
    canary: int | None = None
    canary_percent: float = 0.0
    shadow: int | None = None
    shadow_percent: float = 0.0

    def serving(self) -> dict[int, list[str]]:
        """Version → the variants it serves (``champion``, ``canary 10%``, ...)."""
        served: dict[int, list[str]] = {}
        if self.champion is not None:
            served.setdefault(self.champion, []).append("champion")
        if self.canary is not None:
            served.setdefault(self.canary, []).append(f"canary {_pct(self.canary_percent)}")
        if self.shadow is not None:
            served.setdefault(self.shadow, []).append(f"shadow {_pct(self.shadow_percent)}")
        return served


@dataclass(frozen=True)
class ModelSummary:
    """A registered model: its endpoint configuration and versions, newest first."""

    name: str
    endpoint: EndpointRow
    versions: list[VersionRow]
    error: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)
    audit_error: str | None = None

    @property
    def pending(self) -> int:
        """Versions waiting for a human decision."""
        return sum(1 for v in self.versions if v.status == PENDING)


def _pct(value: float) -> str:
    return f"{value:g}%"


def endpoint_rows(client: mlflow.MlflowClient) -> dict[str, EndpointRow]:
    """Each registered model's endpoint variants (via :mod:`include.mlops.serving.config`).

    Falls back to reading the ``champion``/``canary``/``shadow`` aliases directly when
    the serving package is not importable.
    """
    try:
        from include.mlops.serving.config import read_all_endpoint_configs
    except ImportError:  # pragma: no cover - the serving package ships with the platform
        return _aliases_only(client)
    configs = read_all_endpoint_configs(client)
    return {
        name: EndpointRow(
            champion=c.champion,
            canary=c.canary,
            canary_percent=c.canary_percent,
            shadow=c.shadow,
            shadow_percent=c.shadow_percent,
        )
        for name, c in configs.items()
    }


def _aliases_only(client: mlflow.MlflowClient) -> dict[str, EndpointRow]:
    rows = {}
    for model in client.search_registered_models(max_results=1000):
        aliases = {k: int(v) for k, v in (model.aliases or {}).items()}
        tags = model.tags or {}
        rows[model.name] = EndpointRow(
            champion=aliases.get("champion"),
            canary=aliases.get("canary"),
            canary_percent=_float(tags.get("endpoint.canary_percent"), 0.0),
            shadow=aliases.get("shadow"),
            shadow_percent=_float(tags.get("endpoint.shadow_percent"), 100.0),
        )
    return rows


def registry_overview(
    client: mlflow.MlflowClient,
    lake: Lake | None = None,
    *,
    audit_events: int = DEFAULT_AUDIT_EVENTS,
) -> list[ModelSummary]:
    """Every registered model with its versions and endpoint variants, sorted by name.

    Args:
        client: MLflow client (tracking + registry).
        lake: The lake, to find each version's evaluation report and the model's audit
            trail (optional).
        audit_events: How many of the newest audit events to read per model.

    Returns:
        One summary per model; a model whose versions cannot be read carries ``error``.
    """
    from include.mlops.registry import RegistryError, list_versions

    endpoints = endpoint_rows(client)
    summaries = []
    for name in sorted(endpoints):
        endpoint = endpoints[name]
        served = endpoint.serving()
        reports = _evaluation_reports(lake, name)
        audit, audit_error = _audit_trail(lake, name, audit_events)
        try:
            infos = list_versions(client, name)
        except RegistryError as exc:
            summaries.append(ModelSummary(name, endpoint, [], error=str(exc), audit=audit,
                                          audit_error=audit_error))  # fmt: skip
            continue
        rows = []
        for info in infos:
            tags = info.tags
            rows.append(
                VersionRow(
                    version=info.version,
                    status=info.status,
                    objective=info.objective,
                    objective_value=info.objective_value,
                    dataset=tags.get("dataset"),
                    data_snapshot=tags.get("data_snapshot"),
                    run_id=info.run_id,
                    created_at=_ms_to_iso(info.created_at_ms),
                    serves=tuple(served.get(info.version, ())),
                    decided_by=tags.get("approved_by") or tags.get("rejected_by"),
                    comment=tags.get("approval_comment"),
                    report_key=reports.get(str(info.version)),
                    metrics=dict(info.metrics),
                    bias=_json_tag(tags.get("bias_summary")),
                )
            )
        summaries.append(ModelSummary(name, endpoint, rows, audit=audit, audit_error=audit_error))
    return summaries


def _audit_trail(
    lake: Lake | None, model_name: str, limit: int
) -> tuple[list[AuditRecord], str | None]:
    """The model's newest audit events, or why they could not be read."""
    from include.mlops.lake.audit import read_events

    if lake is None:
        return [], None
    try:
        return read_events(lake, model_name, limit=limit), None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("audit trail of %s is unreadable: %s", model_name, exc)
        return [], f"The audit trail could not be read: {exc}"


def _evaluation_reports(lake: Lake | None, model_name: str) -> dict[str, str]:
    """Version → key of its model card under ``reports/evaluation/<model>/<version>/``."""
    if lake is None:
        return {}
    found = {}
    for key in lake.list_files(f"reports/evaluation/{model_name}/", suffix="/model_card.html"):
        version = key.split("/")[3]
        found[version] = key
    return found


def _ms_to_iso(ms: int | None) -> str | None:
    if not ms:
        return None
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


# -- monitoring ------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift verdict in a monitoring report."""

    name: str
    drift: bool
    method: str | None
    score: float | None
    threshold: float | None


@dataclass(frozen=True)
class MonitoringRun:
    """One ``monitoring/<model>/<run>/report.json`` read per the report contract."""

    key: str
    run: str
    model_name: str
    version: Any
    window_start: str | None
    window_end: str | None
    rows: int | None
    dataset_drift: bool
    prediction_drift: bool
    model_quality: str | None
    features: list[FeatureScore]
    violations: list[str]
    html_key: str | None
    #: The report's ``attribution_drift`` section (Clarify's NDCG), when it has one.
    attribution: dict[str, Any] | None = None
    #: Both dataset-drift rules: ``share``/``threshold`` (plain) and ``weighted_share``/
    #: ``weighted_threshold`` (importance-weighted; ``None`` when unavailable, with
    #: ``weighted_reason``), from the report's ``drift_summary``.
    drift_rules: dict[str, Any] | None = None
    #: The report's ``estimated_performance`` section (CBPE), when it has one.
    estimated: dict[str, Any] | None = None

    @property
    def estimated_quality(self) -> str | None:
        """The CBPE verdict (``ok``, ``degraded``, ...) or ``None`` when not estimated."""
        return None if self.estimated is None else self.estimated.get("status")

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted."""
        return [f.name for f in self.features if f.drift]

    @property
    def drift_share(self) -> float:
        """Share of judged features that drifted (0 when none were judged)."""
        judged = [f for f in self.features if f.score is not None]
        return len(self.drifted) / len(judged) if judged else 0.0


@dataclass(frozen=True)
class ModelMonitoring:
    """A model's monitoring runs, newest first (the first is the latest verdict)."""

    model_name: str
    runs: list[MonitoringRun]
    unreadable: list[str] = field(default_factory=list)

    @property
    def latest(self) -> MonitoringRun | None:
        """The newest run, if any."""
        return self.runs[0] if self.runs else None


def parse_monitoring_report(key: str, report: Mapping[str, Any]) -> MonitoringRun:
    """Read a ``report.json`` generically (unknown extra fields are ignored).

    Args:
        key: Its lake key ``monitoring/<model>/<run>/report.json``.
        report: The parsed JSON.

    Returns:
        The run's summary.
    """
    parts = key.split("/")
    window = report.get("window") or {}
    features = []
    for name, entry in sorted((report.get("features") or {}).items()):
        entry = entry if isinstance(entry, Mapping) else {}
        features.append(
            FeatureScore(
                name=str(name),
                drift=bool(entry.get("drift")),
                method=entry.get("method"),
                score=_float(entry.get("score")),
                threshold=_float(entry.get("threshold")),
            )
        )
    prediction = report.get("prediction_drift")
    quality = report.get("model_quality")
    prefix = "/".join(parts[:-1])
    return MonitoringRun(
        key=key,
        run=parts[2] if len(parts) > 3 else prefix,
        model_name=str(report.get("model_name") or parts[1]),
        version=report.get("version"),
        window_start=_text(window.get("start")),
        window_end=_text(window.get("end")),
        rows=_int(window.get("rows")),
        dataset_drift=bool(report.get("dataset_drift")),
        prediction_drift=bool(prediction.get("drift"))
        if isinstance(prediction, Mapping)
        else bool(prediction),
        model_quality=(
            str(quality.get("status")) if isinstance(quality, Mapping) and quality else None
        ),
        features=features,
        violations=[_violation_text(v) for v in report.get("violations") or []],
        html_key=f"{prefix}/report.html",
        attribution=_attribution(report.get("attribution_drift")),
        drift_rules=_drift_rules(report.get("drift_summary")),
        estimated=_estimated(report.get("estimated_performance")),
    )


def _drift_rules(summary: Any) -> dict[str, Any] | None:
    """Both dataset-drift shares and thresholds (``None`` for reports without a summary)."""
    if not isinstance(summary, Mapping):
        return None
    return {
        "share": _float(summary.get("share")),
        "threshold": _float(summary.get("threshold")),
        "plain_drift": bool(summary.get("plain_drift", summary.get("drift"))),
        "weighted_share": _float(summary.get("weighted_share")),
        "weighted_threshold": _float(summary.get("weighted_threshold")),
        "weighted_drift": bool(summary.get("weighted_drift")),
        "weighted_reason": _text(summary.get("weighted_reason")),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _estimated(section: Any) -> dict[str, Any] | None:
    """The CBPE section: status, reason or per-metric estimate/test/drop."""
    if not isinstance(section, Mapping) or not section.get("status"):
        return None
    metrics, reference, drop = (_mapping(section.get(k)) for k in ("metrics", "reference", "drop"))
    degraded = set(section.get("degraded") or [])
    return {
        "status": str(section.get("status")),
        "reason": _text(section.get("reason")),
        "rows": _int(section.get("rows")),
        "tolerance": _float(section.get("tolerance")),
        "metrics": [
            {"name": str(name), "estimate": _float(value), "test": _float(reference.get(name)),
             "drop": _float(drop.get(name)), "degraded": name in degraded}
            for name, value in metrics.items()
        ],
    }  # fmt: skip


def _attribution(section: Any) -> dict[str, Any] | None:
    """The attribution drift verdict (``None`` when the report has none or it was not computed)."""
    if not isinstance(section, Mapping) or section.get("method") in (None, "unavailable"):
        return None
    return {
        "score": _float(section.get("score")),
        "threshold": _float(section.get("threshold")),
        "drift": bool(section.get("drift")),
        "rows": _int(section.get("rows")),
        "baseline_ranking": [str(c) for c in section.get("baseline_ranking") or []],
        "window_ranking": [str(c) for c in section.get("window_ranking") or []],
    }


def _json_tag(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _violation_text(violation: Any) -> str:
    if isinstance(violation, Mapping):
        for name in ("description", "message", "detail"):
            if violation.get(name):
                return str(violation[name])
        return json.dumps(dict(violation), default=str, sort_keys=True)
    return str(violation)


def monitored_models(lake: Lake) -> list[str]:
    """Model names with a folder under ``monitoring/``."""
    selector = pafs.FileSelector(lake.path("monitoring"), recursive=False, allow_not_found=True)
    return sorted(
        info.base_name
        for info in lake.fs.get_file_info(selector)
        if info.type == pafs.FileType.Directory
    )


def model_monitoring(
    lake: Lake, model_name: str, *, max_runs: int = DEFAULT_MONITORING_RUNS
) -> ModelMonitoring:
    """A model's newest monitoring runs (at most ``max_runs``), newest first.

    Newest is decided by the object's modification time, then the report's window end,
    so scheduled and manual runs interleave correctly.
    """
    selector = pafs.FileSelector(
        lake.path(f"monitoring/{model_name}"), recursive=True, allow_not_found=True
    )
    found = [
        (info.mtime_ns or 0, lake.key_of(info.path))
        for info in lake.fs.get_file_info(selector)
        if info.type == pafs.FileType.File and info.path.endswith("/report.json")
    ]
    found = [(t, k) for t, k in found if "/_staging/" not in f"/{k}"]
    newest = sorted(found, reverse=True)[:max_runs]
    runs, unreadable = [], []
    for _, key in newest:
        try:
            runs.append(parse_monitoring_report(key, json.loads(lake.read_bytes(key))))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("monitoring report %s is unreadable: %s", key, exc)
            unreadable.append(key)
    runs.sort(key=lambda r: r.window_end or "", reverse=True)
    return ModelMonitoring(model_name, runs, unreadable)


def monitoring_overview(
    lake: Lake, model_names: Iterable[str] = (), *, max_runs: int = DEFAULT_MONITORING_RUNS
) -> list[ModelMonitoring]:
    """Every monitored model (and every named one, even without runs yet)."""
    names = sorted(set(model_names) | set(monitored_models(lake)))
    return [model_monitoring(lake, name, max_runs=max_runs) for name in names]


# -- lake ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionRow:
    """One curated partition in the catalog."""

    partition: str
    rows: int
    quarantined: int
    reasons: dict[str, int]
    quality_score: float | None
    quality_report: str | None
    ingested_at: str | None
    schema_version: Any
    run_id: str | None


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset in the catalog."""

    name: str
    partitions: list[PartitionRow]
    total_rows: int
    snapshot_id: str | None
    updated_at: str | None
    columns: list[dict[str, Any]]
    schema_version: Any

    @property
    def quarantined(self) -> int:
        """Rows quarantined across every partition."""
        return sum(p.quarantined for p in self.partitions)

    @property
    def latest(self) -> PartitionRow | None:
        """The newest partition."""
        return self.partitions[-1] if self.partitions else None

    @property
    def quality_score(self) -> float | None:
        """The newest partition's quality score."""
        latest = self.latest
        return None if latest is None else latest.quality_score


def parse_catalog(entry: Mapping[str, Any]) -> DatasetSummary:
    """A catalog entry (``catalog/<dataset>/schema.json``) as the Lake view shows it."""
    partitions = []
    for name, p in sorted((entry.get("partitions") or {}).items()):
        partitions.append(
            PartitionRow(
                partition=str(name),
                rows=_int(p.get("rows")) or 0,
                quarantined=_int(p.get("quarantined")) or 0,
                reasons={str(k): _int(v) or 0 for k, v in (p.get("reasons") or {}).items()},
                quality_score=_float(p.get("quality_score")),
                quality_report=p.get("quality_report"),
                ingested_at=_text(p.get("ingested_at")),
                schema_version=p.get("schema_version"),
                run_id=_text(p.get("run_id")),
            )
        )
    schema = entry.get("schema") or {}
    columns = [dict(c) for c in schema.get("columns") or [] if isinstance(c, Mapping)]
    return DatasetSummary(
        name=str(entry.get("dataset")),
        partitions=partitions,
        total_rows=_int(entry.get("total_rows")) or sum(p.rows for p in partitions),
        snapshot_id=_text(entry.get("snapshot_id")),
        updated_at=_text(entry.get("updated_at")),
        columns=columns,
        schema_version=schema.get("version"),
    )


def lake_overview(lake: Lake) -> list[DatasetSummary]:
    """Every dataset with a catalog entry, sorted by name."""
    summaries = []
    for key in lake.list_files("catalog/", suffix="/schema.json"):
        if key.count("/") != 2:
            continue
        try:
            summaries.append(parse_catalog(json.loads(lake.read_bytes(key))))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("catalog entry %s is unreadable: %s", key, exc)
    return sorted(summaries, key=lambda d: d.name)


def dataset_detail(lake: Lake, dataset: str) -> DatasetSummary | None:
    """One dataset's catalog entry, or ``None`` when it has none."""
    from include.mlops.etl.catalog import load_catalog

    entry = load_catalog(lake, dataset)
    return None if entry is None else parse_catalog(entry)


# -- helpers ---------------------------------------------------------------------------
def _float(value: Any, default: float | None = None) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
