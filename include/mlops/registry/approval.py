"""The human decision on a registered version: Approved or Rejected, with who and why.

Allowed transitions::

    PendingManualApproval --approve--> Approved --reject--> Rejected
    PendingManualApproval --reject---> Rejected

Rejected is final (retrain to try again); a second approval is refused, so a replayed or
double-clicked answer cannot overwrite who approved; an Approved version may still be
rejected (an approval revoked) unless it is the champion, which must be replaced first.
The Airflow ApprovalOperator calls these functions; they know nothing of Airflow.
"""

from __future__ import annotations

import datetime as dt

from include.mlops.registry.versions import (
    APPROVAL_COMMENT_TAG,
    APPROVAL_STATUSES,
    APPROVAL_TAG,
    APPROVAL_TIME_TAG,
    APPROVED,
    APPROVED_BY_TAG,
    CHAMPION_ALIAS,
    PENDING,
    REJECTED,
    REJECTED_BY_TAG,
    ApprovalError,
    ClientOrUri,
    VersionInfo,
    get_version,
    registry_client,
)

#: MLflow's limit on a model-version tag value is 100,000 characters; a comment is a note.
MAX_COMMENT_LENGTH = 5000


def set_approval(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    status: str,
    *,
    actor: str | None = None,
    comment: str | None = None,
    decided_at: dt.datetime | None = None,
) -> VersionInfo:
    """Record a human decision on a version.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number.
        status: ``Approved`` or ``Rejected``.
        actor: Who decided (stored as ``approved_by`` or ``rejected_by``).
        comment: Why (stored as ``approval_comment``).
        decided_at: When (default: now, UTC); stored as ISO-8601 ``approval_time``.

    Returns:
        The version after the decision.

    Raises:
        ValueError: ``status`` is not a decision.
        ApprovalError: The current status does not allow it (Rejected is final, a second
            approval, rejecting the champion).
        ModelNotFoundError, VersionNotFoundError: No such model or version.
    """
    if status not in (APPROVED, REJECTED):
        raise ValueError(
            f"approval status must be {APPROVED!r} or {REJECTED!r}, got {status!r} "
            f"(statuses: {', '.join(APPROVAL_STATUSES)}; {PENDING} is set at registration)"
        )
    client = registry_client(client)
    info = get_version(client, model_name, version)
    where = f"model {model_name!r} version {info.version}"
    if info.status == REJECTED:
        raise ApprovalError(
            f"{where} was rejected{_by(info, REJECTED_BY_TAG)}; a rejection is final, "
            "train a new version instead"
        )
    if info.status == APPROVED and status == APPROVED:
        raise ApprovalError(f"{where} is already approved{_by(info, APPROVED_BY_TAG)}")
    if status == REJECTED and CHAMPION_ALIAS in info.aliases:
        raise ApprovalError(
            f"{where} is the {CHAMPION_ALIAS} (it is serving); deploy another version "
            "before rejecting it"
        )
    when = (decided_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    tags = {
        APPROVAL_TAG: status,
        APPROVED_BY_TAG if status == APPROVED else REJECTED_BY_TAG: actor or "unknown",
        APPROVAL_COMMENT_TAG: (comment or "")[:MAX_COMMENT_LENGTH],
        APPROVAL_TIME_TAG: when.isoformat(timespec="seconds"),
    }
    # The status tag goes last: a reader never sees Approved without who approved it.
    for key in sorted(tags, key=lambda k: k == APPROVAL_TAG):
        client.set_model_version_tag(model_name, str(info.version), key, tags[key])
    return get_version(client, model_name, info.version)


def approve_version(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    actor: str | None = None,
    comment: str | None = None,
    decided_at: dt.datetime | None = None,
) -> VersionInfo:
    """Mark a version Approved (see :func:`set_approval`)."""
    return set_approval(
        client, model_name, version, APPROVED, actor=actor, comment=comment, decided_at=decided_at
    )


def reject_version(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    actor: str | None = None,
    comment: str | None = None,
    decided_at: dt.datetime | None = None,
) -> VersionInfo:
    """Mark a version Rejected (see :func:`set_approval`)."""
    return set_approval(
        client, model_name, version, REJECTED, actor=actor, comment=comment, decided_at=decided_at
    )


def _by(info: VersionInfo, tag: str) -> str:
    actor = info.tags.get(tag)
    when = info.tags.get(APPROVAL_TIME_TAG)
    return (f" by {actor}" if actor else "") + (f" at {when}" if when else "")
