"""Task libraries imported once before the executors fork their tasks."""

from __future__ import annotations

import logging
import sys

import pytest

from include.mlops.airflow import preload as preload_module
from include.mlops.airflow.preload import ENV, TASK_LIBRARIES, preload


def test_every_task_library_imports_in_the_pinned_set() -> None:
    # A misspelt or dropped library would only show as a warning in the scheduler log.
    assert set(preload()) == set(TASK_LIBRARIES)
    assert all(name in sys.modules for name in TASK_LIBRARIES)


def test_the_platform_s_own_modules_are_never_preloaded() -> None:
    # A task must read a changed include/ module, not the copy the scheduler started with.
    assert not [
        name for name in TASK_LIBRARIES if name.split(".")[0] in {"include", "dags", "plugins"}
    ]


def test_a_library_that_fails_is_skipped_and_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=preload_module.__name__):
        seconds = preload(("json", "no_such_library_here"))
    assert set(seconds) == {"json"}
    assert "no_such_library_here" in caplog.text and "ModuleNotFoundError" in caplog.text


def test_it_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "false")
    assert preload(("json",)) == {}
