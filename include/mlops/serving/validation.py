"""Request bodies in, typed rows out: parsing and signature validation for ``/invocations``.

Accepted bodies (the SageMaker container contract plus MLflow's scoring forms):

- ``text/csv``: one line per row, the values in the signature's column order, no header
  (SageMaker's contract); ``text/csv; header=present`` says the first line names the
  columns (RFC 4180's parameter), ``header=absent`` that it does not. Without the
  parameter a first line is taken for a header only when it is unambiguous: every field
  is a signature column name;
- ``application/json``: one of ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
  ``{"dataframe_records": [{...}, ...]}``, ``{"instances": ...}`` or ``{"inputs": ...}``
  (the last two as a list of records, a dict of columns, or a list of positional rows in
  signature order). A ``params`` key next to the form is ignored.

Validation follows the model's MLflow signature, loosened where requests are looser than
the training data: the columns the pipeline reads are required (a null is fine, the
pipeline imputes it); the other signature columns (ids, PII the pipeline drops) are
type-checked only when present; columns the signature does not know are ignored. A
``long`` column takes whole numbers, numeric text such as ``"3"`` and nulls; a ``double``
column takes any number or numeric text. Every failure raises a :class:`RequestError`
whose status and message name the offending column, row and value.

The work is plain Python over lists on purpose: a request is usually one row, and the
DataFrame is built once per scored batch (:func:`frame_of`), not once per request.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from include.mlops.serving.rows import Rows, merged_columns
from include.mlops.serving.scoring import InputColumn
from include.mlops.settings import DEFAULT_MISSING_TOKENS

#: JSON forms MLflow's scoring server understands.
JSON_FORMS: tuple[str, ...] = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Content types /invocations accepts.
SUPPORTED_CONTENT_TYPES: tuple[str, ...] = ("application/json", "text/csv")
#: Text that means "no value" in CSV fields and in numeric columns.
MISSING_TEXT = frozenset(DEFAULT_MISSING_TOKENS)

_INT_TYPES = frozenset({"long", "integer"})
_FLOAT_TYPES = frozenset({"double", "float"})
_TEXT_TYPES = frozenset({"string", "binary"})
_SHOWN_VALUE_CHARS = 60
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RequestError(Exception):
    """A request the endpoint refuses; ``status`` is the HTTP status to answer with."""

    status: int = 400

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status


class MalformedBodyError(RequestError):
    """The body cannot be parsed, or is not one of the accepted shapes (400)."""

    status = 400


class UnsupportedContentTypeError(RequestError):
    """The content type is not JSON or CSV (415)."""

    status = 415


class PayloadTooLargeError(RequestError):
    """The body is over the payload limit (413)."""

    status = 413


class InvalidInputError(RequestError):
    """A column is missing or a value has the wrong type for the signature (422)."""

    status = 422


@dataclass(frozen=True)
class ParsedRows:
    """A body turned into columns, before validation.

    Attributes:
        columns: Column names in request order.
        data: Column → one raw value per row.
        n_rows: Number of rows.
        from_text: Values came from CSV (every value is text; empty means null).
    """

    columns: list[str]
    data: dict[str, list[Any]]
    n_rows: int
    from_text: bool = False


def media_type(content_type: str | None) -> str:
    """The supported media type a ``Content-Type`` header names.

    Args:
        content_type: The header (parameters such as ``charset`` are ignored).

    Returns:
        ``application/json`` or ``text/csv``.

    Raises:
        UnsupportedContentTypeError: Missing or anything else (415).
    """
    if content_type:
        base = content_type.split(";", 1)[0].strip().lower()
        if base in SUPPORTED_CONTENT_TYPES:
            return base
        if base.endswith("+json"):
            return "application/json"
    shown = repr(content_type) if content_type else "no Content-Type header"
    raise UnsupportedContentTypeError(
        f"unsupported content type {shown}: send application/json (MLflow scoring forms "
        f"{', '.join(JSON_FORMS)}) or text/csv (rows in the signature's column order; "
        "'text/csv; header=present' when the first line names the columns)"
    )


def csv_header(content_type: str | None) -> bool | None:
    """What a ``text/csv`` Content-Type says of a header line (RFC 4180's ``header``).

    Returns:
        True for ``header=present``, False for ``header=absent``, None when it says nothing.

    Raises:
        MalformedBodyError: ``header`` has another value (400).
    """
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() != "header":
            continue
        value = value.strip().strip('"').lower()
        if value in ("present", "absent"):
            return value == "present"
        raise MalformedBodyError(
            f"Content-Type parameter header={value!r}: use header=present or header=absent"
        )
    return None


def parse_body(
    body: bytes,
    media: str,
    signature_order: Sequence[str] = (),
    *,
    header: bool | None = None,
) -> ParsedRows:
    """Parse a request body into columns.

    Args:
        body: The raw body.
        media: ``application/json`` or ``text/csv`` (see :func:`media_type`).
        signature_order: The model's input column names in signature order, which
            positional rows (headerless CSV lines, JSON lists without names) are read in.
        header: Whether a CSV body starts with a header line (:func:`csv_header`); None
            detects it: a header only when every field of the first line is a signature
            column name.

    Returns:
        The parsed rows.

    Raises:
        MalformedBodyError: Not decodable, not parseable, or not an accepted shape (400).
        InvalidInputError: Parsed, but holds no rows or repeats a column (422).
    """
    if not body or not body.strip():
        raise MalformedBodyError("the request body is empty")
    if media == "text/csv":
        return _parse_csv(body, signature_order, header)
    return _parse_json(body, signature_order)


class InputSchema:
    """The checks and coercions one model version applies to requests.

    Args:
        inputs: The model's signature columns (``Scorer.inputs``).
        required: Columns a request must carry (the ones the pipeline reads).
    """

    def __init__(self, inputs: Iterable[InputColumn], required: Iterable[str]) -> None:
        self.inputs: list[InputColumn] = list(inputs)
        self.types: dict[str, str] = {c.name: c.type for c in self.inputs}
        self.required: list[str] = list(dict.fromkeys(required))
        for name in self.required:
            # A pipeline column the signature does not type is checked as "anything".
            self.types.setdefault(name, "any")
        self.order: list[str] = [c.name for c in self.inputs] or list(self.required)
        self._coercers = {
            name: _COERCERS.get(kind, _coerce_any) for name, kind in self.types.items()
        }

    @classmethod
    def for_scorer(cls, scorer: Any) -> InputSchema:
        """The schema of a :class:`~include.mlops.serving.scoring.Scorer`."""
        from include.mlops.features.pipeline import input_columns

        try:
            required = input_columns(scorer.pipeline)
        except (AttributeError, KeyError, TypeError):
            required = [c.name for c in scorer.inputs if c.required]
        return cls(scorer.inputs, required)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: every known column, its type, whether it is required."""
        required = set(self.required)
        return {
            name: {"type": kind, "required": name in required} for name, kind in self.types.items()
        }

    def validate(self, parsed: ParsedRows) -> Rows:
        """Check required columns and coerce every known column's values.

        Args:
            parsed: Output of :func:`parse_body`.

        Returns:
            The rows with only signature columns, values coerced to their types.

        Raises:
            InvalidInputError: A required column is missing, or a value does not fit its
                column's type (the message names column, row and value).
        """
        missing = [name for name in self.required if name not in parsed.data]
        if missing:
            raise InvalidInputError(
                f"missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)}; the model reads "
                f"{', '.join(self.required)} (a null value is accepted, an absent column is not)"
            )
        out: dict[str, list[Any]] = {}
        from_text = parsed.from_text
        for name, values in parsed.data.items():
            coerce = self._coercers.get(name)
            if coerce is None:
                continue  # not in the signature: the pipeline would ignore it
            try:
                out[name] = [coerce(v, from_text) for v in values]
            except _BadValue as bad:
                row = _first_bad_row(coerce, values, from_text)
                raise InvalidInputError(
                    f"column {name!r}, row {row}: {bad.reason} (the model's signature types "
                    f"{name!r} as {self.types[name]})"
                ) from None
        return Rows(out, parsed.n_rows)


def frame_of(batch: Sequence[Rows]) -> pd.DataFrame:
    """One DataFrame for the rows of one or more requests (columns missing in some → null)."""
    return pd.DataFrame(merged_columns(batch))


# -- parsing ------------------------------------------------------------------------------
def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedBodyError(
            f"the body is not UTF-8 text (byte {error.start}: {body[error.start : error.start + 1]!r})"
        ) from None


def _parse_csv(body: bytes, signature_order: Sequence[str], header: bool | None) -> ParsedRows:
    text = _decode(body)
    try:
        lines = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as error:
        raise MalformedBodyError(f"the CSV body cannot be parsed: {error}") from None
    first = [field.strip() for field in lines[0]]
    if header is None:
        known = set(signature_order)
        header = bool(known) and all(field in known for field in first)
    if header:
        names, body_lines, where = first, lines[1:], "the header has"
        _check_names(names, "CSV header")
    else:
        names, body_lines, where = list(signature_order), lines, "rows without a header need"
        if not names:
            raise InvalidInputError(
                "this model has no input signature to read headerless CSV by: send "
                "'text/csv; header=present' with a header line naming the columns"
            )
    width = len(names)
    data: dict[str, list[Any]] = {name: [] for name in names}
    columns = list(data.values())
    first_number = 2 if header else 1
    for number, row in enumerate(body_lines, start=first_number):
        if len(row) != width:
            shown = f"{', '.join(names[:8])}{', ...' if width > 8 else ''}"
            detail = f"CSV line {number} has {len(row)} fields, {where} {width} ({shown})"
            if not header:
                detail += (
                    "; values go in the signature's column order, or send "
                    "'text/csv; header=present' with a header line"
                )
                raise InvalidInputError(detail)
            raise MalformedBodyError(detail)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    if not body_lines:
        raise InvalidInputError(
            "the CSV body holds a header and no rows (a header line names the columns, "
            "then one line per row)"
        )
    return ParsedRows(names, data, len(body_lines), from_text=True)


def _parse_json(body: bytes, signature_order: Sequence[str]) -> ParsedRows:
    try:
        document = json.loads(body)
    except UnicodeDecodeError:
        _decode(body)  # raises with the offending byte
        raise
    except ValueError as error:
        raise MalformedBodyError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedBodyError("the JSON body is nested too deeply to be a table") from None
    if not isinstance(document, dict):
        raise MalformedBodyError(
            f"the JSON body is a {_json_type(document)}; expected an object with one of "
            f'{", ".join(JSON_FORMS)} (e.g. {{"dataframe_records": [{{...}}]}})'
        )
    forms = [key for key in JSON_FORMS if key in document]
    unknown = sorted(set(document) - set(JSON_FORMS) - {"params"})
    if len(forms) != 1 or unknown:
        found = ", ".join(repr(k) for k in document) or "no keys"
        raise MalformedBodyError(
            f"the JSON body must hold exactly one of {', '.join(JSON_FORMS)} "
            f"(plus optional 'params'); it has {found}"
        )
    form = forms[0]
    payload = document[form]
    if form == "dataframe_split":
        return _split(payload)
    if form == "dataframe_records":
        if not isinstance(payload, list):
            raise MalformedBodyError(
                f"dataframe_records must be a list of objects, got a {_json_type(payload)}"
            )
        return _records(payload, form)
    return _tensor_like(payload, form, signature_order)


def _split(payload: Any) -> ParsedRows:
    if not isinstance(payload, dict):
        raise MalformedBodyError(
            f"dataframe_split must be an object with 'columns' and 'data', got a {_json_type(payload)}"
        )
    columns = payload.get("columns")
    rows = payload.get("data")
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise MalformedBodyError(
            "dataframe_split needs 'columns' (a list of names) and 'data' (a list of rows); "
            f"got columns={_json_type(columns)}, data={_json_type(rows)}"
        )
    names = [str(c) for c in columns]
    _check_names(names, "dataframe_split.columns")
    width = len(names)
    data: dict[str, list[Any]] = {name: [] for name in names}
    lists = list(data.values())
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else f"a {_json_type(row)}"
            raise MalformedBodyError(
                f"dataframe_split.data row {i} has {got}; every row needs {width} (one per column)"
            )
        for column, value in zip(lists, row, strict=True):
            column.append(value)
    if not rows:
        raise InvalidInputError("dataframe_split.data holds no rows")
    return ParsedRows(names, data, len(rows))


def _records(records: list[Any], where: str) -> ParsedRows:
    if not records:
        raise InvalidInputError(f"{where} holds no rows")
    if len(records) == 1 and isinstance(records[0], dict):
        # The common case, one record: no second pass.
        record = records[0]
        names = [str(k) for k in record]
        return ParsedRows(names, {str(k): [v] for k, v in record.items()}, 1)
    names_seen: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise MalformedBodyError(
                f"{where}[{i}] is a {_json_type(record)}; every record must be an object "
                "of column: value"
            )
        names_seen.update(dict.fromkeys(str(k) for k in record))
    names = list(names_seen)
    data = {name: [record.get(name) for record in records] for name in names}
    return ParsedRows(names, data, len(records))


def _tensor_like(payload: Any, form: str, signature_order: Sequence[str]) -> ParsedRows:
    if isinstance(payload, dict):
        if not payload:
            raise InvalidInputError(f"{form} holds no columns")
        values = list(payload.values())
        if all(isinstance(v, list) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                sizes = ", ".join(f"{k}={len(v)}" for k, v in payload.items())
                raise MalformedBodyError(f"{form} columns have different lengths ({sizes})")
            n_rows = lengths.pop()
            if n_rows == 0:
                raise InvalidInputError(f"{form} holds no rows")
            return ParsedRows(
                [str(k) for k in payload], {str(k): v for k, v in payload.items()}, n_rows
            )
        if any(isinstance(v, list | dict) for v in values):
            raise MalformedBodyError(
                f"{form} as an object must map every column to a list of values (columnar) "
                "or every column to one value (one row)"
            )
        return _records([payload], form)
    if not isinstance(payload, list):
        raise MalformedBodyError(
            f"{form} must be a list of records, a list of rows or an object of columns; "
            f"got a {_json_type(payload)}"
        )
    if not payload:
        raise InvalidInputError(f"{form} holds no rows")
    if all(isinstance(row, dict) for row in payload):
        return _records(payload, form)
    if all(isinstance(row, list) for row in payload):
        names = list(signature_order)
        for i, row in enumerate(payload):
            if len(row) != len(names):
                raise InvalidInputError(
                    f"{form}[{i}] has {len(row)} positional values; rows without column "
                    f"names need {len(names)}, in signature order: {', '.join(names)}"
                )
        data = {name: [row[j] for row in payload] for j, name in enumerate(names)}
        return ParsedRows(names, data, len(payload))
    raise MalformedBodyError(
        f"{form} must be a list of records (objects) or of rows (lists), not a mix or scalars"
    )


def _check_names(names: list[str], where: str) -> None:
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"{where} repeats column {', '.join(repr(n) for n in twice)}")
    if not names or any(not n for n in names):
        raise MalformedBodyError(f"{where} has an empty column name")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


# -- coercion -----------------------------------------------------------------------------
class _BadValue(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 3] + "..."


def _coerce_int(value: Any, from_text: bool) -> int | None:
    if value is None:
        return None
    kind = type(value)
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return value  # type: ignore[no-any-return]
        raise _BadValue(f"{_show(value)} is outside the 64-bit integer range")
    if kind is float:
        if math.isnan(value):
            return None
        if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        if math.isinf(value) or value.is_integer():
            raise _BadValue(f"{_show(value)} is outside the 64-bit integer range")
        raise _BadValue(f"{_show(value)} is not a whole number")
    if kind is str:
        text = value.strip()
        if text in MISSING_TEXT:
            return None
        try:
            return _coerce_int(int(text), from_text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise _BadValue(f"{_show(value)} is not a number") from None
        return _coerce_int(number, from_text)
    raise _BadValue(f"{_show(value)} ({_json_type(value)}) is not a whole number")


def _coerce_float(value: Any, from_text: bool) -> float | None:
    if value is None:
        return None
    kind = type(value)
    if kind is float:
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise _BadValue(f"{_show(value)} is not a finite number")
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    if kind is str:
        text = value.strip()
        if text in MISSING_TEXT:
            return None
        try:
            number = float(text)
        except ValueError:
            raise _BadValue(f"{_show(value)} is not a number") from None
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise _BadValue(f"{_show(value)} is not a finite number")
        return number
    raise _BadValue(f"{_show(value)} ({_json_type(value)}) is not a number")


def _coerce_text(value: Any, from_text: bool) -> str | None:
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        return None if from_text and value == "" else value  # type: ignore[no-any-return]
    if kind is bool:
        return str(value)
    if kind is int:
        return str(value)
    if kind is float:
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    raise _BadValue(f"a {_json_type(value)} is not a text value")


_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


def _coerce_bool(value: Any, from_text: bool) -> bool | None:
    if value is None:
        return None
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is int and value in (0, 1):
        return bool(value)
    if kind is str:
        text = value.strip()
        if text in MISSING_TEXT:
            return None
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise _BadValue(f"{_show(value)} is not a boolean (true/false)")


def _coerce_datetime(value: Any, from_text: bool) -> str | None:
    if value is None:
        return None
    if type(value) is str:
        text = value.strip()
        if text in MISSING_TEXT:
            return None
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            raise _BadValue(f"{_show(value)} is not an ISO-8601 date or time") from None
        return text
    raise _BadValue(f"{_show(value)} ({_json_type(value)}) is not an ISO-8601 date text")


def _coerce_any(value: Any, from_text: bool) -> Any:
    if isinstance(value, dict | list):
        raise _BadValue(f"a {_json_type(value)} cannot be a cell value")
    if from_text and value == "":
        return None
    return value


_COERCERS = {
    **dict.fromkeys(_INT_TYPES, _coerce_int),
    **dict.fromkeys(_FLOAT_TYPES, _coerce_float),
    **dict.fromkeys(_TEXT_TYPES, _coerce_text),
    "boolean": _coerce_bool,
    "datetime": _coerce_datetime,
}


def _first_bad_row(coerce: Any, values: list[Any], from_text: bool) -> int:
    for i, value in enumerate(values):
        try:
            coerce(value, from_text)
        except _BadValue:
            return i
    return -1


# -- explanations ------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplainRequest:
    """What ``?explain=true`` (and ``explain_top=k``) asks for.

    Attributes:
        top: Keep the ``top`` largest |contributions| per row (``None``: every column).
    """

    top: int | None = None


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def explain_request(query_string: bytes) -> ExplainRequest | None:
    """The explanation a query string asks for, or ``None`` (the usual, free case).

    Args:
        query_string: The raw query (``explain=true&explain_top=3``); other parameters
            are ignored.

    Raises:
        RequestError: 400 naming ``explain`` or ``explain_top`` when its value is not a
            boolean / a positive whole number, or ``explain_top`` comes without
            ``explain=true``.
    """
    if not query_string:
        return None
    from urllib.parse import parse_qs

    query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    raw = query.get("explain", [""])[-1].strip().lower()
    if raw not in _TRUE | _FALSE:
        raise RequestError(f"query parameter explain={raw!r} must be true or false")
    top_raw = query.get("explain_top", [None])[-1]
    top: int | None = None
    if top_raw is not None:
        if not top_raw.strip().isdigit() or int(top_raw) < 1:
            raise RequestError(
                f"query parameter explain_top={top_raw!r} must be a whole number of columns >= 1"
            )
        top = int(top_raw)
        if raw not in _TRUE:
            raise RequestError("query parameter explain_top needs explain=true")
    return ExplainRequest(top=top) if raw in _TRUE else None
