"""Object-store access for every lake zone, on S3 or on a local folder.

Domain code receives a :class:`Lake` and never builds clients itself, so unit tests
hand in ``Lake.local(tmp_path)`` and production hands in ``Lake.from_settings(...)``.

Writes are atomic per object: data goes to a hidden ``_staging/`` key first and is
then moved into place. The staging key sits beside the target
(``capture/<endpoint>/.../_staging/<id>/<file>`` for a capture file), so a writer allowed
only one prefix of the bucket (a model server: ``capture/``) can stage its writes there,
and never sees another prefix's writes in flight. On S3 the move is a server-side copy, which readers see
whole or not at all; locally it is a rename. A writer killed midway therefore
leaves readers the previous object, never a fragment.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

if TYPE_CHECKING:
    from include.mlops.settings import Settings

STAGING_PREFIX = "_staging"


class LakeUnavailableError(ConnectionError):
    """The object store could not be reached (a retry may succeed)."""


def s3_filesystem(settings: Settings) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the configured endpoint and credentials."""
    kwargs: dict[str, Any] = {
        "access_key": settings.aws_access_key_id,
        "secret_key": settings.aws_secret_access_key,
        "region": settings.aws_region,
        "connect_timeout": 5,
        "request_timeout": 60,
        # A dead store must fail the task fast so Airflow's retry takes over.
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        "check_directory_existence_before_creation": True,
    }
    if settings.s3_endpoint_url:
        url = urlsplit(settings.s3_endpoint_url)
        kwargs["endpoint_override"] = url.netloc
        kwargs["scheme"] = url.scheme or "http"
        # SeaweedFS/MinIO serve buckets as paths, not virtual hosts.
        kwargs["force_virtual_addressing"] = False
    return pafs.S3FileSystem(**kwargs)


def filesystem_for_uri(uri: str, settings: Settings) -> tuple[pafs.FileSystem, str]:
    """Resolve a user-given source (local path, ``file://`` or ``s3://`` URI).

    Args:
        uri: Where the data is.
        settings: Endpoint and credentials for ``s3://`` URIs.

    Returns:
        The filesystem and the path inside it.
    """
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return s3_filesystem(settings), f"{parts.netloc}{parts.path}".rstrip("/")
    if parts.scheme in ("", "file"):
        path = parts.path if parts.scheme == "file" else uri
        return pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    raise ValueError(f"source {uri!r}: unsupported scheme {parts.scheme!r} (use a path or s3://)")


