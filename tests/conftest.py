"""Shared fixtures: every test runs with an isolated ccpt home and a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Fixtures that start real local servers, one module per area.
pytest_plugins = ["tests.messages_api", "tests.web_support"]

# Variables that would make a test depend on the developer's own machine.
_LEAKY_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AWS_PROFILE", "CCPT_DEBUG")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private CCPT_HOME and no inherited CCPT_*/ANTHROPIC_* settings for each test."""
    home = tmp_path_factory.mktemp("ccpt-home")
    for name in list(os.environ):
        if name.startswith("CCPT_") or name in _LEAKY_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CCPT_HOME", str(home))
    yield home


def run_ccpt(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real `ccpt` entry point in a subprocess, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ccpt", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
