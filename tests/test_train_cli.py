"""`ccpt train` flags: bad input is one clear line and a non-zero exit, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_ccpt
from tests.train_support import make_project


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hosts", "a", "--hostfile", "hosts.txt"], "--hosts and --hostfile cannot be combined"),
        (["--nodes", "2"], "--nodes/--include/--exclude need --hosts, --hostfile or --ec2-tag"),
        (["--nproc-per-node", "many"], "--nproc-per-node must be auto or a positive number, got 'many'"),
        (["--json"], "--json works with --dry-run only"),
        (["--job-id", "../escape", "--dry-run"], "bad job id '../escape'"),
        (["--env", "no_equals", "--dry-run"], "--env: expected NAME=VALUE, got 'no_equals'"),
        (["--entry", "missing.py", "--dry-run"], "training entry missing.py not found in"),
        (["--hosts", "a,-oProxyCommand=x", "--dry-run"], "bad host name '-oProxyCommand=x'"),
        (["--hostfile", "absent.txt"], "cannot read hostfile absent.txt"),
        (["--hosts", "a,b", "--exclude", "c", "--dry-run"], "--exclude: c not among the hosts"),
    ],
)
def test_bad_flags_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    project = make_project(tmp_path / "p")
    result = run_ccpt("train", *args, cwd=project)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert not (project / "runs").exists()


def test_a_bad_hostfile_line_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "hosts.txt").write_text("# cluster\nnode0 slots=1\nnode1 gpus=8\n")
    result = run_ccpt("train", "--hostfile", "hosts.txt", "--dry-run", cwd=project)
    assert result.returncode == 2
    assert "hosts.txt:3: cannot read 'gpus=8'" in result.stderr


def test_a_bad_env_file_line_is_reported_with_its_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", env_file="OMP_NUM_THREADS=1\nthis is not an assignment\n")
    result = run_ccpt("train", "--dry-run", cwd=project)
    assert result.returncode == 2
    assert ".ccpt_env:2: expected NAME=VALUE" in result.stderr


def test_help_explains_the_flags_with_examples() -> None:
    result = run_ccpt("train", "--help")
    assert result.returncode == 0
    for flag in ("--hostfile", "--ec2-tag", "--sync", "--max-restarts", "--dry-run", "--no-torchrun"):
        assert flag in result.stdout
    assert "Examples" in result.stdout


def test_the_train_and_ec2_commands_load_no_heavy_library() -> None:
    code = (
        "import sys, ccpt.app, ccpt.commands.train, ccpt.commands.ec2;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'boto3', 'botocore', 'anthropic'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
