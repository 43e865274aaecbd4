"""Who may answer an approval request: the listed approvers, never a manual run's trigger."""

from __future__ import annotations

import pytest

from include.mlops.approvers import (
    APPROVERS_ENV,
    NoApproverError,
    approvers_for_run,
    listed_approvers,
)


def test_the_setting_is_read_in_order_without_blanks_or_repeats() -> None:
    assert listed_approvers({APPROVERS_ENV: " admin, reviewer,,admin , "}) == ("admin", "reviewer")
    assert listed_approvers({APPROVERS_ENV: " , "}) == ()
    assert listed_approvers({}) == ()


def test_a_manual_run_leaves_out_the_user_who_triggered_it() -> None:
    env = {APPROVERS_ENV: "admin,reviewer"}
    approvers = approvers_for_run(manual=True, triggered_by="admin", env=env)
    assert approvers.restricted and approvers.eligible == ("reviewer",)
    assert approvers.excluded == "admin"
    text = approvers.explanation()
    assert "**Who may answer:** reviewer (from MLOPS_APPROVERS)" in text
    assert "admin is a listed approver but triggered this run" in text
    assert "separation of duties" in text
    approvers.require_someone()  # reviewer is left: nothing to refuse


def test_unattended_runs_are_answered_by_any_listed_approver() -> None:
    env = {APPROVERS_ENV: "admin,reviewer"}
    # A scheduled or asset-triggered run names no trigger, whatever Airflow stored.
    approvers = approvers_for_run(manual=False, triggered_by="admin", env=env)
    assert approvers.eligible == ("admin", "reviewer") and approvers.excluded is None
    assert "Nobody triggered this run by hand" in approvers.explanation()


def test_a_trigger_who_is_not_listed_changes_nothing() -> None:
    approvers = approvers_for_run(
        manual=True, triggered_by="carol", env={APPROVERS_ENV: "admin,reviewer"}
    )
    assert approvers.eligible == ("admin", "reviewer")
    assert "carol triggered this run and is not a listed approver" in approvers.explanation()
    unknown = approvers_for_run(manual=True, triggered_by=None, env={APPROVERS_ENV: "admin"})
    assert unknown.eligible == ("admin",)
    assert "does not name who triggered this run" in unknown.explanation()


def test_no_one_left_is_refused_naming_the_user_and_the_setting() -> None:
    approvers = approvers_for_run(manual=True, triggered_by="admin", env={APPROVERS_ENV: "admin"})
    assert approvers.eligible == ()
    with pytest.raises(NoApproverError) as refused:
        approvers.require_someone()
    message = str(refused.value)
    assert "MLOPS_APPROVERS lists only admin, and admin triggered the run" in message
    assert "cannot approve its version" in message


def test_unset_keeps_anyone_may_answer_and_says_so() -> None:
    approvers = approvers_for_run(manual=True, triggered_by="admin", env={})
    assert not approvers.restricted and approvers.eligible == ()
    approvers.require_someone()  # nobody is named, so anyone may: never refused
    text = approvers.explanation()
    assert "any user allowed to answer approvals" in text and "MLOPS_APPROVERS is unset" in text
    assert "admin triggered it" in text
