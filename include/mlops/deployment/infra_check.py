"""Infra-validation child: load one version in a clean process and score its input example.

Run by :func:`include.mlops.deployment.rollout.infra_validate`; prints one JSON line::

    python -m include.mlops.deployment.infra_check --tracking-uri URI --model NAME --version N
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Load, verify and score; exit 1 with the error on stderr when anything fails."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True, type=int)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)

    from mlflow.models import Model

    from include.mlops.deployment.fleet import records_payload
    from include.mlops.serving.scoring import load_scorer

    with tempfile.TemporaryDirectory(prefix="mlops-infra-") as tmp:
        folder = Path(tmp) / "model"
        scorer = load_scorer(args.tracking_uri, args.model, args.version, dst_dir=folder)
        example = Model.load(str(folder)).load_input_example(str(folder))
    if example is None or len(example) == 0:
        print(f"{args.model} v{args.version} has no stored input example", file=sys.stderr)
        return 1
    timings = []
    for _ in range(max(1, args.calls)):
        started = time.perf_counter()
        scored = scorer.score(example)
        timings.append((time.perf_counter() - started) * 1000.0)
    if len(scored.predictions) != len(example):
        print(f"{len(scored.predictions)} predictions for {len(example)} rows", file=sys.stderr)
        return 1
    timings.sort()
    result = {
        "model_name": args.model,
        "version": args.version,
        "load_seconds": round(scorer.load_seconds, 3),
        "p50_ms": round(timings[len(timings) // 2], 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
        "rows": len(example),
        "payload": records_payload(example),
    }
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
