"""Expectation suites: generated from a profile, declared in code, or stored in the lake.

A suite is a plain JSON list so people can read and edit it without Great
Expectations installed::

    [{"type": "expect_column_values_to_not_be_null",
      "kwargs": {"column": "churned"},
      "meta": {"blocking": true, "why": "the label must exist for every customer"}}]

``meta.blocking`` is required on every expectation: a failed blocking expectation
stops the pipeline, a failed non-blocking one is reported as a warning.

Where a dataset's suite comes from (:func:`resolve_suite`), first match wins:

1. ``catalog/<dataset>/expectations.json`` in the lake (a user may have edited it);
2. :func:`declared_suite` in code, written to the lake on first use so it can be edited;
3. :func:`build_suite_from_profile` on the first partition ingested, also written.

To pick up a changed declaration in code, delete the stored file.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from include.mlops.lake.store import Lake

Expectation = dict[str, Any]
SuiteSource = Literal["stored", "declared", "generated"]

NUMERIC_TYPES = frozenset({"int64", "float64"})
# A profile-derived value set only makes sense for a handful of distinct values; a
# column with hundreds is an identifier or free text, not a category.
MAX_PROFILED_CATEGORIES = 50
_EXPECTATION_TYPE = re.compile(r"^expect_[a-z0-9_]+$")


def suite_key(dataset: str) -> str:
    """Lake key of a dataset's stored, editable suite."""
    return f"catalog/{dataset}/expectations.json"


def expectation(type_: str, *, blocking: bool, why: str, **kwargs: Any) -> Expectation:
    """One suite entry in the stored JSON shape.

    Args:
        type_: Great Expectations expectation type, e.g. ``expect_column_values_to_be_unique``.
        blocking: Whether a failure stops the pipeline (otherwise it is a warning).
        why: Why the expectation matters, shown to the user when it fails.
        **kwargs: The expectation's arguments (``column``, ``min_value``, ``mostly``, ...).

    Returns:
        ``{"type", "kwargs", "meta": {"blocking", "why"}}``.
    """
    return {"type": type_, "kwargs": kwargs, "meta": {"blocking": blocking, "why": why}}


# -- generated from a profile -------------------------------------------------------


def build_suite_from_profile(
    df: pd.DataFrame, schema: dict[str, Any], *, margin: float = 0.1
) -> list[Expectation]:
    """Generate a suite from a dataset's catalog schema and a profile of its data.

    Declared facts in the schema (non-nullable columns, the key, allowed values,
    min/max) become blocking expectations: data that breaks them is wrong. Facts
    learnt from this one profile (observed ranges, null rates, categories seen)
    become warnings: the next partition may legitimately differ, and a person
    should look rather than have the pipeline stop.

    Args:
        df: The data to profile (the dataset's first curated partition).
        schema: The catalog schema: ``{"dataset", "columns": [{"name", "type",
            "nullable", "categorical", "pii", "allowed", "min", "max"}], "key": [...]}``.
        margin: Observed numeric ranges are widened by this share of their span
            before becoming bounds, so ordinary variation does not warn.

    Returns:
        The suite as a list of expectation dicts, each with explicit ``meta.blocking``.
    """
    columns: list[dict[str, Any]] = list(schema.get("columns") or [])
    names = [c["name"] for c in columns]
    key = list(schema.get("key") or [])
    rows = len(df)

    suite: list[Expectation] = [
        expectation(
            "expect_table_columns_to_match_set",
            blocking=True,
            why="downstream features and models read these columns by name; "
            "a missing or unexpected column means the schema changed upstream",
            column_set=names,
            exact_match=True,
        ),
        expectation(
            "expect_table_row_count_to_be_between",
            blocking=True,
            why="an empty partition would silently train or score on nothing",
            min_value=1,
        ),
    ]
    if len(key) == 1:
        suite.append(
            expectation(
                "expect_column_values_to_be_unique",
                blocking=True,
                why=f"{key[0]} is the dataset key; duplicates double-count records "
                "and leak rows between train and test splits",
                column=key[0],
            )
        )
    elif len(key) > 1:
        suite.append(
            expectation(
                "expect_compound_columns_to_be_unique",
                blocking=True,
                why=f"({', '.join(key)}) is the dataset key; duplicates double-count records",
                column_list=key,
            )
        )

    for col in columns:
        suite.extend(_column_expectations(df, col, rows=rows, margin=margin))
    return suite


