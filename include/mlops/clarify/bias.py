"""Clarify's bias metrics, the bias report of a model version, and the bias gate.

Definitions are SageMaker Clarify's (its documentation and its open implementation,
``smclarify``; ``benchmarks/bench_clarify.py`` shows agreement to 1e-6 on the same data).
``d`` is the facet (sensitive group), ``a`` the other rows; ``y`` is "the label is the
positive class", ``ŷ`` "the model predicts the positive class"; ``n_a``, ``n_d`` rows,
``n_a⁽¹⁾`` positive labels, ``n̂_a⁽¹⁾`` positive predictions, TP/FP/TN/FN per group.

Pre-training (the data, on the training split):

====== ==================================================================================
CI     ``(n_a − n_d) / (n_a + n_d)``
DPL    ``q_a − q_d`` with ``q = n⁽¹⁾ / n``
KL     ``Σ P_a log(P_a / P_d)`` over label values present in both groups (P: share of
       each label value within the group)
JS     ``½ [KL(P_a, P) + KL(P_d, P)]``, ``P = ½ (P_a + P_d)``, same label values
LP     ``‖P_a − P_d‖₂``; TVD ``½ ‖P_a − P_d‖₁``; KS ``max |P_a − P_d|`` (Clarify's, on
       the label distributions)
CDDL   ``Σ_i n_i (D_i − A_i) / Σ_i n_i`` over the groups ``i`` of the group column:
       ``D_i`` = facet share of the group's negative labels, ``A_i`` of its positive ones
       (a missing group value is the group ``(missing)``)
====== ==================================================================================

Post-training (the model's predicted labels, on the test split):

====== ==================================================================================
DPPL   ``q̂_a − q̂_d``; DI ``q̂_d / q̂_a``
DCAcc  ``n_a⁽¹⁾/n̂_a⁽¹⁾ − n_d⁽¹⁾/n̂_d⁽¹⁾``; DCR ``n_d⁽⁰⁾/n̂_d⁽⁰⁾ − n_a⁽⁰⁾/n̂_a⁽⁰⁾``
RD     recall_a − recall_d; AD accuracy_a − accuracy_d
DAR    ``TP_a/n̂_a⁽¹⁾ − TP_d/n̂_d⁽¹⁾``; DRR ``TN_d/n̂_d⁽⁰⁾ − TN_a/n̂_a⁽⁰⁾``
TE     ``FN_d/FP_d − FN_a/FP_a``
CDDPL  CDDL with predicted labels
FT     k-NN (k = 5, or 1 for ≤ 9 rows in ``a``) trained on ``a``'s features and predicted
       labels, applied to ``d``: (flips negative→positive − positive→negative) / n_d.
       Features: the model's numeric feature matrix without the facet column's own
       columns.
====== ==================================================================================

Divisions follow Clarify: 0/0 = 0, x/0 = ±∞, and a difference of two infinities is 0.
An empty group (or no label in common, or no positive label for CDD) makes a metric
undefined: ``None`` with the reason under ``errors``; an infinite value is ``None`` in the
JSON report too (JSON has no infinity), its text under ``errors``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.mlops.clarify.facets import Facet, parse_facets
from include.mlops.evaluation.gates import ModelGateError
from include.mlops.jsonable import jsonable
from include.mlops.vocabulary import (
    BIAS_METRICS,
    DEFAULT_BIAS_BOUNDS,
    POSTTRAINING_BIAS_METRICS,
    PRETRAINING_BIAS_METRICS,
)

INF = math.inf
BIAS_FORMAT = 1
#: Metric name prefix on the version's MLflow run: ``bias_<facet key>_<METRIC>``.
METRIC_PREFIX = "bias_"
#: k of the flip test's nearest neighbours (1 when ``a`` has at most 9 rows), Clarify's.
FT_NEIGHBORS = 5
FT_MIN_NEIGHBORS = 1
FT_SMALL_GROUP = 9


class BiasGateError(ModelGateError):
    """A bias metric is outside its bounds with ``bias_gate=block``.

    A :class:`~include.mlops.evaluation.gates.ModelGateError`, so it fails the run like
    the other model gates; the message names each facet, metric, value, bound and the
    report.
    """

    def __init__(self, message: str, *, report_uri: str | None) -> None:
        Exception.__init__(self, message)
        self.decision = None  # type: ignore[assignment]
        self.report_uri = report_uri


class UndefinedMetric(ValueError):
    """A metric cannot be computed on these rows (an empty group, no label in common)."""


def _divide(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else (INF if a > 0 else -INF)
    return a / b


def _difference(x: float, y: float) -> float:
    return 0.0 if x == y == INF else x - y


def _groups(facet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(facet, dtype=bool)
    if not d.any():
        raise UndefinedMetric("the facet group is empty")
    if d.all():
        raise UndefinedMetric("every row is in the facet: the other group is empty")
    return ~d, d


def _label_pdf(labels: np.ndarray) -> dict[bool, float]:
    values, counts = np.unique(labels, return_counts=True)
    return {bool(v): c / counts.sum() for v, c in zip(values, counts, strict=True)}


def _aligned(y: np.ndarray, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label distributions of both groups over the label values present in both."""
    pa, pd_ = _label_pdf(y[a]), _label_pdf(y[d])
    keys = [k for k in sorted(set(pa) | set(pd_)) if pa.get(k, 0) and pd_.get(k, 0)]
    if not keys:
        raise UndefinedMetric("the groups have no label value in common")
    return np.array([pa[k] for k in keys]), np.array([pd_[k] for k in keys])


