"""Form problems found in the shipped DAGs, owned by the DAG files (kept in one place).

The static form test marks these strict-xfail, and the browser test checks the form
behaves as listed; fixing a DAG turns its entry into a failure until it is removed here.
"""

from __future__ import annotations

#: Params the shipped forms cannot be submitted with as they are: Airflow 3.3's form treats
#: a param whose type has no "null" as required and keeps Trigger (or Approve) disabled while
#: it is empty, so an empty-string default blocks the form.
#: (dag_id, param) → the fix. Strict xfail: fixing the DAG makes these XPASS and fail,
#: so the entry is removed the day the form works.
KNOWN_BLOCKED: dict[tuple[str, str], str] = {}

#: Partition params whose pattern checks the shape only: an impossible date such as
#: 2026-13-45 passes the form and fails in the run's first task instead.
#: Fix: pattern=r"^((19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$" (plus "all" where used).
LOOSE_DATE_PATTERNS: set[tuple[str, str]] = set()
