"""A built wheel installs into a fresh venv (without torch) and runs on its own data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the ccpt wheel and its core dependencies installed."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = work.glob("ccpt-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def test_wheel_ships_the_scaffolds_and_agent_files(wheel_venv: Path) -> None:
    code = (
        "from ccpt.resources import scaffolds_dir, agent_specs_dir;"
        "print(scaffolds_dir()); print(agent_specs_dir())"
    )
    out = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    for line in out.stdout.splitlines():
        assert "site-packages/ccpt/_data/" in line
        assert Path(line).is_dir()


def test_installed_cli_runs_help_and_doctor_without_torch(wheel_venv: Path, tmp_path: Path) -> None:
    ccpt = str(wheel_venv / "bin" / "ccpt")
    help_out = subprocess.run([ccpt, "--help"], capture_output=True, text=True, check=True)
    assert "doctor" in help_out.stdout
    doctor = subprocess.run([ccpt, "doctor", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["torch"]["status"] == "MISSING"
    assert "ccpt[ml]" in checks["torch"]["fix"]
