"""Column transforms: normalization, missing tokens, casts per type, PII masking."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow as pa
import pytest

from include.mlops.etl import transform
from include.mlops.etl.naming import (
    validate_dataset_name,
    validate_format,
    validate_partition,
)
from include.mlops.settings import DEFAULT_MISSING_TOKENS


def parse(values: list[str | None], type_name: str) -> tuple[list, list[bool]]:
    typed, failed = transform.parse_values(pa.array(values, pa.string()), type_name)
    return typed.to_pylist(), failed.to_pylist()


def test_normalize_strips_whitespace_and_applies_nfc() -> None:
    decomposed = "Cafe\u0301"  # "e" + combining acute accent
    out = transform.normalize_strings(pa.array(["  north ", f"\t{decomposed} ", None]))
    assert out.to_pylist() == ["north", "Caf\u00e9", None]


def test_missing_tokens_become_null() -> None:
    values = pa.array(["", "NA", "n/a", "null", "-", "?", "keep", None])
    out = transform.map_missing(values, DEFAULT_MISSING_TOKENS)
    assert out.to_pylist() == [None] * 6 + ["keep", None]


def test_missing_tokens_are_configurable() -> None:
    out = transform.map_missing(pa.array(["unknown", "NA"]), ["unknown"])
    assert out.to_pylist() == [None, "NA"]


def test_parse_int() -> None:
    values, failed = parse(
        ["1", "+5", "-7", "007", "3.0", "3.5", "x", "0x10", None, "99999999999999999999"], "int64"
    )
    assert values == [1, 5, -7, 7, 3, None, None, None, None, None]
    assert failed == [False, False, False, False, False, True, True, True, False, True]


def test_parse_float() -> None:
    values, failed = parse(["1.5", ".5", "1e3", "+2", "abc", "inf", None], "float64")
    assert values == [1.5, 0.5, 1000.0, 2.0, None, None, None]
    assert failed == [False, False, False, False, True, True, False]


def test_parse_bool() -> None:
    values, failed = parse(["true", "FALSE", "yes", "n", "1", "0", "maybe"], "bool")
    assert values == [True, False, True, False, True, False, None]
    assert failed[-1] is True and not any(failed[:-1])


def test_parse_date_is_strict_iso() -> None:
    values, failed = parse(["2024-01-05", "2024-02-30", "2024-1-5", "05/01/2024"], "date")
    assert values == [dt.date(2024, 1, 5), None, None, None]
    assert failed == [False, True, True, True]


def test_parse_timestamp_converts_offsets_to_utc() -> None:
    values, failed = parse(
        [
            "2024-01-05T10:00:00",
            "2024-01-05 10:00:00.250",
            "2024-01-05T10:00:00Z",
            "2024-01-05T10:00:00+02:00",
            "2024-04-31T00:00:00",
            "yesterday",
        ],
        "timestamp",
    )
    assert values[:4] == [
        dt.datetime(2024, 1, 5, 10),
        dt.datetime(2024, 1, 5, 10, 0, 0, 250000),
        dt.datetime(2024, 1, 5, 10),
        dt.datetime(2024, 1, 5, 8),
    ]
    assert failed == [False, False, False, False, True, True]


@pytest.mark.parametrize("type_name", ["int64", "float64", "date", "bool", "timestamp"])
def test_fast_cast_agrees_with_full_parse_on_clean_values(type_name: str) -> None:
    samples = {
        "int64": ["1", "-2", "30"],
        "float64": ["1.5", "2", "-0.25"],
        "date": ["2024-01-05", "2023-12-31", "2020-02-29"],
        "bool": ["true", "false", "1"],
        "timestamp": ["2024-01-05 10:00:00", "2024-01-05T11:30:00", "2024-01-05"],
    }[type_name]
    raw = pa.array(samples, pa.string())
    fast = transform.fast_cast(raw, type_name, DEFAULT_MISSING_TOKENS)
    full, failed = transform.parse_values(raw, type_name)
    assert fast is not None and fast.to_pylist() == full.to_pylist()
    assert not any(failed.to_pylist())


def test_fast_cast_declines_anything_the_full_path_must_judge() -> None:
    tokens = DEFAULT_MISSING_TOKENS
    assert transform.fast_cast(pa.array(["1", " 2"]), "int64", tokens) is None
    assert transform.fast_cast(pa.array(["1", ""]), "int64", tokens) is None
    assert transform.fast_cast(pa.array(["0x10"]), "int64", tokens) is None
    assert transform.fast_cast(pa.array(["1.5", "nan"]), "float64", tokens) is None
    # A numeric missing token would be kept as data by a plain cast.
    assert transform.fast_cast(pa.array(["5", "-1"]), "int64", ["-1"]) is None


def test_typed_parquet_columns_cast_without_parsing() -> None:
    assert transform.cast_typed(pa.array([1, 2], pa.int32()), "int64").type == pa.int64()
    floats = transform.cast_typed(pa.array([1.0, float("nan")]), "float64")
    assert floats.to_pylist() == [1.0, None]  # NaN is pandas' "missing"
    assert transform.cast_typed(pa.array([1.5]), "int64") is None  # may lose data: parse


def test_mask_pii_is_salted_stable_and_keeps_nulls() -> None:
    values = pa.array(["a@example.com", None, "a@example.com", "b@example.com"])
    first = transform.mask_pii(values, "salt-1").to_pylist()
    again = transform.mask_pii(values, "salt-1").to_pylist()
    other_salt = transform.mask_pii(values, "salt-2").to_pylist()
    assert first == again
    assert first[1] is None and first[0] == first[2] != first[3]
    assert other_salt[0] != first[0]
    assert len(first[0]) == 32 and "@" not in first[0]
    # Not a plain hash of the value: without the salt nobody can confirm a guess.
    assert first[0] != hashlib.blake2b(b"a@example.com", digest_size=16).hexdigest()
    assert first[0] == transform.mask_pii(pa.array(["a@example.com"]), "salt-1")[0].as_py()


def test_mask_pii_known_answer_pins_the_hash() -> None:
    """Curated partitions written years apart must hash a person alike (joins, dedupe)."""
    masked = transform.mask_pii(pa.array(["a@example.com", None, "jos\u00e9@x.org"]), "salt-1")
    assert masked.to_pylist() == [
        "672d7fbdc2454e027cefa72634f4a086",
        None,
        "a38dc96ba97b9d9c451f36bee8c05320",
    ]


def test_mask_pii_on_a_slice_keeps_null_positions() -> None:
    sliced = pa.array(["x", "a@example.com", None, "b"]).slice(1)
    masked = transform.mask_pii(sliced, "salt-1").to_pylist()
    assert masked[0] == "672d7fbdc2454e027cefa72634f4a086" and masked[1] is None and masked[2]


def test_pii_key_accepts_long_salts() -> None:
    assert all(len(k) == 16 for k in transform.pii_keys("x" * 100))
    assert transform.mask_pii(pa.array(["v"]), "x" * 100)[0].as_py()


def test_naming_rules_name_the_field() -> None:
    assert validate_dataset_name("churn_v2") == "churn_v2"
    with pytest.raises(ValueError, match="dataset 'Churn'"):
        validate_dataset_name("Churn")
    assert validate_partition("2024-02-29") == "2024-02-29"
    with pytest.raises(ValueError, match="partition '2024-13-01' is not a calendar day"):
        validate_partition("2024-13-01")
    with pytest.raises(ValueError, match="partition '20240101'"):
        validate_partition("20240101")
    with pytest.raises(ValueError, match="format 'xml'"):
        validate_format("xml")
