"""Facets: the group of rows a bias metric compares with the rest (SageMaker Clarify's facet).

A facet is written ``column=value`` (a category: the rows whose value, as text, is
``value``) or ``column>=number`` (also ``>``, ``<`` and ``<=``: a numeric threshold). The
rows that match are the *sensitive* group ``d`` (Clarify's "disadvantaged" facet), every
other row is ``a``. Clarify itself writes a threshold facet as "value above the threshold",
which is ``column>threshold`` here.

Standard library only (the request validates facets at parse time); :meth:`Facet.mask`
imports numpy and pandas when it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.mlops.vocabulary import FACET_OPERATORS, FACET_PATTERN, FACET_RE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Operator → the word used in metric names (``bias_age_ge_40_DI``).
OPERATOR_WORDS: dict[str, str] = {"=": "eq", ">=": "ge", "<=": "le", ">": "gt", "<": "lt"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class FacetError(ValueError):
    """A facet is malformed or does not fit the data; the message names it."""


@dataclass(frozen=True)
class Facet:
    """One parsed facet.

    Attributes:
        text: As the user wrote it (whitespace trimmed).
        column: The column it reads.
        op: ``=``, ``>=``, ``<=``, ``>`` or ``<``.
        value: The category (text) or the threshold (text of a number).
    """

    text: str
    column: str
    op: str
    value: str

    @property
    def numeric(self) -> bool:
        """Whether the facet is a numeric threshold (every operator but ``=``)."""
        return self.op != "="

    @property
    def threshold(self) -> float:
        """The numeric threshold (numeric facets only)."""
        return float(self.value)

    @property
    def key(self) -> str:
        """The facet in metric names: ``gender_eq_female``, ``age_ge_40``."""
        raw = f"{self.column}_{OPERATOR_WORDS[self.op]}_{self.value}"
        return _UNSAFE.sub("_", raw).strip("_")

    def mask(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Which rows are in the sensitive group (missing values never are).

        Args:
            values: The facet column.

        Returns:
            A boolean array, one entry per row.
        """
        import numpy as np
        import pandas as pd

        from include.mlops.evaluation.baseline import category_name

        series = pd.Series(values)
        present = series.notna().to_numpy()
        if not self.numeric:
            names = np.array([category_name(v) if ok else None for v, ok in zip(series.tolist(), present, strict=True)], dtype=object)  # fmt: skip
            return np.asarray(present & (names == self.value), dtype=bool)
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            compare = {
                ">=": numbers >= self.threshold,
                "<=": numbers <= self.threshold,
                ">": numbers > self.threshold,
                "<": numbers < self.threshold,
            }[self.op]
        return np.asarray(compare & ~np.isnan(numbers), dtype=bool)


def parse_facet(text: Any) -> Facet:
    """Parse ``column=value`` / ``column>=number`` (``>``, ``<``, ``<=``).

    Raises:
        FacetError: Naming the facet and what is wrong with it.
    """
    if not isinstance(text, str) or not FACET_RE.match(text):
        raise FacetError(
            f"bias facet {text!r} is malformed: write column=value (a category) or "
            f"column>=number (also >, <, <=); pattern {FACET_PATTERN}"
        )
    stripped = text.strip()
    for op in FACET_OPERATORS:  # two-character operators first
        column, found, value = stripped.partition(op)
        if found:
            break
    facet = Facet(text=stripped, column=column.strip(), op=op, value=value.strip())
    if facet.numeric:
        try:
            number = float(facet.value)
        except ValueError:
            raise FacetError(
                f"bias facet {stripped!r}: {op} needs a number, got {facet.value!r}"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise FacetError(f"bias facet {stripped!r}: the threshold must be a finite number")
    return facet


def parse_facets(texts: Any) -> list[Facet]:
    """Parse every facet; duplicates (same metric key) are refused.

    Raises:
        FacetError: Naming every bad facet.
    """
    problems: list[str] = []
    facets: list[Facet] = []
    for text in texts or ():
        try:
            facet = parse_facet(text)
        except FacetError as error:
            problems.append(str(error))
            continue
        if any(f.key == facet.key for f in facets):
            problems.append(f"bias facet {facet.text!r} is listed twice")
            continue
        facets.append(facet)
    if problems:
        raise FacetError("; ".join(problems))
    return facets


def check_facet_columns(
    facets: list[Facet], columns: dict[str, str], *, target: str, dataset: str
) -> list[str]:
    """Problems of facets against a dataset's columns (empty when every facet fits).

    Args:
        facets: Parsed facets.
        columns: The dataset's columns → their catalog type (``string``, ``int64``, ...).
        target: The target column (a facet on it is meaningless).
        dataset: For the messages.
    """
    problems = []
    for facet in facets:
        kind = columns.get(facet.column)
        if kind is None:
            shown = ", ".join(sorted(columns)) or "none"
            problems.append(
                f"bias facet {facet.text!r}: dataset {dataset!r} has no column "
                f"{facet.column!r} (columns: {shown})"
            )
        elif facet.column == target:
            problems.append(f"bias facet {facet.text!r}: the facet cannot be the target column")
        elif facet.numeric and kind not in ("int64", "float64"):
            problems.append(
                f"bias facet {facet.text!r}: {facet.op} needs a numeric column; "
                f"{facet.column!r} is {kind} (use {facet.column}=<category>)"
            )
    return problems
