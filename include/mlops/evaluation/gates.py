"""Promotion gates: may a candidate be registered for approval?

Three gates, each direction-aware (``rmse``, ``mae`` and ``log_loss`` improve downwards):

1. ``min_objective``: the candidate's test objective reaches a value the user set
   (at least it for "max" metrics, at most it for "min" metrics);
2. ``baseline``: it is strictly better than the majority-class / mean baseline;
3. ``champion``: it is not worse than the serving champion, evaluated on the same test
   split, by more than ``tolerance`` (absolute, in metric units).

The gates judge one set of rows: the test split, or the *recent window* (labelled
traffic newer than the champion's training data, held out of the candidate's training)
when it has at least :data:`MIN_RECENT_ROWS` rows (:func:`gate_rows`). The recent window
is what the models will meet next; the test split is drawn from the same past as
training, so with enough recent rows the recent window is the better judge.

:func:`should_promote` is pure; :func:`raise_for_gates` turns a failed decision into a
:class:`ModelGateError` whose message says which gate, which metric, the numbers and
where the evaluation report is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from include.mlops.vocabulary import METRIC_DIRECTION

#: Rows the recent window needs before the gates decide on it rather than on the test
#: split. 400 is the classic ±5-point survey size: a proportion (accuracy, recall, F1's
#: parts) measured on n rows has a standard error of at most sqrt(0.25 / n) = 0.025 at
#: n = 400, a 95% interval of ±0.049 (1.96² · 0.25 / 0.05² = 384, rounded up); ROC-AUC
#: at 0.8 with a quarter positives has about the same (Hanley & McNeil: ≈0.026). The
#: gate compares two models on the *same* rows, whose errors are strongly correlated,
#: so the error of their difference is smaller still (≈0.016 at a correlation of 0.8),
#: comparable with the default champion tolerance of 0.01 plus the test split's own
#: sampling error. Fewer rows than that and a window's verdict is mostly noise: the
#: test split (usually larger) decides.
MIN_RECENT_ROWS = 400
TEST_SPLIT = "test split"
RECENT_WINDOW = "recent window"


def gate_rows(
    recent: Mapping[str, Any] | None, objective: str, *, min_rows: int = MIN_RECENT_ROWS
) -> tuple[str, str]:
    """Which rows the gates decide on, and why.

    Args:
        recent: ``{"rows", "candidate": {metric: value}, ...}`` of the recent window, or None.
        objective: The objective metric (it must be defined on the window).
        min_rows: :data:`MIN_RECENT_ROWS`.

    Returns:
        ``(TEST_SPLIT or RECENT_WINDOW, reason)``.
    """
    if not recent:
        return TEST_SPLIT, "no recent window (no champion or no labelled traffic it never saw)"
    rows = int(recent.get("rows") or 0)
    if rows < min_rows:
        return TEST_SPLIT, f"the recent window has {rows} rows, fewer than the {min_rows} it needs"
    if metric_value(recent.get("candidate") or {}, objective) is None:
        return TEST_SPLIT, f"{objective} is undefined on the recent window (one class only?)"
    return RECENT_WINDOW, f"the recent window has {rows} rows (at least {min_rows})"


@dataclass(frozen=True)
class GateThresholds:
    """What a candidate must achieve.

    Attributes:
        min_objective: Required objective value (``None``: no value gate). For "min"
            metrics (rmse, mae, log_loss) it is the largest acceptable value.
        tolerance: How much worse than the champion the candidate may be (absolute).
    """

    min_objective: float | None = None
    tolerance: float = 0.01


@dataclass(frozen=True)
class GateCheck:
    """The outcome of one gate.

    Attributes:
        gate: ``min_objective``, ``baseline`` or ``champion``.
        passed: Whether the candidate passed.
        metric: The objective metric.
        candidate: The candidate's value.
        reference: What it was compared with (threshold, baseline or champion value).
        message: One sentence a person can act on.
    """

    gate: str
    passed: bool
    metric: str
    candidate: float | None
    reference: float | None
    message: str


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and every gate's outcome.

    Attributes:
        promote: True when every gate passed.
        objective: The objective metric.
        direction: ``max`` or ``min``.
        checks: Each gate's outcome, in order.
        evaluated_on: The rows judged: :data:`TEST_SPLIT` or :data:`RECENT_WINDOW`.
        reason: Why those rows.
    """

    promote: bool
    objective: str
    direction: str
    checks: tuple[GateCheck, ...]
    evaluated_on: str = TEST_SPLIT
    reason: str = ""

    @property
    def failed(self) -> list[GateCheck]:
        """The gates that failed."""
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line per gate, ``PASS``/``FAIL`` first, after the rows judged and why."""
        head = [f"judged on the {self.evaluated_on}: {self.reason}"] if self.reason else []
        return "\n".join(
            head + [f"{'PASS' if c.passed else 'FAIL'} {c.gate}: {c.message}" for c in self.checks]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for XCom, MLflow tags and the approval page)."""
        return {
            "promote": self.promote,
            "objective": self.objective,
            "direction": self.direction,
            "checks": [c.__dict__ for c in self.checks],
            "evaluated_on": self.evaluated_on,
            "reason": self.reason,
        }


class ModelGateError(Exception):
    """A candidate failed a promotion gate and must not be registered.

    Attributes:
        decision: The gate decision.
        report_uri: Where the evaluation report is.
    """

    def __init__(self, message: str, *, decision: GateDecision, report_uri: str | None) -> None:
        super().__init__(message)
        self.decision = decision
        self.report_uri = report_uri


