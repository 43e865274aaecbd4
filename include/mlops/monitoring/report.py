"""The monitoring report: ``report.json`` for machines, ``report.html`` for people.

Written under ``monitoring/<model>/<run>/`` (the contract in DESIGN.md)::

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
import html
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

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
    """The report as one self-contained HTML page."""
    e = html.escape
    window = report.get("window") or {}
    verdict = "DRIFT" if report.get("dataset_drift") else "no dataset drift"
    color = "#d9534f" if report.get("dataset_drift") else "#2e7d32"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Monitoring {e(str(report.get('model_name')))} v{e(str(report.get('version')))}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:left}th{background:#f3f3f3}.drift{color:#d9534f;font-weight:bold}"
        ".ok{color:#2e7d32}img{display:block;margin:.3em 0 1.2em}</style></head><body>",
        f"<h1>Model monitor: {e(str(report.get('model_name')))} version "
        f"{e(str(report.get('version')))}</h1>",
        f"<p>Window {e(str(window.get('start')))} → {e(str(window.get('end')))}, "
        f"{window.get('rows', 0)} captured rows (variant {e(str(report.get('variant')))}). "
        f"Run {e(str(report.get('run_id')))}.</p>",
        f"<h2 style='color:{color}'>{verdict}</h2>",
        _dataset_line(report),
    ]
    for note in report.get("notes") or []:
        parts.append(f"<p><em>{e(str(note))}</em></p>")
    parts.append(_violations_table(report.get("violations") or []))
    parts.append(_scores_table(report))
    parts.append(_prediction_section(report.get("prediction_drift") or {}))
    parts.append(_quality_section(report.get("model_quality")))
    for section in report.get("variants") or []:
        parts.append(
            f"<h2>Variant {e(str(section.get('variant')))} (version "
            f"{e(str(section.get('version')))}, {section.get('window', {}).get('rows', 0)} rows)</h2>"
        )
        parts.append(_dataset_line(section))
        parts.append(_violations_table(section.get("violations") or []))
        parts.append(_scores_table(section, plots=False))
    parts.append(_plots(report))
    parts.append("</body></html>")
    return "\n".join(parts)


# -- sections -----------------------------------------------------------------------------
def _dataset_line(report: dict[str, Any]) -> str:
    summary = report.get("drift_summary") or {}
    judged = summary.get("judged_features", 0)
    drifted = summary.get("drifted_features") or []
    return (
        f"<p>{len(drifted)} of {judged} features drifted "
        f"(share {_num(summary.get('share'))}; the dataset drifts at ≥ "
        f"{_num(summary.get('threshold'))}): {html.escape(', '.join(drifted)) or 'none'}.</p>"
    )


def _violations_table(violations: list[dict[str, Any]]) -> str:
    if not violations:
        return "<h3>Violations</h3><p class='ok'>None.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(v.get('constraint_check_type')))}</td>"
        f"<td>{html.escape(str(v.get('feature_name') or ''))}</td>"
        f"<td>{html.escape(str(v.get('description')))}</td></tr>"
        for v in violations
    )
    return (
        f"<h3>Violations ({len(violations)})</h3><table><tr><th>check</th><th>feature</th>"
        f"<th>description</th></tr>{rows}</table>"
    )


def _scores_table(report: dict[str, Any], *, plots: bool = True) -> str:
    features = report.get("features") or {}
    quality = report.get("data_quality") or {}
    if not features:
        return "<p>No feature was compared.</p>"
    rows = []
    for name, f in features.items():
        stats = f.get("statistics") or {}
        q = quality.get(name) or {}
        css = "drift" if f.get("drift") else "ok"
        anchor = (
            f"<a href='#f-{html.escape(name)}'>{html.escape(name)}</a>"
            if plots
            else html.escape(name)
        )
        rows.append(
            f"<tr><td>{anchor}</td><td>{html.escape(str(f.get('kind')))}</td>"
            f"<td>{html.escape(str(f.get('method')))}</td><td>{_num(f.get('score'))}</td>"
            f"<td>{_num(f.get('threshold'))}</td><td class='{css}'>{'yes' if f.get('drift') else 'no'}</td>"
            f"<td>{f.get('rows')}</td><td>{_num(stats.get('psi'))}</td>"
            f"<td>{_num(stats.get('wasserstein_norm', stats.get('jensenshannon')))}</td>"
            f"<td>{_num(q.get('completeness'))}</td></tr>"
        )
    return (
        "<h3>Per-feature drift</h3><table><tr><th>feature</th><th>kind</th><th>method</th>"
        "<th>score</th><th>threshold</th><th>drift</th><th>rows</th><th>PSI</th>"
        "<th>distance</th><th>completeness</th></tr>" + "".join(rows) + "</table>"
    )


def _prediction_section(prediction: dict[str, Any]) -> str:
    if not prediction:
        return ""
    if prediction.get("method") in (None, "unavailable"):
        reason = html.escape(str(prediction.get("reason", "no baseline for predictions")))
        return f"<h3>Prediction drift</h3><p>Not computed: {reason}.</p>"
    css = "drift" if prediction.get("drift") else "ok"
    text = (
        f"<h3>Prediction drift</h3><p class='{css}'>{'DRIFT' if prediction.get('drift') else 'no drift'}"
        f"</p><p>{html.escape(str(prediction.get('column')))} by {html.escape(str(prediction.get('method')))}: "
        f"score {_num(prediction.get('score'))} (threshold {_num(prediction.get('threshold'))}), "
        f"{prediction.get('rows')} rows.</p>"
    )
    if prediction.get("histogram"):
        text += _img(histogram_png(prediction["histogram"], "prediction"), "prediction")
    shares = prediction.get("class_shares")
    if shares:
        text += (
            "<p>Predicted classes: "
            + ", ".join(f"{html.escape(str(k))}: {_num(v)}" for k, v in shares.items())
            + "</p>"
        )
    return text


def _quality_section(quality: dict[str, Any] | None) -> str:
    if quality is None:
        return "<h3>Model quality</h3><p>No ground truth was given for this window.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_num(m.get('value'))}</td>"
        f"<td>{_num(m.get('expected'))}</td><td>{_num(m.get('limit'))}</td>"
        f"<td class='{'drift' if m.get('degraded') else 'ok'}'>{'yes' if m.get('degraded') else 'no'}</td></tr>"
        for name, m in (quality.get("metrics") or {}).items()
    )
    return (
        f"<h3>Model quality: {html.escape(str(quality.get('status')))}</h3>"
        f"<p>{quality.get('rows')} captured predictions joined to ground truth "
        f"({html.escape(str(quality.get('label_column')))}); tolerance "
        f"{_num(quality.get('tolerance'))} of the test value.</p>"
        "<table><tr><th>metric</th><th>window</th><th>test</th><th>limit</th><th>degraded</th></tr>"
        f"{rows}</table>"
    )


def _plots(report: dict[str, Any]) -> str:
    parts = ["<h2>Histograms: baseline vs window</h2>"]
    for name, f in (report.get("features") or {}).items():
        histogram = f.get("histogram")
        if not histogram or not histogram.get("labels"):
            continue
        title = f"{name}: {f.get('method')} {_num(f.get('score'))}" + (
            " DRIFT" if f.get("drift") else ""
        )
        parts.append(f"<h4 id='f-{html.escape(name)}'>{html.escape(name)}</h4>")
        parts.append(_img(histogram_png(histogram, title), name))
    return "\n".join(parts)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return html.escape(str(value))
