"""Live traffic for the demo: generated customers scored by the endpoint over HTTP."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from include.mlops.demo.churn import TARGET_COLUMN, generate_churn


def send_traffic(
    endpoint_url: str,
    model_name: str,
    *,
    rows: int,
    seed: int,
    drift: float = 0.0,
    start_id: int = 1_000_000,
    rows_per_request: int = 10,
    log: Callable[[str], None] = print,
    api_key: str | None = None,
    collect_labels: bool = False,
) -> dict[str, Any]:
    """Score ``rows`` generated customers, ``rows_per_request`` per JSON request.

    Args:
        endpoint_url: The endpoint's base URL.
        model_name: The endpoint (registered model) to call.
        rows: Customers to score.
        seed: Generator seed.
        drift: 0..1, how far the generated features move from the training data's.
        start_id: First ``customer_id`` (keeps live ids apart from training ids).
        rows_per_request: Rows per request.
        log: Progress lines.
        api_key: The endpoint API key (default ``MLOPS_ENDPOINT_API_KEY``).
        collect_labels: Also return what really happened to each scored customer (the
            generator's ``churned``), keyed by the endpoint's ``inference_id``: the ground
            truth a business learns later.

    Returns:
        ``requests``, ``rows``, ``errors`` (non-200 answers), ``versions``
        (``{"<version>/<variant>": requests}``) and, with ``collect_labels``, ``labels``
        (rows of ``inference_id``, ``churned``, ``event_time``).
    """
    frame = generate_churn(rows, seed=seed, start_id=start_id, drift=drift)
    records = json.loads(
        frame.drop(columns=[TARGET_COLUMN]).to_json(orient="records", date_format="iso")
    )
    url = f"{endpoint_url.rstrip('/')}/endpoints/{model_name}/invocations"
    truth = frame[TARGET_COLUMN].tolist()
    labels: list[dict[str, Any]] = []
    versions: Counter[str] = Counter()
    errors = 0
    requests = 0
    key = api_key or os.environ.get("MLOPS_ENDPOINT_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=30, headers=headers) as http:
        for start in range(0, len(records), rows_per_request):
            response = http.post(
                url, json={"dataframe_records": records[start : start + rows_per_request]}
            )
            requests += 1
            if response.status_code != 200:
                errors += 1
                continue
            body = response.json()
            versions[f"v{body['model_version']}/{body['variant']}"] += 1
            if collect_labels:
                now = datetime.now(UTC).isoformat()
                for offset, item in enumerate(body["predictions"]):
                    labels.append({"inference_id": item["inference_id"],
                                   TARGET_COLUMN: truth[start + offset], "event_time": now})  # fmt: skip
            if requests % 100 == 0:
                log(f"{start + rows_per_request} of {len(records)} rows scored")
    sent: dict[str, Any] = {
        "requests": requests,
        "rows": len(records),
        "errors": errors,
        "versions": dict(versions),
    }
    if collect_labels:
        sent["labels"] = labels
    return sent
