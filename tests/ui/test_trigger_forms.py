"""Every DAG's trigger form as a user sees it (Airflow 3.3's React form, from the DagBag).

For each param: a title and a description (the form's label and help text), a default
the param's own schema accepts, an enum or bounds where the vocabulary has one
(docs/design.md "Param vocabulary"), and a bad value refused with a message naming the
param — the check ``POST /api/v2/dags/<id>/dagRuns`` makes before a run exists.

One rule is the UI's own, measured in the browser: a param whose type has no ``"null"``
is *required*, and the form keeps **Trigger** disabled while a required field is empty.
So a default of ``""`` (or ``None``) needs ``type=["null", "string"]``; otherwise the
form cannot be submitted as shipped.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.known_form_issues import KNOWN_BLOCKED, LOOSE_DATE_PATTERNS

REPO = Path(__file__).resolve().parents[2]
#: docs/design.md's param vocabulary: param name → the enum it must offer.
ENUMS: dict[str, set[str]] = {
    "format": {"auto", "csv", "jsonl", "parquet"},
    "problem_type": {"auto", "binary", "multiclass", "regression"},
    "tuning_strategy": {"random", "grid", "bayesian", "hyperband"},
    "objective_metric": {"roc_auc", "pr_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2"},
    "approval": {"manual", "auto"},
    "strategy": {"all_at_once", "canary", "linear", "shadow"},
}
ALGORITHMS = {"xgboost", "random_forest", "logistic_regression", "ridge", "linear_regression"}
NAMED = ("dataset", "model_name")

#: Numbers with no natural bound: any metric's value (r2 is negative for bad models).
UNBOUNDED = {("train_model", "min_objective")}


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return bag


def _dag_params() -> list[tuple[str, str]]:
    """(dag_id, param) for every DAG file, read without a DagBag (for parametrize ids)."""
    import ast

    pairs = []
    for path in sorted((REPO / "dags").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "params":
                if isinstance(node.value, ast.Dict):
                    for key in node.value.keys:
                        if isinstance(key, ast.Constant):
                            pairs.append((path.stem, str(key.value)))
                break
    return pairs


PARAMS = _dag_params()


def _schema(dagbag: Any, dag_id: str, name: str) -> tuple[Any, dict[str, Any]]:
    param = dagbag.dags[dag_id].params.get_param(name)
    return param, dict(param.schema)


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    return set(declared) if isinstance(declared, list) else {declared} if declared else set()


def test_every_dag_has_a_form(dagbag: Any) -> None:
    dag_files = {p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_")}
    assert dag_files <= set(dagbag.dag_ids)
    for dag_id in dag_files:
        assert len(dagbag.dags[dag_id].params) > 0, f"{dag_id} has no trigger form params"
    assert {d for d, _ in PARAMS} == dag_files


@pytest.mark.parametrize(("dag_id", "name"), PARAMS, ids=[f"{d}.{p}" for d, p in PARAMS])
def test_param_explains_itself(dagbag: Any, dag_id: str, name: str) -> None:
    """Label, help text, a type, and a default its own schema accepts."""
    param, schema = _schema(dagbag, dag_id, name)
    title = schema.get("title")
    assert title and title != name, f"{dag_id}.{name}: the form would label it {name!r}"
    description = param.description or schema.get("description") or ""
    assert len(description) >= 15, f"{dag_id}.{name}: description {description!r} explains nothing"
    assert _types(schema), f"{dag_id}.{name}: no type, so the form cannot pick a widget"
    param.resolve(param.value)  # the default passes its own schema (raises otherwise)


@pytest.mark.parametrize(("dag_id", "name"), PARAMS, ids=[f"{d}.{p}" for d, p in PARAMS])
def test_form_can_be_submitted_with_the_default(
    dagbag: Any, dag_id: str, name: str, request: pytest.FixtureRequest
) -> None:
    """The UI keeps Trigger disabled while a non-nullable field is empty (measured)."""
    if (dag_id, name) in KNOWN_BLOCKED:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=f"empty default on a required field; fix in dags/{dag_id}.py: "
                f"{KNOWN_BLOCKED[dag_id, name]}",
            )
        )
    param, schema = _schema(dagbag, dag_id, name)
    if "null" in _types(schema):
        return
    assert param.value not in (None, ""), (
        f"{dag_id}.{name}: default {param.value!r} on a field of type {schema.get('type')!r}: "
        "the form marks it required and refuses to trigger until something is typed; "
        'declare type=["null", ...] with default None if empty means "not set"'
    )


@pytest.mark.parametrize(("dag_id", "name"), PARAMS, ids=[f"{d}.{p}" for d, p in PARAMS])
def test_enum_or_bounds_where_one_exists(dagbag: Any, dag_id: str, name: str) -> None:
    _, schema = _schema(dagbag, dag_id, name)
    types = _types(schema)
    if name in ENUMS:
        assert set(schema.get("enum") or []) == ENUMS[name], f"{dag_id}.{name}: enum"
    if name in NAMED:
        pattern = re.compile(schema.get("pattern") or "")
        assert schema.get("pattern"), f"{dag_id}.{name}: no name pattern"
        assert pattern.match("churn_model") and pattern.match("churn")
        for bad in ("Churn", "churn model", "1churn", "churn/../x", ""):
            assert not pattern.match(bad), f"{dag_id}.{name}: pattern accepts {bad!r}"
    if name == "partition":
        pattern = re.compile(schema.get("pattern") or "")
        assert pattern.match("2026-11-02"), f"{dag_id}.{name}: YYYY-MM-DD refused"
        for bad in ("2026-11-2", "yesterday", "2026/11/02", "2026-11-02x"):
            assert not pattern.match(bad), f"{dag_id}.{name}: pattern accepts {bad!r}"
    if name == "algorithms":
        assert set((schema.get("items") or {}).get("enum") or []) == ALGORITHMS
        assert schema.get("minItems", 0) >= 1
    if types & {"number", "integer"} and (dag_id, name) not in UNBOUNDED:
        assert "minimum" in schema or "exclusiveMinimum" in schema, (
            f"{dag_id}.{name}: no lower bound"
        )
    if "percent" in name:
        assert schema.get("maximum") == 100, f"{dag_id}.{name}: a percent stops at 100"


PARTITIONS = [(d, p) for d, p in PARAMS if p == "partition"]


@pytest.mark.parametrize(("dag_id", "name"), PARTITIONS, ids=[f"{d}.{p}" for d, p in PARTITIONS])
def test_partition_refuses_impossible_dates(
    dagbag: Any, dag_id: str, name: str, request: pytest.FixtureRequest
) -> None:
    """A month 13 must be refused by the form, not by the run's first task."""
    if (dag_id, name) in LOOSE_DATE_PATTERNS:
        request.applymarker(pytest.mark.xfail(strict=True, reason="pattern checks shape only"))
    pattern = re.compile(_schema(dagbag, dag_id, name)[1]["pattern"])
    for impossible in ("2026-13-01", "2026-00-10", "2026-11-45"):
        assert not pattern.match(impossible), f"{dag_id}.{name} accepts {impossible}"


