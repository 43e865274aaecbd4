"""Extract: stream raw record batches out of CSV, JSON-lines and Parquet files.

Memory stays flat: files are read in byte blocks cut at line ends (CSV, JSON lines)
or row-group batches (Parquet), never whole. CSV and JSON-lines values are kept as
raw strings so the transform step can cast and judge each value on its own.

Every input record comes out exactly once: either as a row of a batch or as a
:class:`RejectedRecord` (``malformed_row``: broken quoting, wrong column count, a JSON
line that does not parse or is not an object; ``invalid_encoding``: bytes that are not
UTF-8). Row numbers are physical line numbers in the file (the CSV header is line 1),
or the 1-based row index for Parquet, so a person can find the record.

CSV records are one per line: a quoted value spanning lines is treated as broken
quoting (quarantined, not glued to the next lines), because one unbalanced quote
would otherwise swallow every following record into one value.
"""

from __future__ import annotations

import csv
import json
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from include.mlops.etl.naming import validate_format

#: Rows per batch: large enough that per-batch overheads (kernel dispatch, Parquet
#: page writes) vanish, small enough that a batch of wide rows stays a few tens of MB.
DEFAULT_BATCH_ROWS = 131_072
#: A first guess of bytes per line, to size the first block (later blocks use the
#: measured average, so a wide file still gets about ``batch_rows`` per batch).
_GUESS_LINE_BYTES = 128
_MIN_BLOCK_BYTES = 16 << 10
_MAX_BLOCK_BYTES = 64 << 20

_COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
_FORMAT_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class EmptySourceError(ValueError):
    """The source holds no records (no files, zero bytes, or a CSV header only)."""


@dataclass
class RejectedRecord:
    """An input record that could not even be split into columns.

    Attributes:
        reason: ``malformed_row`` or ``invalid_encoding``.
        row_number: Line number in the source file (1-based).
        raw: The record's text (non-UTF-8 bytes shown as ``\\xNN`` escapes).
        values: Its values by column when they could still be told apart, else None.
    """

    reason: str
    row_number: int
    raw: str
    values: dict[str, str | None] | None = None


@dataclass
class RawBatch:
    """A batch of raw records from one source file.

    Attributes:
        data: The well-formed records (string columns for CSV/JSON lines, typed for Parquet).
        source_file: The file they came from.
        row_numbers: The source row number of each row of ``data``.
        rejected: Records that could not be split into columns.
        first_of_file: Whether this is the file's first batch (schema checks run there).
    """

    data: pa.RecordBatch
    source_file: str
    row_numbers: np.ndarray
    rejected: list[RejectedRecord] = field(default_factory=list)
    first_of_file: bool = False

    @property
    def records(self) -> int:
        """Input records this batch accounts for (rows + rejected)."""
        return self.data.num_rows + len(self.rejected)


def _split_suffix(path: str) -> tuple[str, str | None]:
    base = posixpath.basename(path).lower()
    root, ext = posixpath.splitext(base)
    if ext in _COMPRESSION_SUFFIXES:
        return posixpath.splitext(root)[1], _COMPRESSION_SUFFIXES[ext]
    return ext, None


def detect_format(path: str, head: bytes | None = None) -> str:
    """Guess a file's format from its name (``.csv``, ``.jsonl``, ``.parquet``, optionally
    ``.gz``/``.zst``/``.bz2``), else from its first bytes.

    Args:
        path: File path.
        head: The file's first bytes, used when the name says nothing.

    Returns:
        ``csv``, ``jsonl`` or ``parquet``.
    """
    ext, _ = _split_suffix(path)
    if ext in _FORMAT_SUFFIXES:
        return _FORMAT_SUFFIXES[ext]
    if head is not None:
        if head.startswith(b"PAR1"):
            return "parquet"
        if head.lstrip().startswith(b"{"):
            return "jsonl"
    return "csv"


def list_source_files(fs: pafs.FileSystem, path: str) -> list[str]:
    """The files a source names: the file itself, or every file under a folder/prefix.

    Hidden and bookkeeping files (``.``/``_`` prefixed, e.g. ``_SUCCESS``) are skipped.

    Args:
        fs: The filesystem holding the source.
        path: A file or folder path inside ``fs``.

    Returns:
        Sorted file paths.

    Raises:
        FileNotFoundError: When nothing exists at ``path``.
    """
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [path]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"source {path!r} does not exist")
    files = []
    for item in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        relative = item.path[len(path.rstrip("/")) + 1 :]
        if item.type != pafs.FileType.File:
            continue
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        files.append(item.path)
    return sorted(files)


