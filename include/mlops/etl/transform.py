"""Column transforms: normalize raw strings, map missing tokens, cast, mask PII.

Everything here works on whole Arrow arrays with ``pyarrow.compute`` kernels; a
Python loop runs only on the few values a kernel could not decide (an int that
overflows, a timestamp with a day 31 in April), so a batch of 100k clean rows costs a
handful of vectorized passes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Logical column types of a dataset schema and their Arrow types in curated Parquet.
#: Timestamps are naive microseconds meaning UTC (offsets are converted on the way in).
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
TYPES: tuple[str, ...] = tuple(ARROW_TYPES)

# ``\.0*`` accepts "3.0" for an int: pandas writes nullable int columns that way and
# the conversion loses nothing. Anything with a real fraction is a type_cast error.
INT_PATTERN = r"^[+-]?\d+(\.0*)?$"
FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
TIMESTAMP_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_OFFSET_PATTERN = r"(Z|[+-]\d{2}:?\d{2})$"
TRUE_TOKENS: tuple[str, ...] = ("true", "t", "yes", "y", "1")
FALSE_TOKENS: tuple[str, ...] = ("false", "f", "no", "n", "0")

_NULL_STRING = pa.scalar(None, pa.string())


def normalize_strings(values: pa.Array, *, nfc: bool = True) -> pa.Array:
    """Strip surrounding whitespace and, for non-ASCII text, apply Unicode NFC.

    NFC matters because "é" typed on a Mac and on Windows can differ byte-wise;
    without it two equal categories or keys would not compare equal.

    Args:
        values: A string array.
        nfc: Whether to normalize to NFC (skipped anyway when every value is ASCII).

    Returns:
        The normalized string array.
    """
    values = pc.utf8_trim_whitespace(values)
    if not nfc or not len(values):
        return values
    non_ascii = pc.fill_null(pc.invert(pc.string_is_ascii(values)), False)
    if not pc.any(non_ascii).as_py():
        return values
    # Python's unicodedata on the non-ASCII values only: Arrow's utf8_normalize
    # returns decomposed text for "NFC" in the pyarrow build we pin (checked by tests).
    changed = [unicodedata.normalize("NFC", v) for v in pc.filter(values, non_ascii).to_pylist()]
    return pc.replace_with_mask(values, non_ascii, pa.array(changed, pa.string()))


def map_missing(values: pa.Array, missing_tokens: Iterable[str]) -> pa.Array:
    """Turn the raw strings that mean "no value" (``NA``, ``null``, ``""``...) into nulls.

    Args:
        values: A normalized string array.
        missing_tokens: The tokens, compared after whitespace stripping.

    Returns:
        The array with those values null.
    """
    tokens = pa.array(list(missing_tokens), pa.string())
    if not len(tokens):
        return values
    is_missing = pc.is_in(values, value_set=tokens)
    if not pc.any(is_missing).as_py():
        return values
    return pc.if_else(is_missing, _NULL_STRING, values)


def parse_values(values: pa.Array, type_name: str) -> tuple[pa.Array, pa.Array]:
    """Cast normalized strings to a schema type, value by value.

    Args:
        values: A normalized string array, missing values already null.
        type_name: One of :data:`TYPES`.

    Returns:
        The typed array (null where the value did not parse) and a boolean mask of the
        values that were present but did not parse (the ``type_cast`` failures).
    """
    if type_name == "string":
        return values, pa.repeat(False, len(values))
    parser = _PARSERS[type_name]
    typed = parser(values)
    failed = pc.and_(pc.is_valid(values), pc.is_null(typed))
    return typed, failed


def fast_cast(raw: pa.Array, type_name: str, missing_tokens: Sequence[str]) -> pa.Array | None:
    """One-kernel cast of raw strings for the common case: a column with no spaces,
    no missing tokens and no bad values.

    Returns the typed array when that cast succeeds and agrees with the full parse
    (:func:`parse_values` after normalization), else ``None``: then the caller runs
    the full path, which finds and names each bad value. A clean 100k-row int column
    costs one cast instead of trim + token lookup + regex + cast.

    Args:
        raw: Raw string values.
        type_name: The target schema type.
        missing_tokens: Raw strings that mean "missing".

    Returns:
        The typed array, or ``None`` when the full path must decide.
    """
    if type_name == "string" or _token_parses(tuple(missing_tokens), type_name):
        return None
    try:
        out = pc.cast(raw, ARROW_TYPES[type_name])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if type_name == "float64" and not pc.all(pc.is_finite(out)).as_py():
        return None  # "nan"/"inf": the full path maps tokens and rejects infinities
    if type_name == "int64" and (
        pc.any(pc.starts_with(raw, "0x")).as_py() or pc.any(pc.starts_with(raw, "0X")).as_py()
    ):
        return None  # Arrow reads "0x10" as 16; the schema means decimal digits
    return out


@functools.lru_cache(maxsize=64)
def _token_parses(tokens: tuple[str, ...], type_name: str) -> bool:
    """Whether a missing token would cast as a value (e.g. "-1" declared missing):
    then the fast cast would keep it as data, so it is not used."""
    for token in tokens:
        try:
            value = pc.cast(pa.array([token]), ARROW_TYPES[type_name])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if type_name == "float64" and not pc.all(pc.is_finite(value)).as_py():
            continue
        return True
    return False


def cast_typed(values: pa.Array, type_name: str) -> pa.Array | None:
    """Cast an already-typed Arrow array (Parquet input) when no value can fail.

    Args:
        values: A typed array.
        type_name: The target schema type.

    Returns:
        The cast array, or ``None`` when the cast could fail or lose information and
        the values must go through the string parser instead.
    """
    if values.type != ARROW_TYPES[type_name] and not _lossless(values.type, type_name):
        return None
    # A zoned timestamp keeps its UTC instant when the zone is dropped.
    out = pc.cast(values, ARROW_TYPES[type_name])
    if type_name == "float64" and len(out):
        # NaN is pandas' way of writing "missing"; in the lake missing is null.
        out = pc.if_else(pc.is_nan(out), pa.scalar(None, pa.float64()), out)
    return out


def _lossless(source: pa.DataType, type_name: str) -> bool:
    """Whether every value of ``source`` casts to ``type_name`` without failing or loss."""
    if type_name == "int64":
        return pa.types.is_integer(source) and source != pa.uint64()
    if type_name == "float64":
        return pa.types.is_floating(source) or pa.types.is_integer(source)
    if type_name == "date":
        return pa.types.is_date(source)
    if type_name == "timestamp":
        return pa.types.is_timestamp(source) or pa.types.is_date(source)
    return False


def is_string_type(data_type: pa.DataType) -> bool:
    """Whether a column holds raw text (string, large string, or dictionary of them)."""
    if pa.types.is_dictionary(data_type):
        return is_string_type(data_type.value_type)
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def to_strings(values: pa.Array) -> pa.Array:
    """Render any Arrow array as strings (raw values for quarantine, typed→string parsing)."""
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        return pa.array(
            [
                None if v is None else v.decode("utf-8", "backslashreplace")
                for v in values.to_pylist()
            ],
            pa.string(),
        )
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        # Nested values (lists, structs) have no Arrow string cast; JSON text is readable.
        import json

        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in values.to_pylist()],
            pa.string(),
        )


def pii_keys(salt: str) -> tuple[str, str]:
    """Two 16-character SipHash keys derived from the PII salt (any length)."""
    digest = hashlib.blake2b(salt.encode(), digest_size=24, person=b"mlops-pii").digest()
    text = base64.b64encode(digest).decode()  # 32 ASCII chars = 2 × 16-byte keys
    return text[:16], text[16:]


_HEX_PAIRS = np.frombuffer(
    b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8
).reshape(256, 2)


def mask_pii(values: pa.Array, salt: str) -> pa.Array:
    """Replace each value by a keyed 128-bit hash (32 hex chars); null stays null.

    Keyed with the secret salt so nobody can confirm a guessed e-mail by hashing it,
    yet deterministic so the same person hashes alike in every partition and joins
    still work. The hash is two SipHash-2-4 values under two keys derived from the
    salt (SipHash is a keyed PRF made for short inputs), computed vectorized by
    ``pandas.util.hash_array``: about 2× faster than a Python-level BLAKE2b per
    value, which dominated ingest time on PII-heavy files. A known-answer test pins
    the output, so a library upgrade that changed it would fail loudly rather than
    silently break joins across partitions.

    Args:
        values: Any array (rendered as strings first).
        salt: The secret salt (``settings.pii_salt``).

    Returns:
        A string array of 32-character hex digests.
    """
    import pandas as pd

    strings = to_strings(values)
    n = len(strings)
    if n == 0:
        return pa.array([], pa.string())
    objects = strings.to_numpy(zero_copy_only=False)
    if strings.null_count:
        objects = np.where(pc.is_valid(strings).to_numpy(zero_copy_only=False), objects, "")
    words = np.empty((n, 2), dtype=">u8")
    for i, key in enumerate(pii_keys(salt)):
        words[:, i] = pd.util.hash_array(objects, hash_key=key, categorize=False)
    hex_bytes = _HEX_PAIRS[words.view(np.uint8).reshape(n, 16)].reshape(-1)
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    validity = strings.buffers()[0] if strings.null_count else None
    if validity is not None and strings.offset:
        validity = pc.is_valid(strings).buffers()[1]
    return pa.StringArray.from_buffers(
        n,
        pa.py_buffer(offsets.tobytes()),
        pa.py_buffer(hex_bytes.tobytes()),
        validity,
        strings.null_count,
    )


# -- parsers -------------------------------------------------------------------------
def _only_matching(values: pa.Array, pattern: str) -> pa.Array:
    ok = pc.fill_null(pc.match_substring_regex(values, pattern=pattern), False)
    return pc.if_else(ok, values, _NULL_STRING)


def _cast_or_each(
    values: pa.Array, target: pa.DataType, parse_one: Callable[[str], Any]
) -> pa.Array:
    """Cast in one kernel call; if one value breaks it (overflow, day 31 of April),
    fall back to a per-value parse of this batch only."""
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, OverflowError):
        out = []
        for value in values.to_pylist():
            try:
                out.append(None if value is None else parse_one(value))
            except (ValueError, OverflowError):
                out.append(None)
        return pa.array(out, target)


def _parse_int_one(value: str) -> int:
    number = int(value.split(".", 1)[0])
    if not -(2**63) <= number < 2**63:
        raise OverflowError(value)
    return number


def _parse_int(values: pa.Array) -> pa.Array:
    candidates = _only_matching(values, INT_PATTERN)
    # Arrow's integer cast rejects a leading "+" and a ".0" tail; drop them first.
    candidates = pc.utf8_ltrim(candidates, characters="+")
    if pc.any(pc.match_substring(candidates, ".")).as_py():
        candidates = pc.replace_substring_regex(candidates, pattern=r"\.0*$", replacement="")
    return _cast_or_each(candidates, pa.int64(), _parse_int_one)


def _parse_float(values: pa.Array) -> pa.Array:
    candidates = pc.utf8_ltrim(_only_matching(values, FLOAT_PATTERN), characters="+")
    return _cast_or_each(candidates, pa.float64(), float)


def _parse_bool(values: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(values)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_TOKENS))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_TOKENS))
    known = pc.or_(is_true, is_false)
    return pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))


def _parse_date(values: pa.Array) -> pa.Array:
    # The regex screens out non-dates in one pass; Arrow's cast then rejects impossible
    # days (2024-02-30) that a lenient strptime would roll over into March.
    candidates = _only_matching(values, DATE_PATTERN)
    return _cast_or_each(candidates, pa.date32(), dt.date.fromisoformat)


def _parse_timestamp_one(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _parse_timestamp(values: pa.Array) -> pa.Array:
    candidates = _only_matching(values, TIMESTAMP_PATTERN)
    zoned = pc.fill_null(pc.match_substring_regex(candidates, pattern=_OFFSET_PATTERN), False)
    target = pa.timestamp("us")
    if not pc.any(zoned).as_py():
        return _cast_or_each(candidates, target, _parse_timestamp_one)
    # Values with an offset are converted to their UTC instant; Arrow only parses
    # offsets when casting to a zoned type, so the two kinds are cast apart.
    naive = _cast_or_each(pc.if_else(zoned, _NULL_STRING, candidates), target, _parse_timestamp_one)
    with_zone = pc.if_else(zoned, candidates, _NULL_STRING)
    try:
        utc = pc.cast(pc.cast(with_zone, pa.timestamp("us", tz="UTC")), target)
    except pa.ArrowInvalid:
        utc = pa.array(
            [None if v is None else _safe(_parse_timestamp_one, v) for v in with_zone.to_pylist()],
            target,
        )
    return pc.if_else(zoned, utc, naive)


def _safe(parse_one: Callable[[str], Any], value: str) -> Any:
    try:
        return parse_one(value)
    except (ValueError, OverflowError):
        return None


_PARSERS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "int64": _parse_int,
    "float64": _parse_float,
    "bool": _parse_bool,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}
