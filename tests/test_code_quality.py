"""The repository's own code stays as the standards say: ruff clean, ruff formatted, and its type
hints consistent (mypy, configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    argv = (sys.executable, "-m", *argv)
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("argv", [("ruff", "check", "."), ("ruff", "format", "--check", ".")], ids=" ".join)
def test_ruff_finds_nothing(argv: tuple[str, ...]) -> None:
    result = run_tool(*argv)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_hints_check_with_mypy() -> None:
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