# -- pre-training ---------------------------------------------------------------------
def class_imbalance(facet: np.ndarray) -> float:
    """CI."""
    a, d = _groups(facet)
    return float((a.sum() - d.sum()) / len(a))


def positive_proportion_difference(facet: np.ndarray, positive: np.ndarray) -> float:
    """DPL (labels) or DPPL (predicted labels): ``q_a − q_d``."""
    a, d = _groups(facet)
    positive = np.asarray(positive, dtype=bool)
    return float(positive[a].mean() - positive[d].mean())


def kl_divergence(facet: np.ndarray, y: np.ndarray) -> float:
    """KL."""
    pa, pd_ = _aligned(np.asarray(y, dtype=bool), *_groups(facet))
    return float(np.sum(pa * np.log(pa / pd_)))


def js_divergence(facet: np.ndarray, y: np.ndarray) -> float:
    """JS."""
    pa, pd_ = _aligned(np.asarray(y, dtype=bool), *_groups(facet))
    p = 0.5 * (pa + pd_)
    return float(0.5 * (np.sum(pa * np.log(pa / p)) + np.sum(pd_ * np.log(pd_ / p))))


def lp_norm(facet: np.ndarray, y: np.ndarray, order: float) -> float:
    """``‖P_a − P_d‖_order`` (LP: 2; TVD: half of order 1; KS: order ∞)."""
    pa, pd_ = _aligned(np.asarray(y, dtype=bool), *_groups(facet))
    return float(np.linalg.norm(pa - pd_, order))


def conditional_demographic_disparity(
    facet: np.ndarray, positive: np.ndarray, group: np.ndarray
) -> float:
    """CDDL (labels) or CDDPL (predicted labels)."""
    facet = np.asarray(facet, dtype=bool)
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        raise UndefinedMetric("no positive label in the rows")
    if positive.all():
        raise UndefinedMetric("no negative label in the rows")
    # A missing group value is a group of its own ("(missing)"), never silently dropped.
    keys = np.array([MISSING_GROUP if _missing(v) else v for v in group], dtype=object)
    total = weighted = 0.0
    for value in sorted(set(keys.tolist()), key=str):
        in_group = keys == value
        accepted = positive & in_group
        rejected = ~positive & in_group
        share_accepted = _ratio_or_zero(int((accepted & facet).sum()), int(accepted.sum()))
        share_rejected = _ratio_or_zero(int((rejected & facet).sum()), int(rejected.sum()))
        count = int(in_group.sum())
        total += count
        weighted += count * (share_rejected - share_accepted)
    return _divide(weighted, total)


