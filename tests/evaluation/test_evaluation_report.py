"""Plots and the evaluation report written to the lake."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from include.mlops.evaluation.metrics import evaluate
from include.mlops.evaluation.plots import evaluation_plots
from include.mlops.evaluation.report import write_evaluation_report
from include.mlops.features.split import split_dataset
from include.mlops.lake.store import Lake
from include.mlops.training.fit import fit_candidate

PNG = b"\x89PNG\r\n\x1a\n"


def _report(problem_type: str, algorithm: str):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y"], n)}
    )
    signal = frame["a"] + 0.5 * frame["b"] + rng.normal(scale=0.5, size=n)
    frame["t"] = {
        "binary": signal > 0.5,
        "multiclass": pd.cut(
            signal, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]
        ).astype(str),
        "regression": signal,
    }[problem_type]
    splits = split_dataset(frame, target="t", problem_type=problem_type, seed=0)
    model = fit_candidate(algorithm, None, splits, target="t", problem_type=problem_type)
    baseline = fit_candidate("baseline", None, splits, target="t", problem_type=problem_type)
    return evaluate(
        model.pipeline,
        splits,
        target="t",
        problem_type=problem_type,
        baseline_pipeline=baseline.pipeline,
    )


@pytest.mark.parametrize(
    ("problem_type", "algorithm", "expected"),
    [
        (
            "binary",
            "xgboost",
            {"roc.png", "pr.png", "confusion_matrix.png", "feature_importance.png"},
        ),
        (
            "multiclass",
            "logistic_regression",
            {"roc.png", "pr.png", "confusion_matrix.png", "feature_importance.png"},
        ),
        ("regression", "ridge", {"residuals.png", "feature_importance.png"}),
    ],
)
def test_plots_are_png(problem_type: str, algorithm: str, expected: set[str]) -> None:
    plots = evaluation_plots(_report(problem_type, algorithm))
    assert set(plots) == expected
    assert all(png.startswith(PNG) and len(png) > 2000 for png in plots.values())


def test_report_files_and_model_card(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    report = _report("binary", "logistic_regression")
    written = write_evaluation_report(
        lake,
        report,
        model_name="churn",
        version=3,
        data_snapshot="2026-11-01T00:00:00Z",
        dataset="churn",
        intended_use="Rank customers for retention calls.",
        training_spec={"algorithm": "logistic_regression", "params": {"C": 1.0}},
    )
    prefix = "reports/evaluation/churn/3"
    assert written["prefix"] == prefix
    assert sorted(lake.list_files(prefix)) == [
        f"{prefix}/{name}"
        for name in sorted(
            [
                "confusion_matrix.png",
                "feature_importance.png",
                "metrics.json",
                "model_card.html",
                "model_card.md",
                "pr.png",
                "roc.png",
            ]
        )
    ]
    assert written["model_card_uri"] == lake.uri(f"{prefix}/model_card.html")
    metrics = json.loads(lake.read_bytes(f"{prefix}/metrics.json"))
    assert metrics["data_snapshot"] == "2026-11-01T00:00:00Z" and metrics["version"] == "3"
    assert metrics["metrics"]["roc_auc"] == pytest.approx(report.metrics["roc_auc"])
    assert metrics["baseline_metrics"]["roc_auc"] == 0.5
    card = lake.read_bytes(f"{prefix}/model_card.md").decode()
    for section in (
        "## Intended use",
        "## Training data",
        "## Test metrics vs baseline",
        "## Limitations",
        "## Top features",
    ):
        assert section in card
    assert "Rank customers for retention calls." in card and "2026-11-01T00:00:00Z" in card
    assert f"| roc_auc | {report.metrics['roc_auc']:.4f} | 0.5000 |" in card
    assert "![ROC curve](roc.png)" in card
    page = lake.read_bytes(f"{prefix}/model_card.html").decode()
    assert "<img src='roc.png'" in page and "<img src='confusion_matrix.png'" in page
    assert "Rank customers for retention calls." in page and "<table>" in page


def test_model_card_shows_the_test_split_and_the_recent_window_side_by_side(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    report = _report("binary", "logistic_regression")
    comparison = {
        "champion_version": "2", "champion": {"roc_auc": 0.71}, "evaluated_on": "test split",
        "reason": "the recent window has 40 rows, fewer than the 400 it needs",
        "recent": {"rows": 40, "min_rows": 400, "used_for_gate": False, "champion_version": "2",
                   "partitions": ["2026-12-01"], "candidate": {"roc_auc": 0.66},
                   "champion": {"roc_auc": 0.61}},
        "data": {"base": {"dataset": "churn", "snapshot_id": "s", "partitions": ["2026-11-01", "2026-11-30"]},
                 "feedback": {"dataset": "churn_feedback", "snapshot_id": "fb", "rows": 400},
                 "policy": {"data_window_days": 30, "use_feedback": True,
                            "recency_half_life_days": 7}},
    }  # fmt: skip
    write_evaluation_report(
        lake, report, model_name="churn", version=3, data_snapshot="s", dataset="churn",
        comparison=comparison,
    )  # fmt: skip
    card = lake.read_bytes("reports/evaluation/churn/3/model_card.md").decode()
    assert "## Test split and recent window" in card
    assert (
        "| metric | test split: this model | test split: champion v2 | recent window: this model"
        in card
    )
    assert f"| roc_auc | {report.metrics['roc_auc']:.4f} | 0.7100 | 0.6600 | 0.6100 |" in card
    assert "The gates judged the test split: the recent window has 40 rows" in card
    assert "| Feedback data | churn_feedback: 400 rows, snapshot fb |" in card
    assert "| Data window | newest 30 days |" in card and "half-life 7 days" in card
    page = lake.read_bytes("reports/evaluation/churn/3/model_card.html").decode()
    assert "<h2>Test split and recent window</h2>" in page and "recent window: champion v2" in page
    metrics = json.loads(lake.read_bytes("reports/evaluation/churn/3/metrics.json"))
    assert metrics["comparison"]["recent"]["rows"] == 40
