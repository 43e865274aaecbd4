"""The Models view shows each version's bias verdict; Monitoring shows attribution drift."""

from __future__ import annotations

import json

from include.mlops.ui.html import PageContext, models_page, monitoring_model_page
from include.mlops.ui.links import LinkTargets
from include.mlops.ui.views import (
    EndpointRow,
    ModelMonitoring,
    ModelSummary,
    VersionRow,
    _json_tag,
    parse_monitoring_report,
)

CTX = PageContext(targets=LinkTargets(base_path="/mlops", bucket="lake"))


def _version(bias: dict | None) -> VersionRow:
    return VersionRow(
        version=3, status="PendingManualApproval", objective="roc_auc", objective_value=0.8,
        dataset="churn", data_snapshot="abc", run_id="r", created_at=None, serves=(),
        decided_by=None, comment=None, report_key=None, bias=bias,
    )  # fmt: skip


def test_models_view_shows_the_bias_gate_and_each_facets_di() -> None:
    tag = json.dumps({"gate": "warned", "facets": {"age>=60": {"DI": 0.7123, "DPPL": 0.21}}})
    page = models_page(
        [ModelSummary("churn_model", EndpointRow(), [_version(_json_tag(tag))])], CTX
    )
    assert "bias (DI · DPPL)" in page
    assert "gate warned" in page and "age&gt;=60" in page and "0.712" in page and "0.21" in page
    plain = models_page([ModelSummary("churn_model", EndpointRow(), [_version(None)])], CTX)
    assert "gate " not in plain
    assert _json_tag("not json") is None and _json_tag(None) is None


def _report(attribution: dict) -> dict:
    return {
        "model_name": "churn_model", "version": 2,
        "window": {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-01T01:00:00+00:00", "rows": 500},
        "features": {}, "violations": [], "attribution_drift": attribution,
    }  # fmt: skip


def test_monitoring_view_shows_attribution_drift() -> None:
    section = {
        "method": "ndcg", "score": 0.83, "threshold": 0.9, "drift": True, "rows": 400,
        "baseline_ranking": ["tenure_months", "support_calls", "plan"],
        "window_ranking": ["plan", "tenure_months", "support_calls"],
    }  # fmt: skip
    run = parse_monitoring_report("monitoring/churn_model/r1/report.json", _report(section))
    assert (
        run.attribution is not None
        and run.attribution["drift"]
        and run.attribution["score"] == 0.83
    )
    page = monitoring_model_page(ModelMonitoring("churn_model", [run]), CTX)
    assert "Feature attribution drift" in page and "NDCG <b>0.83</b>" in page
    assert page.index("tenure_months") < page.index("support_calls")
    unavailable = parse_monitoring_report(
        "monitoring/churn_model/r2/report.json", _report({"method": "unavailable", "reason": "x"})
    )
    assert unavailable.attribution is None
    assert "Not in the latest report" in monitoring_model_page(
        ModelMonitoring("churn_model", [unavailable]), CTX
    )
