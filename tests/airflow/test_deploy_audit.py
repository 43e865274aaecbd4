"""Who deploy_model's audit records name, and when a deployment counts as a rollback."""

from __future__ import annotations

from types import SimpleNamespace

from include.mlops.airflow.deploy import SYSTEM_ACTOR, deploy_reason, deployed_by, is_rollback


def test_a_manual_run_is_deployed_by_its_trigger_an_asset_run_by_the_system() -> None:
    manual = SimpleNamespace(run_type="manual", triggering_user_name="admin")
    assert deployed_by(manual) == "admin"
    assert deployed_by(SimpleNamespace(run_type="manual", triggering_user_name=None)) == (
        "unknown user"
    )
    for run_type in ("asset_triggered", "scheduled", "DagRunType.ASSET_TRIGGERED"):
        run = SimpleNamespace(run_type=run_type, triggering_user_name="admin")
        assert deployed_by(run) == SYSTEM_ACTOR == "system:deploy_model"
    assert deployed_by(None) == SYSTEM_ACTOR


def test_previous_and_older_versions_are_rollbacks_a_shadow_never() -> None:
    assert is_rollback("previous", "all_at_once", 1, 2)
    assert is_rollback("previous", "all_at_once", 3, 2)  # undoing a rollback: asked as one
    assert is_rollback("1", "canary", 1, 2)
    assert not is_rollback("3", "all_at_once", 3, 2)
    assert not is_rollback("latest_approved", "all_at_once", 1, None)
    assert not is_rollback("1", "shadow", 1, 2)


def test_the_reason_says_what_started_the_deployment() -> None:
    assert deploy_reason(SYSTEM_ACTOR, "4", 4, 3, "deployment") == (
        "v4 was approved (model_approved event)"
    )
    assert deploy_reason("admin", "latest_approved", 4, 3, "deployment") == (
        "deployed by hand (version=latest_approved)"
    )
    assert deploy_reason("admin", "previous", 3, 4, "rollback") == (
        "rollback from v4 to v3 (version=previous)"
    )