MISSING_GROUP = "(missing)"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _ratio_or_zero(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


# -- post-training --------------------------------------------------------------------
@dataclass(frozen=True)
class _Counts:
    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def of(cls, y: np.ndarray, yhat: np.ndarray) -> _Counts:
        return cls(
            tp=int((y & yhat).sum()),
            fp=int((~y & yhat).sum()),
            tn=int((~y & ~yhat).sum()),
            fn=int((y & ~yhat).sum()),
        )


def _both(facet: np.ndarray, y: np.ndarray, yhat: np.ndarray) -> tuple[_Counts, _Counts]:
    a, d = _groups(facet)
    y, yhat = np.asarray(y, dtype=bool), np.asarray(yhat, dtype=bool)
    return _Counts.of(y[a], yhat[a]), _Counts.of(y[d], yhat[d])


def posttraining_metrics(
    facet: np.ndarray,
    y: np.ndarray,
    yhat: np.ndarray,
) -> dict[str, float | UndefinedMetric]:
    """DPPL, DI, DCAcc, DCR, RD, DAR, DRR, AD, TE (a value or why it is undefined)."""
    try:
        ca, cd = _both(facet, y, yhat)
    except UndefinedMetric as error:
        return dict.fromkeys(("DPPL", "DI", "DCAcc", "DCR", "RD", "DAR", "DRR", "AD", "TE"), error)
    na, nd = ca.tp + ca.fp + ca.tn + ca.fn, cd.tp + cd.fp + cd.tn + cd.fn
    qa, qd = (ca.tp + ca.fp) / na, (cd.tp + cd.fp) / nd
    acc_a, acc_d = _divide(ca.tp + ca.tn, na), _divide(cd.tp + cd.tn, nd)
    return {
        "DPPL": qa - qd,
        "DI": _divide(qd, qa),
        "DCAcc": _difference(_divide(ca.tp + ca.fn, ca.tp + ca.fp), _divide(cd.tp + cd.fn, cd.tp + cd.fp)),
        "DCR": _difference(_divide(cd.tn + cd.fp, cd.tn + cd.fn), _divide(ca.tn + ca.fp, ca.tn + ca.fn)),
        "RD": _difference(_divide(ca.tp, ca.tp + ca.fn), _divide(cd.tp, cd.tp + cd.fn)),
        "DAR": _difference(_divide(ca.tp, ca.tp + ca.fp), _divide(cd.tp, cd.tp + cd.fp)),
        "DRR": _difference(_divide(cd.tn, cd.tn + cd.fn), _divide(ca.tn, ca.tn + ca.fn)),
        "AD": _difference(acc_a, acc_d),
        "TE": _difference(_divide(cd.fn, cd.fp), _divide(ca.fn, ca.fp)),
    }  # fmt: skip


def flip_test(facet: np.ndarray, yhat: np.ndarray, features: np.ndarray) -> float:
    """FT: k-NN on ``a``'s features and predicted labels, applied to ``d``."""
    from sklearn.neighbors import KNeighborsClassifier

    a, d = _groups(facet)
    yhat = np.asarray(yhat, dtype=bool)
    matrix = np.asarray(features, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise UndefinedMetric("no numeric feature to find neighbours with")
    k = FT_NEIGHBORS if a.sum() > FT_SMALL_GROUP else FT_MIN_NEIGHBORS
    knn = KNeighborsClassifier(
        n_neighbors=k, weights="uniform", algorithm="auto", leaf_size=30, p=2
    )
    knn.fit(matrix[a], yhat[a])
    as_if_a = np.asarray(knn.predict(matrix[d]), dtype=bool)
    model = yhat[d]
    flipped_up = int((model & ~as_if_a).sum())
    flipped_down = int((~model & as_if_a).sum())
    return _divide(flipped_up - flipped_down, int(d.sum()))


def pretraining_metrics(
    facet: np.ndarray, y: np.ndarray, group: np.ndarray | None
) -> dict[str, float | UndefinedMetric]:
    """CI, DPL, KL, JS, LP, TVD, KS, CDDL (a value or why it is undefined)."""
    y = np.asarray(y, dtype=bool)
    calls: dict[str, Any] = {
        "CI": lambda: class_imbalance(facet),
        "DPL": lambda: positive_proportion_difference(facet, y),
        "KL": lambda: kl_divergence(facet, y),
        "JS": lambda: js_divergence(facet, y),
        "LP": lambda: lp_norm(facet, y, 2),
        "TVD": lambda: 0.5 * lp_norm(facet, y, 1),
        "KS": lambda: lp_norm(facet, y, np.inf),
        "CDDL": lambda: _cdd(facet, y, group),
    }
    return {name: _attempt(call) for name, call in calls.items()}


def _cdd(facet: np.ndarray, positive: np.ndarray, group: np.ndarray | None) -> float:
    if group is None:
        raise UndefinedMetric("needs a group column (bias_group_column)")
    return conditional_demographic_disparity(facet, positive, group)


def _attempt(call: Any) -> float | UndefinedMetric:
    try:
        return float(call())
    except UndefinedMetric as error:
        return error


def all_posttraining(
    facet: np.ndarray,
    y: np.ndarray,
    yhat: np.ndarray,
    *,
    group: np.ndarray | None,
    features: np.ndarray | None,
) -> dict[str, float | UndefinedMetric]:
    """Every post-training metric, in :data:`POSTTRAINING_BIAS_METRICS` order."""
    values = posttraining_metrics(facet, y, yhat)
    values["CDDPL"] = _attempt(lambda: _cdd(facet, np.asarray(yhat, dtype=bool), group))
    values["FT"] = (
        UndefinedMetric("no feature matrix")
        if features is None
        else _attempt(lambda: flip_test(facet, yhat, features))
    )
    return {name: values[name] for name in POSTTRAINING_BIAS_METRICS}


# -- the report ------------------------------------------------------------------------
@dataclass(frozen=True)
class BiasGate:
    """The bias gate: ``mode`` (off, warn, block) and each metric's bounds.

    Attributes:
        mode: ``off`` (report only), ``warn`` (report, flag), ``block`` (stop the run).
        bounds: Metric → ``(low, high)`` (``None`` for an open end); applies to every facet.
    """

    mode: str = "off"
    bounds: Mapping[str, tuple[float | None, float | None]] = field(
        default_factory=lambda: dict(DEFAULT_BIAS_BOUNDS)
    )

    def check(self, facets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The gated metrics outside their bounds (or undefined), per facet."""
        if self.mode == "off":
            return []
        out = []
        for entry in facets:
            values = {**entry.get("pre_training", {}), **entry.get("post_training", {})}
            for metric, (low, high) in self.bounds.items():
                value = values.get(metric)
                inside = (
                    value is not None
                    and (low is None or value >= low)
                    and (high is None or value <= high)
                )
                if not inside:
                    reason = (entry.get("errors") or {}).get(metric) or "undefined"
                    out.append({
                        "facet": entry["facet"], "metric": metric, "value": value,
                        "low": low, "high": high,
                        "message": (
                            f"facet {entry['facet']!r}: {metric} = "
                            + (f"{value:.4f}" if value is not None else f"undefined ({reason})")
                            + f", outside [{_bound(low)}, {_bound(high)}]"
                        ),
                    })  # fmt: skip
        return out


def _bound(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"


def facet_entry(
    facet: Facet,
    *,
    train_facet: np.ndarray,
    train_y: np.ndarray,
    train_group: np.ndarray | None,
    test_facet: np.ndarray,
    test_y: np.ndarray,
    test_yhat: np.ndarray,
    test_group: np.ndarray | None,
    test_features: np.ndarray | None,
) -> dict[str, Any]:
    """One facet's section of the report: pre-training on train, post-training on test."""
    pre = pretraining_metrics(train_facet, train_y, train_group)
    post = all_posttraining(test_facet, test_y, test_yhat, group=test_group, features=test_features)
    values: dict[str, dict[str, float | None]] = {"pre_training": {}, "post_training": {}}
    errors: dict[str, str] = {}
    for stage, results in (("pre_training", pre), ("post_training", post)):
        for name, result in results.items():
            if isinstance(result, UndefinedMetric):
                values[stage][name] = None
                errors[name] = str(result)
            elif not math.isfinite(result):
                values[stage][name] = None
                errors[name] = "Infinity" if result > 0 else "-Infinity"
            else:
                values[stage][name] = float(result)
    return {
        "facet": facet.text,
        "key": facet.key,
        "column": facet.column,
        "op": facet.op,
        "value": facet.value,
        "rows": {
            "train": len(train_facet),
            "train_facet": int(np.sum(train_facet)),
            "test": len(test_facet),
            "test_facet": int(np.sum(test_facet)),
        },
        **values,
        "errors": errors,
    }


def metric_name(facet_key: str, metric: str) -> str:
    """The MLflow metric name ``bias_<facet>_<METRIC>``."""
    return f"{METRIC_PREFIX}{facet_key}_{metric}"


def flat_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """Every defined metric of a report as ``bias_<facet>_<METRIC>`` → value."""
    out: dict[str, float] = {}
    for entry in report.get("facets") or []:
        for stage in ("pre_training", "post_training"):
            for name, value in (entry.get(stage) or {}).items():
                if value is not None:
                    out[metric_name(entry["key"], name)] = float(value)
    return out


def parse_bounds(raw: Any) -> dict[str, tuple[float | None, float | None]]:
    """``{"DI": [0.8, 1.25], "DPPL": [null, 0.1]}`` → bounds; ``{}``/``None``: the default.

    Raises:
        ValueError: Naming the bad metric or bound.
    """
    if raw in (None, {}, ""):
        return dict(DEFAULT_BIAS_BOUNDS)
    if not isinstance(raw, Mapping):
        raise ValueError(f'bias_bounds {raw!r} must be an object like {{"DI": [0.8, 1.25]}}')
    out: dict[str, tuple[float | None, float | None]] = {}
    problems = []
    for metric, pair in raw.items():
        if metric not in BIAS_METRICS:
            problems.append(f"bias_bounds: {metric!r} is not one of {list(BIAS_METRICS)}")
            continue
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            problems.append(f"bias_bounds[{metric!r}] {pair!r} must be [low, high] (null: open)")
            continue
        low, high = (None if v is None else v for v in pair)
        if any(
            v is not None and (isinstance(v, bool) or not isinstance(v, int | float))
            for v in (low, high)
        ):
            problems.append(f"bias_bounds[{metric!r}] {list(pair)} must hold numbers or null")
            continue
        if low is None and high is None:
            problems.append(f"bias_bounds[{metric!r}] bounds nothing: give low, high or both")
            continue
        if low is not None and high is not None and low > high:
            problems.append(f"bias_bounds[{metric!r}]: low {low} is above high {high}")
            continue
        out[metric] = (None if low is None else float(low), None if high is None else float(high))
    if problems:
        raise ValueError("; ".join(problems))
    return out


def bias_report(
    facets: Sequence[str | Facet],
    *,
    train: Mapping[str, Any],
    test: Mapping[str, Any],
    label: str,
    positive_label: Any,
    group_column: str | None = None,
    threshold: float | None = None,
    gate: BiasGate | None = None,
) -> dict[str, Any]:
    """The bias report of one model version (JSON-able).

    Args:
        facets: Facet strings (or parsed facets).
        train: ``{"frame": DataFrame with the facet and group columns, "y": bool array}``.
        test: ``{"frame", "y", "yhat": bool array of predicted positives,
            "features": numeric matrix for the flip test (facet columns removed) or None,
            "features_by_facet": {facet key: matrix} to override it per facet}``.
        label: The target column.
        positive_label: The positive class (its text is reported).
        group_column: Column of CDDL/CDDPL's groups (``None``: those are undefined).
        threshold: The decision threshold that made the predicted labels.
        gate: The bias gate (default: off).
    """
    gate = gate or BiasGate()
    parsed = [f if isinstance(f, Facet) else parse_facets([f])[0] for f in facets]
    entries = []
    for facet in parsed:
        train_frame, test_frame = train["frame"], test["frame"]
        entries.append(
            facet_entry(
                facet,
                train_facet=facet.mask(train_frame[facet.column]),
                train_y=np.asarray(train["y"], dtype=bool),
                train_group=None if group_column is None else train_frame[group_column].to_numpy(),
                test_facet=facet.mask(test_frame[facet.column]),
                test_y=np.asarray(test["y"], dtype=bool),
                test_yhat=np.asarray(test["yhat"], dtype=bool),
                test_group=None if group_column is None else test_frame[group_column].to_numpy(),
                test_features=(test.get("features_by_facet") or {}).get(facet.key, test.get("features")),
            )
        )  # fmt: skip
    violations = gate.check(entries)
    status = "off" if gate.mode == "off" else ("passed" if not violations else
                                              ("failed" if gate.mode == "block" else "warned"))  # fmt: skip
    report = {
        "format": BIAS_FORMAT,
        "label": label,
        "positive_label": positive_label,
        "group_column": group_column,
        "threshold": threshold,
        "pre_training": {"split": "train", "metrics": list(PRETRAINING_BIAS_METRICS)},
        "post_training": {"split": "test", "metrics": list(POSTTRAINING_BIAS_METRICS)},
        "facets": entries,
        "gate": {
            "mode": gate.mode,
            "bounds": {k: list(v) for k, v in gate.bounds.items()},
            "status": status,
            "violations": violations,
        },
    }
    return jsonable(report)


def raise_for_bias(report: Mapping[str, Any], report_uri: str | None) -> None:
    """Raise :class:`BiasGateError` when the gate blocks; nothing otherwise."""
    gate = report.get("gate") or {}
    if gate.get("status") != "failed":
        return
    lines = ["bias gate failed (bias_gate=block); the candidate is not registered:"]
    lines += [f"  - {v['message']}" for v in gate.get("violations", [])]
    lines.append(f"  bias report: {report_uri or 'not written'}")
    raise BiasGateError("\n".join(lines), report_uri=report_uri)