def _column_expectations(
    df: pd.DataFrame, col: dict[str, Any], *, rows: int, margin: float
) -> list[Expectation]:
    name: str = col["name"]
    ctype: str = col.get("type", "string")
    present = name in df.columns
    series = df[name] if present else None
    out: list[Expectation] = []

    if not col.get("nullable", True):
        out.append(
            expectation(
                "expect_column_values_to_not_be_null",
                blocking=True,
                why=f"the schema declares {name} non-nullable; nulls here break "
                "features and joins that assume a value",
                column=name,
            )
        )
    elif series is not None and rows:
        null_share = float(series.isna().mean())
        ceiling = _null_ceiling(null_share)
        if ceiling < 1.0:
            out.append(
                expectation(
                    "expect_column_values_to_not_be_null",
                    blocking=False,
                    why=f"{null_share:.1%} of {name} was null when profiled; a jump "
                    f"past {ceiling:.1%} usually means an upstream field went missing",
                    column=name,
                    mostly=round(1.0 - ceiling, 4),
                )
            )

    # PII: never build expectations that would copy values into reports.
    if col.get("pii"):
        return out

    allowed = col.get("allowed")
    if allowed:
        out.append(
            expectation(
                "expect_column_values_to_be_in_set",
                blocking=True,
                why=f"the schema allows only these values for {name}; anything else "
                "is a new or misspelt category the model has never seen",
                column=name,
                value_set=list(allowed),
            )
        )
    elif col.get("categorical") and series is not None and rows:
        seen = series.dropna().unique()
        if 0 < len(seen) <= MAX_PROFILED_CATEGORIES:
            out.append(
                expectation(
                    "expect_column_values_to_be_in_set",
                    blocking=False,
                    why=f"these are the {name} categories seen when profiled; a new "
                    "one may be legitimate but the model has never seen it",
                    column=name,
                    value_set=sorted(_to_json_scalar(v) for v in seen),
                )
            )

    if ctype not in NUMERIC_TYPES:
        return out

    lo_declared, hi_declared = col.get("min"), col.get("max")
    if lo_declared is not None or hi_declared is not None:
        out.append(
            expectation(
                "expect_column_values_to_be_between",
                blocking=True,
                why=f"the schema declares the valid range of {name}; values outside "
                "it are corrupt or in the wrong unit",
                column=name,
                min_value=lo_declared,
                max_value=hi_declared,
            )
        )

    if series is not None and rows and series.notna().any():
        lo, hi = float(series.min()), float(series.max())
        span = (hi - lo) or abs(hi) or 1.0
        lo_bound, hi_bound = lo - margin * span, hi + margin * span
        if lo >= 0:
            # A column never negative when profiled (counts, amounts) warns on the
            # first negative value rather than after a margin below zero.
            lo_bound = max(lo_bound, 0.0)
        if ctype == "int64":
            lo_bound, hi_bound = float(math.floor(lo_bound)), float(math.ceil(hi_bound))
        out.append(
            expectation(
                "expect_column_min_to_be_between",
                blocking=False,
                why=f"{name} ranged {lo:g}..{hi:g} when profiled; a much lower "
                "minimum suggests a unit or sign change upstream",
                column=name,
                min_value=round(lo_bound, 6),
            )
        )
        out.append(
            expectation(
                "expect_column_max_to_be_between",
                blocking=False,
                why=f"{name} ranged {lo:g}..{hi:g} when profiled; a much higher "
                "maximum suggests outliers or a unit change upstream",
                column=name,
                max_value=round(hi_bound, 6),
            )
        )
    return out


