"""Parsing request bodies: CSV header rules (SageMaker's headerless default, RFC 4180's parameter)."""

from __future__ import annotations

import pytest

from include.mlops.serving.validation import (
    InvalidInputError,
    MalformedBodyError,
    csv_header,
    parse_body,
)

ORDER = ("plan", "region")


def test_headerless_csv_with_categorical_first_row() -> None:
    parsed = parse_body(b"basic,north\npremium,south\n", "text/csv", ORDER)
    assert parsed.columns == ["plan", "region"] and parsed.n_rows == 2
    assert parsed.data == {"plan": ["basic", "premium"], "region": ["north", "south"]}


def test_header_detected_only_when_every_field_is_a_signature_name() -> None:
    parsed = parse_body(b"region,plan\nnorth,basic\n", "text/csv", ORDER)
    assert parsed.columns == ["region", "plan"] and parsed.data["plan"] == ["basic"]
    # One field is not a column name: the line is data.
    parsed = parse_body(b"region,premium\nnorth,basic\n", "text/csv", ORDER)
    assert parsed.n_rows == 2 and parsed.data["plan"] == ["region", "north"]


def test_header_parameter_overrides_detection() -> None:
    parsed = parse_body(b"plan,region\nbasic,north\n", "text/csv", ORDER, header=False)
    assert parsed.n_rows == 2 and parsed.data["plan"] == ["plan", "basic"]
    parsed = parse_body(b"plan,extra\nbasic,1\n", "text/csv", ORDER, header=True)
    assert parsed.columns == ["plan", "extra"] and parsed.n_rows == 1


def test_headerless_width_and_missing_signature_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="CSV line 2 has 1 fields"):
        parse_body(b"basic,north\nbasic\n", "text/csv", ORDER)
    with pytest.raises(InvalidInputError, match="no input signature"):
        parse_body(b"basic,north\n", "text/csv", ())
    with pytest.raises(MalformedBodyError, match="CSV line 3 has 1 fields, the header has 2"):
        parse_body(b"plan,region\nbasic,north\nbasic\n", "text/csv", ORDER)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/csv", None),
        ("text/csv; header=present", True),
        ("text/csv;charset=utf-8; Header=Absent", False),
        ('text/csv; header="present"', True),
        (None, None),
    ],
)
def test_csv_header_parameter(content_type: str | None, expected: bool | None) -> None:
    assert csv_header(content_type) is expected


def test_csv_header_parameter_with_another_value_is_400() -> None:
    with pytest.raises(MalformedBodyError, match="header=present or header=absent"):
        csv_header("text/csv; header=yes")
