"""The one vocabulary: import-light, and what the forms, requests and domain code agree on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

from include.mlops import vocabulary as v

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "numpy", "sklearn", "xgboost", "mlflow", "great_expectations",
         "boto3", "s3fs", "optuna", "scipy", "matplotlib")  # fmt: skip


def test_importing_it_loads_no_heavy_library() -> None:
    probe = (
        "import json, sys; import include.mlops.vocabulary; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout) == []


def test_the_form_patterns_are_the_documented_ones() -> None:
    assert v.NAME_PATTERN == r"^[a-z][a-z0-9_]*$"
    assert v.PARTITION_PATTERN == r"^\d{4}-\d{2}-\d{2}$"
    assert v.OPTIONAL_DAY_PATTERN == r"^((19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$"
    assert (
        v.OPTIONAL_DAY_OR_ALL_PATTERN
        == r"^((19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])|all)?$"
    )
    assert v.MODEL_OR_ALL_PATTERN == r"^(all|[a-z][a-z0-9_]*)$"
    assert v.OPTIONAL_NAME_PATTERN == r"^([a-z][a-z0-9_]*)?$"
    assert v.DEPLOY_VERSION_PATTERN == r"^([1-9][0-9]*|latest_approved|previous)$"


def test_choices_match_the_design() -> None:
    assert v.FORMATS == ("auto", "csv", "jsonl", "parquet")
    assert v.PROBLEM_TYPE_CHOICES == ("auto", "binary", "multiclass", "regression")
    assert v.TUNING_STRATEGIES == ("random", "grid", "bayesian", "hyperband")
    assert v.OBJECTIVE_METRICS == (
        "roc_auc", "pr_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2",
    )  # fmt: skip
    assert set(v.METRIC_DIRECTION) == set(v.OBJECTIVE_METRICS)
    assert v.APPROVAL_MODES == ("manual", "auto")
    assert v.DEPLOY_STRATEGIES == ("all_at_once", "canary", "linear", "shadow")
    assert v.VARIANTS == (v.CHAMPION, v.CANARY, v.SHADOW) == get_args(v.Variant)


def test_the_algorithm_choices_are_the_tunable_algorithms() -> None:
    from include.mlops.training.algorithms import TUNABLE_ALGORITHMS

    assert set(v.ALGORITHM_NAMES) == set(TUNABLE_ALGORITHMS)