def _null_ceiling(null_share: float) -> float:
    """Largest null share tolerated before warning, given the profiled share."""
    # Room proportional to the observed rate, with a floor of 5 points so a column
    # that happened to have no nulls does not warn on the first one.
    return min(1.0, round(max(null_share * 1.5, null_share + 0.05), 4))


def _to_json_scalar(value: Any) -> Any:
    # numpy scalars are not JSON-serialisable; .item() gives the Python value.
    return value.item() if hasattr(value, "item") else value


# -- declared in code ---------------------------------------------------------------


def _churn_suite() -> list[Expectation]:
    # The declared schema is the contract; imported here so this module stays cheap.
    from include.mlops.etl.declared import churn_schema

    columns = list(churn_schema().names)
    suite = [
        expectation(
            "expect_table_columns_to_match_set",
            blocking=True,
            why="the churn features and model read these columns by name",
            column_set=columns,
            exact_match=True,
        ),
        expectation(
            "expect_table_row_count_to_be_between",
            blocking=True,
            why="an empty partition would silently train or score on nothing",
            min_value=1,
        ),
        expectation(
            "expect_column_values_to_be_unique",
            blocking=True,
            why="customer_id is the key; duplicates double-count customers and leak "
            "rows between train and test splits",
            column="customer_id",
        ),
    ]
    for column in ("customer_id", "signup_date", "age", "tenure_months", "plan"):
        suite.append(
            expectation(
                "expect_column_values_to_not_be_null",
                blocking=True,
                why=f"{column} is required for every customer",
                column=column,
            )
        )
    suite += [
        expectation(
            "expect_column_values_to_not_be_null",
            blocking=True,
            why="churned is the training label; a row without it cannot be learnt from "
            "or evaluated",
            column="churned",
        ),
        expectation(
            "expect_column_values_to_be_in_set",
            blocking=True,
            why="churned is a binary label (0 = stayed, 1 = churned)",
            column="churned",
            value_set=[0, 1],
        ),
        expectation(
            "expect_column_mean_to_be_between",
            blocking=True,
            why="the churn rate is normally a minority share; a partition where almost "
            "nobody or nearly everybody churns is broken upstream data, and training on "
            "it would teach the model a false base rate",
            column="churned",
            min_value=0.02,
            max_value=0.6,
        ),
        expectation(
            "expect_column_values_to_be_in_set",
            blocking=True,
            why="the model knows only these plans",
            column="plan",
            value_set=["basic", "standard", "premium"],
        ),
        expectation(
            "expect_column_values_to_be_in_set",
            blocking=True,
            why="the model knows only these regions",
            column="region",
            value_set=["north", "south", "east", "west", "central"],
        ),
        expectation(
            "expect_column_values_to_be_in_set",
            blocking=True,
            why="the model knows only these payment methods",
            column="payment_method",
            value_set=["card", "bank_transfer", "paypal", "check"],
        ),
    ]
    ranges: list[tuple[str, float | None, float | None]] = [
        ("age", 18, 100),
        ("tenure_months", 0, 120),
        ("monthly_charges", 0, 1000),
        ("total_charges", 0, None),
        ("support_calls", 0, 100),
    ]
    for column, lo, hi in ranges:
        suite.append(
            expectation(
                "expect_column_values_to_be_between",
                blocking=True,
                why=f"values of {column} outside the valid range are corrupt or in the wrong unit",
                column=column,
                min_value=lo,
                max_value=hi,
            )
        )
    suite += [
        expectation(
            "expect_column_values_to_not_be_null",
            blocking=False,
            why="most customers have a total charge; many nulls suggest the billing "
            "join failed upstream",
            column="total_charges",
            mostly=0.8,
        ),
        expectation(
            "expect_column_median_to_be_between",
            blocking=False,
            why="a median tenure far from the usual years-long range suggests a "
            "partial or filtered extract",
            column="tenure_months",
            min_value=3,
            max_value=100,
        ),
    ]
    return suite


_DECLARED: dict[str, Callable[[], list[Expectation]]] = {"churn": _churn_suite}


