"""Landing files of the churn dataset as an upstream system delivers them, defects included.

CSV, JSON lines or Parquet, nulls spelled as ``""`` or ``"NA"``, and an exact number of defective records of each kind (see
:data:`DEFECT_KINDS`), each record carrying exactly one defect so that a validator's
counts can be checked to the row. The records are :mod:`include.mlops.demo.churn`'s
(:func:`~include.mlops.demo.churn.churn_table`), written in chunks of any size with the
same bytes as one piece.

Usage::

    python -m include.mlops.demo.landing --rows 100000 --out /tmp/churn.csv \\
        --defects wrong_type=3,duplicate_key=2
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from include.mlops.demo.churn import (
    COLUMNS,
    NULLABLE_COLUMNS,
    check_knobs,
    churn_table,
    parse_date,
)
from include.mlops.vocabulary import AUTO
from include.mlops.vocabulary import FORMATS as SOURCE_FORMATS

#: The files the generator writes: every ingest format (``auto`` only detects them).
FORMATS: tuple[str, ...] = tuple(f for f in SOURCE_FORMATS if f != AUTO)
DEFECT_KINDS: tuple[str, ...] = (
    "wrong_type",
    "missing_required",
    "duplicate_key",
    "out_of_domain",
    "broken_quoting",
    "wrong_encoding",
)
#: Defects a format cannot carry: Parquet columns are typed and binary, JSON has no quoting
#: to break.
UNSUPPORTED_DEFECTS: dict[str, frozenset[str]] = {
    "csv": frozenset(),
    "jsonl": frozenset({"broken_quoting"}),
    "parquet": frozenset({"wrong_type", "broken_quoting", "wrong_encoding"}),
}

# Latin-1 names for the wrong_encoding defect: one non-ASCII byte each in the output.
_LATIN1_NAMES: tuple[str, ...] = (
    "jos\xe9",
    "ren\xe9e",
    "zo\xeb",
    "fran\xe7ois",
    "m\xfcller",
    "in\xe9s",
)

_DEFECT_STREAM = 0x0DEFEC7

#: Rows generated and written per chunk by :func:`write_landing_file` (memory stays flat).
DEFAULT_CHUNK_ROWS = 250_000
#: Share of null cells spelled ``NA`` in CSV files (the rest are empty fields).
NA_TOKEN_SHARE = 0.3


@dataclass
class DefectReport:
    """What a landing file holds: how many records, which defects, how many are good.

    Attributes:
        path: Where the file was written.
        format: ``csv``, ``jsonl`` or ``parquet``.
        rows_total: Records written (good and defective; a header line is not a record).
        defects: Exact count of defective records per kind (every kind listed).
        expected_good: ``rows_total`` minus all defective records: what a correct
            validator keeps.
    """

    path: str
    format: str
    rows_total: int
    defects: dict[str, int] = field(default_factory=dict)
    expected_good: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "path": self.path,
            "format": self.format,
            "rows_total": self.rows_total,
            "defects": dict(self.defects),
            "expected_good": self.expected_good,
        }


# --------------------------------------------------------------------------- defects


def _plan_defects(
    n_rows: int, defects: Mapping[str, int], *, seed: int, fmt: str
) -> dict[int, tuple[str, int]]:
    """Choose which rows carry which defect: ``{row index: (kind, ordinal within kind)}``.

    Row 0 is always good so that every ``duplicate_key`` row has an earlier good row whose
    id it can repeat.
    """
    unknown = set(defects) - set(DEFECT_KINDS)
    if unknown:
        raise ValueError(f"unknown defect kinds {sorted(unknown)}; known: {list(DEFECT_KINDS)}")
    unsupported = {k for k, v in defects.items() if v} & UNSUPPORTED_DEFECTS[fmt]
    if unsupported:
        raise ValueError(f"a {fmt} file cannot carry defects {sorted(unsupported)}")
    if any(v < 0 for v in defects.values()):
        raise ValueError(f"defect counts must be >= 0: {dict(defects)}")
    kinds = [k for k in DEFECT_KINDS for _ in range(defects.get(k, 0))]
    if not kinds:
        return {}
    if len(kinds) > n_rows - 1:
        raise ValueError(f"{len(kinds)} defects do not fit in {n_rows} rows (row 0 stays good)")
    rng = np.random.default_rng([seed, _DEFECT_STREAM])
    rows = np.sort(rng.choice(np.arange(1, n_rows), size=len(kinds), replace=False))
    order = rng.permutation(len(kinds))
    ordinal: dict[str, int] = {}
    plan: dict[int, tuple[str, int]] = {}
    for row, idx in zip(rows.tolist(), order.tolist(), strict=True):
        kind = kinds[idx]
        plan[row] = (kind, ordinal.get(kind, 0))
        ordinal[kind] = ordinal.get(kind, 0) + 1
    return plan


def _duplicate_sources(plan: Mapping[int, tuple[str, int]], *, seed: int) -> dict[int, int]:
    """For each ``duplicate_key`` row, an earlier good row whose id it repeats."""
    rng = np.random.default_rng([seed, _DEFECT_STREAM, 1])
    sources: dict[int, int] = {}
    for row, (kind, _) in sorted(plan.items()):
        if kind != "duplicate_key":
            continue
        source = 0
        for _ in range(20):  # rejection sampling; row 0 is the guaranteed fallback
            candidate = int(rng.integers(0, row))
            if candidate not in plan:
                source = candidate
                break
        sources[row] = source
    return sources


def _overrides(kind: str, ordinal: int, *, dup_id: int | None) -> dict[str, Any]:
    """Field values that turn a good record into one with exactly one defect.

    ``None`` means an empty / null field. Only required columns are touched so a
    validator cannot reasonably read the defect as a legitimate null.
    """
    variants: dict[str, list[dict[str, Any]]] = {
        "wrong_type": [{"age": "abc"}, {"tenure_months": "twelve"}, {"monthly_charges": "12.3.4"}],
        "missing_required": [{"customer_id": None}, {"plan": None}],
        "out_of_domain": [{"age": 250}, {"plan": "gold"}],
    }
    if kind in variants:
        return variants[kind][ordinal % len(variants[kind])]
    if kind == "duplicate_key":
        return {"customer_id": dup_id}
    if kind == "wrong_encoding":
        name = _LATIN1_NAMES[ordinal % len(_LATIN1_NAMES)]
        return {"email": f"{name}.{1000 + ordinal}@example.com"}
    return {}


# --------------------------------------------------------------------------- writers


def _csv_text_table(table: pa.Table, row_start: int) -> pa.Table:
    """Spell some nulls ``NA`` (the others stay empty fields), like real exports do."""
    n = table.num_rows
    idx = np.arange(row_start, row_start + n, dtype=np.int64)
    arrays = []
    for pos, name in enumerate(table.column_names):
        col = table.column(name)
        if name in NULLABLE_COLUMNS and col.null_count:
            # A cheap deterministic choice per cell, so chunking cannot change it.
            use_na = ((idx * 2654435761 + pos * 97) % 1000) < NA_TOKEN_SHARE * 1000
            text = pc.cast(col, pa.string())
            col = pc.if_else(pc.and_(pc.is_null(col), pa.array(use_na)), pa.scalar("NA"), text)
        arrays.append(col)
    return pa.table(arrays, names=table.column_names)


def _row_as_text(table: pa.Table, i: int) -> list[str]:
    return [
        "" if (v := pc.cast(table.column(c).slice(i, 1), pa.string())[0].as_py()) is None else v
        for c in table.column_names
    ]


def _csv_defect_line(
    text_table: pa.Table, i: int, kind: str, ordinal: int, dup_id: int | None
) -> bytes:
    fields = _row_as_text(text_table, i)
    if kind == "broken_quoting":
        # Too many fields, never an unbalanced quote: a parser rejects this one line and
        # does not swallow the lines after it.
        email_at = COLUMNS.index("email")
        if ordinal % 2 == 0:
            fields[email_at] = "pat,o'brien@example.com"
        else:
            fields.append("unexpected")
        return ",".join(fields).encode("ascii")
    for name, value in _overrides(kind, ordinal, dup_id=dup_id).items():
        fields[COLUMNS.index(name)] = "" if value is None else str(value)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    # latin-1 for the wrong_encoding record: raw 0xE9-style bytes in a UTF-8 file.
    return buf.getvalue().encode("latin-1" if kind == "wrong_encoding" else "utf-8")


def _json_bytes(table: pa.Table) -> bytes:
    """Good records as JSON lines, built with Arrow kernels (no per-row Python)."""
    table = table.combine_chunks()
    parts: list[Any] = []
    for pos, name in enumerate(table.column_names):
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_date(col.type):
            text = pc.binary_join_element_wise('"', pc.cast(col, pa.string()), '"', "")
        else:
            text = pc.cast(col, pa.string())
        parts.append(("{" if pos == 0 else ",") + json.dumps(name) + ":")
        parts.append(pc.fill_null(text, "null"))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    arr = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(arr) == 0:
        return b""
    # The joined lines sit back to back in the string array's data buffer: hand that
    # buffer over instead of building a Python string per line.
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    return arr.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()


def _json_defect_line(
    table: pa.Table, i: int, kind: str, ordinal: int, dup_id: int | None
) -> bytes:
    record = table.slice(i, 1).to_pylist()[0]
    record["signup_date"] = record["signup_date"].isoformat()
    record.update(_overrides(kind, ordinal, dup_id=dup_id))
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return line.encode("latin-1" if kind == "wrong_encoding" else "utf-8")


_PARQUET_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("signup_date", pa.date32()),
        ("age", pa.int64()),
        ("tenure_months", pa.int64()),
        ("plan", pa.string()),
        ("monthly_charges", pa.float64()),
        ("total_charges", pa.float64()),
        ("support_calls", pa.int64()),
        ("region", pa.string()),
        ("payment_method", pa.string()),
        ("email", pa.string()),
        ("churned", pa.int64()),
    ]
)


def _apply_parquet_defects(
    table: pa.Table,
    chunk_defects: Mapping[int, tuple[str, int]],
    sources: Mapping[int, int],
    *,
    row_start: int,
    start_id: int,
) -> pa.Table:
    columns = {name: table.column(name).to_pylist() for name in ("customer_id", "age", "plan")}
    for row, (kind, ordinal) in chunk_defects.items():
        dup_id = start_id + sources[row] if row in sources else None
        for name, value in _overrides(kind, ordinal, dup_id=dup_id).items():
            columns[name][row - row_start] = value
    for name, values in columns.items():
        table = table.set_column(
            table.column_names.index(name), name, pa.array(values, _PARQUET_SCHEMA.field(name).type)
        )
    return table


def write_landing_file(
    path: str | Path,
    *,
    fmt: str = "csv",
    n_rows: int,
    seed: int = 0,
    start_id: int = 1,
    as_of: str | dt.date = "2026-11-01",
    noise: float = 1.0,
    drift: float = 0.0,
    defects: Mapping[str, int] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> DefectReport:
    """Write a landing file as an upstream system would, with an exact set of defects.

    Defective records replace generated ones (``rows_total == n_rows``), each carrying one
    defect: ``wrong_type`` (``age="abc"``...), ``missing_required`` (empty ``customer_id``
    or ``plan``), ``duplicate_key`` (the id of an earlier good row; otherwise valid),
    ``out_of_domain`` (``age=250`` or ``plan="gold"``), ``broken_quoting`` (CSV: a line
    with too many fields), ``wrong_encoding`` (CSV/JSONL: a latin-1 byte in the email).

    Args:
        path: Local file to write (parents are created).
        fmt: ``csv``, ``jsonl`` or ``parquet``.
        n_rows: Records to write.
        seed: Data seed (also places the defects).
        start_id: ``customer_id`` of the first record.
        as_of: Snapshot date.
        noise: Label noise scale.
        drift: 0..1 distribution shift.
        defects: ``{kind: count}``; kinds from :data:`DEFECT_KINDS`.
        chunk_rows: Rows generated and written at a time; the output does not depend on it.

    Returns:
        The :class:`DefectReport`.

    Raises:
        ValueError: Unknown format or defect kind, a defect the format cannot carry, or
            more defects than rows.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be > 0, got {chunk_rows}")
    check_knobs(noise=noise, drift=drift)
    counts = {k: int((defects or {}).get(k, 0)) for k in DEFECT_KINDS}
    plan = _plan_defects(n_rows, {**counts, **(defects or {})}, seed=seed, fmt=fmt)
    sources = _duplicate_sources(plan, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunks() -> Iterator[tuple[int, pa.Table, dict[int, tuple[str, int]]]]:
        for lo in range(0, n_rows, chunk_rows):
            hi = min(n_rows, lo + chunk_rows)
            table = churn_table(
                lo, hi, seed=seed, start_id=start_id, as_of=as_of, noise=noise, drift=drift
            )
            yield lo, table, {r: d for r, d in plan.items() if lo <= r < hi}

    if fmt == "parquet":
        with pq.ParquetWriter(path, _PARQUET_SCHEMA) as writer:
            for lo, table, in_chunk in chunks():
                if in_chunk:
                    table = _apply_parquet_defects(
                        table, in_chunk, sources, row_start=lo, start_id=start_id
                    )
                writer.write_table(table.cast(_PARQUET_SCHEMA))
            if n_rows == 0:
                writer.write_table(_PARQUET_SCHEMA.empty_table())
    else:
        with path.open("wb") as out:
            if fmt == "csv":
                out.write((",".join(COLUMNS) + "\n").encode())
            for lo, table, in_chunk in chunks():
                if fmt == "csv":
                    text = _csv_text_table(table, lo)
                    buf = io.BytesIO()
                    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
                    pacsv.write_csv(text, buf, options)
                    data = buf.getvalue()
                else:
                    data = _json_bytes(table)
                if in_chunk:
                    # Few records are defective: swap their lines in the finished chunk.
                    lines = data.split(b"\n")
                    for row, (kind, ordinal) in in_chunk.items():
                        dup = start_id + sources[row] if row in sources else None
                        if fmt == "csv":
                            line = _csv_defect_line(text, row - lo, kind, ordinal, dup)
                        else:
                            line = _json_defect_line(table, row - lo, kind, ordinal, dup)
                        lines[row - lo] = line
                    data = b"\n".join(lines)
                out.write(data)

    counts.update({k: int(v) for k, v in (defects or {}).items()})
    return DefectReport(
        path=str(path),
        format=fmt,
        rows_total=n_rows,
        defects=counts,
        expected_good=n_rows - sum(counts.values()),
    )


def write_demo_days(
    folder: str | Path,
    *,
    days: int,
    rows_per_day: int,
    start: str | dt.date = "2026-11-01",
    seed: int = 0,
    defects_on_days: Mapping[int, Mapping[str, int]] | None = None,
    dataset: str = "churn",
    fmt: str = "csv",
    drift_per_day: float = 0.0,
) -> list[tuple[str, Path, DefectReport]]:
    """Lay out several days of landing files like the lake's landing zone.

    Writes ``folder/<dataset>/dt=YYYY-MM-DD/churn.<fmt>``; customer ids are disjoint
    across days and each day has its own seed.

    Args:
        folder: Root folder (the landing zone, or a local stand-in for it).
        days: Number of daily partitions.
        rows_per_day: Records per day.
        start: First partition date.
        seed: Base seed; day ``d`` uses ``seed * 1000 + d``.
        defects_on_days: ``{day index (0-based): {kind: count}}``.
        dataset: Dataset name (the folder under ``folder``).
        fmt: File format.
        drift_per_day: Drift added per day (capped at 1), to simulate a slow shift.

    Returns:
        ``(partition, path, report)`` per day, in date order.
    """
    first = parse_date(start)
    written: list[tuple[str, Path, DefectReport]] = []
    for day in range(days):
        partition = (first + dt.timedelta(days=day)).isoformat()
        path = Path(folder) / dataset / f"dt={partition}" / f"churn.{fmt}"
        report = write_landing_file(
            path,
            fmt=fmt,
            n_rows=rows_per_day,
            seed=seed * 1000 + day,
            start_id=1 + day * rows_per_day,
            as_of=partition,
            drift=min(1.0, drift_per_day * day),
            defects=(defects_on_days or {}).get(day),
        )
        written.append((partition, path, report))
    return written


# --------------------------------------------------------------------------- CLI


def _parse_defects(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, count = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected kind=count, got {item!r}")
        out[kind.strip()] = int(count)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: write one landing file and print its report as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m include.mlops.demo.landing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, required=True, help="records to write")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--format", choices=FORMATS, default=None, help="default: from --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-id", type=int, default=1)
    parser.add_argument("--as-of", default="2026-11-01", help="snapshot date YYYY-MM-DD")
    parser.add_argument("--noise", type=float, default=1.0, help="label noise scale")
    parser.add_argument("--drift", type=float, default=0.0, help="distribution shift, 0..1")
    parser.add_argument(
        "--defects", type=_parse_defects, default={}, help="e.g. wrong_type=3,duplicate_key=2"
    )
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    args = parser.parse_args(argv)
    fmt = args.format or Path(args.out).suffix.lstrip(".").lower() or "csv"
    try:
        report = write_landing_file(
            args.out,
            fmt=fmt,
            n_rows=args.rows,
            seed=args.seed,
            start_id=args.start_id,
            as_of=args.as_of,
            noise=args.noise,
            drift=args.drift,
            defects=args.defects,
            chunk_rows=args.chunk_rows,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(report.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
