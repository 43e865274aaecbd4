"""DAG integrity: every DAG imports, follows the house rules, and parses cheaply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "pyarrow", "numpy", "sklearn", "xgboost", "mlflow", "great_expectations",
         "boto3", "s3fs", "optuna", "scipy", "matplotlib")  # fmt: skip


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_every_file_defines_its_dag(dagbag) -> None:
    assert DAG_FILES, "no DAG files found"
    assert {p.stem for p in DAG_FILES} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_house_rules(dagbag, dag_file: Path) -> None:
    from include.mlops.airflow.defaults import KNOWN_TAGS

    dag = dagbag.dags[dag_file.stem]
    assert dag.dag_id == dag_file.stem
    assert dag.doc_md and len(dag.doc_md) > 200, "module docstring must document the DAG"
    assert dag.catchup is False
    assert dag.tags and set(dag.tags) <= KNOWN_TAGS, f"unknown tags {set(dag.tags) - KNOWN_TAGS}"
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"
        assert task.retry_exponential_backoff
    for name, param in dag.params.items():
        schema = param.schema
        assert schema.get("title"), f"param {name} has no title"
        assert param.description or schema.get("description"), f"param {name} has no description"
        assert "type" in schema, f"param {name} has no type"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_parses_fast_without_heavy_imports(dag_file: Path) -> None:
    """Each file parses in < 0.5 s (Airflow's own import excluded) and imports no heavy library."""
    probe = f"""
import json, runpy, sys, time
import airflow.sdk  # Airflow's own start-up cost is not the DAG file's
best = None
for _ in range(3):
    for m in [m for m in sys.modules if m.startswith(("include", "dags"))]:
        del sys.modules[m]
    t = time.perf_counter()
    runpy.run_path({str(dag_file)!r})
    best = min(best or 9e9, time.perf_counter() - t)
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"seconds": best, "heavy": heavy}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{dag_file.name} imports {result['heavy']} at parse time"
    assert result["seconds"] < 0.5, f"{dag_file.name} took {result['seconds']:.2f}s to parse"


def test_params_take_their_choices_from_the_vocabulary(dagbag) -> None:
    from include.mlops import vocabulary as v

    def schema(dag_id: str, name: str) -> dict:
        return dagbag.dags[dag_id].params.get_param(name).schema

    assert schema("train_model", "problem_type")["enum"] == list(v.PROBLEM_TYPE_CHOICES)
    assert schema("train_model", "algorithms")["items"]["enum"] == list(v.ALGORITHM_NAMES)
    assert schema("train_model", "tuning_strategy")["enum"] == list(v.TUNING_STRATEGIES)
    assert schema("train_model", "objective_metric")["enum"] == list(v.OBJECTIVE_METRICS)
    assert schema("train_model", "approval")["enum"] == list(v.APPROVAL_MODES)
    assert schema("deploy_model", "strategy")["enum"] == list(v.DEPLOY_STRATEGIES)
    assert schema("lake_ingest", "format")["enum"] == list(v.FORMATS)
    for dag_id, name in (("train_model", "dataset"), ("train_model", "model_name"),
                         ("deploy_model", "model_name"), ("batch_transform", "model_name"),
                         ("batch_transform", "dataset"), ("lake_ingest", "dataset")):  # fmt: skip
        assert schema(dag_id, name)["pattern"] == v.NAME_PATTERN, (dag_id, name)