def declared_suite(dataset: str) -> list[Expectation] | None:
    """The suite declared in code for a dataset, or None if it has none.

    Args:
        dataset: Dataset name, e.g. ``churn``.

    Returns:
        A fresh copy of the declared suite (callers may modify it), or None.
    """
    factory = _DECLARED.get(dataset)
    return copy.deepcopy(factory()) if factory else None


# -- stored in the lake -------------------------------------------------------------


def validate_suite(suite: Any, *, origin: str = "suite") -> list[Expectation]:
    """Check a suite's shape and return it normalised.

    Catches the mistakes a hand edit makes (a missing ``blocking`` flag, a typo in
    a type) with a message that names the entry, before Great Expectations is
    loaded. Unknown expectation types are reported when the gate runs.

    Args:
        suite: The parsed JSON.
        origin: Where it came from, for error messages (e.g. the lake URI).

    Returns:
        The suite with every entry as ``{"type", "kwargs", "meta"}``.

    Raises:
        ValueError: The suite is malformed.
    """
    if not isinstance(suite, list):
        raise ValueError(
            f"{origin}: expected a JSON list of expectations, got {type(suite).__name__}"
        )
    normalised: list[Expectation] = []
    for i, item in enumerate(suite, start=1):
        where = f"{origin}, expectation {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
        type_ = item.get("type")
        if not isinstance(type_, str) or not _EXPECTATION_TYPE.match(type_):
            raise ValueError(
                f"{where}: 'type' must be an expectation name like "
                f"'expect_column_values_to_not_be_null', got {type_!r}"
            )
        kwargs = item.get("kwargs", {})
        meta = item.get("meta", {})
        if not isinstance(kwargs, dict) or not isinstance(meta, dict):
            raise ValueError(f"{where} ({type_}): 'kwargs' and 'meta' must be objects")
        if not isinstance(meta.get("blocking"), bool):
            column = kwargs.get("column")
            raise ValueError(
                f"{where} ({type_}{f' on {column!r}' if column else ''}): set "
                '"meta": {"blocking": true} to stop the pipeline when it fails, or '
                "false to only warn"
            )
        normalised.append({"type": type_, "kwargs": dict(kwargs), "meta": dict(meta)})
    return normalised


def load_suite(lake: Lake, dataset: str) -> list[Expectation] | None:
    """The dataset's suite stored in the lake, or None if there is none.

    Raises:
        ValueError: The stored suite is malformed (message names the entry).
    """
    key = suite_key(dataset)
    if not lake.exists(key):
        return None
    return validate_suite(lake.read_json(key), origin=lake.uri(key))


def save_suite(lake: Lake, dataset: str, suite: list[Expectation]) -> str:
    """Store a suite in the lake where users can edit it; returns its URI."""
    return lake.write_json(suite_key(dataset), validate_suite(suite, origin=dataset))


def resolve_suite(
    lake: Lake,
    dataset: str,
    *,
    df: pd.DataFrame | None = None,
    schema: dict[str, Any] | None = None,
) -> tuple[list[Expectation], SuiteSource]:
    """The suite to gate a dataset with: stored, else declared, else generated.

    A declared or generated suite is written to ``catalog/<dataset>/expectations.json``
    so later ingests reuse it and people can edit it.

    Args:
        lake: The lake holding the catalog.
        dataset: Dataset name.
        df: Data to profile when a suite has to be generated.
        schema: Catalog schema, needed when a suite has to be generated.

    Returns:
        The suite and where it came from (``stored``, ``declared`` or ``generated``).

    Raises:
        ValueError: A suite must be generated but ``df`` or ``schema`` is missing,
            or the stored suite is malformed.
    """
    stored = load_suite(lake, dataset)
    if stored is not None:
        return stored, "stored"
    declared = declared_suite(dataset)
    if declared is not None:
        save_suite(lake, dataset, declared)
        return declared, "declared"
    if df is None or schema is None:
        raise ValueError(
            f"dataset {dataset!r} has no expectation suite at {lake.uri(suite_key(dataset))} "
            "and none declared in code; pass the data and its catalog schema to generate one"
        )
    generated = build_suite_from_profile(df, schema)
    save_suite(lake, dataset, generated)
    return generated, "generated"
