"""Global attributions: the baseline stored with a version, NDCG drift, the beeswarm plot.

The attribution baseline (``attribution_baseline.json`` on the version's MLflow run, like
``drift_baseline.json``; format 1)::

    {"format": 1, "method": "xgboost_pred_contribs", "space": "log_odds",
     "split": "train", "rows": 1000, "base_value": -1.23,
     "mean_abs": {"<column>": 0.41, ...},      # Clarify's global attribution: mean |SHAP|
     "ranking": ["<column>", ...]}             # columns by mean_abs, largest first

Feature-attribution drift is Clarify's: the columns ranked by mean |attribution| on a live
window (``F'``) against the baseline's ranking (``F``), scored by the normalised discounted
cumulative gain ``NDCG = DCG / iDCG`` with ``DCG = Σ_i a(F'_i) / log2(i + 1)`` and
``iDCG = Σ_i a(F_i) / log2(i + 1)``, where ``a(f)`` is the *baseline* attribution of
column ``f``. 1 means the same order; below the threshold (0.9 by default) is a violation.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from include.mlops.jsonable import jsonable

if TYPE_CHECKING:
    import pandas as pd

    from include.mlops.clarify.explain import Attributions, Explainer

ATTRIBUTION_FORMAT = 1
#: The run artifact holding a version's attribution baseline.
ATTRIBUTION_BASELINE_FILE = "attribution_baseline.json"
#: Rows explained for a baseline, a model card or a monitored window; shap's TreeSHAP on
#: a deep forest takes tens of milliseconds a row, so forests get fewer.
SAMPLE_ROWS = 1000
TREE_SHAP_SAMPLE_ROWS = 200
#: Columns shown in the beeswarm plot.
BEESWARM_COLUMNS = 15


def sample_rows(explainer: Explainer) -> int:
    """How many rows to explain for a global view with this explainer."""
    return TREE_SHAP_SAMPLE_ROWS if explainer.method == "tree_shap" else SAMPLE_ROWS


def sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame`` (a seeded sample, so reruns agree)."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def ranking(mean_abs: Mapping[str, float]) -> list[str]:
    """Columns by attribution, largest first (ties by name, so the order is stable)."""
    return [c for c, _ in sorted(mean_abs.items(), key=lambda kv: (-kv[1], kv[0]))]


def summarise(attributions: Attributions, *, method: str, split: str) -> dict[str, Any]:
    """The global attribution of some rows (the baseline format)."""
    mean_abs = attributions.mean_abs()
    return jsonable(
        {
            "format": ATTRIBUTION_FORMAT,
            "method": method,
            "space": attributions.space,
            "split": split,
            "rows": len(attributions.output),
            "base_value": float(np.mean(attributions.base)) if len(attributions.base) else None,
            "mean_abs": mean_abs,
            "ranking": ranking(mean_abs),
        }
    )


def ndcg(baseline: Mapping[str, float], live: Mapping[str, float]) -> float | None:
    """Clarify's NDCG of the live ranking against the baseline's (see the module docstring).

    Columns missing from ``live`` rank last. ``None`` when the baseline attributes nothing.
    """
    ideal = ranking(baseline)
    live_order = ranking({c: live.get(c, -math.inf) for c in ideal})
    discounts = 1.0 / np.log2(np.arange(2, len(ideal) + 2))
    idcg = float(np.sum([baseline[c] for c in ideal] * discounts))
    if idcg <= 0:
        return None
    dcg = float(np.sum([baseline[c] for c in live_order] * discounts))
    return dcg / idcg


def attribution_drift(
    baseline: Mapping[str, Any], attributions: Attributions, *, threshold: float
) -> dict[str, Any]:
    """The report's ``attribution_drift`` section for a window's attributions."""
    live = attributions.mean_abs()
    score = ndcg(baseline.get("mean_abs") or {}, live)
    return jsonable(
        {
            "method": "ndcg",
            "score": score,
            "threshold": threshold,
            "drift": score is not None and score < threshold,
            "rows": len(attributions.output),
            "space": attributions.space,
            "baseline": dict(baseline.get("mean_abs") or {}),
            "window": live,
            "baseline_ranking": list(baseline.get("ranking") or ranking(baseline.get("mean_abs") or {})),
            "window_ranking": ranking(live),
        }
    )  # fmt: skip


def beeswarm_png(attributions: Attributions, frame: pd.DataFrame, *, title: str) -> bytes:
    """SHAP's beeswarm: per column (most important on top) a dot per row at its attribution,
    spread vertically where dots crowd, coloured by the row's value of the column (numeric
    columns: low blue → high red; others grey)."""
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = ranking(attributions.mean_abs())[:BEESWARM_COLUMNS]
    index = {c: j for j, c in enumerate(attributions.columns)}
    figure = Figure(figsize=(8, max(2.5, 0.42 * len(order) + 1.3)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    rng = np.random.default_rng(0)
    for row, column in enumerate(reversed(order)):
        values = attributions.contributions[:, index[column]]
        y = row + _swarm_offsets(values, rng)
        colour: Any = "#8a8f98"
        if column in frame.columns:
            numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            if np.isfinite(numbers).any() and frame[column].dtype.kind in "biuf":
                low, high = np.nanpercentile(numbers, [5, 95])
                scaled = np.clip((numbers - low) / ((high - low) or 1.0), 0, 1)
                colour = np.where(np.isfinite(scaled), scaled, 0.5)
        if isinstance(colour, str):
            ax.scatter(values, y, s=7, color=colour, alpha=0.8, linewidths=0)
        else:
            ax.scatter(values, y, s=7, c=colour, cmap="coolwarm", vmin=0, vmax=1, alpha=0.8,
                       linewidths=0)  # fmt: skip
    ax.axvline(0, color="#555", linewidth=0.8)
    ax.set_yticks(range(len(order)), list(reversed(order)), fontsize="small")
    ax.set_xlabel(f"attribution ({attributions.space}); base + Σ = the model's output")
    ax.set_title(title)
    if order:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        shading = ScalarMappable(norm=Normalize(0, 1), cmap="coolwarm")
        bar = figure.colorbar(shading, ax=ax, ticks=[0, 1], fraction=0.04)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("value (numeric columns)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _swarm_offsets(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertical spread proportional to how many dots share a horizontal bin."""
    if len(values) == 0:
        return values
    counts, edges = np.histogram(values, bins=40)
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(counts) - 1)
    density = counts[bins] / max(counts.max(), 1)
    return (rng.random(len(values)) - 0.5) * 0.8 * density
