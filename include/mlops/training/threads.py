"""How many threads a trial may use: the cores of its host, shared by the trials running there.

Two XGBoost fits with 2 threads each on 2 cores took 3.9 s each; with 1 thread each,
0.9 s (OpenMP threads spinning against each other). So a trial never takes more than
its share of the host: ``cores // trials running on the host now`` threads, at least 1.

- **Cores** are the CPUs this process may run on (``os.sched_getaffinity``: it honours
  ``taskset``, cgroup cpusets and container limits), or ``MLOPS_HOST_CPUS`` when set.
- **Trials running on the host** are counted with leases: every tuning worker process
  holds an exclusive ``flock`` on a file of its own in a host-wide folder
  (:func:`lease_folder`, in ``/dev/shm``: one per host or container, whatever TMPDIR a
  worker has); a lease whose process died is unlocked, and is removed when counted. A
  worker counts the leases before each trial, so the split follows tune tasks starting
  and finishing on the host (mapped tasks of the LocalExecutor, Celery worker slots).

The limit reaches every pool a trial uses: XGBoost's and scikit-learn's ``n_jobs`` (the
caller passes :meth:`TrialThreads.current`) and the BLAS/OpenMP pools of numpy and
friends (:meth:`TrialThreads.limit`, through threadpoolctl).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

#: Overrides the core count a host offers to trials.
CPUS_ENV = "MLOPS_HOST_CPUS"
#: Overrides the thread count outright (1 = no parallelism inside a trial).
THREADS_ENV = "MLOPS_TRIAL_THREADS"


def host_cpus() -> int:
    """Cores the trials of this host may use."""
    configured = os.environ.get(CPUS_ENV)
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def lease_folder() -> Path:
    """The host-wide folder of trial leases (``/dev/shm`` where it exists: it is per host and
    per container, and not moved by a worker's own TMPDIR)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / "mlops-trial-leases"


def threads_for(cpus: int, trials: int) -> int:
    """``cpus // trials``, at least 1."""
    return max(1, cpus // max(1, trials))


class TrialThreads:
    """A tuning worker's lease on its host's cores (a context manager).

    Args:
        folder: Lease folder (default :func:`lease_folder`).
        cpus: Cores of the host (default :func:`host_cpus`).
    """

    def __init__(self, folder: Path | None = None, cpus: int | None = None) -> None:
        self.folder = folder or lease_folder()
        self.cpus = cpus or host_cpus()
        self._fd: int | None = None
        self._path: Path | None = None

    def __enter__(self) -> TrialThreads:
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            self.folder.chmod(0o1777)  # shared by every user's workers, like /tmp
        self._path = self.folder / f"{os.getpid()}-{id(self)}.lease"
        self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def trials_running(self) -> int:
        """Live leases on this host (this one included); dead ones are removed."""
        live = 0
        for path in self.folder.glob("*.lease"):
            if path == self._path:
                live += 1
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1  # its process holds it
            else:
                path.unlink(missing_ok=True)  # its process died without cleaning up
            finally:
                os.close(fd)
        return max(1, live)

    def current(self) -> int:
        """Threads for the next trial: the override, else this host's share."""
        override = os.environ.get(THREADS_ENV)
        if override:
            return max(1, int(override))
        return threads_for(self.cpus, self.trials_running())

    @contextlib.contextmanager
    def limit(self, threads: int) -> Iterator[int]:
        """Cap the BLAS/OpenMP pools of this process at ``threads`` for one trial."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads):
            yield threads
