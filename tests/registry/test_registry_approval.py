"""Approval decisions, the champion alias, and turning what a user typed into a version."""

from __future__ import annotations

import datetime as dt

import pytest

from include.mlops.registry import (
    APPROVED,
    PENDING,
    REJECTED,
    ApprovalError,
    ModelNotFoundError,
    NotApprovedError,
    VersionNotFoundError,
    approve_version,
    champion,
    get_version,
    latest_approved,
    reject_version,
    resolve_version,
    set_approval,
    set_champion,
)

NOON = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)

# MLflow hints that integer columns cannot hold missing values; the demo rows have none.
pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


def test_approve_records_who_why_and_when(store, register) -> None:
    register()

    info = approve_version(store.client, "churn", 1, actor="alice", comment="ok", decided_at=NOON)

    assert info.status == APPROVED
    assert info.tags["approved_by"] == "alice"
    assert info.tags["approval_comment"] == "ok"
    assert info.tags["approval_time"] == "2026-11-02T12:00:00+00:00"
    assert latest_approved(store.client, "churn") == info
    # Approval never deploys: the champion alias is deploy's business.
    assert champion(store.client, "churn") is None
    with pytest.raises(ApprovalError, match="already approved by alice at 2026-11-02"):
        approve_version(store.client, "churn", 1, actor="bob")


def test_rejection_is_final(store, register) -> None:
    register()

    info = reject_version(store.client, "churn", "1", actor="carol", comment="leaky feature")

    assert info.status == REJECTED
    assert info.tags["rejected_by"] == "carol"
    assert info.tags["approval_comment"] == "leaky feature"
    assert "approved_by" not in info.tags
    with pytest.raises(ApprovalError, match=r"rejected by carol .*final"):
        approve_version(store.client, "churn", 1, actor="dave")
    with pytest.raises(ApprovalError, match="final"):
        reject_version(store.client, "churn", 1, actor="dave")
    assert get_version(store.client, "churn", 1).status == REJECTED
    assert latest_approved(store.client, "churn") is None


def test_set_approval_validates_status(store, register) -> None:
    register()

    for bad in (PENDING, "approved", "Maybe"):
        with pytest.raises(ValueError, match="must be 'Approved' or 'Rejected'"):
            set_approval(store.client, "churn", 1, bad, actor="x", comment=None)
    with pytest.raises(VersionNotFoundError, match=r"no version 9; versions: 1 \(Pending"):
        approve_version(store.client, "churn", 9, actor="x")


def test_second_version_leaves_the_champion_in_place(store, register) -> None:
    register()
    approve_version(store.client, "churn", 1, actor="alice")
    first = set_champion(store.client, "churn", 1)
    assert first.is_champion and first.aliases == ("champion",)

    register(objective_value=0.9)
    approve_version(store.client, "churn", 2, actor="alice")

    current = champion(store.client, "churn")
    assert current is not None and current.version == 1
    latest = latest_approved(store.client, "churn")
    assert latest is not None and latest.version == 2 and not latest.is_champion
    # Approving an Approved champion again, or rejecting it while it serves, is refused.
    with pytest.raises(ApprovalError, match="champion"):
        reject_version(store.client, "churn", 1, actor="bob")
    # An approval may be revoked while the version is not serving.
    assert reject_version(store.client, "churn", 2, actor="bob").status == REJECTED


def test_set_champion_refuses_versions_that_are_not_approved(store, register) -> None:
    register()
    register()
    reject_version(store.client, "churn", 2, actor="carol")

    with pytest.raises(NotApprovedError, match="version 1 is PendingManualApproval"):
        set_champion(store.client, "churn", 1)
    with pytest.raises(NotApprovedError, match="version 2 is Rejected"):
        set_champion(store.client, "churn", 2)
    assert champion(store.client, "churn") is None


def test_resolve_version(store, register) -> None:
    register()
    register()
    register()
    approve_version(store.client, "churn", 1, actor="a")
    approve_version(store.client, "churn", 2, actor="a")
    set_champion(store.client, "churn", 1)

    assert resolve_version(store.client, "churn", "champion").version == 1
    assert resolve_version(store.client, "churn", "Champion").version == 1
    assert resolve_version(store.client, "churn", "latest").version == 3
    assert resolve_version(store.client, "churn", 3).status == PENDING
    assert resolve_version(store.client, "churn", " 2 ").version == 2
    assert resolve_version(store.client, "churn", None).version == 2
    assert resolve_version(store.client, "churn", "").version == 2


def test_resolve_version_errors_name_what_exists(store, register) -> None:
    with pytest.raises(ModelNotFoundError, match="registered models: none yet"):
        resolve_version(store.client, "churn", None)
    assert champion(store.client, "churn") is None
    assert latest_approved(store.client, "churn") is None

    register()
    with pytest.raises(ModelNotFoundError, match=r"no registered model 'churm'.*'churn'"):
        resolve_version(store.client, "churm", "champion")
    with pytest.raises(VersionNotFoundError, match=r"no Approved version; versions: 1 \(Pend"):
        resolve_version(store.client, "churn", None)
    with pytest.raises(VersionNotFoundError, match="alias 'champion'"):
        resolve_version(store.client, "churn", "champion")
    with pytest.raises(VersionNotFoundError, match="no version 7"):
        resolve_version(store.client, "churn", 7)
    with pytest.raises(ModelNotFoundError):
        get_version(store.client, "nope", 1)
