"""``deploy_model`` params, validated before anything touches the endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from include.mlops.vocabulary import (
    DEPLOY_STRATEGIES,
    LATEST_APPROVED,
    NAME_PATTERN,
    NAME_RE,
    PREVIOUS,
)


class DeployRequestError(ValueError):
    """One or more ``deploy_model`` params are unusable; the message names each."""


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy and how.

    Attributes:
        model_name: Registered model (= endpoint) name.
        version: A version number, ``latest_approved`` (default) or ``previous`` (the
            champion before the current one: the manual rollback).
        strategy: ``all_at_once`` (swap the champion), ``canary`` (``traffic_percent`` of
            requests to the new version while baking, then promote), ``linear`` (shift
            ``traffic_percent`` more each step, baking each), ``shadow`` (the new version
            scores a copy of ``traffic_percent`` of requests; never promoted by this run).
        traffic_percent: Canary share, linear step or shadow share (1-100).
        bake_minutes: How long to watch a canary (per linear step: this divided by the
            number of steps) before promoting it.
        max_error_rate: Roll back when the new version's 5xx share during the bake exceeds it.
        max_p99_ms: Roll back when the new version's p99 latency during the bake exceeds it.
    """

    model_name: str
    version: str = LATEST_APPROVED
    strategy: str = "all_at_once"
    traffic_percent: float = 10.0
    bake_minutes: float = 1.0
    max_error_rate: float = 0.01
    max_p99_ms: float = 500.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DeployRequest:
        """Validate trigger params; every problem is named at once.

        Raises:
            DeployRequestError: Listing every bad field with the value it got.
        """
        problems: list[str] = []
        name = str(params.get("model_name") or "")
        if not NAME_RE.match(name):
            problems.append(f"model_name {name!r} must match {NAME_PATTERN}")
        version = str(params.get("version") or LATEST_APPROVED).strip()
        if version not in (LATEST_APPROVED, PREVIOUS) and not (
            version.isdigit() and int(version) > 0
        ):
            problems.append(
                f"version {version!r} must be a version number, {LATEST_APPROVED!r} or {PREVIOUS!r}"
            )
        strategy = str(params.get("strategy") or "all_at_once")
        if strategy not in DEPLOY_STRATEGIES:
            problems.append(f"strategy {strategy!r} must be one of {', '.join(DEPLOY_STRATEGIES)}")
        numbers: dict[str, float] = {}
        for key, low, high, default, zero_ok in (
            ("traffic_percent", 0.0, 100.0, 10.0, False),
            ("bake_minutes", 0.0, 24 * 60.0, 1.0, True),
            ("max_error_rate", 0.0, 1.0, 0.01, True),
            ("max_p99_ms", 0.0, 600_000.0, 500.0, False),
        ):
            raw = params.get(key, default)
            try:
                value = float(default if raw is None or raw == "" else raw)
            except (TypeError, ValueError):
                problems.append(f"{key} {raw!r} is not a number")
                continue
            if not (low <= value if zero_ok else low < value) or value > high:
                bounds = f"[{low:g}, {high:g}]" if zero_ok else f"({low:g}, {high:g}]"
                problems.append(f"{key} {value:g} must be in {bounds}")
            numbers[key] = value
        if problems:
            raise DeployRequestError("deploy_model params refused: " + "; ".join(problems))
        return cls(model_name=name, version=version, strategy=strategy, **numbers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (XCom)."""
        return asdict(self)

    @property
    def linear_steps(self) -> list[float]:
        """The canary shares a linear rollout walks through, ending below 100."""
        step = self.traffic_percent
        shares: list[float] = []
        share = step
        while share < 100.0 - 1e-9:
            shares.append(round(share, 6))
            share += step
        return shares or [step]
