"""The thread budget: a host's cores shared by the tuning workers running there."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from include.mlops.training.threads import TrialThreads, host_cpus, threads_for


def _hold_lease(folder: str, ready: mp.Event) -> None:  # type: ignore[valid-type]
    with TrialThreads(Path(folder), cpus=2):
        ready.set()
        time.sleep(120)  # until killed


def test_threads_split_the_cores_between_the_trials_running() -> None:
    assert threads_for(2, 1) == 2 and threads_for(2, 2) == 1 and threads_for(2, 5) == 1
    assert threads_for(8, 3) == 2 and threads_for(1, 0) == 1


def test_leases_count_live_workers_and_forget_dead_ones(tmp_path: Path) -> None:
    # The other worker is killed, never released: a process killed while it waits on a
    # multiprocessing Event would leave Event.set() waiting for it forever.
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    other = ctx.Process(target=_hold_lease, args=(str(tmp_path), ready))
    other.start()
    try:
        assert ready.wait(60)
        with TrialThreads(tmp_path, cpus=2) as lease:
            assert lease.trials_running() == 2 and lease.current() == 1
            os.kill(other.pid, signal.SIGKILL)  # dies holding its lease: the lock goes with it
            other.join(30)
            assert lease.trials_running() == 1 and lease.current() == 2
            assert len(list(tmp_path.glob("*.lease"))) == 1  # the dead one is cleaned up
        assert list(tmp_path.glob("*.lease")) == []
    finally:
        other.kill()
        other.join(30)


def test_overrides_and_host_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOST_CPUS", "6")
    assert host_cpus() == 6
    with TrialThreads(tmp_path) as lease:
        assert lease.current() == 6
        monkeypatch.setenv("MLOPS_TRIAL_THREADS", "1")
        assert lease.current() == 1
    monkeypatch.delenv("MLOPS_HOST_CPUS")
    assert host_cpus() == len(os.sched_getaffinity(0))


def test_limit_caps_the_blas_and_openmp_pools(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info

    with TrialThreads(tmp_path, cpus=4) as lease, lease.limit(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
