"""Benchmarks run small on the test stacks, so CI proves they still work end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from include.mlops.stack import StackConfig

REPO = Path(__file__).resolve().parents[2]


def run_tuning_wall_bench(stack: StackConfig, folder: Path, *ways: str) -> str:
    """``benchmarks/bench_tuning_wall.py`` on a running stack, small (4 trials, 3,000 rows):
    CI proves it runs end to end and prints its breakdown; its ratios are measured on a
    quiet machine at full size, never asserted in a test."""
    settings = folder / "stack.json"
    settings.write_text(json.dumps(stack.settings()))
    option = "--scaled-stack" if stack.scaled else "--embedded-stack"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_tuning_wall.py"), "--rows", "3000",
         "--trials", "4", "--only", ",".join(ways), option, str(settings)],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "4 trials 4 complete" in done.stdout, done.stdout
    for line in ("tasks before tuning", "tune task start", "no task running"):
        assert line in done.stdout, done.stdout
    return done.stdout
