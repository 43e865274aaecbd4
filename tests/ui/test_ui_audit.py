"""The Models view shows each model's audit trail: the newest events, who, what, when, why."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from tests.ui.conftest import MODEL, UIServer

pytestmark = pytest.mark.integration


def _trail(page: str, model: str) -> str:
    section = page.split(f"<section class='card' id='{model}'>", 1)[1].split("</section>", 1)[0]
    return section.split("<h3>Audit trail</h3>", 1)[1]


def test_the_models_view_shows_the_newest_audit_events_escaped(
    ui_server: UIServer, ui_lake: Any, mint: Any
) -> None:
    from include.mlops.lake.audit import record_event
    from include.mlops.ui.views import DEFAULT_AUDIT_EVENTS

    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(DEFAULT_AUDIT_EVENTS):  # older deployments, pushed out of view below
        record_event(ui_lake, MODEL, "deployment", actor="system:deploy_model",
                     details={"version": 1, "strategy": "all_at_once"},
                     now=start + dt.timedelta(minutes=i))  # fmt: skip
    newest = start + dt.timedelta(hours=1)
    record_event(ui_lake, MODEL, "approval", actor="reviewer", reason="beats v1 <b>on recall</b>",
                 details={"version": 3, "run_id": "manual__x"}, now=newest)  # fmt: skip
    record_event(ui_lake, MODEL, "rollback", actor="admin", reason="v3 misbehaves",
                 details={"version": 1, "previous_champion": 3, "strategy": "all_at_once"},
                 now=newest + dt.timedelta(seconds=5))  # fmt: skip

    page = ui_server.get("/mlops/models", cookie=mint(), accept="text/html").text
    trail = _trail(page, MODEL)
    rows = re.findall(r"<tr>(.*?)</tr>", trail.split("<tbody>", 1)[1], re.S)
    assert len(rows) == DEFAULT_AUDIT_EVENTS  # only the newest
    rollback, approval = rows[0], rows[1]  # newest first
    assert "2026-12-01 10:00:05 UTC" in rollback and "rollback" in rollback
    assert "admin" in rollback and "“v3 misbehaves”" in rollback
    assert "version <code>1</code>" in rollback and "previous_champion <code>3</code>" in rollback
    assert "reviewer" in approval and "approval" in approval
    assert "beats v1 &lt;b&gt;on recall&lt;/b&gt;" in approval  # escaped, never raw HTML
    assert "run_id <code>manual__x</code>" in approval
    assert sum("system:deploy_model" in row for row in rows) == DEFAULT_AUDIT_EVENTS - 2
    assert f"audit/{MODEL}/" in trail
