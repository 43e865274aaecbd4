"""Importance-aware dataset drift: the drifted features' share of the version's attribution
importance, beside the plain share; either rule makes the dataset drift."""

from __future__ import annotations

import pytest

from include.mlops.monitoring import analyze_window
from include.mlops.monitoring.drift import DriftThresholds, importance_weights
from include.mlops.monitoring.report import render_html
from include.mlops.monitoring.request import MonitorRequest, MonitorRequestError
from include.mlops.ui.html import PageContext, monitoring_model_page, monitoring_page
from include.mlops.ui.links import LinkTargets
from include.mlops.ui.views import ModelMonitoring, parse_monitoring_report
from tests.monitoring.conftest import as_capture, draw

#: The version leans on ``amount``: mean |attribution| per input column.
IMPORTANCE = {"amount": 0.42, "tenure": 0.06, "age": 0.06, "plan": 0.06}


def test_the_most_important_feature_alone_drifts_the_dataset(baseline) -> None:
    # The motivating case: 1 of 4 features drifts (plain share 0.25 < 0.5), but
    # it carries 70 % of the model's attribution (≥ 0.3).
    rows = as_capture(draw(5000, seed=11, amount_shift=1.0))
    section = analyze_window(rows, baseline, importance=IMPORTANCE)
    summary = section["drift_summary"]
    assert summary["drifted_features"] == ["amount"]
    assert summary["share"] == pytest.approx(0.25) and summary["plain_drift"] is False
    assert summary["weighted_share"] == pytest.approx(0.7) and summary["weighted_drift"] is True
    assert summary["weighted_threshold"] == 0.3 and summary["rule"] == ["weighted_share"]
    assert section["dataset_drift"] is True
    assert summary["importance"] == pytest.approx(
        {"amount": 0.7, "tenure": 0.1, "age": 0.1, "plan": 0.1}
    )
    assert section["features"]["amount"]["importance"] == pytest.approx(0.7)
    (violation,) = [
        v for v in section["violations"] if v["constraint_check_type"] == "dataset_drift_check"
    ]
    text = violation["description"]
    assert "importance-weighted share rule" in text
    assert "plain share 25% < 50%" in text and "importance-weighted share 70% ≥ 30%" in text
    assert violation["observed"] == pytest.approx(0.7) and violation["expected"] == 0.3

    # Without the importance, the same window is no dataset drift, and says why.
    plain = analyze_window(
        rows, baseline, importance_reason="the version has no attribution baseline"
    )
    assert plain["dataset_drift"] is False
    assert plain["drift_summary"]["weighted_share"] is None
    assert plain["drift_summary"]["weighted_reason"] == "the version has no attribution baseline"
    assert plain["features"]["amount"]["importance"] is None


def test_unimportant_features_drifting_do_not_fire_the_weighted_rule(baseline) -> None:
    # tenure and plan drift: plain share 0.5 fires, their weight 0.2 does not.
    rows = as_capture(draw(5000, seed=12, tenure_scale=3.0, plan_new=0.3))
    summary = analyze_window(rows, baseline, importance=IMPORTANCE)["drift_summary"]
    assert summary["drifted_features"] == ["plan", "tenure"]
    assert summary["plain_drift"] is True and summary["weighted_drift"] is False
    assert summary["weighted_share"] == pytest.approx(0.2) and summary["rule"] == ["share"]
    assert summary["drift"] is True


def test_importance_weights_normalise_over_judged_features() -> None:
    assert importance_weights({"a": 3.0, "b": 1.0, "gone": 100.0}, ["a", "b", "c"]) == {
        "a": 0.75,
        "b": 0.25,
        "c": 0.0,
    }
    assert importance_weights({"a": 0.0}, ["a"]) is None
    assert importance_weights(None, ["a"]) is None


def test_report_and_monitoring_view_show_both_shares(baseline) -> None:
    rows = as_capture(draw(5000, seed=13, amount_shift=1.0))
    section = analyze_window(rows, baseline, importance=IMPORTANCE)
    report = {
        **section,
        "model_name": "churn",
        "version": 3,
        "run_id": "r1",
        "window": {"start": "2026-11-01T10:00:00+00:00", "end": "2026-11-01T11:00:00+00:00",
                   "rows": 5000},
    }  # fmt: skip
    page = render_html(report)
    assert "plain share of drifted features" in page and "importance-weighted share" in page
    assert "<td>0.25</td><td>0.5</td>" in page and "<td>0.7</td><td>0.3</td>" in page
    assert "<th>importance</th>" in page
    # No calibration in this baseline: the estimate says so instead of a number.
    assert "Not estimated: the version was registered without a calibration map" in page

    ctx = PageContext(targets=LinkTargets(base_path="/mlops", bucket="lake"))
    run = parse_monitoring_report("monitoring/churn/r1/report.json", report)
    assert run.drift_rules is not None and run.drift_rules["weighted_share"] == pytest.approx(0.7)
    assert run.estimated is not None and run.estimated["status"] == "unavailable"
    model_page = monitoring_model_page(ModelMonitoring("churn", [run]), ctx)
    assert "Dataset drift rules" in model_page and "importance-weighted share" in model_page
    assert "0.7" in model_page and "Not estimated" in model_page
    overview = monitoring_page([ModelMonitoring("churn", [run])], ctx)
    assert "share 0.25 · weighted 0.7" in overview


def test_thresholds_and_params_are_checked() -> None:
    assert DriftThresholds().weighted_drift_share == 0.3
    assert DriftThresholds().estimated_performance_tolerance == 0.05
    request = MonitorRequest.from_params(
        {"weighted_drift_share": 0.6, "estimated_performance_tolerance": 0.02}
    )
    assert request.thresholds.weighted_drift_share == 0.6
    assert request.thresholds.estimated_performance_tolerance == 0.02
    assert request.jobs(["churn"])[0].thresholds["weighted_drift_share"] == 0.6
    with pytest.raises(MonitorRequestError) as refused:
        MonitorRequest.from_params(
            {"weighted_drift_share": 1.5, "estimated_performance_tolerance": -0.1}
        )
    assert "weighted_drift_share=1.5" in str(refused.value)
    assert "estimated_performance_tolerance=-0.1" in str(refused.value)
