"""The churn dataset's contract, spelled out here rather than imported from the generator,
so a change in the generator cannot silently move the goalposts (tests/demo)."""

from __future__ import annotations

EXPECTED_COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "tenure_months",
    "plan",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "region",
    "payment_method",
    "email",
    "churned",
]
PLANS = {"basic", "standard", "premium"}
REGIONS = {"north", "south", "east", "west", "central"}
PAYMENTS = {"card", "bank_transfer", "paypal", "check"}
