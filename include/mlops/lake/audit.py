"""The audit trail: who did what, when and why, append-only, in the lake's ``audit/`` zone.

One object per event, ``audit/<scope>/<UTC time>-<event>-<id>.json``: ``scope`` is a
model name (approvals, rejections, deployments, rollbacks) or ``endpoint`` (API keys
created and revoked). An event is never rewritten: every record gets a name of its own
(time + random id), so appending never touches what is there, and the keys sort in time
order. A record is written *before* the action it records takes effect, so an action
with no record cannot have happened through the platform; a record whose action then
failed says so in a later record (``*_failed`` events), not by editing the first.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from include.mlops.jsonable import jsonable
from include.mlops.lake.store import Lake

PREFIX = "audit"
#: Events the platform records (``<action>`` before it takes effect).
EVENTS = frozenset({
    "approval", "rejection", "deployment", "rollback", "deployment_failed",
    "key_created", "key_revoked",
})  # fmt: skip


@dataclass(frozen=True)
class AuditRecord:
    """One event.

    Attributes:
        scope: Model name, or ``endpoint``.
        event: One of :data:`EVENTS`.
        actor: Who did it: an Airflow user, or ``system:<what>`` for unattended work.
        at: When (UTC, ISO 8601).
        reason: Why, in the actor's words (an approval comment), or what triggered it.
        details: What exactly (version, strategy, key name, run id...).
    """

    scope: str
    event: str
    actor: str
    at: str
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def record_event(
    lake: Lake,
    scope: str,
    event: str,
    *,
    actor: str,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Append one event to the trail; returns its key.

    Raises:
        ValueError: Unknown event, or an empty scope or actor.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; known: {sorted(EVENTS)}")
    if not scope or "/" in scope or not actor:
        raise ValueError(
            f"an audit record needs a plain scope and an actor (got {scope!r}, {actor!r})"
        )
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    record = AuditRecord(
        scope=scope, event=event, actor=actor, at=when.isoformat(timespec="milliseconds"),
        reason=reason, details=dict(jsonable(dict(details or {}))),
    )  # fmt: skip
    stamp = when.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    key = f"{PREFIX}/{scope}/{stamp}-{event}-{secrets.token_hex(4)}.json"
    lake.write_bytes(key, json.dumps(asdict(record), sort_keys=True).encode())
    return key


def read_events(lake: Lake, scope: str, *, limit: int = 200) -> list[AuditRecord]:
    """A scope's events, newest first (at most ``limit``)."""
    keys = sorted(lake.list_files(f"{PREFIX}/{scope}/"), reverse=True)[:limit]
    return [AuditRecord(**json.loads(lake.read_bytes(key))) for key in keys]