def read_batches(
    fs: pafs.FileSystem,
    paths: Sequence[str],
    fmt: str = "auto",
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[RawBatch]:
    """Stream raw record batches from source files, one file after another.

    Args:
        fs: The filesystem holding the files (local or S3).
        paths: File paths inside ``fs``.
        fmt: ``auto`` (by file name), ``csv``, ``jsonl`` or ``parquet``.
        batch_rows: Target rows per batch.

    Yields:
        Raw batches; a file with no records yields nothing.
    """
    validate_format(fmt)
    for path in paths:
        file_fmt = fmt
        if fmt == "auto":
            file_fmt = detect_format(path)
            ext, _ = _split_suffix(path)
            if ext not in _FORMAT_SUFFIXES:
                with fs.open_input_stream(path) as head_stream:
                    file_fmt = detect_format(path, bytes(head_stream.read(4096)))
        reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[file_fmt]
        first = True
        for batch in reader(fs, path, batch_rows):
            batch.first_of_file = first
            first = False
            yield batch


# -- line blocks (CSV, JSON lines) -----------------------------------------------------
class _LineBlocks:
    """Byte blocks of whole lines; ``block_bytes`` may be retuned between blocks."""

    def __init__(self, stream: Any, block_bytes: int) -> None:
        self.stream = stream
        self.block_bytes = block_bytes
        self.pending = b""
        self.next_line = 1  # physical line number of the next block's first line
        self.lines = 0  # lines in the block just yielded

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        while True:
            block = bytes(self.stream.read(self.block_bytes))
            if not block:
                if self.pending:
                    chunk, self.pending = self.pending, b""
                    yield chunk, self._advance(chunk)
                return
            data = self.pending + block if self.pending else block
            cut = data.rfind(b"\n")
            if cut < 0:
                self.pending = data
                continue
            chunk, self.pending = data[: cut + 1], data[cut + 1 :]
            yield chunk, self._advance(chunk)

    def _advance(self, chunk: bytes) -> int:
        first = self.next_line
        self.lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        self.next_line += self.lines
        return first

    def tune(self, chunk: bytes, lines: int, batch_rows: int) -> None:
        """Size the next block to hold about ``batch_rows`` lines."""
        per_line = max(1, len(chunk) // max(1, lines))
        self.block_bytes = min(_MAX_BLOCK_BYTES, max(_MIN_BLOCK_BYTES, per_line * batch_rows))


def _first_block_bytes(batch_rows: int) -> int:
    return min(_MAX_BLOCK_BYTES, max(_MIN_BLOCK_BYTES, batch_rows * _GUESS_LINE_BYTES))


def _open(fs: pafs.FileSystem, path: str) -> Any:
    _, compression = _split_suffix(path)
    return fs.open_input_stream(path, compression=compression)


def _split_lines(chunk: bytes) -> list[bytes]:
    lines = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decode(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- CSV -------------------------------------------------------------------------------
def _read_csv(fs: pafs.FileSystem, path: str, batch_rows: int) -> Iterator[RawBatch]:
    with _open(fs, path) as stream:
        blocks = _LineBlocks(stream, _first_block_bytes(batch_rows))
        names: list[str] | None = None
        for chunk, first_line in blocks:
            lines = blocks.lines
            if names is None:
                header, _, chunk = chunk.partition(b"\n")
                names = _parse_header(header, path)
                first_line += 1
                lines -= 1
                if not chunk:
                    continue
            blocks.tune(chunk, lines, batch_rows)
            batch = _parse_csv_block(chunk, names, first_line, lines)
            if batch.data.num_rows or batch.rejected:
                yield RawBatch(batch.data, path, batch.row_numbers, batch.rejected)


def _parse_header(header: bytes, path: str) -> list[str]:
    try:
        text = header.rstrip(b"\r").decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the CSV header is not UTF-8 ({exc})") from exc
    names = [n.strip() for n in next(csv.reader([text]), [])]
    if not names or any(not n for n in names):
        raise ValueError(f"{path}: the CSV header {text!r} has an empty column name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: the CSV header repeats column(s) {duplicates}")
    return names


@dataclass
class _Parsed:
    data: pa.RecordBatch
    row_numbers: np.ndarray
    rejected: list[RejectedRecord]


def _arrow_csv(
    data: bytes, names: list[str], threads: bool
) -> tuple[pa.RecordBatch, list[tuple[int | None, str]]]:
    """Parse CSV lines with Arrow. Multi-threaded parsing has no row numbers, so it
    collects no invalid rows either: any bad row raises and the careful path
    (single-threaded, on lines known to be UTF-8) takes over."""
    invalid: list[tuple[int | None, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    table = pv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),  # zero-copy; a BytesIO would go through Python
        read_options=pv.ReadOptions(column_names=names, use_threads=threads),
        parse_options=pv.ParseOptions(invalid_row_handler=None if threads else on_invalid),
        # Every value stays a string, "" included: casting is judged per value later.
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return _one_batch(table), invalid


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    table = table.combine_chunks()
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=table.schema) if not batches else batches[0]


def _parse_csv_block(chunk: bytes, names: list[str], first_line: int, lines: int) -> _Parsed:
    # Fast path: Arrow's multi-threaded parser over the whole block. It is right when
    # it returns one row per line and rejects none: a blank line (skipped), a quote
    # read across lines, a wrong column count or bad UTF-8 (an error) all break that,
    # and then the careful path finds the lines at fault.
    try:
        data, invalid = _arrow_csv(chunk, names, threads=True)
    except pa.ArrowInvalid:
        data, invalid = None, [(None, "")]
    if data is not None and not invalid and data.num_rows == lines:
        return _Parsed(data, np.arange(first_line, first_line + lines, dtype=np.int64), [])
    return _parse_csv_lines(_split_lines(chunk), names, first_line)


def _parse_csv_lines(lines: list[bytes], names: list[str], first_line: int) -> _Parsed:
    rejected: list[RejectedRecord] = []
    good: list[int] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue  # a blank line is not a record
        text = _decode(line)
        if text is None:
            raw = line.decode("utf-8", "backslashreplace")
            rejected.append(
                RejectedRecord(
                    "invalid_encoding", first_line + index, raw, _split_values(raw, names)
                )
            )
        elif line.count(b'"') % 2:
            rejected.append(RejectedRecord("malformed_row", first_line + index, text))
        else:
            good.append(index)
    data: pa.RecordBatch | None = None
    kept: list[int] = []
    if good:
        try:
            data, invalid = _arrow_csv(b"\n".join(lines[i] for i in good), names, threads=False)
        except pa.ArrowInvalid:
            data, invalid = None, []
        if data is not None and data.num_rows + len(invalid) == len(good):
            bad = {number - 1 for number, _ in invalid if number is not None}
            if len(bad) == len(invalid):
                kept = [i for n, i in enumerate(good) if n not in bad]
                rejected += [
                    RejectedRecord("malformed_row", first_line + good[n], lines[good[n]].decode())
                    for n in sorted(bad)
                ]
            else:
                data = None
        else:
            data = None
        if data is None:
            # Arrow disagreed with the line count (a quote it read across lines):
            # settle each line on its own with the csv module. Rare, so Python speed is fine.
            data, kept, more = _python_csv(lines, good, names, first_line)
            rejected += more
    if data is None:
        data = pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)
    rejected.sort(key=lambda r: r.row_number)
    row_numbers = np.asarray(kept, dtype=np.int64) + first_line
    return _Parsed(data, row_numbers, rejected)


def _split_values(text: str, names: list[str]) -> dict[str, str | None] | None:
    try:
        values = next(csv.reader([text], strict=True), [])
    except csv.Error:
        return None
    return dict(zip(names, values, strict=True)) if len(values) == len(names) else None


def _python_csv(
    lines: list[bytes], good: list[int], names: list[str], first_line: int
) -> tuple[pa.RecordBatch, list[int], list[RejectedRecord]]:
    columns: list[list[str]] = [[] for _ in names]
    kept: list[int] = []
    rejected = []
    for index in good:
        text = lines[index].decode()
        values = _split_values(text, names)
        if values is None:
            rejected.append(RejectedRecord("malformed_row", first_line + index, text))
            continue
        kept.append(index)
        for column, value in zip(columns, values.values(), strict=True):
            column.append(value or "")
    data = pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], names=names)
    return data, kept, rejected


