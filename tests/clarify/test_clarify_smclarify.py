"""Our bias metrics equal smclarify's (SageMaker Clarify's implementation) on the same data.

smclarify does not run under pandas 3 and is under the Amazon Software License, so it is
no dependency: ``benchmarks/bench_clarify.py`` installs it into its own throwaway venv
(cached under $TMPDIR) and compares every metric on four facets of a trained churn model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_metric_agrees_with_smclarify_to_1e_6() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_clarify.py"), "--agreement-only",
         "--rows", "2500", "--json"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])["agreement"]
    differences = result["max_abs_difference"]
    assert set(differences) == {
        "CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL",
        "DPPL", "DI", "DCAcc", "DCR", "RD", "DAR", "DRR", "AD", "CDDPL", "TE", "FT",
    }  # fmt: skip
    assert max(differences.values()) <= 1e-6, differences
    assert result["mismatched_definedness"] == {}
