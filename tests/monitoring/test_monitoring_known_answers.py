"""Synthetic drift with known answers, judged end to end by ``analyze_window``."""

from __future__ import annotations

from typing import Any

import pytest

from include.mlops.monitoring import DriftThresholds, analyze_window
from tests.monitoring.conftest import as_capture, draw


def judge(baseline: dict[str, Any], rows, **kwargs: Any) -> dict[str, Any]:
    return analyze_window(as_capture(rows), baseline, **kwargs)


def checks(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(v["constraint_check_type"], v["feature_name"]) for v in report["violations"]]


def test_no_drift_at_large_n_raises_no_alarm(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=1))
    assert report["dataset_drift"] is False
    assert {f["method"] for f in report["features"].values()} == {"wasserstein", "jensenshannon"}
    assert not [n for n, f in report["features"].items() if f["drift"]]
    # The distances sit far below the threshold, not just under it.
    assert max(f["score"] for f in report["features"].values()) < 0.03
    assert report["prediction_drift"]["drift"] is False
    assert report["violations"] == []
    assert report["window"]["rows"] == 50_000


def test_small_shift_is_measured_but_below_the_threshold(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=2, amount_shift=0.05))
    amount = report["features"]["amount"]
    assert amount["score"] == pytest.approx(0.05, abs=0.015)
    assert amount["drift"] is False
    assert report["dataset_drift"] is False


def test_large_shift_drifts_with_the_right_size(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=3, amount_shift=1.0))
    amount = report["features"]["amount"]
    assert amount["drift"] is True
    assert amount["method"] == "wasserstein"
    assert amount["score"] == pytest.approx(1.0, abs=0.05)
    assert amount["threshold"] == 0.1
    assert ("baseline_drift_check", "amount") in checks(report)
    # One feature of four is not half of them: no dataset drift.
    assert report["drift_summary"]["drifted_features"] == ["amount"]
    assert report["dataset_drift"] is False
    # The score follows amount through the model: the prediction drifts too.
    assert report["prediction_drift"]["drift"] is True


def test_variance_change_drifts(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=4, tenure_scale=1.5))
    tenure = report["features"]["tenure"]
    # W1 between N(0, 1) and N(0, 1.5) is 0.5 * E|Z| = 0.399.
    assert tenure["score"] == pytest.approx(0.399, abs=0.03)
    assert tenure["drift"] is True
    assert tenure["statistics"]["live"]["std"] == pytest.approx(1.5, abs=0.05)
    assert report["features"]["amount"]["drift"] is False


def test_new_category_is_a_violation_and_drifts(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=5, plan_new=0.3))
    plan = report["features"]["plan"]
    assert plan["method"] == "jensenshannon"
    assert plan["drift"] is True
    assert plan["statistics"]["category_counts"]["__other__"] > 14_000
    assert ("categorical_values_check", "plan") in checks(report)
    quality = report["data_quality"]["plan"]
    assert set(quality["unseen_categories"]) == {"enterprise"}
    assert quality["unseen_share"] == pytest.approx(0.3, abs=0.01)


def test_prediction_only_shift(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=6, score_shift=0.2))
    assert report["dataset_drift"] is False
    assert not [n for n, f in report["features"].items() if f["drift"]]
    prediction = report["prediction_drift"]
    assert prediction["drift"] is True
    assert prediction["column"] == "probability"
    assert prediction["method"] == "wasserstein"
    assert [c for c, _ in checks(report)] == ["prediction_drift_check"]


def test_dataset_drifts_when_half_the_features_do(baseline) -> None:
    report = judge(baseline, draw(50_000, seed=7, amount_shift=1.0, tenure_scale=2.0))
    assert sorted(report["drift_summary"]["drifted_features"]) == ["amount", "tenure"]
    assert report["drift_summary"]["share"] == 0.5
    assert report["dataset_drift"] is True
    assert "dataset_drift_check" in [c for c, _ in checks(report)]
    # A stricter share keeps the same features drifting, but not the dataset.
    strict = judge(
        baseline,
        draw(50_000, seed=7, amount_shift=1.0, tenure_scale=2.0),
        thresholds=DriftThresholds(drift_share=0.75),
    )
    assert strict["dataset_drift"] is False


def test_small_samples_use_tests_at_their_nominal_false_alarm_rate(baseline) -> None:
    report = judge(baseline, draw(300, seed=8))
    methods = {n: f["method"] for n, f in report["features"].items()}
    assert methods == {"amount": "ks", "tenure": "ks", "age": "ks", "plan": "chi_square"}
    assert all(f["threshold"] == 0.05 for f in report["features"].values())
    # p < 0.05 flags 5 % of windows drawn like training, by design; KS read at the
    # baseline's knots is conservative. 200 windows x 4 features:
    alarms = judged = 0
    datasets = 0
    for seed in range(1000, 1200):
        window = judge(baseline, draw(300, seed=seed))
        alarms += sum(f["drift"] for f in window["features"].values())
        judged += len(window["features"])
        datasets += window["dataset_drift"]
    assert alarms / judged <= 0.06
    assert datasets / 200 <= 0.02


def test_small_samples_detect_a_real_shift(baseline) -> None:
    report = judge(baseline, draw(300, seed=9, amount_shift=0.5, plan_new=0.2))
    assert report["features"]["amount"]["drift"] is True
    assert report["features"]["amount"]["score"] < 0.001
    assert report["features"]["plan"]["drift"] is True
    assert report["features"]["tenure"]["drift"] is False


def test_thresholds_are_configurable(baseline) -> None:
    rows = draw(50_000, seed=10, amount_shift=0.3)
    default = judge(baseline, rows)
    assert default["features"]["amount"]["drift"] is True
    loose = judge(baseline, rows, thresholds=DriftThresholds.from_params({"distance": 0.5}))
    assert loose["features"]["amount"]["drift"] is False
    by_psi = judge(baseline, rows, thresholds=DriftThresholds(numeric_method="psi", psi=0.05))
    assert by_psi["features"]["amount"]["method"] == "psi"
    assert by_psi["features"]["amount"]["drift"] is True
    tiny = judge(baseline, rows, thresholds=DriftThresholds(small_sample=100_000))
    assert tiny["features"]["amount"]["method"] == "ks"


def test_threshold_params_are_validated() -> None:
    with pytest.raises(ValueError, match=r"unknown drift threshold.*distanse"):
        DriftThresholds.from_params({"distanse": 0.2})
    with pytest.raises(ValueError, match=r"drift_share=1\.5"):
        DriftThresholds.from_params({"drift_share": 1.5})
    assert DriftThresholds.from_params({"small_sample": "500", "p_value": None}).small_sample == 500
