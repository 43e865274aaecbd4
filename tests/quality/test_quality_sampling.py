"""read_for_quality: whole reads, seeded uniform samples, row groups left unread."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from include.mlops.lake.store import Lake
from include.mlops.quality import read_for_quality


def _write(lake: Lake, key: str, start: int, rows: int, row_group_size: int) -> None:
    table = pa.table({"id": pa.array(range(start, start + rows), pa.int64())})
    table = table.append_column("x", pa.array([float(i) for i in range(rows)]))
    path = lake.path(key)
    lake.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, path, row_group_size=row_group_size)


@pytest.fixture
def partition(tmp_path) -> tuple[Lake, str]:
    lake = Lake.local(tmp_path)
    key = "curated/events/dt=2026-01-01"
    _write(lake, f"{key}/part-00000.parquet", 0, 3000, 250)
    _write(lake, f"{key}/part-00001.parquet", 3000, 1000, 250)
    # Not data: a hidden file and a half-written staging object.
    _write(lake, f"{key}/_staging/part-00002.parquet", 9000, 10, 10)
    _write(lake, f"{key}/.part-00003.parquet", 9100, 10, 10)
    return lake, key


def test_small_partition_is_read_whole(partition) -> None:
    lake, key = partition
    df, total = read_for_quality(lake, key, max_rows=10_000)
    assert total == 4000 and len(df) == 4000
    assert df["id"].tolist() == list(range(4000))


def test_large_partition_is_sampled_uniformly_and_reproducibly(partition) -> None:
    lake, key = partition
    df, total = read_for_quality(lake, key, columns=["id"], max_rows=400, seed=7)
    assert total == 4000 and len(df) == 400
    assert list(df.columns) == ["id"]
    ids = df["id"]
    assert ids.is_unique and ids.is_monotonic_increasing and ids.between(0, 3999).all()
    # Uniform across both files, not the first 400 rows.
    assert (ids >= 3000).sum() > 50
    again, _ = read_for_quality(lake, key, columns=["id"], max_rows=400, seed=7)
    assert again["id"].tolist() == ids.tolist()
    other, _ = read_for_quality(lake, key, columns=["id"], max_rows=400, seed=8)
    assert other["id"].tolist() != ids.tolist()


def test_row_groups_without_sampled_rows_are_not_read(partition, monkeypatch) -> None:
    lake, key = partition
    reads: list[int] = []
    original = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):
        reads.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    df, total = read_for_quality(lake, key, max_rows=3, seed=0)
    assert (len(df), total) == (3, 4000)
    assert len(reads) <= 3  # of 16 row groups


def test_single_file_through_a_filesystem(partition) -> None:
    lake, key = partition
    path = lake.path(f"{key}/part-00001.parquet")
    df, total = read_for_quality(pafs.LocalFileSystem(), path, max_rows=100)
    assert (len(df), total) == (100, 1000)
    assert df["id"].between(3000, 3999).all()


def test_missing_partition_says_where(tmp_path) -> None:
    lake = Lake.local(tmp_path)
    with pytest.raises(FileNotFoundError, match="curated/none"):
        read_for_quality(lake, "curated/none/dt=2026-01-01")
