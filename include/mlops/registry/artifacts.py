"""The model files' checksum, and loading a version only when its files are intact.

What the sha256 covers: EVERY file of the logged MLflow model directory (``MLmodel``,
``model.pkl``, ``input_example.json``, ``requirements.txt``, ``conda.yaml``, ...), so a
swapped pickle, an edited signature or changed requirements are all caught. The digest is
the sha256 of a manifest with one line per file, sorted by relative POSIX path::

    <sha256 of the file's bytes>  <relative/path>\\n

(the ``sha256sum`` line format), so it can be checked by hand:
``cd model && find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum``.
It is computed on the local directory before upload and recorded as the version tag
``model_sha256``; loading downloads the files into an empty folder and recomputes it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from include.mlops.registry.versions import (
    SHA256_TAG,
    ArtifactChecksumError,
    ClientOrUri,
    VersionInfo,
    get_version,
    registry_client,
)

_CHUNK = 1 << 20


def model_artifact_sha256(model_dir: str | Path) -> str:
    """The checksum of a model directory (see the module docstring for what it covers).

    Args:
        model_dir: A local MLflow model directory (the one holding ``MLmodel``).

    Returns:
        The hex sha256 of the sorted ``sha256sum``-style manifest of every file.

    Raises:
        FileNotFoundError: ``model_dir`` is not a directory or holds no file.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory {root} does not exist")
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"model directory {root} holds no file")
    manifest = hashlib.sha256()
    for relative, path in files:
        manifest.update(f"{_file_sha256(path)}  {relative}\n".encode())
    return manifest.hexdigest()


def download_model(client: ClientOrUri, info: VersionInfo, dst_dir: str | Path) -> Path:
    """Download a version's model files into ``dst_dir`` (which must be empty or absent).

    Args:
        client: MLflow client or tracking URI (used for ``mlflow-artifacts:`` sources).
        info: The version (see :func:`include.mlops.registry.versions.get_version`).
        dst_dir: Destination folder; it must hold nothing else, or the checksum of the
            folder would cover foreign files.

    Returns:
        The local model directory (the one holding ``MLmodel``).
    """
    client = registry_client(client)
    target = Path(dst_dir)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"download folder {target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    # The source is the logged model's artifact location (file path, s3://, or
    # mlflow-artifacts:/ which needs the client's tracking URI, never the global one).
    repository = get_artifact_repository(
        info.source,
        tracking_uri=client.tracking_uri,
        registry_uri=getattr(client, "_registry_uri", None),
    )
    # "" = the whole model folder, written straight into target (no extra level).
    repository.download_artifacts("", dst_path=str(target))
    return target


def verify_artifact(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    model_dir: str | Path | None = None,
) -> str:
    """Check that a version's model files hash to the recorded sha256.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number.
        model_dir: Already-downloaded model directory to check (default: download the
            files into a temporary folder, removed afterwards).

    Returns:
        The verified sha256.

    Raises:
        ArtifactChecksumError: The files differ from what was registered, or the version
            has no recorded checksum.
    """
    client = registry_client(client)
    info = get_version(client, model_name, version)
    if model_dir is not None:
        _check(info, Path(model_dir))
        return str(info.sha256)
    with tempfile.TemporaryDirectory(prefix="mlops-verify-") as tmp:
        _check(info, download_model(client, info, Path(tmp) / "model"))
    return str(info.sha256)


@contextmanager
def verified_model_dir(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    dst_dir: str | Path | None = None,
) -> Iterator[tuple[VersionInfo, Path]]:
    """Download a version's files and verify their sha256; yields ``(info, folder)``.

    Nothing in the folder should be unpickled before this check; every loader (the
    endpoint's ``load_scorer``, :func:`load_verified_model`) reads the files inside it.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number (use :func:`resolve_version` for aliases).
        dst_dir: Where to keep the files (must be empty or absent); default: a temporary
            folder removed when the block ends.

    Raises:
        ArtifactChecksumError: The files differ from what was registered.
    """
    client = registry_client(client)
    info = get_version(client, model_name, version)
    temporary = dst_dir is None
    folder = Path(tempfile.mkdtemp(prefix="mlops-model-")) if dst_dir is None else Path(dst_dir)
    try:
        local = download_model(client, info, folder / "model" if temporary else folder)
        _check(info, local)
        yield info, local
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def load_verified_model(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    dst_dir: str | Path | None = None,
) -> Any:
    """Download a version, verify its sha256, and load the scikit-learn pipeline.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number (use :func:`resolve_version` for aliases).
        dst_dir: Where to keep the downloaded files (must be empty or absent); default: a
            temporary folder removed once the model is in memory.

    Returns:
        The fitted ``sklearn.pipeline.Pipeline`` (steps ``features`` and ``model``).

    Raises:
        ArtifactChecksumError: The files differ from what was registered; nothing is
            unpickled (an altered pickle could run code when loaded).
    """
    import mlflow.sklearn

    with verified_model_dir(client, model_name, version, dst_dir=dst_dir) as (_, local):
        return mlflow.sklearn.load_model(str(local))


def _check(info: VersionInfo, model_dir: Path) -> None:
    where = f"model {info.model_name!r} version {info.version} ({info.source})"
    if not info.sha256:
        raise ArtifactChecksumError(
            f"{where} has no {SHA256_TAG} tag, so its files cannot be verified; "
            "register it with register_candidate"
        )
    actual = model_artifact_sha256(model_dir)
    if actual != info.sha256:
        raise ArtifactChecksumError(
            f"{where}: model files changed since registration: expected sha256 "
            f"{info.sha256}, got {actual} (downloaded to {model_dir})"
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
