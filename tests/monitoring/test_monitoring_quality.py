"""Data-quality violations (SageMaker's kinds) and model quality against the test metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlops.evaluation.baseline import compute_drift_baseline
from include.mlops.monitoring import DriftThresholds, analyze_window
from include.mlops.monitoring.model_quality import model_quality, positive_label
from tests.monitoring.conftest import as_capture, draw


def kinds(report) -> dict[str, set]:
    out: dict[str, set] = {}
    for v in report["violations"]:
        out.setdefault(v["constraint_check_type"], set()).add(v["feature_name"])
    return out


def test_missing_and_extra_columns(baseline) -> None:
    frame = as_capture(draw(2000, seed=1)).drop(columns=["feature.age"])
    frame["feature.coupon"] = "x"
    report = analyze_window(frame, baseline)
    assert kinds(report)["missing_column_check"] == {"age"}
    assert kinds(report)["extra_column_check"] == {"coupon"}
    assert report["features"]["age"]["method"] == "no_data"
    assert report["features"]["age"]["drift"] is False
    # A column that is there but empty (the union with another version's files) is missing.
    frame["feature.age"] = np.nan
    assert kinds(analyze_window(frame, baseline))["missing_column_check"] == {"age"}


def test_type_mismatch_and_completeness(baseline) -> None:
    frame = as_capture(draw(2000, seed=2))
    amount = frame["feature.amount"].astype(object)
    amount.iloc[:50] = "n/a?"
    frame["feature.amount"] = amount
    tenure = frame["feature.tenure"].copy()
    tenure.iloc[:200] = np.nan  # 90 % complete; training was 100 %
    frame["feature.tenure"] = tenure
    report = analyze_window(frame, baseline)
    found = kinds(report)
    assert found["data_type_check"] == {"amount"}
    assert found["completeness_check"] == {"tenure"}
    stats = report["data_quality"]
    assert stats["amount"]["type_mismatches"] == 50
    assert stats["amount"]["inferred_type"] == "string"
    assert stats["tenure"]["completeness"] == pytest.approx(0.9)
    message = next(v["description"] for v in report["violations"] if v["feature_name"] == "tenure")
    assert "90.00% complete" in message and "200 of 2000" in message
    # The unparseable values are left out of the drift, the rest still compared.
    assert report["features"]["amount"]["rows"] == 1950
    # Tolerances are configurable.
    loose = DriftThresholds(type_mismatch_tolerance=0.05, completeness_tolerance=0.2)
    assert not {"data_type_check", "completeness_check"} & set(
        kinds(analyze_window(frame, baseline, thresholds=loose))
    )


def test_unseen_categories_only_when_the_baseline_lists_them_all() -> None:
    train = pd.DataFrame({"city": [f"c{i % 30}" for i in range(3000)]})
    truncated = compute_drift_baseline(train, features=["city"], top_categories=20)
    assert "__other__" in truncated["features"]["city"]["category_counts"]
    frame = pd.DataFrame({"feature.city": ["c25"] * 500 + ["new-town"] * 10})
    report = analyze_window(frame, truncated)
    # "c25" is a rare training category and "new-town" may be one too: no violation.
    assert "categorical_values_check" not in kinds(report)
    assert report["data_quality"]["city"]["baseline_lists_every_category"] is False
    complete = compute_drift_baseline(train, features=["city"], top_categories=50)
    report = analyze_window(frame, complete)
    assert kinds(report)["categorical_values_check"] == {"city"}
    assert report["data_quality"]["city"]["unseen_categories"] == {"new-town": 10}


def test_numbers_as_categories_use_the_baseline_names() -> None:
    train = pd.DataFrame({"rooms": pd.Series([1, 2, 3] * 500, dtype="object")})
    baseline = compute_drift_baseline(train, features=["rooms"])
    assert baseline["features"]["rooms"]["kind"] == "categorical"
    frame = pd.DataFrame({"feature.rooms": [1.0, 2.0, 3.0] * 600})
    report = analyze_window(frame, baseline)
    assert report["violations"] == []
    assert report["features"]["rooms"]["score"] == pytest.approx(0.0, abs=1e-9)


# -- model quality ------------------------------------------------------------------------
def binary_window(n: int, seed: int, *, noise: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    probability = np.clip(truth * 0.6 + 0.2 + rng.normal(0, noise, n), 0.001, 0.999)
    captured = pd.DataFrame(
        {
            "inference_id": [f"r{i}" for i in range(n)],
            "prediction": np.where(probability >= 0.5, "yes", "no"),
            "probability": probability,
        }
    )
    labels = pd.DataFrame(
        {"inference_id": captured["inference_id"], "churned": np.where(truth == 1, "yes", "no")}
    )
    return captured, labels


def test_binary_model_quality_ok_then_degraded() -> None:
    expected = {"roc_auc": 0.95, "accuracy": 0.9, "f1": 0.9, "log_loss": 0.3, "n": 500.0}
    captured, labels = binary_window(2000, 0, noise=0.15)
    section, violations = model_quality(
        captured,
        labels,
        label_column="churned",
        problem_type="binary",
        expected=expected,
        thresholds=DriftThresholds(),
    )
    assert section["status"] == "ok", section
    assert section["positive_label"] == "yes"
    assert section["rows"] == 2000
    assert section["metrics"]["roc_auc"]["value"] > 0.95
    assert violations == []
    noisy, labels = binary_window(2000, 1, noise=0.6)
    section, violations = model_quality(
        noisy,
        labels,
        label_column="churned",
        problem_type="binary",
        expected=expected,
        thresholds=DriftThresholds(),
    )
    assert section["status"] == "degraded"
    assert "roc_auc" in section["degraded"] and "accuracy" in section["degraded"]
    auc = section["metrics"]["roc_auc"]
    assert auc["limit"] == pytest.approx(0.95 - 0.095)
    assert auc["value"] < auc["limit"]
    assert {v.check for v in violations} == {"model_quality_check"}
    assert "n" not in section["metrics"] or not section["metrics"]["n"]["degraded"]


def test_model_quality_joins_on_inference_id_and_needs_enough_labels() -> None:
    captured, labels = binary_window(1000, 2, noise=0.6)
    few = labels.sample(20, random_state=0)
    section, violations = model_quality(
        captured,
        few,
        label_column="churned",
        problem_type="binary",
        expected={"roc_auc": 0.99},
        thresholds=DriftThresholds(min_labeled_rows=30),
    )
    assert section["rows"] == 20
    assert section["status"] == "insufficient_labels"
    assert violations == []
    # Labels for ids never captured join nothing.
    stranger = pd.DataFrame({"inference_id": ["zz"], "churned": ["yes"]})
    section, _ = model_quality(
        captured,
        stranger,
        label_column="churned",
        problem_type="binary",
        expected={},
        thresholds=DriftThresholds(),
    )
    assert section["rows"] == 0
    with pytest.raises(ValueError, match="no column 'target'"):
        model_quality(
            captured,
            labels,
            label_column="target",
            problem_type="binary",
            expected={},
            thresholds=DriftThresholds(),
        )


def test_regression_and_multiclass_quality() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, 500)
    captured = pd.DataFrame(
        {
            "inference_id": [str(i) for i in range(500)],
            "prediction": y + rng.normal(0, 5, 500),
            "probability": np.nan,
        }
    )
    labels = pd.DataFrame({"inference_id": captured["inference_id"], "price": y})
    section, violations = model_quality(
        captured,
        labels,
        label_column="price",
        problem_type="regression",
        expected={"rmse": 3.0, "r2": 0.9},
        thresholds=DriftThresholds(),
    )
    assert section["metrics"]["rmse"]["value"] == pytest.approx(5.0, abs=0.4)
    assert section["degraded"] == ["rmse", "r2"] or set(section["degraded"]) == {"rmse", "r2"}
    assert len(violations) == 2
    classes = np.array(["a", "b", "c"])
    truth = rng.choice(classes, 300)
    guess = np.where(rng.random(300) < 0.8, truth, rng.choice(classes, 300))
    captured = pd.DataFrame({"inference_id": range(300), "prediction": guess, "probability": 0.7})
    labels = pd.DataFrame({"inference_id": range(300), "label": truth})
    section, _ = model_quality(
        captured,
        labels,
        label_column="label",
        problem_type="multiclass",
        expected={"accuracy": 0.85},
        thresholds=DriftThresholds(),
    )
    assert section["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(truth == guess))
    assert section["status"] == "ok"
    assert "roc_auc" not in section["metrics"]


def test_positive_label_from_the_predictions() -> None:
    assert (
        positive_label(np.array(["no", "yes"]), np.array([0.2, 0.9]), np.array(["no"]), 0.5)
        == "yes"
    )
    # One class predicted, below the threshold: the larger label (numbers as numbers).
    assert positive_label(np.array(["2"]), np.array([0.1]), np.array(["2", "10"]), 0.5) == "10"
    assert positive_label(np.array(["1"]), np.array([0.9]), np.array(["0", "1"]), 0.5) == "1"


def test_analyze_window_runs_model_quality_with_ground_truth(baseline) -> None:
    rows = draw(3000, seed=4)
    frame = as_capture(rows)
    truth = pd.DataFrame(
        {"inference_id": frame["inference_id"], "churn": (rows["score"] > 0.5).astype(int)}
    )
    report = analyze_window(
        frame,
        baseline,
        ground_truth=truth,
        label_column="churn",
        expected_metrics={"accuracy": 0.99, "roc_auc": 0.99},
        decision_threshold=0.5,
    )
    quality = report["model_quality"]
    assert quality["problem_type"] == "binary"
    assert quality["positive_label"] == "1"
    assert quality["metrics"]["accuracy"]["value"] == pytest.approx(1.0)
    assert quality["status"] == "ok"
    assert analyze_window(frame, baseline)["model_quality"] is None
