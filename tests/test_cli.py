"""The root CLI: help, version, the error path and Ctrl-C, as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ccpt import __version__
from tests.conftest import run_ccpt

GROUPS = ("new", "update", "spec", "agent", "ask", "train", "ec2", "doctor", "config")


def test_help_lists_every_command_group() -> None:
    result = run_ccpt("--help")
    assert result.returncode == 0
    for group in GROUPS:
        assert f" {group} " in result.stdout, group
    assert "Examples" in result.stdout


def test_version_flag_prints_the_package_version() -> None:
    result = run_ccpt("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ccpt {__version__}"


def test_python_dash_m_ccpt_and_the_console_script_agree() -> None:
    script = Path(sys.executable).with_name("ccpt")
    direct = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert direct.stdout == run_ccpt("--version").stdout


def test_each_command_has_help_with_an_example() -> None:
    for group in GROUPS:
        result = run_ccpt(group, "--help")
        assert result.returncode == 0, (group, result.stderr)
        assert "Examples" in result.stdout or "$ ccpt" in result.stdout, group


def test_a_ccpt_error_is_one_line_on_stderr_with_its_exit_code(tmp_path: Path) -> None:
    (tmp_path / "ccpt.toml").write_text("max_tokens = 'many'\n")
    result = run_ccpt("config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "max_tokens" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "ccpt.toml").write_text("max_tokens = 'many'\n")
    result = run_ccpt("--debug", "config", "show", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "CcptError" in result.stderr


def test_invalid_toml_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "ccpt.toml").write_text("max_tokens = = 3\n")
    result = run_ccpt("doctor", "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert str(tmp_path / "ccpt.toml") in result.stderr
    assert "Traceback" not in result.stderr


def test_square_brackets_in_an_error_reach_the_user_unchanged(tmp_path: Path) -> None:
    # A message quoting the user's own input (or a setting such as [tool.ccpt]) is not rich markup.
    spec = tmp_path / "[draft] spec.yaml"
    result = run_ccpt("spec", "check", str(spec), cwd=tmp_path)
    assert result.returncode != 0
    assert "[draft] spec.yaml" in result.stderr, result.stderr
    region = run_ccpt("ec2", "ls", cwd=tmp_path, env={"HOME": str(tmp_path), "AWS_DEFAULT_REGION": ""})
    assert region.returncode != 0 and "[tool.ccpt]" in region.stderr, region.stderr


def test_help_gives_a_type_to_options_that_take_a_value_and_none_to_flags() -> None:
    lines = run_ccpt("agent", "NetworkArchitect", "--help").stdout.splitlines()
    option = {line.split()[1]: line for line in lines if line.startswith("│ --")}
    assert "<str>" in option["--model"] and "<int" in option["--max-tokens"]
    for flag in ("--dry-run", "--json", "--continue", "--help"):
        assert "<" not in option[flag], option[flag]
