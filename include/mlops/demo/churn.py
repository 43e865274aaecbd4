"""A seeded generator of a customer-churn-like dataset, and landing files with known defects.

The data has real, learnable signal: ``churned`` is a noisy logistic function of tenure,
support calls, plan, monthly charges and payment method, so a gradient-boosted model
reaches a ROC-AUC around 0.85 while a constant baseline sits at 0.5. ``drift`` moves the
feature distributions (older customers, higher charges, more support calls, a richer plan
mix, a new ``crypto`` payment method) and the relation between them and churn (support
calls and tenure matter less, the premium plan and high charges more), so later stages can
simulate live traffic on which a model trained before the drift ranks customers worse.

Every value is a pure function of ``(seed, row index)``: rows are produced in fixed blocks
of :data:`BLOCK_ROWS`, each from its own seeded stream, so a file written in chunks of any
size is byte-identical to one written in a single piece, and memory stays flat for files
of millions of rows.

Landing files with known defects, as an upstream system delivers them, are written by
:mod:`include.mlops.demo.landing`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.mlops.etl.declared import churn_schema

#: Column order of every generated frame and landing file: the declared schema's.
COLUMNS: tuple[str, ...] = tuple(churn_schema().names)
#: Columns that may legitimately be null in good records.
NULLABLE_COLUMNS: tuple[str, ...] = (
    "total_charges",
    "support_calls",
    "region",
    "payment_method",
    "email",
)
#: Columns holding personal data (to be masked in the curated zone).
PII_COLUMNS: tuple[str, ...] = ("email",)
KEY_COLUMN = "customer_id"
TARGET_COLUMN = "churned"

PLANS: tuple[str, ...] = ("basic", "standard", "premium")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")
#: ``crypto`` only appears with ``drift`` above 0.5: a category the training data never saw.
PAYMENT_METHODS: tuple[str, ...] = ("card", "bank_transfer", "paypal", "check", "crypto")
BASE_PAYMENT_METHODS: tuple[str, ...] = PAYMENT_METHODS[:4]

#: Value domains of the good records (what a declared schema should accept).
DOMAINS: dict[str, Any] = {
    "age": (18, 100),
    "tenure_months": (0, 120),
    "monthly_charges": (0.0, 1000.0),
    "support_calls": (0, 100),
    "plan": PLANS,
    "region": REGIONS,
    "payment_method": PAYMENT_METHODS,
    "churned": (0, 1),
}

#: Rows per independently seeded block; the unit that makes chunked output seed-stable.
BLOCK_ROWS = 50_000

# Word lists read better as words than as 70 quoted strings.
_FIRST_NAMES = np.array(
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara "  # noqa: SIM905
    "richard susan joseph jessica thomas sarah charles karen daniel nancy matthew lisa "
    "anthony betty mark sandra donald ashley steven kimberly paul emily andrew donna joshua "
    "michelle kenneth carol kevin amanda brian melissa george deborah timothy stephanie "
    "ahmed fatima wei li yuki hiroshi priya arjun olga ivan lucia mateo sofia lars ingrid "
    "kwame amara chen mei omar layla".split()
)
_LAST_NAMES = np.array(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "  # noqa: SIM905
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell "
    "carter roberts kim patel singh khan novak kowalski schmidt rossi dubois silva okafor "
    "tanaka".split()
)
# Reserved names (RFC 2606 / RFC 6761): fake addresses that can never reach anyone.
_EMAIL_DOMAINS = np.array(
    ["example.com", "example.net", "example.org", "mail.example", "inbox.test"]
)
_PLAN_BASE_CHARGE = np.array([29.0, 64.0, 109.0])
_PLAN_SUPPORT_RATE = np.array([1.6, 1.2, 0.9])
# Effects on the churn log-odds, per category code (why each customer leaves).
_PLAN_EFFECT = np.array([0.7, 0.0, -0.8])
_PAYMENT_EFFECT = np.array([-0.5, -0.8, 0.0, 1.3, 0.9])
# Tuned so the base churn rate is ~23 % at drift 0 (see tests/demo).
_CHURN_INTERCEPT = -0.6
# How the churn reasons move with ``drift`` (concept drift): per plan code, and the shift
# that keeps the churn rate in a plausible range at drift 1.
_PLAN_CONCEPT = np.array([-1.0, 0.0, 1.6])
_CONCEPT_INTERCEPT = -1.5

_SEED_STREAMS = 16


# --------------------------------------------------------------------------- generation


def _block_columns(
    seed: int, block: int, *, noise: float, drift: float, concept: float
) -> dict[str, np.ndarray]:
    """Draw one block of :data:`BLOCK_ROWS` rows as category codes and numbers.

    Each variable draws from its own stream so that ``drift`` (which changes how many
    numbers e.g. a Poisson draw consumes) never perturbs the other columns: the same seed
    at two drift levels gives the same customers, moved.
    """
    n = BLOCK_ROWS
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, block]).spawn(_SEED_STREAMS)
    ]
    (r_age, r_plan, r_tenure, r_days, r_charge, r_total, r_support, r_region) = streams[:8]
    (r_pay, r_nulls, r_name, r_label) = streams[8:12]

    age = np.clip(np.rint(r_age.normal(41.0 + 14.0 * drift, 13.0, n)), 18, 100).astype(np.int64)

    # Richer plan mix under drift: basic shrinks, premium grows.
    p_basic, p_premium = 0.5 - 0.25 * drift, 0.2 + 0.25 * drift
    plan = np.searchsorted(np.cumsum([p_basic, 1.0 - p_basic - p_premium]), r_plan.random(n))
    plan = plan.astype(np.int64)

    tenure = np.clip(np.floor(r_tenure.gamma(1.3, 22.0, n)), 0, 120).astype(np.int64)
    days_back = np.rint(tenure * 30.44).astype(np.int64) + r_days.integers(0, 30, n)

    charge = _PLAN_BASE_CHARGE[plan] * (1.0 + 0.35 * drift) * r_charge.lognormal(0.0, 0.18, n)
    monthly: np.ndarray = np.round(np.clip(charge, 5.0, 1000.0), 2)
    total = np.round(tenure * monthly * r_total.uniform(0.92, 1.04, n), 2)

    support = r_support.poisson(_PLAN_SUPPORT_RATE[plan] * (1.0 + 1.2 * drift) + age / 200.0)
    support = np.clip(support, 0, 100).astype(np.int64)

    region = np.searchsorted(np.cumsum([0.2, 0.25, 0.2, 0.2]), r_region.random(n))
    # The unseen "crypto" category only from drift 0.5 on, up to 15 % at drift 1.
    p_crypto = 0.3 * max(0.0, drift - 0.5)
    base = np.array([0.45, 0.25, 0.2, 0.1]) * (1.0 - p_crypto)
    payment = np.searchsorted(np.cumsum(base), r_pay.random(n)).astype(np.int64)

    # Concept drift: with ``concept`` (by default = ``drift``) the reasons to leave change too (a competitor's cheaper
    # premium offer): support calls and tenure matter less, the premium plan and high
    # charges more. A model trained before the drift ranks today's customers worse.
    logit = (
        _CHURN_INTERCEPT
        + _CONCEPT_INTERCEPT * concept
        - (0.08 - 0.05 * concept) * tenure
        + (0.65 - 0.45 * concept) * support
        + _PLAN_EFFECT[plan]
        + concept * _PLAN_CONCEPT[plan]
        + (0.018 + 0.012 * concept) * (monthly - 64.0)
        + _PAYMENT_EFFECT[payment]
        - 0.01 * (age - 41.0)
    )
    # Logistic latent noise: noise=1 is exactly Bernoulli(sigmoid(logit)); 0 is
    # deterministic; larger values blur the signal.
    u = r_label.uniform(1e-12, 1.0 - 1e-12, n)
    churned = (logit + noise * np.log(u / (1.0 - u)) > 0).astype(np.int64)

    nulls = r_nulls.random((5, n))
    return {
        "days_back": days_back,
        "age": age,
        "tenure_months": tenure,
        "plan": plan,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support,
        "region": region,
        "payment_method": payment,
        "first": r_name.integers(0, len(_FIRST_NAMES), n),
        "last": r_name.integers(0, len(_LAST_NAMES), n),
        "domain": r_name.integers(0, len(_EMAIL_DOMAINS), n),
        "churned": churned,
        # Null rates per nullable column (the label was drawn from the true values).
        "null_total": nulls[0] < 0.015,
        "null_support": nulls[1] < 0.02,
        "null_region": nulls[2] < 0.03,
        "null_payment": nulls[3] < 0.02,
        "null_email": nulls[4] < 0.04,
    }


def check_knobs(*, noise: float, drift: float, concept: float | None = None) -> None:
    """Refuse a ``drift`` or ``concept`` outside [0, 1] or a negative ``noise`` (ValueError)."""
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    if concept is not None and not 0.0 <= concept <= 1.0:
        raise ValueError(f"concept must be in [0, 1], got {concept}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def parse_date(value: str | dt.date) -> dt.date:
    """A date, or an ISO ``YYYY-MM-DD`` text as a date."""
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def churn_table(
    row_start: int,
    row_stop: int,
    *,
    seed: int,
    start_id: int,
    as_of: str | dt.date,
    noise: float,
    drift: float,
    concept: float | None = None,
) -> pa.Table:
    """Rows ``[row_start, row_stop)`` of the dataset for ``seed`` as a typed Arrow table
    (``concept``: how far the churn reasons move; ``None`` = as far as ``drift``)."""
    check_knobs(noise=noise, drift=drift, concept=concept)
    concept = drift if concept is None else concept
    n = row_stop - row_start
    first_block, last_block = row_start // BLOCK_ROWS, max(row_start, row_stop - 1) // BLOCK_ROWS
    blocks = [
        _block_columns(seed, b, noise=noise, drift=drift, concept=concept)
        for b in range(first_block, last_block + 1)
    ]
    offset = row_start - first_block * BLOCK_ROWS
    cols = (
        {k: np.concatenate([b[k] for b in blocks])[offset : offset + n] for k in blocks[0]}
        if n > 0
        else {k: v[:0] for k, v in blocks[0].items()}
    )

    ids = np.arange(start_id + row_start, start_id + row_stop, dtype=np.int64)
    as_of_day = np.datetime64(parse_date(as_of), "D")
    signup = (as_of_day - cols["days_back"].astype("timedelta64[D]")).astype("datetime64[D]")

    # Emails: first.last + a number derived from the id, so they are unique-ish without
    # exposing the key itself.
    number = pa.array(((ids * 7919) % 100_000).astype(np.int64)).cast(pa.string())
    email = pc.binary_join_element_wise(
        pa.array(_FIRST_NAMES[cols["first"]]),
        ".",
        pa.array(_LAST_NAMES[cols["last"]]),
        number,
        "@",
        pa.array(_EMAIL_DOMAINS[cols["domain"]]),
        "",
    )
    email = pc.if_else(pa.array(cols["null_email"]), pa.scalar(None, pa.string()), email)

    def category(values: Sequence[str], codes: np.ndarray, mask: np.ndarray | None) -> pa.Array:
        return pa.array(np.asarray(values, dtype=object)[codes], pa.string(), mask=mask)

    return pa.table(
        {
            "customer_id": pa.array(ids),
            "signup_date": pa.array(signup, pa.date32()),
            "age": pa.array(cols["age"]),
            "tenure_months": pa.array(cols["tenure_months"]),
            "plan": category(PLANS, cols["plan"], None),
            "monthly_charges": pa.array(cols["monthly_charges"]),
            "total_charges": pa.array(cols["total_charges"], mask=cols["null_total"]),
            "support_calls": pa.array(cols["support_calls"], mask=cols["null_support"]),
            "region": category(REGIONS, cols["region"], cols["null_region"]),
            "payment_method": category(
                PAYMENT_METHODS, cols["payment_method"], cols["null_payment"]
            ),
            "email": email,
            "churned": pa.array(cols["churned"]),
        }
    )


def generate_churn(
    n_rows: int,
    *,
    seed: int = 0,
    start_id: int = 1,
    as_of: str | dt.date = "2026-11-01",
    noise: float = 1.0,
    drift: float = 0.0,
    concept: float | None = None,
) -> pd.DataFrame:
    """Generate the churn dataset as a typed DataFrame (no defects).

    Args:
        n_rows: Number of customers.
        seed: Seed; the same seed gives the same rows, whatever ``start_id``.
        start_id: ``customer_id`` of the first row; ids are consecutive.
        as_of: Snapshot date; ``signup_date`` is ``tenure_months`` before it.
        noise: Scale of the label noise (1 = logistic, 0 = deterministic label).
        drift: 0..1, how far the feature distributions move from the training-time ones.
        concept: 0..1, how far the relation between features and churn moves (concept
            drift); ``None`` moves it as far as ``drift``, 0 keeps it (covariate shift only).

    Returns:
        Columns :data:`COLUMNS`: ``customer_id``/``age``/``tenure_months``/``churned``
        int64, ``signup_date`` datetime64 (midnight), ``support_calls`` nullable Int64,
        charges float64 (``total_charges`` with NaN), categories and ``email`` strings.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    table = churn_table(
        0, n_rows, seed=seed, start_id=start_id, as_of=as_of, noise=noise, drift=drift,
        concept=concept,
    )  # fmt: skip
    frame = table.to_pandas(date_as_object=False)
    frame["support_calls"] = frame["support_calls"].astype("Int64")
    return frame
