"""A throwaway venv for an oracle library the platform does not depend on.

The benchmarks compare our implementations with reference ones (NannyML's CBPE,
SageMaker Clarify's ``smclarify``) whose pins clash with ours; each gets a venv of its
own under the temp folder, made once with uv and reused while its check passes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def oracle_python(name: str, packages: list[str], check: str) -> Path:
    """The interpreter of the venv ``mlops-<name>`` holding ``packages``.

    Args:
        name: Names the venv folder (include the oracle's version).
        packages: What ``uv pip install`` gets, pinned.
        check: Python code that succeeds once the venv is usable.
    """
    venv = Path(tempfile.gettempdir()) / f"mlops-{name}"
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0
    ):
        return python
    print(f"creating the {name} venv at {venv} (once) ...", flush=True)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "venv", "-q", "--clear", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *packages], check=True)
    return python
