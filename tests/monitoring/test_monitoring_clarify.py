"""Attribution drift and bias drift of a window, with a real registered version (MLflow store)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from include.mlops.clarify.evidence import clarify_evaluation, log_clarify_evidence
from include.mlops.clarify.window import ATTRIBUTION_DRIFT, BIAS_DRIFT, judge_window
from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
from include.mlops.monitoring.drift import DriftThresholds
from include.mlops.serving.scoring import Scorer
from tests.registry.conftest import Fitted

pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


@pytest.fixture
def version(fitted: Fitted, register: Any, store: Any) -> tuple[int, Any]:
    pipeline = copy.deepcopy(fitted.candidate.pipeline)
    evidence = clarify_evaluation(
        pipeline, fitted.splits, target=TARGET_COLUMN, problem_type="binary", threshold=0.5,
        facets=["plan=basic"], group_column="region",
    )  # fmt: skip
    registered = register(pipeline=pipeline, evaluation_dir_or_files=evidence.files)
    log_clarify_evidence(store.client, run_id=registered.run_id, model_name="churn",
                         version=registered.version, report_files=evidence.files)  # fmt: skip
    return registered.version, pipeline


def _capture(pipeline: Any, rows: pd.DataFrame, version: int) -> pd.DataFrame:
    scored = Scorer.from_pipeline(pipeline, threshold=0.5).score(rows)
    frame = pd.DataFrame({
        "inference_id": [f"id-{i}" for i in range(len(rows))],
        "model_version": version, "variant": "champion",
        "prediction": [str(p) for p in scored.predictions], "probability": scored.probability,
    })  # fmt: skip
    for column in rows.columns:
        frame[f"feature.{column}"] = rows[column].to_numpy()
    return frame


def test_attribution_drift_of_a_window(version: tuple[int, Any], store: Any) -> None:
    number, pipeline = version
    rows = generate_churn(1500, seed=21).drop(columns=[TARGET_COLUMN])
    same = judge_window(store.client, "churn", number, _capture(pipeline, rows, number),
                        thresholds=DriftThresholds())  # fmt: skip
    section = same["attribution_drift"]
    assert section["method"] == "ndcg" and section["rows"] == 1000
    assert section["score"] >= 0.9 and not section["drift"] and same["violations"] == []
    assert same["bias_drift"] is None  # no ground truth
    # The numeric column that explained least now varies 50x as much: it tops the window's
    # ranking, where the baseline gave it almost no weight.
    numeric = [c for c in section["baseline_ranking"] if rows[c].dtype.kind in "if"]
    least = numeric[-1]
    moved = rows.copy()
    moved[least] = moved[least].median() + 50 * (moved[least] - moved[least].median())
    drifted = judge_window(store.client, "churn", number, _capture(pipeline, moved, number),
                           thresholds=DriftThresholds())  # fmt: skip
    assert drifted["attribution_drift"]["window_ranking"][0] == least
    assert drifted["attribution_drift"]["drift"]
    assert drifted["attribution_drift"]["score"] < 0.9
    (violation,) = drifted["violations"]
    assert violation.check == ATTRIBUTION_DRIFT and "NDCG" in violation.description


def test_bias_drift_on_labelled_rows(version: tuple[int, Any], store: Any) -> None:
    number, pipeline = version
    data = generate_churn(1500, seed=22)
    captured = _capture(pipeline, data.drop(columns=[TARGET_COLUMN]), number)
    truth = pd.DataFrame(
        {"inference_id": captured["inference_id"], TARGET_COLUMN: data[TARGET_COLUMN]}
    )
    judged = judge_window(store.client, "churn", number, captured, thresholds=DriftThresholds(),
                          ground_truth=truth, label_column=TARGET_COLUMN)  # fmt: skip
    section = judged["bias_drift"]
    assert section["rows"] == 1500 and section["status"] in ("ok", "drift")
    (facet,) = section["facets"]
    assert facet["facet"] == "plan=basic" and facet["facet_rows"] == int(
        (data["plan"] == "basic").sum()
    )
    assert set(facet["metrics"]) == {
        "DPPL",
        "DI",
        "DCAcc",
        "DCR",
        "RD",
        "DAR",
        "DRR",
        "AD",
        "CDDPL",
        "TE",
        "FT",
    }
    assert all(m["training"] is not None for n, m in facet["metrics"].items() if n != "TE")
    # Labels that now say every basic-plan customer churned and nobody else did: recall on
    # the rest is 0/0 (0, Clarify's rule), on the facet the share it predicts positive (RD moves).
    skewed = truth.copy()
    skewed[TARGET_COLUMN] = np.where(data["plan"] == "basic", 1, 0)
    moved = judge_window(store.client, "churn", number, captured, thresholds=DriftThresholds(),
                         ground_truth=skewed, label_column=TARGET_COLUMN)  # fmt: skip
    assert moved["bias_drift"]["status"] == "drift"
    assert "RD" in [d["metric"] for d in moved["bias_drift"]["drifted"]]
    assert any(v.check == BIAS_DRIFT and "plan=basic" in v.description for v in moved["violations"])
    few = judge_window(store.client, "churn", number, captured, thresholds=DriftThresholds(),
                       ground_truth=skewed.head(10), label_column=TARGET_COLUMN)  # fmt: skip
    assert (
        few["bias_drift"]["status"] == "insufficient_labels" and few["bias_drift"]["drifted"] == []
    )


def test_versions_without_clarify_evidence_are_reported_unavailable(
    register: Any, store: Any
) -> None:
    registered = register()
    judged = judge_window(store.client, "churn", registered.version, pd.DataFrame(),
                          thresholds=DriftThresholds())  # fmt: skip
    assert judged["attribution_drift"]["method"] == "unavailable"
    assert "no attribution baseline" in judged["attribution_drift"]["reason"]
