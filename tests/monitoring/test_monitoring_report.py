"""The report files: the docs/design.md contract in JSON, an HTML page with embedded plots."""

from __future__ import annotations

import json
from pathlib import Path

from include.mlops.lake.store import Lake
from include.mlops.monitoring import analyze_window
from include.mlops.monitoring.report import render_html, report_prefix, write_report
from tests.monitoring.conftest import as_capture, draw


def test_report_prefix_is_a_safe_key() -> None:
    assert report_prefix("churn", "manual__2026-11-01T10:00:00.123+00:00") == (
        "monitoring/churn/manual__2026-11-01T10_00_00.123_00_00"
    )
    assert report_prefix("churn", "///") == "monitoring/churn/run"


def test_html_shows_verdict_violations_scores_and_histograms(baseline, tmp_path: Path) -> None:
    section = analyze_window(
        as_capture(draw(5000, seed=1, amount_shift=1.0, plan_new=0.2)), baseline
    )
    report = {
        **section,
        "model_name": "churn",
        "version": 3,
        "variant": "champion",
        "run_id": "r1",
        "window": {
            "start": "2026-11-01T10:00:00+00:00",
            "end": "2026-11-01T11:00:00+00:00",
            "rows": 5000,
        },
    }
    page = render_html(report)
    assert "Model monitor: churn version 3" in page
    assert "categorical_values_check" in page and "baseline_drift_check" in page
    # One plot per feature and one for the prediction.
    assert page.count("data:image/png;base64,") == len(report["features"]) + 1
    assert "<td class='drift'>yes</td>" in page
    assert "No ground truth was given" in page

    lake = Lake.local(tmp_path / "lake")
    uris = write_report(lake, report, model_name="churn", run_id="r1")
    assert uris["report_uri"] == lake.uri("monitoring/churn/r1/report.json")
    stored = json.loads(lake.read_bytes("monitoring/churn/r1/report.json"))
    assert stored["features"]["amount"]["drift"] is True
    assert stored["features"]["plan"]["histogram"]["labels"][-1] == "__other__"
    assert lake.read_bytes("monitoring/churn/r1/report.html").decode() == page


def test_report_json_has_no_nan(baseline, tmp_path: Path) -> None:
    frame = as_capture(draw(50, seed=2)).drop(columns=["feature.age"])
    section = analyze_window(frame, baseline)
    text = json.dumps(section, allow_nan=False)  # raises on NaN/inf
    assert section["features"]["age"]["score"] is None
    assert "NaN" not in text
