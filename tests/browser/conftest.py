"""Real-browser tests: Debian's Chromium, driven headless by playwright-core, against the
session's embedded stack (the ``embedded_stack`` fixture, shared with tests/stack).

What the tests need is installed here, on first use, so ``make test`` works on a fresh
CI machine:

- Chromium: ``/usr/bin/chromium`` from apt (``apt-get install chromium``, after an
  ``apt-get update`` if the package lists are empty); Node.js and npm the same way;
- ``playwright-core`` (no bundled browsers) with npm into ``.cache/browser/`` (ignored by
  git through ``.cache/.gitignore``, written here).

The tests skip, saying why, only when neither Chromium is present nor apt usable (not
root and no password-less sudo). Screenshots go to ``test-artifacts/screenshots/``;
with ``UI_TOUR_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/screenshots/`` for the
README. ``MLOPS_TEST_STACK=<json file of MLOPS_STACK_* settings>`` reuses a running
stack instead of starting one (a developer iterating on the tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOUR = Path(__file__).with_name("tour.mjs")
BROWSER_HOME = REPO / ".cache" / "browser"
PLAYWRIGHT_CORE = "playwright-core@1.65.1"
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
README_SHOTS = REPO / "docs" / "screenshots"
#: The screenshots the README shows (the others stay test artifacts).
FOR_README = (
    "01-home", "02-models", "03-monitoring-model", "04-lake", "05-task-extra-links",
    "06-evaluation-report", "06-required-action", "08-models-approved", "09-trigger-form-refused",
)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real headless Chromium against a running embedded stack"
    )


def _say(message: str) -> None:
    print(f"[browser] {message}", flush=True)


def _apt_prefix() -> list[str] | None:
    """How to run apt-get here: directly as root, via password-less sudo, or not at all."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    ):
        return ["sudo", "-n"]
    return None


def _apt_install(*packages: str) -> None:
    prefix = _apt_prefix()
    if prefix is None:
        pytest.skip(
            f"{' and '.join(packages)} missing and apt-get is not usable here (not root, no "
            f"password-less sudo): install them (Debian: apt-get install {' '.join(packages)})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]
    started = time.monotonic()
    _say(f"installing {', '.join(packages)} with apt-get")
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run([*prefix, "apt-get", "update"], env=env, capture_output=True, check=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"apt-get install {' '.join(packages)} failed: {done.stderr[-2000:]}"
            )
    _say(f"installed {', '.join(packages)} in {time.monotonic() - started:.0f} s")


def _playwright_installed() -> bool:
    return (BROWSER_HOME / "node_modules" / "playwright-core" / "package.json").exists()


@pytest.fixture(scope="session")
def browser_tools() -> dict[str, str]:
    """Chromium, Node.js and playwright-core, installed if missing; their locations."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _apt_install("chromium")
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if shutil.which("node") is None or shutil.which("npm") is None:
        _apt_install("nodejs", "npm")
    if not _playwright_installed():
        BROWSER_HOME.mkdir(parents=True, exist_ok=True)
        (REPO / ".cache" / ".gitignore").write_text(
            "# downloaded test tooling, never committed\n*\n"
        )
        (BROWSER_HOME / "package.json").write_text(
            '{"private": true, "name": "mlops-browser-tests"}\n'
        )
        started = time.monotonic()
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", PLAYWRIGHT_CORE],
            cwd=BROWSER_HOME, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"npm install {PLAYWRIGHT_CORE} failed: {done.stderr[-2000:]}")
        _say(f"installed {PLAYWRIGHT_CORE} in {time.monotonic() - started:.0f} s")
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    _say(
        f"{version or chromium}; node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}"
    )
    return {"chromium": chromium, "playwright_home": str(BROWSER_HOME)}


@pytest.fixture(scope="session")
def shots() -> Iterator[Path]:
    """The screenshot folder (emptied first, so it holds this run's pictures only)."""
    if ARTIFACTS.exists():
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
    if os.environ.get("UI_TOUR_UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in FOR_README:
            if (ARTIFACTS / f"{name}.png").exists():
                shutil.copy2(ARTIFACTS / f"{name}.png", README_SHOTS / f"{name}.png")
        _say(f"copied screenshots to {README_SHOTS}")


@pytest.fixture(scope="session")
def stack(browser_tools: dict[str, str], embedded_stack: Any) -> Any:
    """The session's shared embedded stack (``MLOPS_TEST_STACK`` names a running one)."""
    return embedded_stack


class Tour:
    """Runs steps of ``tour.mjs`` (one Chromium each) against the stack."""

    def __init__(self, base: str, tools: dict[str, str], shots: Path, state: Path) -> None:
        self.base = base
        self.tools = tools
        self.shots = shots
        self.state = state
        self.timings: dict[str, float] = {}

    def __call__(self, step: str, **args: Any) -> dict[str, Any]:
        payload = {"base": self.base, "state": str(self.state), "shots": str(self.shots), **args}
        env = {**os.environ, "PLAYWRIGHT_HOME": self.tools["playwright_home"],
               "CHROMIUM": self.tools["chromium"], "NO_PROXY": "127.0.0.1,localhost"}  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(
            ["node", str(TOUR), step, json.dumps(payload)],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        self.timings[step] = self.timings.get(step, 0.0) + time.monotonic() - started
        try:
            result: dict[str, Any] = json.loads(done.stdout or "{}")
        except ValueError:
            result = {"ok": False, "error": done.stdout[-2000:]}
        assert done.returncode == 0 and result.get("ok"), (
            f"browser step {step!r} failed at {result.get('url')}: {result.get('error')}\n"
            f"stderr: {done.stderr[-2000:]}\nscreenshot: {self.shots / f'{step}-failure.png'}"
        )
        _say(f"{step}: {self.timings[step]:.1f} s")
        return result


@pytest.fixture(scope="session")
def tour(
    stack: Any, browser_tools: dict[str, str], shots: Path, tmp_path_factory: pytest.TempPathFactory
) -> Tour:
    state = tmp_path_factory.mktemp("browser-state") / "signed-in.json"
    return Tour(stack.airflow_url, browser_tools, shots, state)
