"""Resolve what ``lake_ingest`` reads: a local path, an ``s3://`` URI or the landing zone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from include.mlops.lake.store import filesystem_for_uri

if TYPE_CHECKING:
    from include.mlops.lake.store import Lake
    from include.mlops.settings import Settings

DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".ndjson", ".parquet", ".pq", ".csv.gz", ".jsonl.gz")


class SourceNotFoundError(FileNotFoundError):
    """The source names nothing readable."""


@dataclass(frozen=True)
class ResolvedSource:
    """The files one ingest run reads."""

    fs: pafs.FileSystem
    paths: list[str]
    display: str

    def describe(self) -> str:
        return f"{len(self.paths)} file(s) from {self.display}"


def landing_uri(lake: Lake, dataset: str, partition: str) -> str:
    """Default source: the day's folder in the landing zone."""
    return lake.uri("landing", dataset, f"dt={partition}") + "/"


def resolve_source(source: str, settings: Settings) -> ResolvedSource:
    """List the data files a source names (one file, or every data file in a folder).

    Args:
        source: Local path, ``file://`` or ``s3://`` URI, file or folder.
        settings: Endpoint and credentials for ``s3://``.

    Returns:
        The filesystem and the sorted data file paths.

    Raises:
        SourceNotFoundError: Nothing exists there, or the folder holds no data files.
    """
    fs, path = filesystem_for_uri(source, settings)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return ResolvedSource(fs, [path], source)
    if info.type == pafs.FileType.NotFound:
        raise SourceNotFoundError(f"source {source!r} does not exist")
    selector = pafs.FileSelector(path, recursive=True)
    paths = sorted(
        f.path
        for f in fs.get_file_info(selector)
        if f.type == pafs.FileType.File
        and f.path.lower().endswith(DATA_SUFFIXES)
        and not any(part.startswith(("_", ".")) for part in f.path[len(path) :].split("/"))
    )
    if not paths:
        raise SourceNotFoundError(
            f"source {source!r} holds no data files (looked for {', '.join(DATA_SUFFIXES)})"
        )
    return ResolvedSource(fs, paths, source)
