"""Who may answer a version's approval request: the named approvers, minus the run's trigger.

``MLOPS_APPROVERS`` lists the Airflow users (comma-separated user names) who may approve
or reject a version. ``train_model`` assigns them to its approval request when the
request is made, so Airflow itself refuses anyone else (403 on the answer). Unset (or
empty): any user Airflow lets answer approvals may answer, as before.

Separation of duties: the user who triggered a manual training run is never among the
approvers of its version. A run nobody started by hand (scheduled, or started by an
asset event) is approved by any listed approver. When the rule leaves no one (say
``MLOPS_APPROVERS=admin`` and ``admin`` triggered the run), :meth:`Approvers.require_someone`
refuses the run before any work, so no request ever waits for an answer no one may give.
Plain Python: the Airflow glue hands in the run's facts and the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: The setting: comma-separated Airflow user names.
APPROVERS_ENV = "MLOPS_APPROVERS"


class NoApproverError(ValueError):
    """The setting and the separation-of-duties rule leave no one to answer the request."""


def listed_approvers(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The user names ``MLOPS_APPROVERS`` lists, in order, without blanks or repeats."""
    raw = (os.environ if env is None else env).get(APPROVERS_ENV) or ""
    names = [name.strip() for name in raw.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class Approvers:
    """Who may answer one run's approval request, and why.

    Attributes:
        listed: The users the setting names (empty: the setting is unset, anyone may).
        manual: Whether a person triggered the run (separation of duties applies).
        triggered_by: The Airflow user who triggered a manual run (``None``: not known,
            or not a manual run).
    """

    listed: tuple[str, ...]
    manual: bool
    triggered_by: str | None = None

    @property
    def restricted(self) -> bool:
        """Whether the setting names who may answer (else anyone may)."""
        return bool(self.listed)

    @property
    def excluded(self) -> str | None:
        """The listed user left out because they triggered the run, if any."""
        if self.manual and self.triggered_by and self.triggered_by in self.listed:
            return self.triggered_by
        return None

    @property
    def eligible(self) -> tuple[str, ...]:
        """The users who may answer (empty when not :attr:`restricted`: anyone may)."""
        return tuple(name for name in self.listed if name != self.excluded)

    def require_someone(self) -> None:
        """Refuse a restricted request that no one may answer.

        Raises:
            NoApproverError: Naming the triggering user and the setting.
        """
        if self.restricted and not self.eligible:
            raise NoApproverError(
                f"no one may approve this run's version: {APPROVERS_ENV} lists only "
                f"{', '.join(self.listed)}, and {self.triggered_by} triggered the run (the user "
                "who triggers a manual training run cannot approve its version). Add another "
                f"user to {APPROVERS_ENV}, have another approver trigger the run, or use "
                "approval=auto."
            )

    def explanation(self) -> str:
        """Markdown for the request body: who may answer, and why the trigger may not."""
        if not self.restricted:
            who = (
                f" ({self.triggered_by} triggered it)" if self.manual and self.triggered_by else ""
            )
            return (
                f"**Who may answer:** any user allowed to answer approvals in Airflow"
                f"{who}: {APPROVERS_ENV} is unset, so no approvers are named."
            )
        text = f"**Who may answer:** {', '.join(self.eligible)} (from {APPROVERS_ENV})."
        if self.excluded:
            text += (
                f" {self.excluded} is a listed approver but triggered this run, and the user "
                "who triggers a manual training run cannot approve its version (separation "
                "of duties)."
            )
        elif self.manual and not self.triggered_by:
            text += " Airflow does not name who triggered this run, so no one is left out."
        elif self.manual:
            text += f" {self.triggered_by} triggered this run and is not a listed approver."
        else:
            text += " Nobody triggered this run by hand: any listed approver may answer."
        return text


def approvers_for_run(
    *, manual: bool, triggered_by: str | None, env: Mapping[str, str] | None = None
) -> Approvers:
    """Who may answer the approval request of a run, per ``MLOPS_APPROVERS`` (read now).

    Args:
        manual: Whether a person triggered the run.
        triggered_by: The Airflow user who triggered it (ignored unless ``manual``).
        env: The environment (default ``os.environ``).
    """
    return Approvers(
        listed=listed_approvers(env),
        manual=manual,
        triggered_by=(triggered_by or None) if manual else None,
    )