# -- JSON lines ------------------------------------------------------------------------
def _json_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def _read_jsonl(fs: pafs.FileSystem, path: str, batch_rows: int) -> Iterator[RawBatch]:
    names: list[str] = []  # keys in first-seen order across the file
    with _open(fs, path) as stream:
        blocks = _LineBlocks(stream, _first_block_bytes(batch_rows))
        for chunk, first_line in blocks:
            lines = _split_lines(chunk)
            blocks.tune(chunk, len(lines), batch_rows)
            records: list[dict[str, Any]] = []
            row_numbers: list[int] = []
            rejected: list[RejectedRecord] = []
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                text = _decode(line)
                if text is None:
                    raw = line.decode("utf-8", "backslashreplace")
                    rejected.append(RejectedRecord("invalid_encoding", first_line + index, raw))
                    continue
                try:
                    record = json.loads(text)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    rejected.append(RejectedRecord("malformed_row", first_line + index, text))
                    continue
                for key in record:
                    if key not in names:
                        names.append(key)
                records.append(record)
                row_numbers.append(first_line + index)
            if not records and not rejected:
                continue
            data = pa.RecordBatch.from_arrays(
                [pa.array([_json_value(r.get(n)) for r in records], pa.string()) for n in names],
                names=list(names),
            )
            yield RawBatch(data, path, np.asarray(row_numbers, dtype=np.int64), rejected)


# -- Parquet ---------------------------------------------------------------------------
def _read_parquet(fs: pafs.FileSystem, path: str, batch_rows: int) -> Iterator[RawBatch]:
    with fs.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        next_row = 1
        for batch in parquet.iter_batches(batch_size=batch_rows):
            if not batch.num_rows:
                continue
            numbers = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
            next_row += batch.num_rows
            yield RawBatch(batch, path, numbers)
