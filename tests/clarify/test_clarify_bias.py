"""Clarify's bias metrics on data small enough to count by hand, the report and the gate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from include.mlops.clarify.bias import (
    BiasGate,
    BiasGateError,
    all_posttraining,
    bias_report,
    flat_metrics,
    parse_bounds,
    pretraining_metrics,
    raise_for_bias,
)
from include.mlops.evaluation.gates import ModelGateError

# 10 rows: facet d = the first 4. Labels: a has 3 positives of 6, d has 1 of 4.
FACET = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
Y = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0], dtype=bool)
# Predictions: d predicted positive 2 of 4 (one right), a 4 of 6 (three right).
YHAT = np.array([1, 1, 0, 0, 1, 1, 1, 1, 0, 0], dtype=bool)
GROUP = np.array(["x", "x", "y", "y", "x", "x", "y", "y", "y", "x"], dtype=object)


def test_pretraining_metrics_by_hand() -> None:
    values = pretraining_metrics(FACET, Y, GROUP)
    assert values["CI"] == pytest.approx((6 - 4) / 10)
    assert values["DPL"] == pytest.approx(3 / 6 - 1 / 4)
    pa, pd_ = np.array([0.5, 0.5]), np.array([0.75, 0.25])  # (False, True)
    assert values["KL"] == pytest.approx(float(np.sum(pa * np.log(pa / pd_))))
    p = (pa + pd_) / 2
    js = 0.5 * (np.sum(pa * np.log(pa / p)) + np.sum(pd_ * np.log(pd_ / p)))
    assert values["JS"] == pytest.approx(float(js))
    assert values["LP"] == pytest.approx(math.sqrt(2 * 0.25**2))
    assert values["TVD"] == pytest.approx(0.25)
    assert values["KS"] == pytest.approx(0.25)
    # Group x: rows 0,1,4,5,9 (5 rows); accepted 0,4,5 (d: row 0) → A=1/3; rejected 1,9 (d: 1) → D=1/2.
    # Group y: rows 2,3,6,7,8; accepted 6 (d: none) → A=0; rejected 2,3,7,8 (d: 2,3) → D=1/2.
    assert values["CDDL"] == pytest.approx((5 * (0.5 - 1 / 3) + 5 * 0.5) / 10)


def test_posttraining_metrics_by_hand() -> None:
    features = np.arange(20, dtype=float).reshape(10, 2)
    values = all_posttraining(FACET, Y, YHAT, group=GROUP, features=features)
    # a: TP 3 (4,5,6), FP 1 (7), TN 2 (8,9), FN 0; d: TP 1 (0), FP 1 (1), TN 2 (2,3), FN 0.
    assert values["DPPL"] == pytest.approx(4 / 6 - 2 / 4)
    assert values["DI"] == pytest.approx((2 / 4) / (4 / 6))
    assert values["DCAcc"] == pytest.approx(3 / 4 - 1 / 2)
    assert values["DCR"] == pytest.approx(3 / 2 - 3 / 2)
    assert values["RD"] == pytest.approx(1.0 - 1.0)
    assert values["DAR"] == pytest.approx(3 / 4 - 1 / 2)
    assert values["DRR"] == pytest.approx(2 / 2 - 2 / 2)
    assert values["AD"] == pytest.approx(5 / 6 - 3 / 4)
    assert values["TE"] == pytest.approx(0 / 1 - 0 / 1)
    # k = 1 (a has 6 rows): d's rows 0..3 sit nearest a's row 4 (predicted positive):
    # rows 2, 3 flip from negative to positive as if in a: FT = (0 - 2) / 4.
    assert values["FT"] == pytest.approx(-0.5)


def test_clarify_division_rules() -> None:
    # a never predicted positive: DI = qd / 0 = +inf; both groups' FP = 0 with FN > 0:
    # TE = inf - inf = 0 (Clarify's rule for two infinities).
    facet = np.array([1, 1, 0, 0], dtype=bool)
    y = np.array([1, 1, 1, 1], dtype=bool)
    yhat = np.array([1, 0, 0, 0], dtype=bool)
    values = all_posttraining(facet, y, yhat, group=None, features=None)
    assert values["DI"] == math.inf
    assert values["TE"] == 0.0
    assert str(values["CDDPL"]).startswith("needs a group column")


def test_empty_facet_is_undefined_not_zero() -> None:
    values = pretraining_metrics(np.zeros(5, dtype=bool), np.ones(5, dtype=bool), None)
    del values["CDDL"]  # Clarify's CDD does not look at the facet's size
    assert all(str(v) == "the facet group is empty" for v in values.values())


def _frames() -> tuple[dict, dict]:
    frame = pd.DataFrame({"sex": ["f"] * 4 + ["m"] * 6, "age": [20, 70, 65, 30, 40, 80, 50, 61, 25, 33],
                          "region": GROUP})  # fmt: skip
    features = np.arange(20, dtype=float).reshape(10, 2)
    return (
        {"frame": frame, "y": Y},
        {"frame": frame, "y": Y, "yhat": YHAT, "features": features},
    )


def test_report_names_metrics_per_facet_and_gates() -> None:
    train, test = _frames()
    report = bias_report(
        ["sex=f", "age>=60"], train=train, test=test, label="churned", positive_label=1,
        group_column="region", gate=BiasGate("block", {"DI": (0.8, 1.25)}),
    )  # fmt: skip
    assert [f["key"] for f in report["facets"]] == ["sex_eq_f", "age_ge_60"]
    flat = flat_metrics(report)
    assert flat["bias_sex_eq_f_DI"] == pytest.approx(0.75)
    assert len([k for k in flat if k.startswith("bias_sex_eq_f_")]) == 19
    assert report["gate"]["status"] == "failed"
    messages = [v["message"] for v in report["gate"]["violations"]]
    assert any("'sex=f': DI = 0.7500, outside [0.8, 1.25]" in m for m in messages)
    with pytest.raises(ModelGateError) as failed:
        raise_for_bias(report, "s3://lake/reports/bias.json")
    assert isinstance(failed.value, BiasGateError)
    assert "sex=f" in str(failed.value) and "s3://lake/reports/bias.json" in str(failed.value)


def test_warn_reports_without_raising() -> None:
    train, test = _frames()
    report = bias_report(["sex=f"], train=train, test=test, label="y", positive_label=1,
                         gate=BiasGate("warn", {"DI": (0.8, None)}))  # fmt: skip
    assert report["gate"]["status"] == "warned"
    raise_for_bias(report, None)


def test_bounds_are_checked_naming_the_metric() -> None:
    assert parse_bounds(None) == {"DI": (0.8, 1.25)}
    assert parse_bounds({"DPPL": [None, 0.1]}) == {"DPPL": (None, 0.1)}
    for bad, word in (({"XYZ": [0, 1]}, "XYZ"), ({"DI": [2, 1]}, "above"), ({"DI": [None, None]}, "nothing"),
                      ({"DI": "0.8"}, "[low, high]")):  # fmt: skip
        with pytest.raises(ValueError, match=word):
            parse_bounds(bad)


def test_a_missing_group_value_is_a_group_of_its_own() -> None:
    named = GROUP.copy()
    named[[2, 3]] = "(missing)"
    missing = GROUP.copy()
    missing[2], missing[3] = None, float("nan")
    with_names = pretraining_metrics(FACET, Y, named)["CDDL"]
    assert pretraining_metrics(FACET, Y, missing)["CDDL"] == pytest.approx(with_names)
    assert with_names != pytest.approx(pretraining_metrics(FACET, Y, GROUP)["CDDL"])
