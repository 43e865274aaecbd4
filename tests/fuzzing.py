"""schemathesis over Hypothesis, for the apps' OpenAPI (its pytest plugin does not load
under pytest 9): every operation, generated cases, checked as the caller says."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

CREDENTIALS = ("authorization", "x-api-key", "cookie")


def fuzz(
    schema: Any,
    *,
    credentials: dict[str, str],
    open_paths: Collection[str] = (),
    base_url: str | None = None,
    refused: Callable[[Any], bool] = lambda r: r.status_code in (401, 403),
    examples: int = 20,
) -> dict[str, int]:
    """Call every operation's generated cases; returns how many ran per operation.

    Every answer must be below 500; without credentials, every answer of a path not in
    ``open_paths`` must be a refusal (``refused``).
    """
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIALS
            }
            case.headers = {**headers, **credentials}
            response = case.call(base_url=base_url, allow_redirects=False)
            label = f"{case.method} {case.path}"
            assert response.status_code < 500, (label, case.formatted_path, response.text[:300])
            if not credentials and case.path not in open_paths:
                assert refused(response), (label, case.formatted_path, response.status_code)
            seen[label] = seen.get(label, 0) + 1

        run()
    return seen
