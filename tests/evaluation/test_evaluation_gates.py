"""Promotion gates: value threshold, baseline, champion; direction-aware; clear errors."""

from __future__ import annotations

import pytest

from include.mlops.evaluation.gates import (
    GateThresholds,
    ModelGateError,
    raise_for_gates,
    should_promote,
)

REPORT = "s3://lake/reports/evaluation/churn/3/model_card.html"


def _gate(decision, name):
    return next(c for c in decision.checks if c.gate == name)


def test_a_good_candidate_passes_every_gate() -> None:
    decision = should_promote(
        {"roc_auc": 0.86},
        baseline={"roc_auc": 0.5},
        champion={"roc_auc": 0.85},
        objective="roc_auc",
        thresholds=GateThresholds(min_objective=0.8),
    )
    assert decision.promote
    assert [c.gate for c in decision.checks] == ["min_objective", "baseline", "champion"]
    raise_for_gates(decision, REPORT)  # no error


def test_value_threshold_fails_with_the_numbers_and_the_report() -> None:
    decision = should_promote(
        {"roc_auc": 0.71},
        baseline={"roc_auc": 0.5},
        champion=None,
        objective="roc_auc",
        thresholds=GateThresholds(min_objective=0.8),
    )
    assert not decision.promote
    assert [c.gate for c in decision.failed] == ["min_objective"]
    with pytest.raises(ModelGateError) as error:
        raise_for_gates(decision, REPORT)
    message = str(error.value)
    assert "min_objective" in message and "roc_auc" in message
    assert "0.7100" in message and "0.8000" in message and REPORT in message
    assert error.value.report_uri == REPORT and error.value.decision is decision


def test_must_beat_the_baseline() -> None:
    decision = should_promote(
        {"accuracy": 0.90}, baseline={"accuracy": 0.92}, champion=None, objective="accuracy"
    )
    assert [c.gate for c in decision.failed] == ["baseline"]
    assert "does not beat" in _gate(decision, "baseline").message
    equal = should_promote(
        {"accuracy": 0.92}, baseline={"accuracy": 0.92}, champion=None, objective="accuracy"
    )
    assert not equal.promote  # a tie with the baseline has learned nothing


def test_champion_tolerance_both_ways() -> None:
    champion = {"test_roc_auc": 0.85}  # as MLflow holds it
    within = should_promote(
        {"roc_auc": 0.845}, baseline={"roc_auc": 0.5}, champion=champion, objective="roc_auc"
    )
    assert within.promote
    worse = should_promote(
        {"roc_auc": 0.83},
        baseline={"roc_auc": 0.5},
        champion=champion,
        objective="roc_auc",
        thresholds=GateThresholds(tolerance=0.01),
    )
    assert [c.gate for c in worse.failed] == ["champion"]
    assert "worse by 0.0200" in _gate(worse, "champion").message


@pytest.mark.parametrize("objective", ["rmse", "log_loss", "mae"])
def test_lower_is_better_metrics(objective: str) -> None:
    good = should_promote(
        {objective: 10.0},
        baseline={objective: 20.0},
        champion={objective: 10.005},
        objective=objective,
        thresholds=GateThresholds(min_objective=12.0),
    )
    assert good.promote and good.direction == "min"
    bad = should_promote(
        {objective: 15.0},
        baseline={objective: 14.0},
        champion={objective: 10.0},
        objective=objective,
        thresholds=GateThresholds(min_objective=12.0, tolerance=1.0),
    )
    assert [c.gate for c in bad.failed] == ["min_objective", "baseline", "champion"]
    assert "at most 12.0000" in _gate(bad, "min_objective").message


def test_missing_metric_fails_rather_than_passes() -> None:
    decision = should_promote(
        {"roc_auc": None}, baseline={"roc_auc": 0.5}, champion=None, objective="roc_auc"
    )
    assert not decision.promote
    assert "has no roc_auc" in decision.failed[0].message


def test_bad_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown objective"):
        should_promote({}, baseline={}, champion=None, objective="auc")


def test_decision_serialises_for_xcom() -> None:
    decision = should_promote({"r2": 0.5}, baseline={"r2": 0.0}, champion=None, objective="r2")
    as_dict = decision.to_dict()
    assert as_dict["promote"] is True and as_dict["checks"][0]["gate"] == "baseline"
    assert decision.summary().startswith("PASS baseline")


# -- which rows the gates judge ------------------------------------------------------------
def test_the_recent_window_decides_from_min_rows_and_the_test_split_below() -> None:
    from include.mlops.evaluation.gates import MIN_RECENT_ROWS, RECENT_WINDOW, TEST_SPLIT, gate_rows

    window = {"rows": MIN_RECENT_ROWS, "candidate": {"roc_auc": 0.8}}
    assert gate_rows(window, "roc_auc")[0] == RECENT_WINDOW
    where, why = gate_rows({**window, "rows": MIN_RECENT_ROWS - 1}, "roc_auc")
    assert (
        where == TEST_SPLIT
        and f"{MIN_RECENT_ROWS - 1} rows, fewer than the {MIN_RECENT_ROWS}" in why
    )
    assert gate_rows(None, "roc_auc")[0] == TEST_SPLIT
    undefined = {"rows": 10_000, "candidate": {"roc_auc": None}}
    assert gate_rows(undefined, "roc_auc") == (
        TEST_SPLIT, "roc_auc is undefined on the recent window (one class only?)",
    )  # fmt: skip


def test_a_decision_on_the_recent_window_says_so() -> None:
    from include.mlops.evaluation.gates import RECENT_WINDOW

    decision = should_promote(
        {"roc_auc": 0.70}, baseline={"roc_auc": 0.5}, champion={"roc_auc": 0.80},
        objective="roc_auc", evaluated_on=RECENT_WINDOW, reason="the recent window has 500 rows",
    )  # fmt: skip
    assert not decision.promote
    assert decision.to_dict()["evaluated_on"] == RECENT_WINDOW
    champion = _gate(decision, "champion").message
    assert champion.startswith(
        "recent window roc_auc 0.7000 vs champion 0.8000 on the same recent window"
    )
    assert decision.summary().startswith(
        "judged on the recent window: the recent window has 500 rows"
    )
    with pytest.raises(
        ModelGateError, match="model gate failed \\(champion\\) on the recent window"
    ):
        raise_for_gates(decision, "s3://lake/card.html")
