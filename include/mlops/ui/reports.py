"""Which lake objects the UI serves, and how a lake URI becomes a browser link.

Only reports are served: keys under :data:`REPORT_PREFIXES` (quality results and Data
Docs, evaluation reports and plots, monitoring reports). Everything else in the lake
(curated data, quarantine, captured requests, models) stays behind the S3 credentials.
A key is refused when it leaves those prefixes, names a hidden staging object, or holds
anything a path normaliser could reinterpret (``..``, ``.``, empty segments, ``\\``).
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import quote, urlsplit

#: Lake prefixes whose objects the UI serves (the "reports" of docs/design.md's layout).
REPORT_PREFIXES: tuple[str, ...] = ("reports/", "monitoring/")
#: Route (under the app's mount point) that serves report objects.
FILES_ROUTE = "files"
_FORBIDDEN_CHARS = ("\\", "\x00", "\r", "\n")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


class ReportPathError(ValueError):
    """A requested path is not a report the UI may serve (traversal, wrong prefix...)."""


def report_key(path: str) -> str:
    """Validate a requested lake key (or folder, ending in ``/``) and return it.

    Args:
        path: The key as requested, e.g. ``reports/quality/churn/<run>/summary.json``.

    Returns:
        The same key (a folder keeps its trailing ``/``).

    Raises:
        ReportPathError: The key leaves the report prefixes or is not in normal form.
    """
    if not path or any(c in path for c in _FORBIDDEN_CHARS):
        raise ReportPathError(f"report path {path!r} is empty or holds a forbidden character")
    if path.startswith("/"):
        raise ReportPathError(f"report path {path!r} must be relative to the lake bucket")
    body = path[:-1] if path.endswith("/") else path
    parts = body.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ReportPathError(
            f"report path {path!r} is not in normal form (empty, '.' or '..' segments)"
        )
    if any(part.startswith("_staging") for part in parts):
        raise ReportPathError(f"report path {path!r} names a hidden staging object")
    if posixpath.normpath(body) != body:
        raise ReportPathError(f"report path {path!r} is not in normal form")
    if not (body + "/").startswith(REPORT_PREFIXES):
        allowed = ", ".join(f"{p}<...>" for p in REPORT_PREFIXES)
        raise ReportPathError(f"report path {path!r} is outside the report prefixes ({allowed})")
    return path


def is_report_key(key: str) -> bool:
    """Whether :func:`report_key` accepts ``key``."""
    try:
        report_key(key)
    except ReportPathError:
        return False
    return True


def lake_key(uri_or_key: str | None, bucket: str, lake_root: str | None = None) -> str | None:
    """The lake key of an ``s3://<bucket>/<key>`` URI (or a ``file://`` URI of a local lake).

    Args:
        uri_or_key: A URI as tasks log and return them, or already a key.
        bucket: The lake bucket.
        lake_root: The local folder of a ``Lake.local`` lake (tests), if any.

    Returns:
        The key, or ``None`` when the URI points elsewhere.
    """
    if not uri_or_key:
        return None
    parts = urlsplit(uri_or_key)
    if parts.scheme == "s3":
        if parts.netloc != bucket:
            return None
        return parts.path.lstrip("/") or None
    if parts.scheme == "file":
        root = (lake_root or "").rstrip("/")
        if root and parts.path.startswith(root + "/"):
            return parts.path[len(root) + 1 :]
        return None
    if parts.scheme:
        return None
    return uri_or_key.lstrip("/") or None


def report_href(key: str, base_path: str) -> str:
    """The app URL that serves a report key (``<base>/files/<key>``)."""
    return f"{base_path.rstrip('/')}/{FILES_ROUTE}/{quote(key, safe='/=')}"


def report_link(
    uri_or_key: str | None, *, bucket: str, base_path: str, lake_root: str | None = None
) -> str | None:
    """A served-report URL for a lake URI, or ``None`` when it is not a report.

    Args:
        uri_or_key: A lake URI (``s3://lake/reports/...``) or key.
        bucket: The lake bucket.
        base_path: Where the app is mounted, e.g. ``/mlops``.
        lake_root: Local lake folder (tests).

    Returns:
        The URL, or ``None``.
    """
    key = lake_key(uri_or_key, bucket, lake_root)
    if key is None or not is_report_key(key):
        return None
    return report_href(key, base_path)


def content_type(key: str) -> str:
    """The Content-Type to serve a report object with."""
    ext = posixpath.splitext(key)[1].lower()
    if ext in _TYPES:
        return _TYPES[ext]
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"
