"""Facets: parsing, refusals naming the facet, and which rows they select."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlops.clarify.facets import FacetError, check_facet_columns, parse_facet, parse_facets


def test_parse_category_and_thresholds() -> None:
    assert parse_facet(" gender = female ").key == "gender_eq_female"
    facet = parse_facet("age>=60")
    assert (facet.column, facet.op, facet.threshold, facet.key) == ("age", ">=", 60.0, "age_ge_60")
    assert parse_facet("income<2.5e4").op == "<"


@pytest.mark.parametrize("bad", ["=x", "age>=", "a==b", "age>=old", "age>=4<5", 7, "age>inf"])
def test_malformed_facet_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(FacetError) as refused:
        parse_facet(bad)
    assert repr(bad) in str(refused.value) or str(bad) in str(refused.value)


def test_duplicate_facets_are_refused() -> None:
    with pytest.raises(FacetError, match="listed twice"):
        parse_facets(["age>=60", "age >= 60"])


def test_masks() -> None:
    values = pd.Series([1, 2.0, "2", None, 3], dtype=object)
    assert parse_facet("x=2").mask(values).tolist() == [False, True, True, False, False]
    numbers = pd.Series([10, 60, 61, np.nan, 59.5])
    assert parse_facet("x>=60").mask(numbers).tolist() == [False, True, True, False, False]
    assert parse_facet("x>60").mask(numbers).tolist() == [False, False, True, False, False]
    assert parse_facet("x<60").mask(numbers).tolist() == [True, False, False, False, True]


def test_unknown_column_and_wrong_kind_are_named() -> None:
    facets = parse_facets(["sex=f", "salary>=10", "plan>=2", "churned=1"])
    problems = check_facet_columns(
        facets,
        {"sex": "string", "plan": "string", "churned": "bool"},
        target="churned",
        dataset="d",
    )
    assert any("'salary>=10'" in p and "no column 'salary'" in p for p in problems)
    assert any("'plan>=2'" in p and "numeric column" in p for p in problems)
    assert any("'churned=1'" in p and "target" in p for p in problems)
    assert len(problems) == 3