def _bad_value(schema: dict[str, Any]) -> Any:
    types = _types(schema)
    if schema.get("enum"):
        return "not_one_of_the_choices"
    if "pattern" in schema:
        return "Not A Valid Value!"
    if types & {"number", "integer"}:
        if "minimum" in schema:
            return schema["minimum"] - 1
        if "exclusiveMinimum" in schema:
            return schema["exclusiveMinimum"]
    if "array" in types:
        items = schema.get("items") or {}
        return ["not_one_of_the_choices"] if items.get("enum") else ["x"] * 99
    return None


@pytest.mark.parametrize(("dag_id", "name"), PARAMS, ids=[f"{d}.{p}" for d, p in PARAMS])
def test_bad_value_is_refused_naming_the_param(dagbag: Any, dag_id: str, name: str) -> None:
    """What the trigger endpoint does with the form's values before any run exists."""
    from airflow.sdk.exceptions import ParamValidationError

    _, schema = _schema(dagbag, dag_id, name)
    bad = _bad_value(schema)
    if bad is None:
        pytest.skip(f"{dag_id}.{name} is free text (no enum, pattern or bound to break)")
    params = copy.deepcopy(dagbag.dags[dag_id].params)
    with pytest.raises(ParamValidationError) as refused:
        params[name] = bad
        params.validate()
    assert name in str(refused.value), f"the message must name the param: {refused.value}"


def _approval_forms() -> list[tuple[str, str, str]]:
    """(dag_id, task_id, param) of every human-in-the-loop form (Required Actions page)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.standard.operators.hitl import HITLOperator

    found = []
    for dag_id, dag in DagBag(dag_folder=str(REPO / "dags")).dags.items():
        for task in dag.tasks:
            if isinstance(task, HITLOperator):
                found.extend((dag_id, task.task_id, name) for name in task.params)
    return sorted(found)


APPROVAL_FORMS = _approval_forms()


@pytest.mark.parametrize(
    ("dag_id", "task_id", "name"), APPROVAL_FORMS, ids=[".".join(f) for f in APPROVAL_FORMS]
)
def test_approval_form_explains_itself_and_can_be_answered(
    dagbag: Any, dag_id: str, task_id: str, name: str, request: pytest.FixtureRequest
) -> None:
    """The Required Actions form: labelled, explained, and Approve usable as shipped."""
    if (dag_id, f"{task_id}.{name}") in KNOWN_BLOCKED:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=f"Approve stays disabled until {name!r} is typed; fix in dags/{dag_id}.py: "
                f"{KNOWN_BLOCKED[dag_id, f'{task_id}.{name}']}",
            )
        )
    param = dagbag.dags[dag_id].get_task(task_id).params.get_param(name)
    schema = dict(param.schema)
    assert schema.get("title") and (param.description or schema.get("description"))
    if "null" not in _types(schema):
        assert param.value not in (None, ""), (
            f"{dag_id}.{task_id}.{name}: the approver must type a {name} before Approve or "
            "Reject become clickable"
        )
