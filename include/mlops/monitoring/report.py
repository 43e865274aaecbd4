"""The monitoring report: ``report.json`` for machines, ``report.html`` for people.

Written under ``monitoring/<model>/<run>/`` (the contract in docs/design.md)::

    report.json   model_name, version, window {start, end, rows}, dataset_drift,
                  features {<name>: {drift, method, score, threshold, ...}},
                  prediction_drift, model_quality | null, violations [...],
                  data_quality, thresholds, variants (canary/shadow sections)
    report.html   one self-contained page: verdict, violations, a score table, and per
                  feature the baseline's histogram beside the window's (PNG, embedded)

The HTML is rendered from the JSON alone, so a report can be re-rendered later.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

from include.mlops.templates import render

if TYPE_CHECKING:
    from include.mlops.lake.store import Lake

MONITORING_PREFIX = "monitoring"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def report_prefix(model_name: str, run_id: str) -> str:
    """Lake prefix of one monitoring run (run ids like ``scheduled__2026-11-01T00:00:00+00:00``
    keep their letters, digits and ``._=-``; anything else becomes ``_``)."""
    return f"{MONITORING_PREFIX}/{model_name}/{_UNSAFE.sub('_', run_id).strip('_') or 'run'}"


def write_report(
    lake: Lake, report: dict[str, Any], *, model_name: str, run_id: str
) -> dict[str, str]:
    """Write ``report.json`` and ``report.html`` atomically.

    Returns:
        ``{"prefix", "report_uri", "html_uri"}``.
    """
    prefix = report_prefix(model_name, run_id)
    json_uri = lake.write_bytes(
        f"{prefix}/report.json",
        json.dumps(report, indent=2, sort_keys=False, default=str, allow_nan=False).encode(),
    )
    html_uri = lake.write_bytes(f"{prefix}/report.html", render_html(report).encode())
    return {"prefix": prefix, "report_uri": json_uri, "html_uri": html_uri}


def histogram_png(histogram: dict[str, list[Any]], title: str) -> bytes:
    """Baseline vs window proportions as grouped bars (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(v) for v in histogram.get("labels", [])]
    baseline = [float(v or 0.0) for v in histogram.get("baseline", [])]
    current = [float(v or 0.0) for v in histogram.get("current", [])]
    width = max(4.5, min(11.0, 0.45 * len(labels) + 2.0))
    fig, ax = plt.subplots(figsize=(width, 2.8), dpi=80)
    try:
        positions = list(range(len(labels)))
        ax.bar([p - 0.2 for p in positions], baseline, width=0.4, label="baseline", color="#9aa5b1")
        ax.bar([p + 0.2 for p in positions], current, width=0.4, label="window", color="#d9534f")
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("share", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (template ``monitoring/report.html``)."""
    features = report.get("features") or {}
    plots = {}
    for name, f in features.items():
        histogram = f.get("histogram")
        if histogram and histogram.get("labels"):
            title = f"{name}: {f.get('method')} {_num(f.get('score'))}" + (
                " DRIFT" if f.get("drift") else ""
            )
            plots[name] = _data_uri(histogram_png(histogram, title))
    prediction = report.get("prediction_drift") or {}
    prediction_plot = None
    if prediction.get("method") not in (None, "unavailable") and prediction.get("histogram"):
        prediction_plot = _data_uri(histogram_png(prediction["histogram"], "prediction"))
    return render(
        "monitoring/report.html",
        report=report,
        plots=plots,
        prediction_plot=prediction_plot,
        num=_num,
    )


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return str(value)