def metric_value(metrics: Mapping[str, Any], metric: str) -> float | None:
    """A metric from a metrics dict, accepting MLflow's ``test_<metric>`` names too."""
    for key in (metric, f"test_{metric}"):
        value = metrics.get(key)
        if value is not None:
            number = float(value)
            return number if math.isfinite(number) else None
    return None


def should_promote(
    candidate: Mapping[str, Any],
    *,
    baseline: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    objective: str,
    thresholds: GateThresholds | None = None,
    evaluated_on: str = TEST_SPLIT,
    reason: str = "",
) -> GateDecision:
    """Decide whether a candidate passes the promotion gates.

    Args:
        candidate: The candidate's test metrics (``roc_auc`` or ``test_roc_auc`` keys).
        baseline: The baseline's metrics on the same test split.
        champion: The serving champion's metrics on the same test split, or ``None``
            when nothing serves yet (the champion gate then passes).
        objective: The objective metric (a key of ``METRIC_DIRECTION``).
        thresholds: Value threshold and champion tolerance (defaults: none, 0.01).
        evaluated_on: Which rows the metrics come from (:func:`gate_rows`); named in
            every message and in the decision.
        reason: Why those rows.

    Returns:
        The decision with each gate's outcome.

    Raises:
        ValueError: Unknown objective metric or negative tolerance.
    """
    if objective not in METRIC_DIRECTION:
        raise ValueError(f"unknown objective {objective!r}; choose from {sorted(METRIC_DIRECTION)}")
    thresholds = thresholds or GateThresholds()
    if thresholds.tolerance < 0:
        raise ValueError(f"tolerance {thresholds.tolerance} must not be negative")
    direction = METRIC_DIRECTION[objective]
    higher = direction == "max"
    rows = "test" if evaluated_on == TEST_SPLIT else evaluated_on  # "test roc_auc ..."
    value = metric_value(candidate, objective)
    checks: list[GateCheck] = []

    # 1. value threshold
    if thresholds.min_objective is not None:
        required = float(thresholds.min_objective)
        if value is None:
            checks.append(_missing("min_objective", objective, required, evaluated_on))
        else:
            ok = value >= required if higher else value <= required
            word = "at least" if higher else "at most"
            checks.append(
                GateCheck(
                    "min_objective",
                    ok,
                    objective,
                    value,
                    required,
                    f"{rows} {objective} {value:.4f} {'meets' if ok else 'misses'} the required "
                    f"{word} {required:.4f} (margin {_margin(value, required, higher):+.4f})",
                )
            )

    # 2. beat the baseline
    reference = metric_value(baseline, objective)
    if value is None:
        checks.append(_missing("baseline", objective, reference, evaluated_on))
    elif reference is None:
        checks.append(
            GateCheck(
                "baseline",
                False,
                objective,
                value,
                None,
                f"the baseline has no {objective} on the {evaluated_on}, so beating it cannot be shown",
            )
        )
    else:
        ok = value > reference if higher else value < reference
        checks.append(
            GateCheck(
                "baseline",
                ok,
                objective,
                value,
                reference,
                f"{rows} {objective} {value:.4f} {'beats' if ok else 'does not beat'} the "
                f"baseline's {reference:.4f} (margin {_margin(value, reference, higher):+.4f})",
            )
        )

    # 3. not worse than the champion by more than the tolerance
    if champion is None:
        checks.append(GateCheck("champion", True, objective, value, None, "no champion serves yet"))
    else:
        reference = metric_value(champion, objective)
        if reference is None:
            checks.append(
                GateCheck(
                    "champion",
                    True,
                    objective,
                    value,
                    None,
                    f"the champion has no {objective} on this {evaluated_on}; nothing to compare",
                )
            )
        elif value is None:
            checks.append(_missing("champion", objective, reference, evaluated_on))
        else:
            margin = _margin(value, reference, higher)
            ok = margin >= -thresholds.tolerance
            checks.append(
                GateCheck(
                    "champion",
                    ok,
                    objective,
                    value,
                    reference,
                    f"{rows} {objective} {value:.4f} vs champion {reference:.4f} on the same "
                    f"{evaluated_on}: {'better' if margin > 0 else 'worse' if margin < 0 else 'equal'} by "
                    f"{abs(margin):.4f} (tolerance {thresholds.tolerance:.4f})",
                )
            )
    return GateDecision(
        promote=all(c.passed for c in checks),
        objective=objective,
        direction=direction,
        checks=tuple(checks),
        evaluated_on=evaluated_on,
        reason=reason,
    )


def raise_for_gates(decision: GateDecision, report_uri: str | None) -> None:
    """Raise :class:`ModelGateError` when any gate failed; do nothing otherwise.

    Args:
        decision: From :func:`should_promote`.
        report_uri: The evaluation report (model card) a person should open.

    Raises:
        ModelGateError: Names each failed gate, the metric, the numbers and the report.
    """
    failed = decision.failed
    if not failed:
        return
    names = ", ".join(c.gate for c in failed)
    lines = [
        f"model gate failed ({names}) on the {decision.evaluated_on}; the candidate is not "
        "registered:"
    ]
    lines += [f"  - {c.gate}: {c.message}" for c in failed]
    lines.append(f"  evaluation report: {report_uri or 'not written'}")
    raise ModelGateError("\n".join(lines), decision=decision, report_uri=report_uri)


def _margin(value: float, reference: float, higher: bool) -> float:
    """How much better than the reference (positive) or worse (negative)."""
    return value - reference if higher else reference - value


def _missing(
    gate: str, metric: str, reference: float | None, evaluated_on: str = TEST_SPLIT
) -> GateCheck:
    return GateCheck(
        gate,
        False,
        metric,
        None,
        reference,
        f"the candidate has no {metric} on the {evaluated_on} (undefined or not computed)",
    )