class Lake:
    """The lake bucket (or a local folder standing in for it).

    Keys are lake-relative, e.g. ``curated/churn/dt=2026-11-01/part-00000.parquet``.

    Args:
        fs: The filesystem holding the lake.
        root: The bucket name (S3) or absolute folder (local).
        scheme: ``s3`` or ``file``; used only to print URIs people can paste.
    """

    def __init__(self, fs: pafs.FileSystem, root: str, scheme: str = "s3") -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.scheme = scheme

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        """The configured lake bucket on S3."""
        return cls(s3_filesystem(settings), settings.lake_bucket, "s3")

    @classmethod
    def local(cls, folder: str | Path) -> Lake:
        """A lake on a local folder (tests, notebooks)."""
        path = Path(folder).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(pafs.LocalFileSystem(), str(path), "file")

    def __repr__(self) -> str:
        return f"Lake({self.uri()})"

    # -- naming ---------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Filesystem path of a lake key."""
        key = posixpath.join(*parts) if parts else ""
        return posixpath.join(self.root, key.lstrip("/")) if key else self.root

    def uri(self, *parts: str) -> str:
        """A URI a person can paste (``s3://lake/...`` or ``file:///...``)."""
        return (
            f"{self.scheme}://{self.path(*parts)}"
            if self.scheme == "s3"
            else f"file://{self.path(*parts)}"
        )

    def key_of(self, path: str) -> str:
        """Lake key of a filesystem path."""
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    # -- health ---------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`LakeUnavailableError` unless the bucket answers."""
        try:
            info = self.fs.get_file_info(self.root)
        except OSError as exc:
            raise LakeUnavailableError(f"object store unreachable for {self.uri()}: {exc}") from exc
        if info.type == pafs.FileType.NotFound:
            raise LakeUnavailableError(f"lake bucket {self.uri()} does not exist")

    def ensure(self) -> None:
        """Create the bucket or folder if missing."""
        with contextlib.suppress(OSError):
            if self.fs.get_file_info(self.root).type != pafs.FileType.NotFound:
                return
        self.fs.create_dir(self.root)

    # -- reading --------------------------------------------------------------
    def exists(self, key: str) -> bool:
        """Whether an object (or a non-empty prefix) exists at ``key``."""
        return self.fs.get_file_info(self.path(key)).type != pafs.FileType.NotFound

    def read_bytes(self, key: str) -> bytes:
        """An object's content."""
        with self.fs.open_input_stream(self.path(key)) as f:
            return bytes(f.read())

    def read_json(self, key: str, default: Any = None) -> Any:
        """A JSON object, or ``default`` when it does not exist."""
        if default is not None and not self.exists(key):
            return default
        return json.loads(self.read_bytes(key))

    def list_files(self, prefix: str, suffix: str | None = None) -> list[str]:
        """Lake keys of the objects under ``prefix``, sorted, staging excluded."""
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        keys = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            key = self.key_of(info.path)
            if f"/{STAGING_PREFIX}/" in f"/{key}" or (suffix and not key.endswith(suffix)):
                continue
            keys.append(key)
        return sorted(keys)

    def list_staged(self) -> list[str]:
        """Objects under hidden staging folders anywhere in the lake: writes in flight or
        left by a killed writer (``list_files`` never shows them; readers never see them)."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return sorted(
            key
            for i in self.fs.get_file_info(selector)
            if i.type == pafs.FileType.File
            and f"/{STAGING_PREFIX}/" in f"/{(key := self.key_of(i.path))}"
        )

    # -- writing --------------------------------------------------------------
    @contextlib.contextmanager
    def atomic_output(self, key: str) -> Iterator[pa.NativeFile]:
        """Write an object that readers see whole or not at all.

        Yields a stream onto a hidden staging key; on success the staged object is
        moved to ``key``. On an exception the staged object is deleted and ``key``
        keeps its previous content.
        """
        folder = posixpath.dirname(key.strip("/"))
        staged = self.path(folder, STAGING_PREFIX, uuid.uuid4().hex, posixpath.basename(key))
        self._ensure_parent(staged)
        try:
            with self.fs.open_output_stream(staged) as out:
                yield out
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_dir(posixpath.dirname(staged))
            raise
        self.publish(staged, key)

    def publish(self, staged_path: str, key: str) -> None:
        """Move a staged object into place atomically and drop its staging folder."""
        target = self.path(key)
        self._ensure_parent(target)
        self.fs.move(staged_path, target)
        with contextlib.suppress(OSError):
            self.fs.delete_dir(posixpath.dirname(staged_path))

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write an object atomically; returns its URI."""
        with self.atomic_output(key) as out:
            out.write(data)
        return self.uri(key)

    def write_json(self, key: str, obj: Any) -> str:
        """Write a JSON object atomically (pretty, key-sorted); returns its URI."""
        return self.write_bytes(
            key, json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        )

    def delete(self, key: str) -> None:
        """Delete an object or a whole prefix; missing is fine."""
        path = self.path(key)
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            self.fs.delete_file(path)
        elif info.type == pafs.FileType.Directory:
            # An S3 "folder" can vanish between the look and the delete (its last object
            # removed meanwhile, or SeaweedFS reporting an empty directory): missing is fine.
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_dir(path)

    def _ensure_parent(self, path: str) -> None:
        # Only local folders need parents; on S3 "folders" are key prefixes and
        # creating them leaves zero-byte markers that break s3fs/pandas readers.
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
