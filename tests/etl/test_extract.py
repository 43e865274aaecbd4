"""Extract: every record comes out once, as a row or as a rejected record."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from include.mlops.etl.extract import (
    RawBatch,
    detect_format,
    list_source_files,
    read_batches,
)

LOCAL = pafs.LocalFileSystem()


def read_all(path: Path, fmt: str = "auto", batch_rows: int = 131_072) -> list[RawBatch]:
    return list(read_batches(LOCAL, [str(path)], fmt, batch_rows))


def rows_of(batches: list[RawBatch]) -> list[dict]:
    return [row for b in batches for row in b.data.to_pylist()]


def test_detect_format() -> None:
    assert detect_format("a/b.csv") == "csv"
    assert detect_format("a/b.CSV.gz") == "csv"
    assert detect_format("b.jsonl") == "jsonl"
    assert detect_format("b.ndjson.zst") == "jsonl"
    assert detect_format("b.parquet") == "parquet"
    assert detect_format("b.dat", b"PAR1....") == "parquet"
    assert detect_format("b.dat", b'  {"a": 1}') == "jsonl"
    assert detect_format("b.dat", b"a,b\n") == "csv"


def test_csv_values_stay_raw_strings(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,name,score\n1, Ann ,007\n2,"Bo, Jr",\n')
    batches = read_all(path)
    assert batches[0].data.schema.types == [pa.string()] * 3
    assert rows_of(batches) == [
        {"id": "1", "name": " Ann ", "score": "007"},
        {"id": "2", "name": "Bo, Jr", "score": ""},
    ]
    assert batches[0].row_numbers.tolist() == [2, 3]
    assert batches[0].first_of_file


def test_csv_broken_rows_are_rejected_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"id,name,age\n"
        b"1,a,3\n"  # line 2
        b'2,"b,4\n'  # line 3: unbalanced quote
        b"3,c\n"  # line 4: too few columns
        b"4,d,5,6\n"  # line 5: too many
        b"5,\xff\xfe,7\n"  # line 6: not UTF-8
        b"\n"  # line 7: blank, not a record
        b'6,"q""x",8\n'  # line 8: escaped quote, fine
        b"7,z,9"  # line 9: no final newline
    )
    batches = read_all(path)
    assert rows_of(batches) == [
        {"id": "1", "name": "a", "age": "3"},
        {"id": "6", "name": 'q"x', "age": "8"},
        {"id": "7", "name": "z", "age": "9"},
    ]
    assert [n for b in batches for n in b.row_numbers.tolist()] == [2, 8, 9]
    rejected = [r for b in batches for r in b.rejected]
    assert [(r.reason, r.row_number) for r in rejected] == [
        ("malformed_row", 3),
        ("malformed_row", 4),
        ("malformed_row", 5),
        ("invalid_encoding", 6),
    ]
    assert rejected[0].raw == '2,"b,4'
    assert rejected[3].raw == "5,\\xff\\xfe,7"
    assert rejected[3].values == {"id": "5", "name": "\\xff\\xfe", "age": "7"}
    assert sum(b.records for b in batches) == 7


def test_broken_quote_does_not_swallow_following_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    lines = ["id,v"] + [f"{i},x" for i in range(1, 50)]
    lines[10] = '10,"oops'
    path.write_text("\n".join(lines) + "\n")
    batches = read_all(path)
    assert len(rows_of(batches)) == 48
    assert [r.row_number for b in batches for r in b.rejected] == [11]


def test_csv_streams_in_batches_and_counts_every_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    n = 50_000
    with path.open("w") as f:
        f.write("id,v\n")
        for i in range(n):
            f.write(f"{i},{'bad' if i % 10_007 == 0 else i}\n" if i != 777 else "777\n")
    batches = read_all(path, batch_rows=1_000)
    assert len(batches) > 5  # streamed, not one block
    assert max(b.records for b in batches) < 20_000
    numbers = [n for b in batches for n in b.row_numbers.tolist()]
    rejected = [r.row_number for b in batches for r in b.rejected]
    assert rejected == [779]
    assert sorted(numbers + rejected) == list(range(2, n + 2))


def test_csv_header_only_and_empty_yield_nothing(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b\n")
    (tmp_path / "e.csv").write_text("")
    assert read_all(tmp_path / "h.csv") == []
    assert read_all(tmp_path / "e.csv") == []


def test_csv_header_problems_are_clear(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,a\n1,2\n")
    with pytest.raises(ValueError, match="repeats column"):
        read_all(tmp_path / "d.csv")


def test_gzip_csv_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress("\ufeffid,v\r\n1,a\r\n2,b\r\n".encode()))
    assert rows_of(read_all(path)) == [{"id": "1", "v": "a"}, {"id": "2", "v": "b"}]


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'{"id": 1, "name": "a", "ok": true, "score": 1.5}\n'
        b"not json\n"
        b"[1, 2]\n"
        b"\n"
        b'{"id": 2, "tags": ["x"], "name": null}\n'
        b'{"id": 3, "name": "\xff"}\n'
    )
    batches = read_all(path)
    assert rows_of(batches) == [
        {"id": "1", "name": "a", "ok": "true", "score": "1.5", "tags": None},
        {"id": "2", "name": None, "ok": None, "score": None, "tags": '["x"]'},
    ]
    assert [n for b in batches for n in b.row_numbers.tolist()] == [1, 5]
    assert [(r.reason, r.row_number) for b in batches for r in b.rejected] == [
        ("malformed_row", 2),
        ("malformed_row", 3),
        ("invalid_encoding", 6),
    ]


def test_parquet_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "v": ["a", None, "c"]}), path, row_group_size=2)
    batches = read_all(path, batch_rows=2)
    assert batches[0].data.schema.field("id").type == pa.int64()
    assert [n for b in batches for n in b.row_numbers.tolist()] == [1, 2, 3]
    assert [b.first_of_file for b in batches] == [True, False]


def test_list_source_files_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.csv", "d/sub/a.csv", "d/_SUCCESS", "d/.hidden.csv"):
        (tmp_path / name).write_text("x\n")
    files = list_source_files(LOCAL, str(tmp_path / "d"))
    assert [Path(f).name for f in files] == ["b.csv", "a.csv"]
    assert list_source_files(LOCAL, str(tmp_path / "d" / "b.csv")) == [str(tmp_path / "d/b.csv")]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_source_files(LOCAL, str(tmp_path / "nope"))


def test_auto_format_reads_mixed_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "b.data").write_text(json.dumps({"id": 2}) + "\n")
    batches = list(read_batches(LOCAL, [str(tmp_path / "a.csv"), str(tmp_path / "b.data")]))
    assert rows_of(batches) == [{"id": "1"}, {"id": "2"}]
    assert [b.first_of_file for b in batches] == [True, True]
