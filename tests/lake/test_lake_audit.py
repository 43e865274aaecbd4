"""The audit trail: append-only records, newest first, unknown events refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.mlops.lake import Lake
from include.mlops.lake.audit import read_events, record_event


def test_events_are_appended_never_rewritten_and_read_newest_first(tmp_path: Path) -> None:
    lake = Lake.local(tmp_path)
    t0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    first = record_event(lake, "churn_model", "approval", actor="reviewer",
                         reason="beats v1 on the recent window",
                         details={"version": 2}, now=t0)  # fmt: skip
    same_time = record_event(lake, "churn_model", "approval", actor="reviewer",
                             details={"version": 2}, now=t0)  # fmt: skip
    later = record_event(lake, "churn_model", "deployment", actor="system:deploy_model",
                         details={"version": 2, "strategy": "canary"},
                         now=t0 + dt.timedelta(seconds=5))  # fmt: skip
    assert len({first, same_time, later}) == 3  # the same instant never overwrites
    assert first.startswith("audit/churn_model/20261207T090000.000Z-approval-")
    events = read_events(lake, "churn_model")
    assert [e.event for e in events] == ["deployment", "approval", "approval"]
    assert events[0].actor == "system:deploy_model" and events[0].details["strategy"] == "canary"
    assert events[-1].reason in (None, "beats v1 on the recent window")
    assert read_events(lake, "other_model") == []


def test_unknown_events_and_missing_actors_are_refused(tmp_path: Path) -> None:
    lake = Lake.local(tmp_path)
    with pytest.raises(ValueError, match="unknown audit event 'approved'"):
        record_event(lake, "m", "approved", actor="a")
    with pytest.raises(ValueError, match="needs a plain scope and an actor"):
        record_event(lake, "m", "approval", actor="")
    with pytest.raises(ValueError, match="needs a plain scope"):
        record_event(lake, "../m", "approval", actor="a")
